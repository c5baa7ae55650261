-- Click-through per day of one tenant over event dates [from, to] (the search log, issue
-- #12): searches (on the day of the search), those followed by at least one click on a
-- result, that share, the clicks of the day, and their average position (1 = the first
-- result).
-- Parameters: tenant_id, from, to.
WITH events AS (
  SELECT dt, kind, query_id, position
  FROM search_events
  WHERE tenant_id = ? AND dt BETWEEN ? AND ? AND kind IN ('search', 'click')
),
searches AS (
  SELECT MIN(CASE WHEN kind = 'search' THEN dt END) AS dt,
         MAX(CASE WHEN kind = 'click' THEN 1 ELSE 0 END) AS clicked
  FROM events
  GROUP BY query_id
),
per_day AS (
  SELECT dt, COUNT(*) AS searches, SUM(clicked) AS searches_with_clicks
  FROM searches
  WHERE dt IS NOT NULL
  GROUP BY dt
),
clicks AS (
  SELECT dt, COUNT(*) AS clicks, AVG(CAST(position AS DOUBLE)) AS average_position
  FROM events
  WHERE kind = 'click'
  GROUP BY dt
)
SELECT per_day.dt AS day,
       per_day.searches,
       per_day.searches_with_clicks,
       CAST(ROUND(CAST(per_day.searches_with_clicks AS DOUBLE) / per_day.searches, 4) AS DECIMAL(10, 4)) AS click_through_rate,
       COALESCE(clicks.clicks, 0) AS clicks,
       CAST(ROUND(clicks.average_position, 2) AS DECIMAL(10, 2)) AS average_click_position
FROM per_day LEFT JOIN clicks ON clicks.dt = per_day.dt
ORDER BY day
