//! What a storefront page reports back (issue #12): a shopper's click on a search result,
//! for click-through and position reports. Search keys may report (the widget does);
//! the per-key rate limit bounds what one page can send.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use cloudpf_model::search_event::normalise_query;
use cloudpf_model::{SearchEvent, SearchEventKind, Timestamp};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{SearchScope, TenantAuth};
use crate::error::{ApiError, BadParameter, ErrorBody};

/// Positions beyond the result window cannot have been shown.
pub const MAX_POSITION: u32 = 10_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/events/{tenant_id}", post(record))
}

/// A click on a result of a search.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickEvent {
    /// Always `click`.
    #[schema(pattern = "^click$")]
    pub r#type: String,
    /// The `query_id` of the search whose result was clicked.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    pub query_id: String,
    /// What that search was for.
    #[schema(min_length = 1, max_length = 512)]
    pub query: String,
    #[schema(min_length = 1, max_length = 256)]
    pub product_id: String,
    /// The result's position in the whole result list, from 1.
    #[schema(minimum = 1, maximum = 10000)]
    pub position: u32,
}

impl ClickEvent {
    fn validate(self) -> Result<SearchEvent, BadParameter> {
        let bad = |code: &'static str, message: String| BadParameter::new(code, message);
        if self.r#type != "click" {
            return Err(bad(
                "invalid_parameter",
                format!("type must be click, got {:?}", self.r#type),
            ));
        }
        if self.query_id.len() != 16 || !self.query_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                "invalid_parameter",
                "query_id must be the 16 hex digits a search answered".into(),
            ));
        }
        let query = normalise_query(&self.query);
        if query.is_empty() || self.query.chars().count() > 512 {
            return Err(bad(
                "invalid_parameter",
                "query must be the search's text (1 to 512 characters)".into(),
            ));
        }
        let id = &self.product_id;
        if id.is_empty() || id.chars().count() > 256 || id.chars().any(char::is_control) {
            return Err(bad(
                "invalid_parameter",
                "product_id must be 1 to 256 printable characters".into(),
            ));
        }
        if !(1..=MAX_POSITION).contains(&self.position) {
            return Err(bad(
                "out_of_range",
                format!("position must be between 1 and {MAX_POSITION}"),
            ));
        }
        Ok(SearchEvent {
            kind: SearchEventKind::Click,
            query,
            query_id: self.query_id.to_ascii_lowercase(),
            results: None,
            product_id: Some(self.product_id),
            position: Some(self.position),
            at: Timestamp::now(),
        })
    }
}

/// Reports a click on a search result (search keys may; the widget does).
#[utoipa::path(
    post, path = "/events/{tenant_id}", tag = "search",
    params(("tenant_id" = String, Path, description = "Tenant id")),
    request_body = ClickEvent,
    responses(
        (status = 202, description = "Recorded in the search log"),
        (status = 400, description = "Bad event", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Key of another tenant", body = ErrorBody),
        (status = 503, description = "This server keeps no search log", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn record(
    auth: TenantAuth<SearchScope>,
    State(state): State<AppState>,
    body: Result<Json<ClickEvent>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(click) = body.map_err(|e| BadParameter::new("invalid_body", e.body_text()))?;
    let event = click.validate()?;
    let log = state
        .search_log
        .as_deref()
        .ok_or(ApiError::SearchLogNotConfigured)?;
    log.record(&auth.tenant, event);
    Ok(StatusCode::ACCEPTED)
}
