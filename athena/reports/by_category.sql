-- Revenue, units and orders per product category over purchase dates [from, to].
-- Parameters: tenant_id, tenant_id, from, to, status, country, category.
-- An empty status, country or category means no filter. Cancelled and refunded orders do
-- not count. A line's category is its product's current one in the catalog
-- (products_current); lines of products no longer in the catalog count as '(unknown)'.
-- An order with lines in two categories counts once in each.
WITH catalog AS (
  SELECT product_id, category FROM products_current WHERE tenant_id = ?
),
lines AS (
  SELECT l.purchase_id, l.quantity, l.line_total,
         COALESCE(c.category, '(unknown)') AS category
  FROM purchase_lines l
  LEFT JOIN catalog c ON c.product_id = l.product_id
  WHERE l.tenant_id = ? AND l.dt BETWEEN ? AND ?
    AND ? IN ('', l.status) AND ? IN ('', l.shipping_country) AND ? IN ('', c.category)
    AND l.status NOT IN ('cancelled', 'refunded')
    AND l.product_id IS NOT NULL AND l.product_id <> ''
)
SELECT category,
       SUM(quantity) AS units,
       CAST(SUM(line_total) AS DECIMAL(38, 2)) AS revenue,
       COUNT(DISTINCT purchase_id) AS orders
FROM lines
GROUP BY category
ORDER BY revenue DESC, category
