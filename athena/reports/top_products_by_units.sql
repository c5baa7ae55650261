-- Best-selling products by units, then revenue.
-- Parameters: tenant_id, from, to, status, country, category, limit.
-- Athena binds parameters in WHERE clauses only, so the limit is a rank bound.
-- An empty status, country or category means no filter. What counts as a sale, and a
-- product's category, are the sold_lines view's rules.
WITH totals AS (
  SELECT product_id, MAX(product_name) AS product_name, MAX(category) AS category,
         SUM(quantity) AS units, CAST(SUM(line_total) AS DECIMAL(38, 2)) AS revenue,
         COUNT(DISTINCT purchase_id) AS orders
  FROM sold_lines
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country) AND ? IN ('', category)
  GROUP BY product_id
),
ranked AS (
  SELECT totals.*, ROW_NUMBER() OVER (ORDER BY units DESC, revenue DESC, product_id) AS row_rank
  FROM totals
)
SELECT product_id, product_name, category, units, revenue, orders
FROM ranked
WHERE row_rank <= ?
ORDER BY row_rank
