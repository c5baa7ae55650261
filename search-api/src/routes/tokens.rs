//! Short-lived tokens (issue #13): an admin key trades itself for a token of its tenant
//! that ends within the hour, so a page such as the dashboard never keeps the long-lived
//! key (see [`crate::tokens`]).

use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use cloudpf_model::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{AdminScope, TenantAuth};
use crate::error::{ApiError, BadParameter, ErrorBody};
use crate::tenants::Scope;
use crate::tokens::{Claims, MAX_TOKEN_TTL};

/// Shortest token life a caller may ask for.
pub const MIN_TOKEN_TTL: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new().route("/auth/{tenant_id}/tokens", post(mint))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// `admin` (default) or `search`; never more than the key's own scope.
    #[schema(pattern = "^(admin|search)$")]
    pub scope: Option<String>,
    /// Seconds the token lives, 60 to 3600 (default 3600).
    #[schema(minimum = 60, maximum = 3600)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send it like a key (`X-API-Key` or `Authorization: Bearer`).
    pub token: String,
    #[schema(pattern = "^(admin|search)$")]
    pub scope: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// Trades an admin key for a short-lived token of its tenant.
#[utoipa::path(
    post, path = "/auth/{tenant_id}/tokens", tag = "search",
    params(("tenant_id" = String, Path, description = "Tenant id")),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "A token", body = TokenResponse),
        (status = 400, description = "Bad request", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant, a search key, or a token", body = ErrorBody),
        (status = 503, description = "This server mints no tokens", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn mint(
    auth: TenantAuth<AdminScope>,
    State(state): State<AppState>,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    if auth.via_token {
        return Err(ApiError::TokenCannotMint);
    }
    let Json(request) = body.map_err(|e| BadParameter::new("invalid_body", e.body_text()))?;
    let scope = match request.scope.as_deref() {
        None | Some("admin") => Scope::Admin,
        Some("search") => Scope::Search,
        Some(other) => {
            return Err(BadParameter::new(
                "invalid_parameter",
                format!("scope must be admin or search, got {other:?}"),
            )
            .into());
        }
    };
    let ttl = request.ttl_seconds.unwrap_or(MAX_TOKEN_TTL.as_secs());
    if !(MIN_TOKEN_TTL.as_secs()..=MAX_TOKEN_TTL.as_secs()).contains(&ttl) {
        return Err(BadParameter::new(
            "out_of_range",
            format!(
                "ttl_seconds must be between {} and {}",
                MIN_TOKEN_TTL.as_secs(),
                MAX_TOKEN_TTL.as_secs()
            ),
        )
        .into());
    }
    let signer = state
        .tokens
        .as_deref()
        .ok_or(ApiError::TokensNotConfigured)?;
    let expires = Timestamp::now().utc().timestamp() + ttl as i64;
    let claims = Claims {
        tenant: auth.tenant.clone(),
        scope: auth.scope.min(scope),
        parent: auth.key_id.clone(),
        expires,
    };
    let expires_at = chrono::DateTime::from_timestamp(expires, 0)
        .map(|t| Timestamp::from_utc(t).to_rfc3339())
        .ok_or_else(|| ApiError::Internal("token expiry out of range".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            token: signer.mint(&claims),
            scope: match claims.scope {
                Scope::Admin => "admin".into(),
                Scope::Search => "search".into(),
            },
            expires_at,
        }),
    ))
}
