-- sold_lines: the line items that count as sales, each with its product's category.
--
-- The line-level product reports (top_products, top_products_by_units, by_category) read
-- this view rather than repeating its rules: cancelled and refunded orders do not count,
-- lines without a product id are dropped, and a line's category is its product's current
-- one in the catalog (products_current), NULL for a product no longer in it. Filters on
-- tenant_id and dt reach purchase_lines' partitions, and the tenant filter is carried
-- across the join on tenant_id to products_current (predicate inference in Trino and in
-- DataFusion), so a report reads one tenant's catalog.
-- Created after purchase_lines and products_current, which it reads (the file names sort
-- in that order). The same text runs on Athena (Trino) and on the embedded DataFusion
-- engine.
CREATE OR REPLACE VIEW sold_lines AS
SELECT l.tenant_id, l.dt, l.purchase_id, l.status, l.shipping_country,
       l.product_id, l.product_name, l.quantity, l.line_total, c.category
FROM purchase_lines l
LEFT JOIN products_current c
  ON c.tenant_id = l.tenant_id AND c.product_id = l.product_id
WHERE l.status NOT IN ('cancelled', 'refunded')
  AND l.product_id IS NOT NULL AND l.product_id <> ''
