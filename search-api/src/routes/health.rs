//! Liveness, readiness and metrics.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cloudpf_search::Entity;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;

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

/// The process can answer searches: tenants are loaded and every tenant's index opens.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses((status = 200, body = Status), (status = 503, description = "An index cannot be read"))
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    for tenant in state.tenants.ids() {
        state.engine.count(tenant, Entity::Products).await?;
    }
    Ok(Json(Status {
        status: "ready",
        tenants: Some(state.tenants.ids().count()),
    }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for tenant in state.tenants.ids() {
        for entity in [Entity::Products, Entity::Purchases] {
            match state.engine.count(tenant, entity).await {
                Ok(n) => state
                    .metrics
                    .set_documents(tenant.as_str(), entity.as_str(), n),
                Err(e) => {
                    tracing::warn!(%tenant, %entity, error = %e, "document count unavailable")
                }
            }
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
