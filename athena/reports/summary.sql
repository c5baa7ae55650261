-- Sales summary of one tenant over purchase dates [from, to].
-- Parameters: tenant_id, from, to, status, country (dates as YYYY-MM-DD).
-- An empty status or country means no filter.
-- Cancelled and refunded orders count in the shares only, not in revenue or units.
WITH scoped AS (
  SELECT * FROM purchase_lines WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country)
),
orders AS (
  SELECT DISTINCT purchase_id, customer_id, status, total_amount FROM scoped
),
sold AS (
  SELECT COALESCE(SUM(quantity), 0) AS units
  FROM scoped
  WHERE status NOT IN ('cancelled', 'refunded')
)
SELECT
  COALESCE(SUM(CASE WHEN status NOT IN ('cancelled', 'refunded') THEN 1 ELSE 0 END), 0) AS orders,
  CAST(COALESCE(SUM(CASE WHEN status NOT IN ('cancelled', 'refunded') THEN total_amount END), 0) AS DECIMAL(38, 2)) AS revenue,
  COALESCE(MAX(sold.units), 0) AS units,
  CAST(ROUND(COALESCE(
    SUM(CASE WHEN status NOT IN ('cancelled', 'refunded') THEN total_amount END)
      / NULLIF(SUM(CASE WHEN status NOT IN ('cancelled', 'refunded') THEN 1 ELSE 0 END), 0),
    0), 2) AS DECIMAL(38, 2)) AS average_order_value,
  COUNT(DISTINCT CASE WHEN status NOT IN ('cancelled', 'refunded') THEN customer_id END) AS customers,
  COUNT(purchase_id) AS all_orders,
  COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) AS cancelled_orders,
  COALESCE(SUM(CASE WHEN status = 'refunded' THEN 1 ELSE 0 END), 0) AS refunded_orders
FROM orders CROSS JOIN sold
