-- The products change log of the lake: one JSON object per change, gzip, partitioned by
-- tenant and the date of the change (dt = event date), with partition projection.
-- Attributes are free-form per tenant and stay out of the table. Replace LAKE_BUCKET
-- before running it (see the README).
CREATE EXTERNAL TABLE IF NOT EXISTS products_json (
  op string,
  sequence_number string,
  event_time string,
  `keys` struct<tenant_id:string, product_id:string>,
  new_image struct<
    product_id:string, name:string, description:string, category:string, brand:string,
    price:string, currency:string, stock:bigint, tags:array<string>, is_active:boolean,
    created_at:string, updated_at:string>,
  old_image struct<
    product_id:string, name:string, description:string, category:string, brand:string,
    price:string, currency:string, stock:bigint, tags:array<string>, is_active:boolean,
    created_at:string, updated_at:string>
)
PARTITIONED BY (tenant_id string, dt string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
STORED AS TEXTFILE
LOCATION 's3://LAKE_BUCKET/lake/products/json/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://LAKE_BUCKET/lake/products/json/tenant_id=${tenant_id}/dt=${dt}/'
)
