//! The embedded analytics engine: Apache DataFusion over the local lake directory or an S3
//! lake (the same five tables as `athena/tables/`), with the lake's Hive partitions
//! (`tenant_id=…/dt=…`) as partition columns, so a report's tenant and date filters prune
//! whole directories before any file is opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cloudpf_model::TenantId;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::context::SQLOptions;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use url::Url;

use cloudpf_lake::encode::{PURCHASE_CSV_COLUMNS, TOMBSTONE_CSV_COLUMNS};

use crate::dialect::numbered_placeholders;
use crate::engine::{AnalyticsEngine, AnalyticsError, ReportTable};
use crate::report::{Param, ReportRequest, VIEWS};

/// Reports over the lake (`lake/purchases/csv`, `lake/purchases/json`,
/// `lake/products/json`) in a local directory or in an S3 bucket.
#[derive(Debug, Clone)]
pub struct DataFusionEngine {
    lake: Lake,
}

#[derive(Debug, Clone)]
enum Lake {
    /// `<data dir>/lake`.
    Dir(PathBuf),
    /// `s3://<bucket>/<prefix>lake`, read through `store`.
    S3 {
        bucket: String,
        prefix: String,
        store: Arc<dyn ObjectStore>,
    },
}

/// A lake in S3 or an S3-compatible store (MinIO), where the CDC handlers' S3 sink wrote
/// it. Credentials come from the standard AWS environment (variables, container or
/// instance roles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Lake {
    pub bucket: String,
    /// Key prefix before `lake/`: empty, or ending in `/`.
    pub prefix: String,
    /// A custom endpoint (MinIO, moto); plain `http://` is allowed for those.
    pub endpoint: Option<String>,
    /// The bucket's region; default from the environment.
    pub region: Option<String>,
}

fn failed(e: impl std::fmt::Display) -> AnalyticsError {
    AnalyticsError::Failed(e.to_string())
}

