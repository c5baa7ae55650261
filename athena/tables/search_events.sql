-- The search log of the lake (issue #12): one JSON object per search, autocomplete or
-- click, gzip, written by the search API. `query` is normalised (lowercase, single
-- spaces); `query_id` links a click to its search; `results` is the number of matches (a
-- search) or suggestions (an autocomplete); `position` is the clicked result's rank from
-- 1; `at` is RFC 3339 UTC. Nothing identifies the shopper. Partitioned by tenant and the
-- event's date, with partition projection. Replace LAKE_BUCKET before running it.
CREATE EXTERNAL TABLE IF NOT EXISTS search_events (
  kind string,
  query string,
  query_id string,
  results bigint,
  product_id string,
  position bigint,
  at string
)
PARTITIONED BY (tenant_id string, dt string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
STORED AS TEXTFILE
LOCATION 's3://LAKE_BUCKET/lake/search_events/json/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://LAKE_BUCKET/lake/search_events/json/tenant_id=${tenant_id}/dt=${dt}/'
)
