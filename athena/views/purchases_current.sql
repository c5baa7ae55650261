-- purchases_current: the current state of every purchase, one row per purchase, from the
-- purchases change log (the JSON twin of purchase_lines, for order-level questions).
--
-- The same rules as purchase_lines: per partition (tenant_id, dt, purchase_id) the latest
-- change by zero-padded sequence number wins unless it is a departure (the purchase was
-- REMOVEd or its created_at moved to another date), a tombstone with a higher sequence
-- number that places the purchase elsewhere or nowhere drops it, and duplicates
-- collapse. dt is in the window's partition so date filters prune partitions. The same
-- text runs on Athena (Trino) and DataFusion.
CREATE OR REPLACE VIEW purchases_current AS
WITH changes AS (
  SELECT tenant_id, dt, "keys".purchase_id AS purchase_id, departure,
         lpad(sequence_number, 40, '0') AS seq,
         new_image.customer_id AS customer_id,
         new_image.status AS status,
         new_image.created_at AS created_at,
         new_image.total_amount AS total_amount,
         new_image.currency AS currency,
         new_image.payment_method AS payment_method,
         new_image.shipping_country AS shipping_country
  FROM purchases_json
),
latest AS (
  SELECT changes.*, MAX(seq) OVER (PARTITION BY tenant_id, dt, purchase_id) AS latest_seq
  FROM changes
),
tombstones AS (
  SELECT tenant_id, purchase_id, COALESCE(live_dt, '') AS live_dt,
         lpad(sequence_number, 40, '0') AS seq
  FROM purchase_tombstones
)
SELECT DISTINCT l.tenant_id, l.dt, l.purchase_id, l.customer_id, l.status, l.created_at,
       CAST(l.total_amount AS DECIMAL(38, 6)) AS total_amount,
       l.currency, l.payment_method, l.shipping_country
FROM latest l
LEFT JOIN tombstones t
  ON t.tenant_id = l.tenant_id AND t.purchase_id = l.purchase_id
 AND t.seq > l.seq AND t.live_dt <> l.dt
WHERE l.seq = l.latest_seq AND NOT l.departure AND t.purchase_id IS NULL
