-- purchase_lines: the current state of every purchase, one row per line item.
--
-- The lake is a change log delivered at least once, so this view
--   * collapses identical rows written twice by replayed or retried batches (DISTINCT),
--   * keeps each purchase's latest change: the highest sequence number, compared as text
--     zero-padded to 40 digits (DynamoDB sequence numbers have up to 40 digits, more
--     than DECIMAL(38) holds),
--   * drops purchases whose latest change is a REMOVE.
-- `dt` (the purchase's creation date) is in the window's partition, so date filters on
-- the view reach the scan and prune partitions.
-- The same text runs on Athena (Trino) and on the embedded DataFusion engine.
CREATE OR REPLACE VIEW purchase_lines AS
WITH lines AS (
  SELECT DISTINCT tenant_id, dt, purchase_id, customer_id, status, product_id, product_name,
         quantity, unit_price, line_total, total_amount, currency, payment_method,
         shipping_country, shipping_city, op, lpad(sequence_number, 40, '0') AS seq
  FROM purchases_csv
),
latest AS (
  SELECT lines.*, MAX(seq) OVER (PARTITION BY tenant_id, dt, purchase_id) AS latest_seq
  FROM lines
)
SELECT tenant_id, dt, purchase_id, customer_id, status, product_id, product_name,
       CAST(NULLIF(quantity, '') AS BIGINT) AS quantity,
       CAST(NULLIF(unit_price, '') AS DECIMAL(38, 6)) AS unit_price,
       CAST(NULLIF(line_total, '') AS DECIMAL(38, 6)) AS line_total,
       CAST(NULLIF(total_amount, '') AS DECIMAL(38, 6)) AS total_amount,
       currency, payment_method, shipping_country, shipping_city
FROM latest
WHERE seq = latest_seq AND op <> 'REMOVE'
