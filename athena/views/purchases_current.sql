-- purchases_current: the current state of every purchase, one row per purchase, from the
-- purchases change log (the JSON twin of purchase_lines, for order-level questions).
--
-- Latest change per purchase by zero-padded sequence number, REMOVEd purchases dropped,
-- duplicates collapsed; `dt` (the creation date) is in the window's partition so date
-- filters prune partitions. The same text runs on Athena (Trino) and DataFusion.
CREATE OR REPLACE VIEW purchases_current AS
WITH changes AS (
  SELECT tenant_id, dt, "keys".purchase_id AS purchase_id, op,
         lpad(sequence_number, 40, '0') AS seq, new_image
  FROM purchases_json
),
latest AS (
  SELECT changes.*, MAX(seq) OVER (PARTITION BY tenant_id, dt, purchase_id) AS latest_seq
  FROM changes
)
SELECT DISTINCT tenant_id, dt, purchase_id,
       new_image.customer_id AS customer_id,
       new_image.status AS status,
       new_image.created_at AS created_at,
       CAST(new_image.total_amount AS DECIMAL(38, 6)) AS total_amount,
       new_image.currency AS currency,
       new_image.payment_method AS payment_method,
       new_image.shipping_country AS shipping_country
FROM latest
WHERE seq = latest_seq AND op <> 'REMOVE'
