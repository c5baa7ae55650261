//! `cloudpf replay`: a saved Lambda event file through a handler, as Lambda would.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use cloudpf_cdc::{Batch, Pipeline, handle_products, handle_purchases};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TableArg {
    Products,
    Purchases,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Which table's handler receives the event.
    #[arg(long, value_enum)]
    table: TableArg,
    /// Data directory (indexes, lake, dead letters).
    #[arg(long, default_value = "data", env = "CLOUDPF_DATA_DIR")]
    data_dir: PathBuf,
    /// A DynamoDB stream event as JSON (the shape of a Lambda test event).
    file: PathBuf,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let batch = Batch::from_slice(&bytes)
        .with_context(|| format!("{} is not a DynamoDB stream event", args.file.display()))?;
    std::fs::create_dir_all(&args.data_dir)?;
    let pipeline = Pipeline::local(&args.data_dir);
    let report = match args.table {
        TableArg::Products => handle_products(batch, &pipeline).await,
        TableArg::Purchases => handle_purchases(batch, &pipeline).await,
    };
    // The report on stdout is the command's result; Lambda's response is part of it.
    let out = serde_json::json!({ "report": report, "response": report.response() });
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    writeln!(stdout)?;
    if let Some(seq) = &report.failed_from {
        bail!("batch failed from sequence number {seq}; run the replay again to retry");
    }
    Ok(())
}
