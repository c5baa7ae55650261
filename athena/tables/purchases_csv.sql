-- The purchases CSV of the lake: one row per line item per change (line_number counts
-- from 1, so two identical items of one order are two rows), gzip, header row, every
-- field quoted, quotes and backslashes escaped with a backslash (see
-- crates/lake/src/encode.rs; OpenCSVSerde cannot read line breaks inside fields, so the
-- writer turns them into spaces). dt is the purchase's created_at date; a change that
-- moves a purchase out of a partition (a REMOVE, a created_at corrected to another day)
-- writes one row there with departure = 'true' (see athena/views/purchase_lines.sql).
-- Partition projection (no crawler, no MSCK REPAIR): tenant_id is injected from the
-- query's own tenant filter, dt is a date range. Replace LAKE_BUCKET with the stack's
-- LakeBucketName output before running it (see the README).
CREATE EXTERNAL TABLE IF NOT EXISTS purchases_csv (
  purchase_id string,
  customer_id string,
  status string,
  created_at string,
  line_number string,
  product_id string,
  product_name string,
  quantity string,
  unit_price string,
  line_total string,
  total_amount string,
  currency string,
  payment_method string,
  shipping_country string,
  shipping_city string,
  op string,
  sequence_number string,
  event_time string,
  departure string
)
PARTITIONED BY (tenant_id string, dt string)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '"', 'escapeChar' = '\\')
STORED AS TEXTFILE
LOCATION 's3://LAKE_BUCKET/lake/purchases/csv/'
TBLPROPERTIES (
  'skip.header.line.count' = '1',
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://LAKE_BUCKET/lake/purchases/csv/tenant_id=${tenant_id}/dt=${dt}/'
)
