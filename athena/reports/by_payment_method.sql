-- Orders and revenue per payment method. Parameters: tenant_id, from, to, status, country.
-- An empty status or country means no filter.
-- Cancelled and refunded orders do not count.
WITH orders AS (
  SELECT DISTINCT purchase_id, payment_method, total_amount
  FROM purchase_lines
  WHERE tenant_id = ? AND dt BETWEEN ? AND ?
    AND ? IN ('', status) AND ? IN ('', shipping_country)
    AND status NOT IN ('cancelled', 'refunded')
)
SELECT payment_method,
       COUNT(*) AS orders,
       CAST(SUM(total_amount) AS DECIMAL(38, 2)) AS revenue
FROM orders
GROUP BY payment_method
ORDER BY revenue DESC, payment_method