/// Whether a query failed because it read an object a compaction had just removed
/// (after writing the object holding its rows): listing the lake again finds them.
fn vanished(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if matches!(e.downcast_ref(), Some(object_store::Error::NotFound { .. }))
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// A query's failure: retryable when an object vanished under it.
fn query_failed(e: datafusion::error::DataFusionError) -> AnalyticsError {
    if vanished(&e) {
        AnalyticsError::Vanished(e.to_string())
    } else {
        failed(e)
    }
}

/// Runs a query, and once more when an object it listed was compacted away under it.
async fn listing_again_if_compacted<T, F, Fut>(query: F) -> Result<T, AnalyticsError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, AnalyticsError>>,
{
    match query().await {
        Err(AnalyticsError::Vanished(m)) => {
            tracing::debug!("{m}; listing the lake again");
            query().await
        }
        other => other,
    }
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn structure(fields: Vec<Field>) -> DataType {
    DataType::Struct(Fields::from(fields))
}

/// The purchases CSV as the lake writes it, every column read as text (the view casts).
fn purchases_csv_schema() -> Schema {
    Schema::new(PURCHASE_CSV_COLUMNS.map(text).to_vec())
}

/// The purchase tombstones, every column read as text.
fn purchase_tombstones_schema() -> Schema {
    Schema::new(TOMBSTONE_CSV_COLUMNS.map(text).to_vec())
}

/// A change log line: `op`, `sequence_number`, `event_time`, `keys` and both images, as
/// in `athena/tables/*_json.sql`. Image fields the tables do not declare are ignored.
fn change_log_fields(key: &str, image: Vec<Field>) -> Vec<Field> {
    vec![
        text("op"),
        text("sequence_number"),
        text("event_time"),
        Field::new("keys", structure(vec![text("tenant_id"), text(key)]), true),
        Field::new("new_image", structure(image.clone()), true),
        Field::new("old_image", structure(image), true),
    ]
}

fn purchases_json_schema() -> Schema {
    let item = structure(vec![
        text("product_id"),
        text("name"),
        Field::new("quantity", DataType::Int64, true),
        text("unit_price"),
    ]);
    let mut image: Vec<Field> = [
        "purchase_id",
        "customer_id",
        "status",
        "created_at",
        "updated_at",
        "total_amount",
        "currency",
        "payment_method",
        "shipping_country",
        "shipping_city",
    ]
    .map(text)
    .to_vec();
    image.push(Field::new(
        "items",
        DataType::List(Arc::new(Field::new("item", item, true))),
        true,
    ));
    let mut fields = change_log_fields("purchase_id", image);
    fields.push(Field::new("departure", DataType::Boolean, true));
    Schema::new(fields)
}

fn products_json_schema() -> Schema {
    let mut image: Vec<Field> = [
        "product_id",
        "name",
        "description",
        "category",
        "brand",
        "price",
        "currency",
    ]
    .map(text)
    .to_vec();
    image.extend([
        Field::new("stock", DataType::Int64, true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("is_active", DataType::Boolean, true),
        text("created_at"),
        text("updated_at"),
    ]);
    Schema::new(change_log_fields("product_id", image))
}

/// The search log (`athena/tables/search_events.sql`).
fn search_events_schema() -> Schema {
    Schema::new(vec![
        text("kind"),
        text("query"),
        text("query_id"),
        Field::new("results", DataType::Int64, true),
        text("product_id"),
        Field::new("position", DataType::Int64, true),
        text("at"),
    ])
}

/// One external table of the lake: its name, directory under the lake root, file
/// extension, columns (without the partition columns) and partition columns.
struct LakeTable {
    name: &'static str,
    dir: &'static str,
    extension: &'static str,
    schema: fn() -> Schema,
    partitions: &'static [&'static str],
}

const BY_TENANT_AND_DATE: &[&str] = &["tenant_id", "dt"];

const TABLES: [LakeTable; 5] = [
    LakeTable {
        name: "purchases_csv",
        dir: "purchases/csv",
        extension: ".csv.gz",
        schema: purchases_csv_schema,
        partitions: BY_TENANT_AND_DATE,
    },
    LakeTable {
        name: "purchases_json",
        dir: "purchases/json",
        extension: ".json.gz",
        schema: purchases_json_schema,
        partitions: BY_TENANT_AND_DATE,
    },
    LakeTable {
        name: "products_json",
        dir: "products/json",
        extension: ".json.gz",
        schema: products_json_schema,
        partitions: BY_TENANT_AND_DATE,
    },
    LakeTable {
        name: "purchase_tombstones",
        dir: "purchases/tombstones",
        extension: ".csv.gz",
        schema: purchase_tombstones_schema,
        partitions: &["tenant_id"],
    },
    LakeTable {
        name: "search_events",
        dir: "search_events/json",
        extension: ".json.gz",
        schema: search_events_schema,
        partitions: BY_TENANT_AND_DATE,
    },
];

impl DataFusionEngine {
    /// An engine over the lake under `data_dir` (`<data_dir>/lake`).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            lake: Lake::Dir(data_dir.join("lake")),
        }
    }

    /// An engine over a lake in S3.
    pub fn over_s3(lake: &S3Lake) -> Result<Self, AnalyticsError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&lake.bucket);
        if let Some(endpoint) = &lake.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &lake.region {
            builder = builder.with_region(region);
        }
        let store = builder
            .build()
            .map_err(|e| AnalyticsError::Failed(format!("s3 lake {}: {e}", lake.bucket)))?;
        Ok(Self {
            lake: Lake::S3 {
                bucket: lake.bucket.clone(),
                prefix: lake.prefix.clone(),
                store: Arc::new(store),
            },
        })
    }

    /// The table's listing URL, or `None` while nothing of it has been written.
    async fn location(&self, table: &LakeTable) -> Result<Option<String>, AnalyticsError> {
        match &self.lake {
            Lake::Dir(root) => {
                let dir = root.join(table.dir);
                Ok(dir.is_dir().then(|| format!("{}/", dir.display())))
            }
            Lake::S3 {
                bucket,
                prefix,
                store,
            } => {
                let key = format!("{prefix}lake/{}/", table.dir);
                let first = store
                    .list(Some(&ObjectPath::from(key.as_str())))
                    .next()
                    .await
                    .transpose()
                    .map_err(|e| AnalyticsError::Unavailable(format!("s3 lake {bucket}: {e}")))?;
                Ok(first.map(|_| format!("s3://{bucket}/{key}")))
            }
        }
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        table: &LakeTable,
    ) -> Result<(), AnalyticsError> {
        let schema = Arc::new((table.schema)());
        let Some(url) = self.location(table).await? else {
            // Nothing written yet: the same columns, no rows.
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend(table.partitions.iter().map(|p| text(p)));
            let empty =
                MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]]).map_err(failed)?;
            ctx.register_table(table.name, Arc::new(empty))
                .map_err(failed)?;
            return Ok(());
        };
        let format: Arc<dyn FileFormat> = if table.extension == ".csv.gz" {
            Arc::new(
                // The lake's CSV dialect (crates/lake/src/encode.rs): every field quoted,
                // quotes and backslashes escaped with a backslash, as OpenCSVSerde reads.
                CsvFormat::default()
                    .with_has_header(true)
                    .with_escape(Some(b'\\'))
                    .with_file_compression_type(FileCompressionType::GZIP),
            )
        } else {
            Arc::new(JsonFormat::default().with_file_compression_type(FileCompressionType::GZIP))
        };
        let options = ListingOptions::new(format)
            .with_file_extension(table.extension)
            .with_table_partition_cols(
                table
                    .partitions
                    .iter()
                    .map(|p| ((*p).to_owned(), DataType::Utf8))
                    .collect(),
            );
        ctx.register_listing_table(table.name, url, options, Some(schema), None)
            .await
            .map_err(failed)
    }

    async fn context(&self) -> Result<SessionContext, AnalyticsError> {
        let ctx = SessionContext::new();
        if let Lake::S3 { bucket, store, .. } = &self.lake {
            let root = Url::parse(&format!("s3://{bucket}")).map_err(failed)?;
            ctx.register_object_store(&root, store.clone());
        }
        for table in &TABLES {
            self.register(&ctx, table).await?;
        }
        for view in VIEWS {
            ctx.sql(view)
                .await
                .map_err(failed)?
                .collect()
                .await
                .map_err(failed)?;
        }
        Ok(ctx)
    }

    async fn dataframe(
        &self,
        tenant: &TenantId,
        request: &ReportRequest,
    ) -> Result<DataFrame, AnalyticsError> {
        let ctx = self.context().await?;
        let params: Vec<ScalarValue> = request
            .params(tenant)
            .into_iter()
            .map(|p| match p {
                Param::Text(t) => ScalarValue::Utf8(Some(t)),
                Param::Int(i) => ScalarValue::Int64(Some(i)),
            })
            .collect();
        ctx.sql(&numbered_placeholders(request.report.sql()))
            .await
            .map_err(failed)?
            .with_param_values(params)
            .map_err(failed)
    }

    /// The physical plan of a report, for inspecting what it reads.
    pub async fn plan(
        &self,
        tenant: &TenantId,
        request: &ReportRequest,
    ) -> Result<String, AnalyticsError> {
        let plan: Arc<dyn ExecutionPlan> = self
            .dataframe(tenant, request)
            .await?
            .create_physical_plan()
            .await
            .map_err(failed)?;
        Ok(displayable(plan.as_ref()).indent(true).to_string())
    }
}

