-- Best-selling products by revenue, then units.
-- Parameters: tenant_id, tenant_id, from, to, status, country, category, limit.
-- An empty status, country or category means no filter. Cancelled and refunded orders do
-- not count; a product's category is its current one in the catalog (products_current).
WITH catalog AS (
  SELECT product_id, category FROM products_current WHERE tenant_id = ?
)
SELECT l.product_id,
       MAX(l.product_name) AS product_name,
       MAX(c.category) AS category,
       SUM(l.quantity) AS units,
       CAST(SUM(l.line_total) AS DECIMAL(38, 2)) AS revenue,
       COUNT(DISTINCT l.purchase_id) AS orders
FROM purchase_lines l
LEFT JOIN catalog c ON c.product_id = l.product_id
WHERE l.tenant_id = ? AND l.dt BETWEEN ? AND ?
  AND ? IN ('', l.status) AND ? IN ('', l.shipping_country) AND ? IN ('', c.category)
  AND l.status NOT IN ('cancelled', 'refunded')
  AND l.product_id IS NOT NULL AND l.product_id <> ''
GROUP BY l.product_id
ORDER BY revenue DESC, units DESC, product_id
LIMIT ?
