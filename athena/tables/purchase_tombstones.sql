-- The purchase tombstones of the lake: one row per purchase change whose partition of
-- origin is unknown, because the record has no usable old image (a REMOVE or MODIFY from
-- a stream without old images, or an old image that does not decode). Such a row says:
-- from sequence_number on, the purchase lives only in partition live_dt, or nowhere when
-- live_dt is empty. The views drop every older row of the purchase elsewhere. It grows
-- only with such changes, none in normal operation, so it has no date partition and the
-- views read it whole for the tenant. Same CSV dialect as purchases_csv. Replace
-- LAKE_BUCKET before running it (see the README).
CREATE EXTERNAL TABLE IF NOT EXISTS purchase_tombstones (
  purchase_id string,
  live_dt string,
  op string,
  sequence_number string,
  event_time string
)
PARTITIONED BY (tenant_id string)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '"', 'escapeChar' = '\\')
STORED AS TEXTFILE
LOCATION 's3://LAKE_BUCKET/lake/purchases/tombstones/'
TBLPROPERTIES (
  'skip.header.line.count' = '1',
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'storage.location.template' = 's3://LAKE_BUCKET/lake/purchases/tombstones/tenant_id=${tenant_id}/'
)
