//! `cloudpf report`: one report of the catalog as CSV on stdout, over the local lake (or
//! the lake in S3), without the API: the analyst's and the developer's shortcut.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use cloudpf_analytics::{
    AnalyticsEngine, DataFusionEngine, Filters, Granularity, Report, ReportRequest, S3Lake, Slot,
};
use cloudpf_model::{PurchaseStatus, TenantId};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Data directory whose `lake/` the report reads.
    #[arg(long, default_value = "data", env = "CLOUDPF_DATA_DIR")]
    data_dir: PathBuf,
    /// Read the lake from this S3 bucket instead.
    #[arg(long, env = "CLOUDPF_LAKE_BUCKET")]
    lake_bucket: Option<String>,
    /// Key prefix of the lake inside the bucket.
    #[arg(long, default_value = "", env = "CLOUDPF_LAKE_PREFIX")]
    lake_prefix: String,
    /// S3 endpoint (MinIO, moto).
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    s3_endpoint: Option<String>,
    #[arg(long)]
    tenant: String,
    /// summary, timeseries, top_products, top_products_by_units, by_status, by_country,
    /// by_payment_method, by_category or rfm.
    #[arg(long)]
    report: String,
    /// First purchase date, inclusive (YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last purchase date, inclusive.
    #[arg(long)]
    to: NaiveDate,
    /// Rows of ranking reports.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// day, week or month (timeseries).
    #[arg(long, default_value = "day")]
    granularity: String,
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    country: Option<String>,
    #[arg(long)]
    category: Option<String>,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let Some(report) = Report::parse(&args.report) else {
        let known: Vec<&str> = Report::ALL.iter().map(Report::name).collect();
        bail!(
            "report must be one of {}, got {:?}",
            known.join(", "),
            args.report
        );
    };
    if args.from > args.to {
        bail!("--from must not be after --to");
    }
    let Some(granularity) = Granularity::parse(&args.granularity) else {
        bail!(
            "granularity must be day, week or month, got {:?}",
            args.granularity
        );
    };
    let status = match args.status.as_deref() {
        None => None,
        Some(s) => Some(PurchaseStatus::parse(s).with_context(|| format!("unknown status {s:?}"))?),
    };
    if args.category.is_some() && !report.accepts(Slot::Category) {
        bail!(
            "--category applies to line-level reports only, not to {}",
            report.name()
        );
    }
    let request = ReportRequest {
        report,
        from: args.from,
        to: args.to,
        limit: args.limit,
        granularity,
        filters: Filters {
            status,
            country: args.country,
            category: args.category,
        },
    };
    let engine = match args.lake_bucket {
        Some(bucket) => {
            let mut prefix = args.lake_prefix;
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            DataFusionEngine::over_s3(&S3Lake {
                bucket,
                prefix,
                endpoint: args.s3_endpoint,
                region: None,
            })?
        }
        None => DataFusionEngine::new(&args.data_dir),
    };
    let table = engine.run(&tenant, &request).await?;
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record(&table.columns)?;
    for row in &table.rows {
        out.write_record(row.iter().map(|v| v.as_deref().unwrap_or("")))?;
    }
    out.flush()?;
    Ok(())
}
