//! Liveness, readiness and metrics.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants: Option<usize>,
}

/// The process is alive.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Status)))]
pub async fn health() -> Json<Status> {
    Json(Status {
        status: "ok",
        tenants: None,
    })
}

/// The process can answer searches: tenants are loaded and every tenant's index can be read.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses((status = 200, body = Status), (status = 503, description = "An index cannot be read", body = ErrorBody))
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    let tenants: Vec<_> = state.tenants.ids().cloned().collect();
    state.engine.ready(&tenants).await?;
    Ok(Json(Status {
        status: "ready",
        tenants: Some(state.tenants.ids().count()),
    }))
}

/// Prometheus text exposition: aggregate series for anyone; per-tenant series too for a
/// caller presenting the operator's metrics token (`Authorization: Bearer`).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let with_tenants = state.config.metrics_token.as_ref().is_some_and(|token| {
        crate::auth::presented_key(&headers).is_some_and(|k| token.matches(k))
    });
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(with_tenants),
    )
}
