-- Best-selling products by units, then revenue.
-- Parameters: tenant_id, tenant_id, from, to, status, country, category, limit.
-- Athena binds parameters in WHERE clauses only, so the limit is a rank bound.
-- An empty status, country or category means no filter. Cancelled and refunded orders do
-- not count; a product's category is its current one in the catalog (products_current).
WITH catalog AS (
  SELECT product_id, category FROM products_current WHERE tenant_id = ?
),
totals AS (
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
),
ranked AS (
  SELECT totals.*, ROW_NUMBER() OVER (ORDER BY units DESC, revenue DESC, product_id) AS row_rank
  FROM totals
)
SELECT product_id, product_name, category, units, revenue, orders
FROM ranked
WHERE row_rank <= ?
ORDER BY row_rank
