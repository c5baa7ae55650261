-- The purchases change log of the lake: one JSON object per change, gzip. `new_image` and
-- `old_image` are the purchase as stored (money as exact decimal text, times RFC 3339 UTC);
-- a REMOVE has no new image. Partitioned like purchases_csv (dt = the purchase's creation
-- date), with partition projection; a change that moves a purchase out of a partition is
-- also written there with departure = true (see athena/views/purchases_current.sql).
-- Replace LAKE_BUCKET before running it (see the README).
CREATE EXTERNAL TABLE IF NOT EXISTS purchases_json (
  op string,
  sequence_number string,
  event_time string,
  `keys` struct<tenant_id:string, purchase_id:string>,
  new_image struct<
    purchase_id:string, customer_id:string, status:string, created_at:string,
    updated_at:string, total_amount:string, currency:string, payment_method:string,
    shipping_country:string, shipping_city:string,
    items:array<struct<product_id:string, name:string, quantity:bigint, unit_price:string>>>,
  old_image struct<
    purchase_id:string, customer_id:string, status:string, created_at:string,
    updated_at:string, total_amount:string, currency:string, payment_method:string,
    shipping_country:string, shipping_city:string,
    items:array<struct<product_id:string, name:string, quantity:bigint, unit_price:string>>>,
  departure boolean
)
PARTITIONED BY (tenant_id string, dt string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
STORED AS TEXTFILE
LOCATION 's3://LAKE_BUCKET/lake/purchases/json/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://LAKE_BUCKET/lake/purchases/json/tenant_id=${tenant_id}/dt=${dt}/'
)
