//! `cloudpf backfill`: the items a table held before its stream was read, through the
//! same handlers (onboarding a shop that already has data; see the README's runbook).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use cloudpf_aws::backfill::parse_s3_url;
use cloudpf_aws::{Backfill, BackfillConfig, BackfillFrom, S3Sink, S3SinkConfig};
use cloudpf_lake::LocalDirSink;
use cloudpf_model::{Entity, TenantId};
use indicatif::{ProgressBar, ProgressStyle};

use super::poll::SinkArgs;

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// Which table to read.
    #[arg(long, value_parser = super::entity_parser())]
    table: Entity,
    /// Only this shop (repeatable): a `Query` per shop instead of a `Scan` of the table.
    #[arg(long = "tenant", value_name = "TENANT")]
    tenants: Vec<String>,
    /// Read a point-in-time export (`DYNAMODB_JSON`) instead of the table: the export's
    /// own directory, `s3://bucket/prefix/AWSDynamoDB/<export id>/` or a local copy of it.
    #[arg(long, value_name = "LOCATION")]
    from_export: Option<String>,
    /// Parallel `Scan` segments of a whole-table backfill.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=9999))]
    segments: u32,
    /// Parts (segments, shops, export files) read at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Items per `Scan`/`Query` page, per handler batch and per checkpoint.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=1000))]
    page_size: i32,
    #[command(flatten)]
    tables: super::TableArgs,
    #[command(flatten)]
    sinks: SinkArgs,
}

pub async fn run(args: BackfillArgs) -> anyhow::Result<()> {
    let tenants = args
        .tenants
        .iter()
        .map(|t| TenantId::parse(t).with_context(|| format!("--tenant {t:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shared = aws_config::load_from_env().await;
    let from = match &args.from_export {
        None => BackfillFrom::Table {
            segments: args.segments,
        },
        Some(location) if location.starts_with("s3://") => {
            let Some((bucket, dir)) = parse_s3_url(location) else {
                bail!(
                    "--from-export {location:?}: expected s3://bucket/prefix/AWSDynamoDB/<export id>/"
                );
            };
            let mut loader = aws_config::from_env();
            if let Some(endpoint) = &args.sinks.lake.location.s3_endpoint {
                loader = loader.endpoint_url(endpoint);
            }
            let s3 = S3Sink::new(
                &loader.load().await,
                S3SinkConfig {
                    bucket,
                    prefix: String::new(),
                    kms_key_id: None,
                    force_path_style: args.sinks.lake.force_path_style
                        || args.sinks.lake.location.s3_endpoint.is_some(),
                },
            );
            BackfillFrom::Export {
                store: Arc::new(s3),
                dir,
                location: location.clone(),
            }
        }
        Some(location) => {
            let dir = PathBuf::from(location);
            if !dir.join("manifest-summary.json").is_file() {
                bail!(
                    "--from-export {location:?}: no manifest-summary.json there; give the export's own directory (…/AWSDynamoDB/<export id>/)"
                );
            }
            BackfillFrom::Export {
                store: Arc::new(LocalDirSink::new(&dir)),
                dir: String::new(),
                location: std::fs::canonicalize(&dir)?.display().to_string(),
            }
        }
    };
    let table = match args.table {
        Entity::Products => args.tables.products_table.clone(),
        Entity::Purchases => args.tables.purchases_table.clone(),
    };
    let sinks = args.sinks.open().await?;
    let backfill = Backfill::new(
        &shared,
        sinks.pipeline.clone(),
        BackfillConfig {
            table: table.clone(),
            entity: args.table,
            from,
            tenants,
            page_size: args.page_size,
            parallel: usize::from(args.parallel),
            checkpoint_dir: args.sinks.data_dir.join("checkpoints"),
        },
    );
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let progress = |done: u64, total: Option<u64>| {
        match total {
            Some(total) if bar.length().is_none() => {
                bar.set_length(total.max(done));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} backfill [{bar:40}] {human_pos}/{human_len} items {per_sec} ({eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            None if bar.length().is_none() => bar.set_style(
                ProgressStyle::with_template("{spinner} backfill {human_pos} items {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
            _ => {}
        }
        // DynamoDB's item count is an estimate refreshed every six hours.
        if bar.length().is_some_and(|len| done > len) {
            bar.set_length(done);
        }
        bar.set_position(done);
    };
    // Ctrl-C or SIGTERM: each part finishes and checkpoints its page in flight; the same
    // command resumes from there.
    let report = {
        let stop_on_signal = async {
            cloudpf_search_api::server::shutdown_signal().await;
            tracing::info!("shutdown asked for; finishing the pages in flight");
            backfill.stop();
            std::future::pending::<std::convert::Infallible>().await
        };
        tokio::select! {
            report = backfill.run(&progress) => report,
            never = stop_on_signal => match never {},
        }
    };
    bar.finish_and_clear();
    sinks.close().await?;
    let report = report?;
    tracing::info!(
        table,
        items = report.items,
        applied = report.applied,
        stale = report.stale,
        dead_lettered = report.dead_lettered,
        seconds = started.elapsed().as_secs_f64(),
        "backfill finished"
    );
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &report)?;
    writeln!(stdout)?;
    if report.stopped {
        bail!("stopped; run the same command again to resume where each part stopped");
    }
    if !report.failed_parts.is_empty() {
        bail!(
            "{} part(s) stopped on an error (see \"failed_parts\"); run the same command again to resume them",
            report.failed_parts.len()
        );
    }
    Ok(())
}
