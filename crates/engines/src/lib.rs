//! Which search engine serves a tenant. A process picks one [`SearchBackend`]: the
//! embedded Tantivy indexes under its data directory (the default), or Elasticsearch,
//! where each tenant is routed to a cluster by the tenants file ([`Routing`]). The API,
//! the poller, `replay` and the Lambdas all build their engine with [`search_engine`]
//! and see only the [`SearchEngine`] trait after that (as quickwit's storage resolver
//! hands out storages).

pub mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cloudpf_model::TenantId;
use cloudpf_search::{EngineOptions, SearchEngine, SearchError, TantivyEngine};
/// The `[elasticsearch]` table of the tenants file, as written.
pub use cloudpf_search_es::EsConfig;
use cloudpf_search_es::{ConfigError, ElasticsearchEngine, EsRoutes};
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchBackend {
    /// Tantivy indexes under `<data dir>/index`.
    #[default]
    Embedded,
    /// The clusters of the tenants file's `[elasticsearch]` table.
    Elasticsearch,
}

impl FromStr for SearchBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedded" | "tantivy" => Ok(Self::Embedded),
            "elasticsearch" => Ok(Self::Elasticsearch),
            other => Err(format!(
                "search backend must be embedded or elasticsearch, got {other:?}"
            )),
        }
    }
}

