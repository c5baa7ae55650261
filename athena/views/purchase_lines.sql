-- purchase_lines: the current state of every purchase, one row per line item.
--
-- The lake is a change log delivered at least once and partitioned by the purchase's
-- created_at date (dt), which a later change may correct. A row is current when
--   * it belongs to the latest change of its purchase in its partition: the highest
--     sequence number, compared as text zero-padded to 40 digits (DynamoDB sequence
--     numbers have up to 40 digits, more than DECIMAL(38) holds), and that change is not
--     a departure. A change that moves a purchase out of a partition (a REMOVE, or a
--     created_at corrected to another date) writes a departure row into the partition it
--     leaves, so a partition the purchase left ends in a departure and keeps nothing
--     current, exactly as the search index forgets the old version;
--   * no tombstone of the purchase with a higher sequence number places it in another
--     partition or nowhere. Tombstones (purchase_tombstones) come from the rare changes
--     without a usable old image, whose partition of origin is unknown; the table grows
--     only with those, not with the lake.
-- Identical rows written twice by replayed or retried batches collapse (DISTINCT);
-- line_number keeps two identical items of one order apart.
-- The window is per partition (tenant_id, dt, purchase_id), not per purchase, so date
-- filters on the view reach the scan and prune partitions: a one-day report reads one
-- day of the lake plus the tenant's tombstones.
-- The same text runs on Athena (Trino) and on the embedded DataFusion engine.
CREATE OR REPLACE VIEW purchase_lines AS
WITH lines AS (
  SELECT DISTINCT tenant_id, dt, purchase_id, customer_id, status, line_number, product_id,
         product_name, quantity, unit_price, line_total, total_amount, currency,
         payment_method, shipping_country, shipping_city, departure,
         lpad(sequence_number, 40, '0') AS seq
  FROM purchases_csv
),
latest AS (
  SELECT lines.*, MAX(seq) OVER (PARTITION BY tenant_id, dt, purchase_id) AS latest_seq
  FROM lines
),
tombstones AS (
  SELECT tenant_id, purchase_id, COALESCE(live_dt, '') AS live_dt,
         lpad(sequence_number, 40, '0') AS seq
  FROM purchase_tombstones
)
SELECT l.tenant_id, l.dt, l.purchase_id, l.customer_id, l.status,
       CAST(NULLIF(l.line_number, '') AS BIGINT) AS line_number,
       l.product_id, l.product_name,
       CAST(NULLIF(l.quantity, '') AS BIGINT) AS quantity,
       CAST(NULLIF(l.unit_price, '') AS DECIMAL(38, 6)) AS unit_price,
       CAST(NULLIF(l.line_total, '') AS DECIMAL(38, 6)) AS line_total,
       CAST(NULLIF(l.total_amount, '') AS DECIMAL(38, 6)) AS total_amount,
       l.currency, l.payment_method, l.shipping_country, l.shipping_city
FROM latest l
LEFT JOIN tombstones t
  ON t.tenant_id = l.tenant_id AND t.purchase_id = l.purchase_id
 AND t.seq > l.seq AND t.live_dt <> l.dt
WHERE l.seq = l.latest_seq AND l.departure = 'false' AND t.purchase_id IS NULL
