//! One HTTP connection to a cluster, and how failures of requests and bulk items are
//! classified and retried.
//!
//! Paths are built only from index names, which this crate derives from validated tenant
//! ids and prefixes; document ids and every user value travel in JSON bodies.

use std::sync::Arc;
use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::{SingleNodeConnectionPool, Transport, TransportBuilder};
use elasticsearch::http::{Method, Url};
use serde_json::Value;

use crate::routing::{EsAuth, EsCluster};
use cloudpf_search::SearchError;

/// How failed writes are retried: up to `max_attempts` sends in all, waiting
/// `initial_backoff`, then twice as long each time, at most `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before send number `attempt + 1` (`attempt` counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The default timeout of one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Json(Value),
    NdJson(Vec<u8>),
}

/// A response: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.status == 429 || self.status >= 500
    }

    /// `error.type` of an error response.
    pub fn error_type(&self) -> Option<&str> {
        self.body.pointer("/error/type").and_then(Value::as_str)
    }

    pub fn is_index_not_found(&self) -> bool {
        self.status == 404 && self.error_type() == Some("index_not_found_exception")
    }

    /// A one-line description of a failed response, for errors and logs.
    pub fn describe(&self) -> String {
        match self.body.get("error") {
            Some(error) => format!("status {}: {}", self.status, describe_error(error)),
            None => format!("status {}", self.status),
        }
    }
}

/// `type: reason (caused by type: reason)` of an Elasticsearch error object.
pub fn describe_error(error: &Value) -> String {
    let one = |e: &Value| match (
        e.get("type").and_then(Value::as_str),
        e.get("reason").and_then(Value::as_str),
    ) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_owned(),
        (None, Some(r)) => r.to_owned(),
        (None, None) => e.as_str().map_or_else(|| e.to_string(), str::to_owned),
    };
    match error.get("caused_by") {
        Some(cause) => format!("{} (caused by {})", one(error), one(cause)),
        None => one(error),
    }
}

/// A connection to one named cluster.
#[derive(Clone)]
pub struct Conn {
    transport: Transport,
    pub cluster: Arc<EsCluster>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("cluster", &self.cluster.name)
            .field("url", &self.cluster.url)
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub fn new(cluster: Arc<EsCluster>, timeout: Duration) -> Result<Self, SearchError> {
        let url = Url::parse(&cluster.url).map_err(|e| {
            SearchError::Unavailable(format!("cluster {}: bad url: {e}", cluster.name))
        })?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(timeout)
            .enable_meta_header(false);
        builder = match &cluster.auth {
            EsAuth::None => builder,
            EsAuth::Basic { username, password } => builder.auth(Credentials::Basic(
                username.clone(),
                password.expose().to_owned(),
            )),
            EsAuth::ApiKey(key) => {
                builder.auth(Credentials::EncodedApiKey(key.expose().to_owned()))
            }
        };
        if let Some(pem) = &cluster.ca_certificate {
            let ca = Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                SearchError::Unavailable(format!("cluster {}: ca_certificate: {e}", cluster.name))
            })?;
            builder = builder.cert_validation(CertificateValidation::Full(ca));
        }
        let transport = builder.build().map_err(|e| {
            SearchError::Unavailable(format!("cluster {}: client not built: {e}", cluster.name))
        })?;
        Ok(Self { transport, cluster })
    }

    /// Sends one request. `Err` only when no HTTP response arrived (connection refused,
    /// timeout): always transient.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<Reply, String> {
        let mut headers = HeaderMap::new();
        let body = match body {
            Some(Body::Json(v)) => Some(v.to_string().into_bytes()),
            Some(Body::NdJson(bytes)) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                Some(bytes)
            }
            None => None,
        };
        let query = (!query.is_empty()).then_some(query);
        let response = self
            .transport
            .send(method, path, headers, query, body, None)
            .await
            .map_err(|e| format!("cluster {}: {e}", self.cluster.name))?;
        let status = response.status_code().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("cluster {}: response not read: {e}", self.cluster.name))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// Sends a read or an idempotent admin request, retrying transport failures, 429 and
    /// 5xx under `retry`. Any other response is returned for the caller to judge.
    pub async fn send_retrying(
        &self,
        retry: &RetryPolicy,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<Reply, SearchError> {
        let mut attempt = 1;
        loop {
            let failure = match self.send(method, path, query, body.clone()).await {
                Ok(reply) if !reply.is_transient() => return Ok(reply),
                Ok(reply) => reply.describe(),
                Err(e) => e,
            };
            if attempt >= retry.max_attempts.max(1) {
                return Err(SearchError::Unavailable(format!(
                    "request to {path} failed after {attempt} attempts: {failure}"
                )));
            }
            tracing::warn!(cluster = %self.cluster.name, path, attempt, %failure, "elasticsearch request failed; retrying");
            tokio::time::sleep(retry.backoff(attempt)).await;
            attempt += 1;
        }
    }
}

/// What one bulk item's result means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Applied,
    Stale,
    /// Try this item again (version conflict, 429, 5xx).
    Retry(String),
    /// The document itself is wrong; retrying cannot help.
    Rejected(String),
    /// The request cannot succeed as configured (missing index, no permission).
    Failed(String),
}

/// Classifies one `items[]` entry of a bulk response.
pub fn item_outcome(item: &Value) -> ItemOutcome {
    let Some(result) = item.as_object().and_then(|o| o.values().next()) else {
        return ItemOutcome::Failed(format!("unexpected bulk item {item}"));
    };
    let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
    let reason = || {
        result
            .get("error")
            .map_or_else(|| format!("status {status}"), describe_error)
    };
    match status {
        200..=299 => match result.get("result").and_then(Value::as_str) {
            Some("noop") => ItemOutcome::Stale,
            Some("created" | "updated") => ItemOutcome::Applied,
            other => ItemOutcome::Failed(format!("unexpected bulk result {other:?}")),
        },
        409 | 429 | 500..=599 => ItemOutcome::Retry(reason()),
        400 => ItemOutcome::Rejected(reason()),
        _ => ItemOutcome::Failed(reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
    }

    #[test]
    fn bulk_items_are_classified_by_status_and_result() {
        let item = |v: Value| item_outcome(&json!({ "update": v }));
        assert_eq!(
            item(json!({"status": 201, "result": "created"})),
            ItemOutcome::Applied
        );
        assert_eq!(
            item(json!({"status": 200, "result": "updated"})),
            ItemOutcome::Applied
        );
        assert_eq!(
            item(json!({"status": 200, "result": "noop"})),
            ItemOutcome::Stale
        );
        assert!(matches!(
            item(
                json!({"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "x"}})
            ),
            ItemOutcome::Retry(_)
        ));
        assert!(matches!(
            item(
                json!({"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}})
            ),
            ItemOutcome::Retry(_)
        ));
        assert_eq!(
            item(json!({"status": 400, "error": {
                "type": "document_parsing_exception",
                "reason": "[1:60] failed to parse field [price] of type [scaled_float]",
                "caused_by": {"type": "number_format_exception", "reason": "For input string: \"abc\""}
            }})),
            ItemOutcome::Rejected(
                "document_parsing_exception: [1:60] failed to parse field [price] of type \
                 [scaled_float] (caused by number_format_exception: For input string: \"abc\")"
                    .into()
            )
        );
        assert!(matches!(
            item(
                json!({"status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index"}})
            ),
            ItemOutcome::Failed(_)
        ));
    }
}
