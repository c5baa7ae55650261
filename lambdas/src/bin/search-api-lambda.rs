//! The search API on Lambda behind an API Gateway HTTP API: the same axum app as
//! `cloudpf serve`, over the embedded indexes on EFS or the tenants' Elasticsearch
//! clusters. The app is rebuilt when the tenants file changes (keys, origins, routes).

use std::sync::Arc;
use std::time::Duration;

use cloudpf_analytics::{AthenaConfig, AthenaEngine};
use cloudpf_aws::S3Sink;
use cloudpf_engines::vars;
use cloudpf_engines::{Routing, SearchBackend, search_engine};
use cloudpf_lake::SearchLog;
use cloudpf_lambdas::reload::{Build, Built, Reloading};
use cloudpf_search_api::insights::PopularQueries;
use cloudpf_search_api::tokens::TokenSigner;
use cloudpf_search_api::{AppState, RawConfig, app};
use lambda_http::tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cloudpf_lambdas::init_logging();
    let config = cloudpf_lambdas::LambdaConfig::from_env()?;
    let api = RawConfig {
        data_dir: Some(config.data_dir.clone()),
        ..RawConfig::default()
    }
    .validate()?;
    let shared = aws_config::load_from_env().await;
    let analytics = match &config.athena {
        Some(settings) => {
            let athena = AthenaConfig {
                workgroup: settings.workgroup.clone(),
                database: settings.database.clone(),
                // Inside the function's own timeout, so a slow report is a clean 503.
                timeout: Duration::from_secs(20),
                first_poll: Duration::from_millis(200),
            };
            let engine = Arc::new(AthenaEngine::new(&shared, athena));
            Some(Arc::new(cloudpf_search_api::reports::ReportRunner::new(
                engine,
                api.limits.reports,
            )?))
        }
        None => None,
    };
    // The embedded engine reads no routes: one for the container's life.
    let embedded = match config.search_backend {
        SearchBackend::Embedded => Some(search_engine(
            SearchBackend::Embedded,
            &api.data_dir,
            &Routing::default(),
            api.embedded,
        )?),
        SearchBackend::Elasticsearch => None,
    };
    let metrics = Arc::new(cloudpf_search_api::metrics::Metrics::new());
    // The search log goes to the lake bucket like the CDC functions' objects. A frozen
    // container runs no task, so each response first writes the log when due.
    let search_log = Arc::new(SearchLog::new(Arc::new(S3Sink::new(
        &shared,
        config.lake.clone(),
    ))));
    let popular = Arc::new(PopularQueries::default());
    // Containers must share the secret, or a token minted by one fails on another: no
    // secret, no tokens (`POST /auth/{tenant}/tokens` answers 503).
    let tokens = match std::env::var(vars::TOKEN_SECRET.name) {
        Ok(secret) if !secret.is_empty() => Some(Arc::new(TokenSigner::from_secret(&secret)?)),
        _ => None,
    };
    let log_for_build = search_log.clone();
    let api = Arc::new(api);
    let origin = config.tenants_file.clone();
    let shared_for_build = shared.clone();
    let secrets = Arc::new(cloudpf_aws::secrets::SecretCache::default());
    let build: Build<cloudpf_search_api::Router> = Box::new(move |text| {
        let (search_log, popular, tokens) =
            (log_for_build.clone(), popular.clone(), tokens.clone());
        let (origin, shared, embedded, analytics, metrics, api, secrets) = (
            origin.clone(),
            shared_for_build.clone(),
            embedded.clone(),
            analytics.clone(),
            metrics.clone(),
            api.clone(),
            secrets.clone(),
        );
        Box::pin(async move {
            let tenants = cloudpf_search_api::Tenants::from_toml(&text, &origin)?;
            let (engine, partial) = match embedded {
                Some(engine) => (engine, false),
                None => {
                    let resolved = secrets.resolve(tenants.routing(), &shared).await;
                    let engine = search_engine(
                        SearchBackend::Elasticsearch,
                        &api.data_dir,
                        &resolved.routing,
                        api.embedded,
                    )?;
                    (engine, !resolved.unread.is_empty())
                }
            };
            Ok(Built {
                value: app(AppState {
                    engine,
                    analytics,
                    tenants: Arc::new(tenants),
                    config: api,
                    metrics,
                    // The Lambda API serves the widget and the dashboard; the demo
                    // storefront there asks for a shop id and search key.
                    storefront: Arc::default(),
                    search_log: Some(search_log),
                    popular,
                    tokens,
                }),
                partial,
            })
        })
    });
    let app = Arc::new(
        Reloading::start(config.tenants_file(&shared), config.tenants_refresh, build).await?,
    );
    lambda_http::run(lambda_http::service_fn(move |request| {
        let (app, search_log) = (app.clone(), search_log.clone());
        async move {
            let router = app.current().await;
            let response = router.as_ref().clone().oneshot(request).await;
            if search_log.due()
                && let Err(e) = search_log.flush().await
            {
                tracing::warn!(error = %e, "writing the search log failed; kept for the next request");
            }
            response
        }
    }))
    .await
}
