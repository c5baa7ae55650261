//! Prometheus metrics, in registries owned by the app state (no global recorder).
//!
//! Two registries, because `/metrics` is reachable without a tenant key: the public one
//! holds aggregate series only (requests and latency per route template); the private
//! one adds series per tenant (requests by outcome), shown only to a caller with the
//! operator's metrics token, so the endpoint never lists which shops are served here
//! (issue #10). Rendering reads counters only: a scrape opens no index.

use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use cloudpf_model::TenantId;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
    /// `ok`, `client_error` or `server_error`.
    outcome: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s: the autocomplete hot path lives at the bottom of this range.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    private: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    tenant_requests: Family<TenantLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cloudpf");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        let tenant_requests = Family::<TenantLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let mut private = Registry::with_prefix("cloudpf");
        private.register(
            "tenant_http_requests",
            "HTTP requests per tenant by outcome",
            tenant_requests.clone(),
        );
        Self {
            registry,
            private,
            requests,
            latency,
            tenant_requests,
        }
    }

    /// The text exposition format: aggregate series, plus the per-tenant ones when
    /// `with_tenants` (the caller showed the metrics token).
    pub fn render(&self, with_tenants: bool) -> String {
        use prometheus_client::encoding::text::{encode, encode_registry};
        let mut out = String::new();
        // Writing into a String cannot fail.
        if with_tenants {
            let _ = encode_registry(&mut out, &self.registry);
            let _ = encode(&mut out, &self.private);
        } else {
            let _ = encode(&mut out, &self.registry);
        }
        out
    }
}

/// Route layer: counts and times every matched request by its route template (not the
/// raw path, so tenants and queries do not explode the label space).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = request.method().to_string();
    let (tenant, request) = path_tenant(request).await;
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let m = &state.metrics;
    m.latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(elapsed);
    let status = response.status();
    // Only tenants of the tenants file get a series: a path naming anything else must not
    // grow the label space.
    if let Some(tenant) = tenant
        && state.tenants.get(&tenant).is_some()
    {
        let outcome = if status.is_server_error() {
            "server_error"
        } else if status.is_client_error() {
            "client_error"
        } else {
            "ok"
        };
        m.tenant_requests
            .get_or_create(&TenantLabels {
                tenant: tenant.to_string(),
                outcome,
            })
            .inc();
    }
    m.requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: status.as_u16(),
        })
        .inc();
    response
}

/// The tenant a request's path names, if it names a valid one.
async fn path_tenant(request: Request) -> (Option<TenantId>, Request) {
    let (mut parts, body) = request.into_parts();
    let tenant = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|params| TenantId::parse(crate::auth::tenant_param(&params)?).ok());
    (tenant, Request::from_parts(parts, body))
}
