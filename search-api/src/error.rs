//! The one error type of the API and its mapping to HTTP: every error is
//! `{"error": {"code": "...", "message": "..."}}` with a status that says whose fault it is.
//! Internal details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudpf_search::SearchError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidTenantId(String),
    #[error("an API key is required (X-API-Key header or Authorization: Bearer)")]
    MissingApiKey,
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("the API key has expired")]
    ExpiredApiKey,
    #[error("this API key does not belong to tenant {0:?}")]
    WrongTenant(String),
    #[error("this endpoint needs an admin key; search keys may only search products")]
    InsufficientScope,
    #[error("{0}")]
    BadParameter(BadParameter),
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request took too long")]
    Timeout,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("search is unavailable, try again shortly")]
    Unavailable(String),
    #[error(
        "no search backend is configured for this tenant; the operator must route it to an elasticsearch cluster in the tenants file"
    )]
    SearchNotConfigured(String),
    #[error("analytics are not available in this deployment")]
    AnalyticsNotConfigured,
    #[error("this deployment keeps no search log")]
    SearchLogNotConfigured,
    #[error("this deployment mints no tokens (it has no token secret)")]
    TokensNotConfigured,
    #[error("a token cannot mint tokens; use the key it was made from")]
    TokenCannotMint,
    #[error("the report could not run, try again shortly")]
    ReportUnavailable(String),
    #[error("this tenant already runs {0} reports; retry when one has finished")]
    TooManyReports(usize),
    #[error("this API key sent too many requests; slow down")]
    RateLimited(std::time::Duration),
    #[error("internal error")]
    Internal(String),
}

/// A request parameter that is wrong, with a machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadParameter {
    pub code: &'static str,
    pub message: String,
}

impl BadParameter {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<BadParameter> for ApiError {
    fn from(b: BadParameter) -> Self {
        ApiError::BadParameter(b)
    }
}

impl From<cloudpf_analytics::SpecError> for BadParameter {
    fn from(e: cloudpf_analytics::SpecError) -> Self {
        BadParameter {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<cloudpf_analytics::SpecError> for ApiError {
    fn from(e: cloudpf_analytics::SpecError) -> Self {
        ApiError::BadParameter(e.into())
    }
}

impl From<cloudpf_analytics::AnalyticsError> for ApiError {
    fn from(e: cloudpf_analytics::AnalyticsError) -> Self {
        match e {
            cloudpf_analytics::AnalyticsError::Unavailable(m) => ApiError::ReportUnavailable(m),
            e @ cloudpf_analytics::AnalyticsError::Vanished(_) => {
                ApiError::ReportUnavailable(e.to_string())
            }
            cloudpf_analytics::AnalyticsError::Failed(m) => ApiError::Internal(m),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Unavailable(m) => ApiError::Unavailable(m),
            SearchError::Corrupt(m) => ApiError::Internal(m),
            // A deployment without a backend for a known tenant cannot serve it: the
            // operator's fault, and retrying later may help once it is configured.
            SearchError::NotConfigured(t) => ApiError::SearchNotConfigured(t),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `invalid_api_key`, `query_too_long`.
    pub code: String,
    /// What was wrong, for a person.
    pub message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidTenantId(_) | ApiError::BadParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MissingApiKey | ApiError::InvalidApiKey | ApiError::ExpiredApiKey => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::WrongTenant(_) | ApiError::InsufficientScope | ApiError::TokenCannotMint => {
                StatusCode::FORBIDDEN
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_)
            | ApiError::SearchNotConfigured(_)
            | ApiError::AnalyticsNotConfigured
            | ApiError::SearchLogNotConfigured
            | ApiError::TokensNotConfigured
            | ApiError::ReportUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyReports(_) | ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidTenantId(_) => "invalid_tenant_id",
            ApiError::MissingApiKey => "missing_api_key",
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::ExpiredApiKey => "expired_api_key",
            ApiError::WrongTenant(_) => "wrong_tenant",
            ApiError::InsufficientScope => "insufficient_scope",
            ApiError::BadParameter(b) => b.code,
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Timeout => "timeout",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Unavailable(_) | ApiError::ReportUnavailable(_) => "unavailable",
            ApiError::SearchNotConfigured(_) => "search_not_configured",
            ApiError::AnalyticsNotConfigured => "analytics_not_configured",
            ApiError::SearchLogNotConfigured => "search_log_not_configured",
            ApiError::TokensNotConfigured => "tokens_not_configured",
            ApiError::TokenCannotMint => "token_cannot_mint",
            ApiError::TooManyReports(_) => "too_many_reports",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "search unavailable"),
            ApiError::ReportUnavailable(detail) => tracing::warn!(%detail, "report unavailable"),
            ApiError::SearchNotConfigured(tenant) => {
                tracing::error!(%tenant, "tenant has no search backend")
            }
            _ => {}
        }
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
            let seconds = match &self {
                ApiError::RateLimited(wait) => wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                _ => 1,
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
