//! `cloudpf es-setup`: creates the versioned indexes and aliases of every tenant the
//! tenants file routes to an Elasticsearch cluster (the engine also creates them on first
//! use; this makes a new cluster ready before traffic), or rebuilds one tenant's index
//! into the next version and swaps its alias.

use std::path::PathBuf;

use anyhow::{Context, bail};
use cloudpf_engines::vars;
use cloudpf_model::TenantId;
use cloudpf_search::Entity;
use cloudpf_search_es::{ElasticsearchEngine, Rebuilt};

#[derive(Debug, clap::Args)]
pub struct EsSetupArgs {
    /// Tenants file with the `[elasticsearch]` table and each tenant's `search_cluster`.
    #[arg(
        long,
        default_value = "data/tenants.toml",
        env = vars::TENANTS_FILE.name
    )]
    tenants_file: PathBuf,
    /// Only these tenants (repeatable); default every routed tenant.
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// Rebuild the given tenants' indexes of this entity (`products` or `purchases`) into
    /// the current mapping version and swap the alias, instead of creating missing ones.
    #[arg(long, value_parser = super::entity_parser())]
    rebuild: Option<Entity>,
}

pub async fn run(args: EsSetupArgs) -> anyhow::Result<()> {
    let routing = cloudpf_engines::Routing::load(&args.tenants_file)
        .with_context(|| format!("in {}", args.tenants_file.display()))?;
    let routes = cloudpf_aws::secrets::with_secrets_from_env(routing)
        .await?
        .elasticsearch_routes()
        .with_context(|| format!("in {}", args.tenants_file.display()))?;
    let chosen: Vec<TenantId> = if args.tenants.is_empty() {
        routes.tenants().cloned().collect()
    } else {
        args.tenants
            .iter()
            .map(|t| TenantId::parse(t).map_err(anyhow::Error::from))
            .collect::<anyhow::Result<_>>()?
    };
    if chosen.is_empty() {
        bail!(
            "no tenant of {} has a search_cluster",
            args.tenants_file.display()
        );
    }
    let engine = ElasticsearchEngine::new(routes)?;
    let entity = args.rebuild;
    for tenant in &chosen {
        match entity {
            None => {
                engine
                    .setup(tenant)
                    .await
                    .with_context(|| format!("setting up {tenant}"))?;
                eprintln!("cloudpf es-setup: {tenant}: indexes and aliases ready");
            }
            Some(entity) => {
                let rebuilt = engine
                    .rebuild(tenant, entity)
                    .await
                    .with_context(|| format!("rebuilding {tenant} {entity}"))?;
                let what = match rebuilt {
                    Rebuilt::AlreadyCurrent { alias, index } => {
                        format!("{alias} already on {index}")
                    }
                    Rebuilt::Created { alias, index } => format!("{alias} created on {index}"),
                    Rebuilt::Swapped {
                        alias,
                        from,
                        to,
                        copied,
                    } => format!(
                        "{copied} documents copied from {from} to {to}, {alias} swapped; delete {from} when satisfied"
                    ),
                };
                eprintln!("cloudpf es-setup: {tenant} {entity}: {what}");
            }
        }
    }
    if entity.is_none() {
        for cluster in engine
            .setup_snapshots()
            .await
            .context("setting up snapshots")?
        {
            eprintln!(
                "cloudpf es-setup: cluster {cluster}: snapshot repository and nightly policy ready"
            );
        }
    }
    Ok(())
}
