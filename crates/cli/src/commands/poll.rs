//! `cloudpf poll`: DynamoDB Streams → the CDC handlers, outside Lambda.

use std::path::PathBuf;
use std::sync::Arc;

use cloudpf_aws::{Poller, PollerConfig};
use cloudpf_cdc::Pipeline;
use cloudpf_engines::{Routing, SearchBackend, search_engine, vars};
use cloudpf_search::SearchEngine;

use super::DurabilityArg;
use super::lake::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct PollArgs {
    #[command(flatten)]
    tables: super::TableArgs,
    #[command(flatten)]
    sinks: SinkArgs,
    /// Exit once every shard is caught up, instead of polling forever.
    #[arg(long)]
    until_idle: bool,
    /// Records per `GetRecords` call, i.e. per handler batch and checkpoint.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=1000))]
    batch_size: i32,
}

/// Where the commands that feed the handlers outside Lambda (`poll`, `backfill`) write:
/// the index, the lake and the dead letters.
#[derive(Debug, clap::Args)]
pub struct SinkArgs {
    /// Data directory: indexes, checkpoints, and the lake unless --lake-bucket is given.
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub lake: LakeArgs,
    /// `embedded` (Tantivy under the data directory) or `elasticsearch` (the clusters of
    /// the tenants file).
    #[arg(long, default_value = "embedded", env = vars::SEARCH_BACKEND.name)]
    search_backend: SearchBackend,
    /// Tenants file with the `[elasticsearch]` routes (default `<data dir>/tenants.toml`);
    /// read with the elasticsearch backend only.
    #[arg(long, env = vars::TENANTS_FILE.name)]
    tenants_file: Option<PathBuf>,
    /// When a batch counts as durable in the embedded index (and so when the command
    /// checkpoints past it).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Logged)]
    durability: DurabilityArg,
}

/// The handlers' sinks as a command runs them, with the index's background commits.
#[derive(Debug)]
pub struct Sinks {
    pub pipeline: Pipeline,
    engine: Arc<dyn SearchEngine>,
    maintenance: tokio::task::JoinHandle<()>,
}

impl SinkArgs {
    /// Opens the index and the lake, commits what an earlier run acknowledged but did not
    /// commit, and starts the index's background commits.
    pub async fn open(&self) -> anyhow::Result<Sinks> {
        std::fs::create_dir_all(&self.data_dir)?;
        let sink = self.lake.sink(&self.data_dir).await;
        let routing = match self.search_backend {
            SearchBackend::Embedded => Routing::default(),
            SearchBackend::Elasticsearch => {
                let file = self
                    .tenants_file
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("tenants.toml"));
                cloudpf_aws::secrets::with_secrets_from_env(Routing::load(&file)?).await?
            }
        };
        let engine = search_engine(
            self.search_backend,
            &self.data_dir,
            &routing,
            self.durability.engine_options(),
        )?;
        // What an earlier run acknowledged but did not commit becomes searchable first.
        engine.flush().await?;
        // Logged changes are committed within a second even when no batch follows, and idle
        // tenants' writers are closed; with nothing written a tick does no more than a stat
        // per open index.
        let maintenance = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = engine.refresh().await {
                        tracing::warn!(error = %e, "committing logged changes failed; retried on the next tick");
                    }
                }
            })
        };
        Ok(Sinks {
            pipeline: Pipeline::new(engine.clone(), sink),
            engine,
            maintenance,
        })
    }
}

impl Sinks {
    /// Stops the background commits and commits everything acknowledged.
    pub async fn close(self) -> anyhow::Result<()> {
        self.maintenance.abort();
        self.engine.flush().await?;
        Ok(())
    }
}

pub async fn run(args: PollArgs) -> anyhow::Result<()> {
    let shared = aws_config::load_from_env().await;
    let sinks = args.sinks.open().await?;
    let mut config = PollerConfig::new(
        &args.tables.products_table,
        &args.tables.purchases_table,
        args.sinks.data_dir.join("checkpoints"),
    );
    config.batch_size = args.batch_size;
    let poller = Poller::new(&shared, sinks.pipeline.clone(), config);
    let report = if args.until_idle {
        // Ctrl-C or SIGTERM: stop after the batch in flight, as `run` does. The signal
        // branch never completes, so the run is never dropped halfway.
        let stop_on_signal = async {
            cloudpf_search_api::server::shutdown_signal().await;
            tracing::info!("shutdown asked for; finishing the batch in flight");
            poller.stop();
            std::future::pending::<std::convert::Infallible>().await
        };
        tokio::select! {
            report = poller.run_until_idle() => report?,
            never = stop_on_signal => match never {},
        }
    } else {
        // On Ctrl-C or SIGTERM the batch in flight is finished and checkpointed first.
        poller
            .run(cloudpf_search_api::server::shutdown_signal())
            .await
    };
    sinks.close().await?;
    tracing::info!(
        records = report.records,
        applied = report.applied,
        stale = report.stale,
        dead_lettered = report.dead_lettered,
        errors = report.errors,
        trimmed_gaps = report.trimmed_gaps,
        "poller stopped"
    );
    eprintln!(
        "cloudpf poll: {} records, {} applied, {} already applied, {} dead-lettered, {} errors, {} trimmed gaps",
        report.records,
        report.applied,
        report.stale,
        report.dead_lettered,
        report.errors,
        report.trimmed_gaps
    );
    if report.trimmed_gaps > 0 {
        eprintln!(
            "cloudpf poll: changes were lost to stream retention (the log names table, shard and checkpoint); \
             re-seed or replay the tables' current items to recover (README: \"Trimmed streams\")"
        );
    }
    Ok(())
}