impl DataFusionEngine {
    /// Runs one query over the lake's tables and views (`purchase_lines`,
    /// `purchases_current`, `products_current`): for tests and investigations, which
    /// compare the views with other sources. Reports go through [`AnalyticsEngine::run`].
    /// Only queries: DDL, DML (`INSERT`, `COPY`) and other statements are refused, so
    /// nothing is written to the lake.
    pub async fn query(&self, sql: &str) -> Result<ReportTable, AnalyticsError> {
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        listing_again_if_compacted(|| async {
            let ctx = self.context().await?;
            let df = ctx.sql_with_options(sql, read_only).await.map_err(failed)?;
            table_of(df).await
        })
        .await
    }
}

/// A query's result as text cells (`None` for SQL NULL).
async fn table_of(df: DataFrame) -> Result<ReportTable, AnalyticsError> {
    let columns: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = df.collect().await.map_err(query_failed)?;
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in &batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(col, f)| (!col.is_null(row)).then(|| f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(ReportTable { columns, rows })
}

#[async_trait]
impl AnalyticsEngine for DataFusionEngine {
    async fn run(
        &self,
        tenant: &TenantId,
        request: &ReportRequest,
    ) -> Result<ReportTable, AnalyticsError> {
        listing_again_if_compacted(|| async {
            table_of(self.dataframe(tenant, request).await?).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column list of an Athena DDL statement, whitespace and quotes removed.
    fn ddl_columns(ddl: &str) -> String {
        let start = ddl
            .find("EXISTS")
            .and_then(|e| ddl[e..].find('(').map(|i| e + i + 1))
            .unwrap_or(0);
        let end = ddl.find("\n)\nPARTITIONED BY").unwrap_or(ddl.len());
        ddl[start..end]
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '`')
            .collect()
    }

    fn hive(t: &DataType) -> String {
        match t {
            DataType::Utf8 => "string".to_owned(),
            DataType::Int64 => "bigint".to_owned(),
            DataType::Boolean => "boolean".to_owned(),
            DataType::List(item) => format!("array<{}>", hive(item.data_type())),
            DataType::Struct(fields) => format!(
                "struct<{}>",
                fields
                    .iter()
                    .map(|f| format!("{}:{}", f.name(), hive(f.data_type())))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => panic!("no Athena type for {other}"),
        }
    }

    #[tokio::test]
    async fn a_query_whose_object_was_removed_under_it_fails_as_retryable() {
        let dir = tempfile::tempdir().unwrap();
        let partition = dir
            .path()
            .join("lake/purchases/csv/tenant_id=acme/dt=2026-11-01");
        std::fs::create_dir_all(&partition).unwrap();
        let file = partition.join("a.csv.gz");
        let header = PURCHASE_CSV_COLUMNS.map(|c| format!("\"{c}\"")).join(",");
        std::fs::write(
            &file,
            cloudpf_lake::encode::gzip(format!("{header}\n").as_bytes()).unwrap(),
        )
        .unwrap();
        let engine = DataFusionEngine::new(dir.path());
        let ctx = engine.context().await.unwrap();
        let df = ctx.sql("SELECT count(*) FROM purchases_csv").await.unwrap();
        let plan = df.create_physical_plan().await.unwrap();
        std::fs::remove_file(&file).unwrap();
        let err = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .unwrap_err();
        let err = query_failed(err);
        assert!(
            matches!(&err, AnalyticsError::Vanished(_)) && err.is_retryable(),
            "{err}"
        );
        assert!(matches!(
            query_failed(datafusion::error::DataFusionError::Plan(
                "no such column".into()
            )),
            AnalyticsError::Failed(_)
        ));
    }

    #[test]
    fn the_embedded_tables_have_the_columns_of_the_athena_ddl() {
        let ddl = [
            include_str!("../../../athena/tables/purchases_csv.sql"),
            include_str!("../../../athena/tables/purchases_json.sql"),
            include_str!("../../../athena/tables/products_json.sql"),
            include_str!("../../../athena/tables/purchase_tombstones.sql"),
            include_str!("../../../athena/tables/search_events.sql"),
        ];
        for (table, ddl) in TABLES.iter().zip(ddl) {
            assert!(ddl.contains(&format!("TABLE IF NOT EXISTS {} (", table.name)));
            assert!(ddl.contains(&format!("/lake/{}/", table.dir)));
            let partitions: Vec<String> = table
                .partitions
                .iter()
                .map(|p| format!("{p} string"))
                .collect();
            assert!(
                ddl.contains(&format!("PARTITIONED BY ({})", partitions.join(", "))),
                "{}",
                table.name
            );
            let ours = (table.schema)()
                .fields()
                .iter()
                .map(|f| format!("{}{}", f.name(), hive(f.data_type())))
                .collect::<Vec<_>>()
                .join(",");
            let theirs = ddl_columns(ddl).replace(':', "");
            assert_eq!(ours.replace(':', ""), theirs, "{}", table.name);
        }
    }
}
