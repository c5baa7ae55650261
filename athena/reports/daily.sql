-- Revenue and orders per purchase date. Parameters: tenant_id, from, to.
WITH orders AS (
  SELECT DISTINCT dt, purchase_id, total_amount
  FROM purchase_lines
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND status NOT IN ('cancelled', 'refunded')
)
SELECT dt AS day,
       COUNT(*) AS orders,
       CAST(SUM(total_amount) AS DECIMAL(38, 2)) AS revenue
FROM orders
GROUP BY dt
ORDER BY dt
