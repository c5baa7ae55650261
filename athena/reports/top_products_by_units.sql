-- Best-selling products by units, then revenue. Parameters: tenant_id, from, to, limit.
-- Cancelled and refunded orders do not count.
SELECT product_id,
       MAX(product_name) AS product_name,
       SUM(quantity) AS units,
       CAST(SUM(line_total) AS DECIMAL(38, 2)) AS revenue,
       COUNT(DISTINCT purchase_id) AS orders
FROM purchase_lines
WHERE tenant_id = ? AND dt BETWEEN ? AND ?
  AND status NOT IN ('cancelled', 'refunded')
  AND product_id IS NOT NULL AND product_id <> ''
GROUP BY product_id
ORDER BY units DESC, revenue DESC, product_id
LIMIT ?
