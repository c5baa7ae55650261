//! Which search engine a process writes to and reads from: the embedded Tantivy indexes
//! under the data directory (the default), or Elasticsearch, each tenant routed to its
//! cluster by the tenants file. The API, the poller and the Lambdas all choose here.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cloudpf_search::{EngineOptions, SearchEngine, SearchError, TantivyEngine};
use cloudpf_search_es::ElasticsearchEngine;

use crate::tenants::{Tenants, TenantsError};

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
pub enum BackendError {
    #[error(transparent)]
    Tenants(#[from] TenantsError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// The engine of `backend`. Elasticsearch takes its routes from `tenants`; a tenant
/// without a cluster is answered with a clear error on use (a dead letter in the
/// pipeline, a 503 from the API), never dropped. `embedded` applies to the embedded
/// engine only.
pub fn search_engine(
    backend: SearchBackend,
    data_dir: &Path,
    tenants: &Tenants,
    embedded: EngineOptions,
) -> Result<Arc<dyn SearchEngine>, BackendError> {
    Ok(match backend {
        SearchBackend::Embedded => Arc::new(TantivyEngine::with_options(data_dir, embedded)),
        SearchBackend::Elasticsearch => {
            Arc::new(ElasticsearchEngine::new(tenants.elasticsearch_routes()?)?)
        }
    })
}
