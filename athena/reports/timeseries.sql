-- Revenue and orders per day, week (starting Monday) or month of purchase date.
-- Parameters: tenant_id, from, to, status, country, granularity ('day', 'week' or 'month').
-- An empty status or country means no filter.
-- Cancelled and refunded orders do not count. Athena binds parameters in WHERE clauses
-- only, so the granularity picks a row of a constant table.
WITH orders AS (
  SELECT DISTINCT dt, purchase_id, total_amount
  FROM purchase_lines
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country)
    AND status NOT IN ('cancelled', 'refunded')
),
granularity AS (
  SELECT g FROM (VALUES ('day'), ('week'), ('month')) AS t (g) WHERE g = ?
),
bucketed AS (
  SELECT CASE granularity.g
           WHEN 'month' THEN substr(dt, 1, 7)
           WHEN 'week' THEN CAST(CAST(date_trunc('week', CAST(dt AS DATE)) AS DATE) AS VARCHAR)
           ELSE dt
         END AS period,
         purchase_id, total_amount
  FROM orders CROSS JOIN granularity
)
SELECT period,
       COUNT(*) AS orders,
       CAST(SUM(total_amount) AS DECIMAL(38, 2)) AS revenue
FROM bucketed
GROUP BY period
ORDER BY period
