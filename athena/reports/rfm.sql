-- Customer RFM segments over purchase dates [from, to]: per customer the date of the last
-- order (recency), the number of orders (frequency) and their value (monetary), each
-- scored 1 (lowest) to 5 among the period's customers: 1 + floor(5 * percent_rank), at
-- most 5, so equal values get equal scores. Segments from the recency and frequency
-- scores:
--   champions        R >= 4 and F >= 4     recent and frequent
--   loyal            R >= 3 and F >= 3
--   new              R >= 4, F <= 2        recent, few orders
--   at_risk          R <= 2 and F >= 3     used to buy often, not lately
--   hibernating      R <= 2 and F <= 2
--   needs_attention  R = 3 and F <= 2
-- Parameters: tenant_id, from, to, status, country, limit. An empty status or country
-- means no filter. Cancelled and refunded orders do not count. Reads the purchases change
-- log (purchases_current), one row per order. Rows: highest revenue first, at most
-- `limit` (a rank bound: Athena binds parameters in WHERE clauses only).
WITH orders AS (
  SELECT customer_id, dt, total_amount
  FROM purchases_current
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country)
    AND status NOT IN ('cancelled', 'refunded')
),
customers AS (
  SELECT customer_id, MAX(dt) AS last_order, COUNT(*) AS orders, SUM(total_amount) AS revenue
  FROM orders
  GROUP BY customer_id
),
scored AS (
  SELECT customer_id, last_order, orders, revenue,
         LEAST(5, 1 + CAST(FLOOR(5 * PERCENT_RANK() OVER (ORDER BY last_order)) AS BIGINT)) AS r,
         LEAST(5, 1 + CAST(FLOOR(5 * PERCENT_RANK() OVER (ORDER BY orders)) AS BIGINT)) AS f,
         LEAST(5, 1 + CAST(FLOOR(5 * PERCENT_RANK() OVER (ORDER BY revenue)) AS BIGINT)) AS m,
         ROW_NUMBER() OVER (ORDER BY revenue DESC, customer_id) AS row_rank
  FROM customers
)
SELECT customer_id,
       last_order,
       orders,
       CAST(revenue AS DECIMAL(38, 2)) AS revenue,
       r AS recency_score,
       f AS frequency_score,
       m AS monetary_score,
       CASE
         WHEN r >= 4 AND f >= 4 THEN 'champions'
         WHEN r >= 3 AND f >= 3 THEN 'loyal'
         WHEN r >= 4 THEN 'new'
         WHEN r <= 2 AND f >= 3 THEN 'at_risk'
         WHEN r <= 2 THEN 'hibernating'
         ELSE 'needs_attention'
       END AS segment
FROM scored
WHERE row_rank <= ?
ORDER BY row_rank
