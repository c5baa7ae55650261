//! `cloudpf serve`: the search API over existing data. It follows its tenants file: a
//! request checks it at most once a second ([`TENANTS_CHECK_EVERY`]) and a changed file
//! (a new shop, a created or revoked key) is used from the next request on, without a
//! restart; an idle server does not look.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cloudpf_analytics::DataFusionEngine;
use cloudpf_engines::{Routing, SearchBackend, search_engine, vars};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use cloudpf_aws::TenantsFile;
use cloudpf_aws::reload::{Build, Built, Reloading};
use cloudpf_aws::secrets::SecretCache;
use cloudpf_lake::{ObjectSink, SearchLog};
use cloudpf_model::TenantId;
use cloudpf_search_api::routes::pages::StorefrontShop;
use cloudpf_search_api::tokens::TokenSigner;
use cloudpf_search_api::{AppState, Config, RawConfig, Tenants, app, server};
use std::collections::BTreeMap;
use tower::ServiceExt as _;

use super::lake::LakeArgs;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Data directory with the indexes (overrides the config file).
    #[arg(long, env = vars::DATA_DIR.name)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (overrides the config file; default 127.0.0.1:8080).
    #[arg(long, env = vars::ADDR.name)]
    pub addr: Option<String>,
    /// Config file (TOML); see the README for its keys.
    #[arg(long, env = vars::CONFIG.name)]
    pub config: Option<PathBuf>,
    /// Tenants file (overrides the config file; default `<data dir>/tenants.toml`).
    #[arg(long, env = vars::TENANTS_FILE.name)]
    pub tenants_file: Option<PathBuf>,
    /// `embedded` or `elasticsearch` (overrides the config file; default embedded).
    #[arg(long, env = vars::SEARCH_BACKEND.name)]
    pub search_backend: Option<String>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

pub fn config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut raw = match &args.config {
        Some(path) => RawConfig::from_file(path)?,
        None => RawConfig::default(),
    };
    if let Some(dir) = &args.data_dir {
        raw.data_dir = Some(dir.clone());
    }
    if let Some(addr) = &args.addr {
        raw.addr = Some(addr.clone());
    }
    if let Some(file) = &args.tenants_file {
        raw.tenants_file = Some(file.clone());
    }
    if let Some(backend) = &args.search_backend {
        raw.search_backend = Some(backend.clone());
    }
    Ok(raw.validate()?)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    let analytics = args.lake.analytics(&config.data_dir)?;
    let lake = args.lake.sink(&config.data_dir).await;
    serve(config, analytics, lake).await
}

/// How often a request may check the tenants file for a change.
pub const TENANTS_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Serves `config`, with reports on `analytics` and the search log written to `lake`.
pub async fn serve(
    config: Config,
    analytics: DataFusionEngine,
    lake: Arc<dyn ObjectSink>,
) -> anyhow::Result<()> {
    let tenants = load_tenants(&config.tenants_file)?;
    // With Elasticsearch this engine only checks the routes: each version of the file
    // gets its own, with the secrets it names (see `build` below).
    let routing = match config.search_backend {
        SearchBackend::Embedded => Routing::default(),
        SearchBackend::Elasticsearch => tenants.routing(),
    };
    let engine = search_engine(
        config.search_backend,
        &config.data_dir,
        &routing,
        config.embedded,
    )?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let tenant_count = tenants.ids().count();
    tracing::info!(%addr, tenants = tenant_count, data_dir = %config.data_dir.display(), search_backend = %config.search_backend, "search API listening");
    eprintln!(
        "cloudpf search API on http://{addr} ({tenant_count} tenants); docs at http://{addr}/docs"
    );
    let backend = config.search_backend;
    let file = TenantsFile::local(&config.tenants_file);
    let origin = config.tenants_file.display().to_string();
    let shops = storefront_shops(&config.data_dir);
    let search_log = Arc::new(SearchLog::new(lake));
    let base = AppState::new(engine.clone(), tenants, config)
        .with_analytics(Arc::new(analytics))?
        .with_storefront(shops)
        .with_search_log(search_log.clone())
        .with_tokens(token_signer()?);
    // The same engine, reports pool and metrics for every version of the file; only the
    // tenants (and, with Elasticsearch, the routes) are rebuilt.
    // With Elasticsearch, a cluster whose secret cannot be read waits on its own (its
    // shops get 503s) while the file's other changes, a revoked key included, apply.
    let aws = match backend {
        SearchBackend::Embedded => None,
        SearchBackend::Elasticsearch => Some(Arc::new((
            aws_config::load_from_env().await,
            SecretCache::default(),
        ))),
    };
    let build: Build<Router> = Box::new(move |text| {
        let (base, origin, aws) = (base.clone(), origin.clone(), aws.clone());
        Box::pin(async move {
            let tenants = Tenants::from_toml(&text, &origin)?;
            let (engine, partial) = match &aws {
                None => (base.engine.clone(), false),
                Some(aws) => {
                    let (shared, secrets) = aws.as_ref();
                    let resolved = secrets.resolve(tenants.routing(), shared).await;
                    let engine = search_engine(
                        backend,
                        &base.config.data_dir,
                        &resolved.routing,
                        base.config.embedded,
                    )?;
                    (engine, !resolved.unread.is_empty())
                }
            };
            Ok(Built {
                value: app(AppState {
                    engine,
                    tenants: Arc::new(tenants),
                    ..base
                }),
                partial,
            })
        })
    });
    let reloading = Arc::new(
        Reloading::start(file, TENANTS_CHECK_EVERY, build)
            .await
            .map_err(|e| anyhow::anyhow!(e))?,
    );
    let router = Router::new().fallback(move |request: Request| {
        let reloading = reloading.clone();
        async move {
            let current = reloading.current().await;
            match current.as_ref().clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    });
    server::serve_router(
        router,
        engine,
        Some(search_log),
        listener,
        server::shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// The signer of short-lived tokens: `CLOUDPF_TOKEN_SECRET` when set (every process of a
/// deployment must share it), else a secret of this process (its tokens end with it).
fn token_signer() -> anyhow::Result<Option<TokenSigner>> {
    match std::env::var(vars::TOKEN_SECRET.name) {
        Ok(secret) if !secret.is_empty() => {
            Ok(Some(TokenSigner::from_secret(&secret).map_err(|e| {
                anyhow::anyhow!("{}: {e}", vars::TOKEN_SECRET.name)
            })?))
        }
        _ => Ok(TokenSigner::random().ok()),
    }
}

/// The demo storefront's shops: those of a `cloudpf demo` in `data_dir` (its
/// `demo-keys.json`), with their search keys only. Other data directories have none, and
/// the storefront asks for a shop id and search key instead.
fn storefront_shops(data_dir: &Path) -> Vec<StorefrontShop> {
    let path = data_dir.join(super::demo::KEYS_FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        return Vec::new();
    };
    let keys: BTreeMap<String, super::demo::DemoKeys> = match serde_json::from_slice(&bytes) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "not a demo keys file; the storefront offers no shops");
            return Vec::new();
        }
    };
    keys.into_iter()
        .filter_map(|(tenant, k)| {
            Some(StorefrontShop {
                tenant: TenantId::parse(&tenant).ok()?,
                search_key: k.search_key,
            })
        })
        .collect()
}

fn load_tenants(path: &Path) -> anyhow::Result<Tenants> {
    Tenants::load(path).with_context(
        || "run `cloudpf demo` to create a tenants file, or pass --config with tenants_file",
    )
}
