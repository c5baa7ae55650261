//! The embedded analytics engine: Apache DataFusion over the local lake directory, with
//! the lake's Hive partitions (`tenant_id=…/dt=…`) as partition columns, so a report's
//! tenant and date filters prune whole directories before any file is opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cloudpf_model::TenantId;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::ListingOptions;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::{DataFrame, SessionContext};

use cloudpf_lake::encode::PURCHASE_CSV_COLUMNS;

use crate::dialect::numbered_placeholders;
use crate::engine::{AnalyticsEngine, AnalyticsError, ReportTable};
use crate::report::{PURCHASE_LINES_VIEW, Param, ReportRequest};

/// Reports over `<lake root>/purchases/csv/`.
#[derive(Debug, Clone)]
pub struct DataFusionEngine {
    lake: PathBuf,
}

fn failed(e: impl std::fmt::Display) -> AnalyticsError {
    AnalyticsError::Failed(e.to_string())
}

/// The purchases CSV as the lake writes it, every column read as text (the view casts).
fn csv_schema() -> SchemaRef {
    Arc::new(Schema::new(
        PURCHASE_CSV_COLUMNS
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

impl DataFusionEngine {
    /// An engine over the lake under `data_dir` (`<data_dir>/lake`).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            lake: data_dir.join("lake"),
        }
    }

    async fn context(&self) -> Result<SessionContext, AnalyticsError> {
        let ctx = SessionContext::new();
        let dir = self.lake.join("purchases").join("csv");
        if dir.is_dir() {
            let format = CsvFormat::default()
                .with_has_header(true)
                .with_file_compression_type(FileCompressionType::GZIP);
            let options = ListingOptions::new(Arc::new(format))
                .with_file_extension(".csv.gz")
                .with_table_partition_cols(vec![
                    ("tenant_id".to_owned(), DataType::Utf8),
                    ("dt".to_owned(), DataType::Utf8),
                ]);
            let url = format!("{}/", dir.display());
            ctx.register_listing_table("purchases_csv", url, options, Some(csv_schema()), None)
                .await
                .map_err(failed)?;
        } else {
            // No purchase yet: the same columns, no rows.
            let mut fields: Vec<Field> = csv_schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new("tenant_id", DataType::Utf8, true));
            fields.push(Field::new("dt", DataType::Utf8, true));
            let empty =
                MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]]).map_err(failed)?;
            ctx.register_table("purchases_csv", Arc::new(empty))
                .map_err(failed)?;
        }
        ctx.sql(PURCHASE_LINES_VIEW)
            .await
            .map_err(failed)?
            .collect()
            .await
            .map_err(failed)?;
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

#[async_trait]
impl AnalyticsEngine for DataFusionEngine {
    async fn run(
        &self,
        tenant: &TenantId,
        request: &ReportRequest,
    ) -> Result<ReportTable, AnalyticsError> {
        let df = self.dataframe(tenant, request).await?;
        let columns: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = df.collect().await.map_err(failed)?;
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
}
