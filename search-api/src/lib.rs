//! The cloudpf search API: what a storefront search box and a tenant's back office talk to.
//!
//! [`app`] builds the whole router from per-area routers; tests drive it with `oneshot`,
//! [`server::serve`] binds it to a socket. Handlers never read the environment: all they
//! know comes from the [`AppState`] built from a validated [`Config`].

pub mod auth;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod insights;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod ratelimit;
pub mod reports;
pub mod routes;
pub mod server;
pub mod tenants;
pub mod tokens;

use std::sync::Arc;

use cloudpf_analytics::AnalyticsEngine;
use cloudpf_search::SearchEngine;

/// What [`app`] returns, for callers that hold it without depending on axum.
pub use axum::Router;
pub use config::{Config, RawConfig};
pub use error::ApiError;
pub use tenants::{Scope, Tenants};

/// Everything a request may use, shared by all requests.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<dyn SearchEngine>,
    /// The reports backend on its own bounded pool; `None` where a deployment has none
    /// (analytics answer 503).
    pub analytics: Option<Arc<reports::ReportRunner>>,
    pub tenants: Arc<Tenants>,
    pub config: Arc<Config>,
    pub metrics: Arc<metrics::Metrics>,
    /// The shops the demo storefront at `/` offers, with their public search keys.
    pub storefront: Arc<Vec<routes::pages::StorefrontShop>>,
    /// Where searches, autocompletes and clicks are logged; `None`: not logged (and
    /// `POST /events` answers 503).
    pub search_log: Option<Arc<cloudpf_lake::SearchLog>>,
    /// The shops' popular queries for autocomplete, from the search log.
    pub popular: Arc<insights::PopularQueries>,
    /// Signs and checks short-lived tokens; `None`: none are minted or accepted.
    pub tokens: Option<Arc<tokens::TokenSigner>>,
}

impl AppState {
    pub fn new(engine: Arc<dyn SearchEngine>, tenants: Tenants, config: Config) -> Self {
        Self {
            engine,
            analytics: None,
            tenants: Arc::new(tenants),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
            storefront: Arc::new(Vec::new()),
            search_log: None,
            popular: Arc::default(),
            // A secret of this process's own until one is configured (`with_tokens`).
            tokens: tokens::TokenSigner::random().ok().map(Arc::new),
        }
    }

    /// Signs tokens with `signer` (a configured secret shared by every process), or
    /// mints none.
    pub fn with_tokens(mut self, signer: Option<tokens::TokenSigner>) -> Self {
        self.tokens = signer.map(Arc::new);
        self
    }

    /// Logs searches, autocompletes and clicks to `log` (its flusher is started by
    /// [`server::serve`]).
    pub fn with_search_log(mut self, log: Arc<cloudpf_lake::SearchLog>) -> Self {
        self.search_log = Some(log);
        self
    }

    /// Offers `shops` on the demo storefront (`cloudpf demo` passes its shops).
    pub fn with_storefront(mut self, shops: Vec<routes::pages::StorefrontShop>) -> Self {
        self.storefront = Arc::new(shops);
        self
    }

    /// Adds the reports backend, with its pool sized by the configured limits.
    pub fn with_analytics(mut self, analytics: Arc<dyn AnalyticsEngine>) -> std::io::Result<Self> {
        let runner = reports::ReportRunner::new(analytics, self.config.limits.reports)?;
        self.analytics = Some(Arc::new(runner));
        Ok(self)
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}
