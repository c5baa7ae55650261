//! Running the API on a socket: background index maintenance and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cloudpf_lake::SearchLog;
use cloudpf_search::SearchEngine;
use tokio::net::TcpListener;

use crate::{AppState, app};

/// How often derived search structures (autocomplete) are refreshed from new commits.
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let engine = state.engine.clone();
    let search_log = state.search_log.clone();
    serve_router(app(state), engine, search_log, listener, shutdown).await
}

/// [`serve`] for a router already built (one that follows the tenants file, say), with
/// `engine`'s derived structures refreshed in the background, and `search_log` flushed
/// by its own task (which sleeps while nothing is logged) and once more on shutdown.
pub async fn serve_router(
    router: Router,
    engine: Arc<dyn SearchEngine>,
    search_log: Option<Arc<SearchLog>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = engine.refresh().await {
                tracing::warn!(error = %e, "refreshing search structures failed");
            }
        }
    });
    let flusher = search_log.clone().map(|log| tokio::spawn(log.run()));
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    if let Some(flusher) = flusher {
        flusher.abort();
    }
    if let Some(log) = search_log
        && let Err(e) = log.flush().await
    {
        tracing::warn!(error = %e, "the search log's last events could not be written");
    }
    result
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
