-- The most searched queries of one tenant over event dates [from, to] (the search log,
-- issue #12): searches of each normalised query, how many of them were followed by a
-- click on a result, that share, and the average number of matches. Paging through
-- results is not a new search, and autocomplete requests are not searches.
-- Parameters: tenant_id, from, to, limit.
WITH searches AS (
  SELECT query_id,
         MAX(CASE WHEN kind = 'search' THEN query END) AS query,
         MAX(CASE WHEN kind = 'search' THEN results END) AS results,
         MAX(CASE WHEN kind = 'click' THEN 1 ELSE 0 END) AS clicked
  FROM search_events
  WHERE tenant_id = ? AND dt BETWEEN ? AND ? AND kind IN ('search', 'click')
  GROUP BY query_id
),
grouped AS (
  SELECT query,
         COUNT(*) AS searches,
         SUM(clicked) AS searches_with_clicks,
         AVG(CAST(results AS DOUBLE)) AS average_results
  FROM searches
  WHERE query IS NOT NULL
  GROUP BY query
),
numbered AS (
  SELECT query, searches, searches_with_clicks, average_results,
         ROW_NUMBER() OVER (ORDER BY searches DESC, query) AS row_rank
  FROM grouped
)
SELECT query,
       searches,
       searches_with_clicks,
       CAST(ROUND(CAST(searches_with_clicks AS DOUBLE) / searches, 4) AS DECIMAL(10, 4)) AS click_through_rate,
       CAST(ROUND(average_results, 1) AS DECIMAL(20, 1)) AS average_results
FROM numbered
WHERE row_rank <= ?
ORDER BY row_rank
