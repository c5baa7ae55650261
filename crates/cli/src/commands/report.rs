//! `cloudpf report`: one report of the catalog as CSV on stdout, over the local lake (or
//! the lake in S3), without the API: the analyst's and the developer's shortcut.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::bail;
use chrono::NaiveDate;
use cloudpf_analytics::{AnalyticsEngine, Filters, Granularity, Report, ReportRequest};
use cloudpf_engines::vars;
use cloudpf_model::TenantId;

use super::lake::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Data directory whose `lake/` the report reads.
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    data_dir: PathBuf,
    #[command(flatten)]
    lake: LakeArgs,
    #[arg(long)]
    tenant: String,
    /// summary, timeseries, top_products, top_products_by_units, by_status, by_country,
    /// by_payment_method, by_category or rfm; of the search log: top_queries,
    /// no_result_queries, search_clicks or click_positions.
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
    let report = Report::named(&args.report)?;
    if args.from > args.to {
        bail!("--from must not be after --to");
    }
    let granularity = Granularity::named(Some(&args.granularity))?;
    let filters = Filters::for_report(report, args.status.as_deref(), args.country, args.category)?;
    let request = ReportRequest {
        report,
        from: args.from,
        to: args.to,
        limit: args.limit,
        granularity,
        filters,
    };
    let engine = args.lake.analytics(&args.data_dir)?;
    let table = engine.run(&tenant, &request).await?;
    table.write_csv(std::io::stdout().lock())?.flush()?;
    Ok(())
}
