//! `cloudpf reindex`: rebuilds a shop's index without downtime (issue #13). Searches keep
//! answering from the old index during the whole rebuild; writes that arrive meanwhile
//! are caught up; then the shop is switched to the new index and the old one removed.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use cloudpf_engines::{Routing, SearchBackend, vars};
use cloudpf_model::{Entity, TenantId};
use cloudpf_search::TantivyEngine;
use cloudpf_search_es::{ElasticsearchEngine, Rebuilt};

#[derive(Debug, clap::Args)]
pub struct ReindexArgs {
    /// The shop whose index is rebuilt.
    #[arg(long)]
    tenant: String,
    /// Only this entity's index (default both).
    #[arg(long, value_parser = super::entity_parser())]
    entity: Option<Entity>,
    /// Embedded: how long writes of other processes are held (they fail as retryable and
    /// come again) before the last catch-up and the switch; more than the writers'
    /// commit delay (0.4 s) plus their refresh tick (0.25 s). Elasticsearch: how long
    /// after the alias swap the catch-up waits for bulk requests already under way.
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    settle_seconds: u64,
    /// Data directory of the embedded indexes.
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    data_dir: PathBuf,
    /// `embedded` (Tantivy under the data directory) or `elasticsearch` (the clusters of
    /// the tenants file).
    #[arg(long, default_value = "embedded", env = vars::SEARCH_BACKEND.name)]
    search_backend: SearchBackend,
    /// Tenants file with the `[elasticsearch]` routes (default `<data dir>/tenants.toml`).
    #[arg(long, env = vars::TENANTS_FILE.name)]
    tenants_file: Option<PathBuf>,
}

pub async fn run(args: ReindexArgs) -> anyhow::Result<()> {
    let tenant =
        TenantId::parse(&args.tenant).with_context(|| format!("--tenant {:?}", args.tenant))?;
    let entities = args.entity.map_or(Entity::ALL.to_vec(), |e| vec![e]);
    let settle = Duration::from_secs(args.settle_seconds);
    let mut reports = Vec::new();
    match args.search_backend {
        SearchBackend::Embedded => {
            let engine = TantivyEngine::new(&args.data_dir);
            for entity in entities {
                let done = engine
                    .reindex(&tenant, entity, settle)
                    .await
                    .with_context(|| format!("rebuilding {tenant} {entity}"))?;
                reports.push(serde_json::to_value(&done)?);
            }
        }
        SearchBackend::Elasticsearch => {
            let file = args
                .tenants_file
                .clone()
                .unwrap_or_else(|| args.data_dir.join("tenants.toml"));
            let routing = Routing::load(&file).with_context(|| format!("in {}", file.display()))?;
            let routes = cloudpf_aws::secrets::with_secrets_from_env(routing)
                .await?
                .elasticsearch_routes()?;
            let engine = ElasticsearchEngine::new(routes)?;
            for entity in entities {
                let (rebuilt, caught_up) = engine
                    .reindex(&tenant, entity, settle)
                    .await
                    .with_context(|| format!("rebuilding {tenant} {entity}"))?;
                let (from, to) = match rebuilt {
                    Rebuilt::Swapped { from, to, .. } => (Some(from), to),
                    Rebuilt::AlreadyCurrent { index, .. } | Rebuilt::Created { index, .. } => {
                        (None, index)
                    }
                };
                reports.push(serde_json::json!({
                    "tenant": tenant.as_str(), "entity": entity, "from": from, "to": to,
                    "caught_up": caught_up,
                }));
            }
        }
    }
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&reports)?
    )?;
    Ok(())
}
