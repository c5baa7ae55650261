-- Revenue, units and orders per product category over purchase dates [from, to].
-- Parameters: tenant_id, from, to, status, country, category.
-- An empty status, country or category means no filter. What counts as a sale, and a
-- line's category, are the sold_lines view's rules; lines of products no longer in the
-- catalog count as '(unknown)'. An order with lines in two categories counts once in each.
WITH lines AS (
  SELECT purchase_id, quantity, line_total, COALESCE(category, '(unknown)') AS category
  FROM sold_lines
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country) AND ? IN ('', category)
)
SELECT category,
       SUM(quantity) AS units,
       CAST(SUM(line_total) AS DECIMAL(38, 2)) AS revenue,
       COUNT(DISTINCT purchase_id) AS orders
FROM lines
GROUP BY category
ORDER BY revenue DESC, category
