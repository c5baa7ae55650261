-- products_current: the current state of every product of the change log.
--
-- Each product's latest change wins: the highest sequence number, compared as text
-- zero-padded to 40 digits (more digits than DECIMAL(38) holds). Products whose latest
-- change is a REMOVE are dropped; DISTINCT collapses the same change written twice by a
-- replayed batch. A product's changes span many dates, so the window is per tenant and
-- product over every partition of the tenant (catalogs are small next to purchases).
-- The same text runs on Athena (Trino) and on the embedded DataFusion engine.
CREATE OR REPLACE VIEW products_current AS
WITH changes AS (
  SELECT tenant_id, "keys".product_id AS product_id, op,
         lpad(sequence_number, 40, '0') AS seq, new_image
  FROM products_json
),
latest AS (
  SELECT changes.*, MAX(seq) OVER (PARTITION BY tenant_id, product_id) AS latest_seq
  FROM changes
)
SELECT DISTINCT tenant_id, product_id,
       new_image.name AS name,
       new_image.category AS category,
       new_image.brand AS brand,
       CAST(new_image.price AS DECIMAL(38, 6)) AS price,
       new_image.currency AS currency,
       new_image.is_active AS is_active
FROM latest
WHERE seq = latest_seq AND op <> 'REMOVE'
