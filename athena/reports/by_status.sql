-- Orders and order value per status. Parameters: tenant_id, from, to, status, country.
-- An empty status or country means no filter.
WITH orders AS (
  SELECT DISTINCT purchase_id, status, total_amount
  FROM purchase_lines
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country)
)
SELECT status,
       COUNT(*) AS orders,
       CAST(SUM(total_amount) AS DECIMAL(38, 2)) AS order_value
FROM orders
GROUP BY status
ORDER BY orders DESC, status