impl fmt::Display for SearchBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Embedded => "embedded",
            Self::Elasticsearch => "elasticsearch",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read tenants file {path}: {error}")]
    Read { path: String, error: String },
    #[error("tenants file {path} is not valid: {error}")]
    Parse { path: String, error: String },
    #[error("tenant {id:?}: {error}")]
    BadTenant { id: String, error: String },
    #[error("elasticsearch: {0}")]
    Elasticsearch(#[from] ConfigError),
    #[error("the elasticsearch search backend needs an [elasticsearch] table in the tenants file")]
    NoElasticsearch,
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// The routing part of the tenants file: the `[elasticsearch]` clusters and each
/// tenant's `search_cluster`. Keys, CORS origins and rate limits are the API's business
/// and are ignored here, so a CDC process reads the same file the API serves from.
#[derive(Clone, Default)]
pub struct Routing {
    elasticsearch: Option<EsConfig>,
    clusters: Vec<(TenantId, String)>,
    /// The stored secrets already read: name → text.
    stored: BTreeMap<String, String>,
}

impl fmt::Debug for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Stored secrets are credentials: only their names are shown.
        f.debug_struct("Routing")
            .field("elasticsearch", &self.elasticsearch)
            .field("clusters", &self.clusters)
            .field("stored", &self.stored.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What [`Routing::from_toml`] reads of the tenants file. The API's own keys are
/// skipped unread; any other key is refused, as the API refuses it, so a misspelt
/// `search_cluster` stops a CDC process at start instead of unrouting a tenant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    #[serde(default)]
    tenants: Vec<RawRoutedTenant>,
    #[serde(default)]
    elasticsearch: Option<EsConfig>,
    #[serde(default, rename = "rate_limits")]
    _rate_limits: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoutedTenant {
    id: String,
    #[serde(default)]
    search_cluster: Option<String>,
    #[serde(default, rename = "cors_origins")]
    _cors_origins: Option<IgnoredAny>,
    #[serde(default, rename = "keys")]
    _keys: Option<IgnoredAny>,
}

impl Routing {
    /// Routes already validated by their owner (the API's tenants file).
    pub fn new(elasticsearch: Option<EsConfig>, clusters: Vec<(TenantId, String)>) -> Self {
        Self {
            elasticsearch,
            clusters,
            stored: BTreeMap::new(),
        }
    }

    /// The stored secrets (AWS Secrets Manager names) the clusters' `credentials_secret`
    /// name: the caller reads them and hands them back with [`Routing::with_stored`].
    pub fn stored_secrets(&self) -> BTreeSet<String> {
        self.elasticsearch
            .as_ref()
            .map(EsConfig::stored_secrets)
            .unwrap_or_default()
    }

    /// With the stored secrets read: name → text.
    pub fn with_stored(mut self, stored: BTreeMap<String, String>) -> Self {
        self.stored = stored;
        self
    }

    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::Read {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// From the tenants file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, EngineError> {
        let raw: RawRouting = toml::from_str(text).map_err(|e| EngineError::Parse {
            path: origin.to_owned(),
            error: e.to_string(),
        })?;
        let mut clusters = Vec::new();
        for t in raw.tenants {
            let id = TenantId::parse(&t.id).map_err(|e| EngineError::BadTenant {
                id: t.id.clone(),
                error: e.to_string(),
            })?;
            if let Some(cluster) = t.search_cluster {
                clusters.push((id, cluster));
            }
        }
        Ok(Self::new(raw.elasticsearch, clusters))
    }

    /// Checks the `[elasticsearch]` table and the tenants' routes as
    /// [`Routing::elasticsearch_routes`] will, without the secrets (which only the
    /// processes that use them can read): for tools that edit the tenants file.
    pub fn check_routes(&self) -> Result<(), EngineError> {
        let Some(config) = &self.elasticsearch else {
            return if self.clusters.is_empty() {
                Ok(())
            } else {
                Err(EngineError::NoElasticsearch)
            };
        };
        let stand_in: BTreeMap<String, String> = config
            .stored_secrets()
            .into_iter()
            .map(|name| {
                (
                    name,
                    r#"{"username": "check", "password": "check"}"#.to_owned(),
                )
            })
            .collect();
        EsRoutes::with_sources(
            config,
            self.clusters.clone(),
            |_| Some("Y2hlY2s=".to_owned()),
            &stand_in,
        )?;
        Ok(())
    }

    /// Each tenant's Elasticsearch cluster, validated, secrets read from the environment.
    /// Only the Elasticsearch backend asks, so embedded runs need no cluster settings.
    pub fn elasticsearch_routes(&self) -> Result<EsRoutes, EngineError> {
        let config = self
            .elasticsearch
            .as_ref()
            .ok_or(EngineError::NoElasticsearch)?;
        Ok(EsRoutes::with_sources(
            config,
            self.clusters.clone(),
            |name| std::env::var(name).ok(),
            &self.stored,
        )?)
    }
}

/// The engine of `backend`. Elasticsearch takes its routes from `routing`; a tenant
/// without a cluster is answered with a clear error on use (a dead letter in the
/// pipeline, a 503 from the API), never dropped. `embedded` applies to the embedded
/// engine only.
pub fn search_engine(
    backend: SearchBackend,
    data_dir: &Path,
    routing: &Routing,
    embedded: EngineOptions,
) -> Result<Arc<dyn SearchEngine>, EngineError> {
    Ok(match backend {
        SearchBackend::Embedded => Arc::new(TantivyEngine::with_options(data_dir, embedded)),
        SearchBackend::Elasticsearch => {
            Arc::new(ElasticsearchEngine::new(routing.elasticsearch_routes()?)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_is_named_as_in_configuration() {
        for b in [SearchBackend::Embedded, SearchBackend::Elasticsearch] {
            assert_eq!(b.to_string().parse::<SearchBackend>(), Ok(b));
        }
        assert_eq!("tantivy".parse(), Ok(SearchBackend::Embedded));
        assert!(
            "opensearch"
                .parse::<SearchBackend>()
                .unwrap_err()
                .contains("embedded or elasticsearch")
        );
    }

    #[test]
    fn routing_reads_only_clusters_and_routes_from_the_api_tenants_file() {
        let file = r#"
            [[tenants]]
            id = "shop-a"
            cors_origins = ["https://a.example"]
            search_cluster = "es-a"
            [[tenants.keys]]
            scope = "search"
            sha256 = "00"
            [[tenants]]
            id = "shop-b"
            [rate_limits.admin]
            per_second = 5
            burst = 5
            [elasticsearch.clusters.es-a]
            url = "http://127.0.0.1:9200"
        "#;
        let routes = Routing::from_toml(file, "t")
            .unwrap()
            .elasticsearch_routes()
            .unwrap();
        let a = TenantId::parse("shop-a").unwrap();
        let b = TenantId::parse("shop-b").unwrap();
        assert_eq!(
            routes.cluster_for(&a).map(|c| c.name.clone()),
            Some("es-a".to_owned())
        );
        assert!(routes.cluster_for(&b).is_none());
    }

    #[test]
    fn a_routing_mistake_is_named() {
        let err = |text: &str| {
            Routing::from_toml(text, "t")
                .and_then(|r| r.elasticsearch_routes().map(|_| ()))
                .unwrap_err()
                .to_string()
        };
        assert!(err("[[tenants]]\nid = \"Shop\"").contains("lowercase"));
        assert!(err("[[tenants]]\nid = \"a\"").contains("[elasticsearch]"));
        assert!(
            err("[[tenants]]\nid = \"a\"\nsearch_cluster = \"z\"\n[elasticsearch]\n")
                .contains("not configured")
        );
        assert!(err("tenants = 3").contains("not valid"));
        assert!(err("[[tenants]]\nid = \"a\"\nsearch_clustr = \"es\"").contains("unknown field"));
    }

    #[test]
    fn the_embedded_backend_needs_no_cluster_settings() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            search_engine(
                SearchBackend::Embedded,
                dir.path(),
                &Routing::default(),
                EngineOptions::default()
            )
            .is_ok()
        );
    }
}
