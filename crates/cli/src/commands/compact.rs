//! `cloudpf compact`: rewrites each tenant-day's small lake objects (one per handler
//! batch) into one, in the local lake or in S3; what the scheduled compaction Lambda and
//! the compose `compactor` service run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::bail;
use chrono::{NaiveDate, Utc};
use cloudpf_engines::vars;
use cloudpf_lake::{CompactOptions, Compactor};
use cloudpf_model::TenantId;
use indicatif::{ProgressBar, ProgressStyle};

use super::lake::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// Data directory whose `lake/` is compacted (unless --lake-bucket is given).
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    data_dir: PathBuf,
    #[command(flatten)]
    lake: LakeArgs,
    /// Only this tenant (repeatable); default every tenant in the lake.
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// Only partitions of purchase or change dates before this one (YYYY-MM-DD); default
    /// today (UTC), whose partitions are still being written.
    #[arg(long)]
    before: Option<NaiveDate>,
    /// Every date, today's too.
    #[arg(long, conflicts_with = "before")]
    all_dates: bool,
    /// Uncompressed size of one compacted object at most, in MiB; a larger partition
    /// becomes several objects.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_object_mib: u32,
    /// Run again every this many seconds, for ever (the compose `compactor` service); a
    /// failed run is logged and the next one retries. A run with nothing new only lists.
    #[arg(long, value_parser = clap::value_parser!(u64).range(60..))]
    every: Option<u64>,
}

pub async fn run(args: CompactArgs) -> anyhow::Result<()> {
    let Some(every) = args.every else {
        return run_once(&args).await;
    };
    loop {
        if let Err(e) = run_once(&args).await {
            tracing::warn!(error = %e, "compaction run failed; the next run retries");
        }
        tokio::time::sleep(std::time::Duration::from_secs(every)).await;
    }
}

async fn run_once(args: &CompactArgs) -> anyhow::Result<()> {
    let tenants = args
        .tenants
        .iter()
        .map(|t| TenantId::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let before = match (args.all_dates, args.before) {
        (true, _) => None,
        (false, Some(day)) => Some(day),
        (false, None) => Some(Utc::now().date_naive()),
    };
    let options = CompactOptions {
        tenants,
        before,
        max_object_bytes: args.max_object_mib as usize * (1 << 20),
        deadline: None,
    };
    let sink = args.lake.sink(&args.data_dir).await;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} compacting [{bar:40}] {pos}/{len} partitions ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let summary = Compactor::new(sink, options)
        .run(|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await?;
    bar.finish_and_clear();
    tracing::info!(
        partitions = summary.partitions,
        compacted = summary.compacted.len(),
        objects_removed = summary.objects_removed(),
        objects_written = summary.objects_written(),
        failed = summary.failed.len(),
        seconds = started.elapsed().as_secs_f64(),
        "compaction finished"
    );
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &summary)?;
    writeln!(stdout)?;
    if !summary.failed.is_empty() {
        bail!(
            "{} partition(s) were left as they are (see \"failed\"); the others are compacted",
            summary.failed.len()
        );
    }
    Ok(())
}
