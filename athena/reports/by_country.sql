-- Orders and revenue per shipping country. Parameters: tenant_id, from, to, status, country.
-- An empty status or country means no filter.
-- Cancelled and refunded orders do not count.
WITH orders AS (
  SELECT DISTINCT purchase_id, shipping_country, total_amount
  FROM purchase_lines
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country)
    AND status NOT IN ('cancelled', 'refunded')
)
SELECT shipping_country AS country,
       COUNT(*) AS orders,
       CAST(SUM(total_amount) AS DECIMAL(38, 2)) AS revenue
FROM orders
GROUP BY shipping_country
ORDER BY revenue DESC, country
