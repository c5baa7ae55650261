//! `cloudpf replay`: saved Lambda event files through a handler, as Lambda would: one
//! invocation per file, in the order given, in one process (one Lambda container).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use cloudpf_cdc::{Batch, Entity};
use cloudpf_engines::vars;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Which table's handler receives the event.
    #[arg(long, value_parser = super::entity_parser())]
    table: Entity,
    /// Data directory (indexes, lake, dead letters).
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    data_dir: PathBuf,
    /// When a batch counts as durable.
    #[arg(long, value_enum, default_value_t = super::DurabilityArg::Logged)]
    durability: super::DurabilityArg,
    /// DynamoDB stream events as JSON (the shape of a Lambda test event), one batch per
    /// file, applied in the order given; stops at the first batch that fails.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let pipeline = super::local_pipeline(&args.data_dir, args.durability);
    // A replay stopped before its commits left them logged: commit them first.
    pipeline.search().flush().await?;
    let single = args.files.len() == 1;
    let started = std::time::Instant::now();
    let mut records = 0;
    for file in &args.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let batch = Batch::from_slice(&bytes)
            .with_context(|| format!("{} is not a DynamoDB stream event", file.display()))?;
        records += batch.len();
        let report = cloudpf_cdc::handle(args.table, batch, &pipeline).await;
        // The reports on stdout are the command's result (Lambda's response is part of
        // each): pretty for one file, one line per file for many.
        let out =
            serde_json::json!({ "file": file, "report": report, "response": report.response() });
        let mut stdout = std::io::stdout().lock();
        if single {
            serde_json::to_writer_pretty(&mut stdout, &out)?;
        } else {
            serde_json::to_writer(&mut stdout, &out)?;
        }
        writeln!(stdout)?;
        if let Some(seq) = &report.failed_from {
            bail!(
                "{}: batch failed from sequence number {seq}; run the replay again to retry",
                file.display()
            );
        }
    }
    // Everything acknowledged becomes searchable; dropping the pipeline then closes the
    // index writers (waiting for their merges).
    pipeline.search().flush().await?;
    drop(pipeline);
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        files = args.files.len(),
        records,
        seconds,
        records_per_second = (records as f64 / seconds.max(1e-9)).round(),
        "replay finished"
    );
    Ok(())
}
