-- The queries of one tenant's searches that found nothing over event dates [from, to]
-- (the search log, issue #12): what shoppers want and the catalog does not answer.
-- Parameters: tenant_id, from, to, limit.
WITH grouped AS (
  SELECT query, COUNT(DISTINCT query_id) AS searches, MAX(at) AS last_searched
  FROM search_events
  WHERE tenant_id = ? AND dt BETWEEN ? AND ? AND kind = 'search' AND results = 0
  GROUP BY query
),
numbered AS (
  SELECT query, searches, last_searched,
         ROW_NUMBER() OVER (ORDER BY searches DESC, query) AS row_rank
  FROM grouped
)
SELECT query, searches, last_searched
FROM numbered
WHERE row_rank <= ?
ORDER BY row_rank
