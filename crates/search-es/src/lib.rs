//! The Elasticsearch backend of cloudpf: [`ElasticsearchEngine`] implements
//! [`cloudpf_search::SearchEngine`] over one or more clusters, each tenant routed to one
//! ([`EsRoutes`]), with versioned per-tenant indexes behind aliases ([`mapping`]),
//! sequence-number-guarded bulk writes ([`documents`]) and searches built as JSON values
//! ([`query`]). The `elasticsearch` crate's types stay inside this crate.

mod admin;
mod client;
pub mod documents;
mod engine;
pub mod mapping;
pub mod query;
pub mod response;
pub mod routing;

pub use admin::{
    Rebuilt, SNAPSHOT_POLICY, SNAPSHOT_REPOSITORY, TaskWait, alias_swap_body, snapshot_policy_body,
    snapshot_repository_body,
};
pub use client::RetryPolicy;
pub use engine::ElasticsearchEngine;
pub use mapping::MAPPING_VERSION;
pub use routing::{
    ConfigError, EsAuth, EsCluster, EsConfig, EsRoutes, RawCluster, RawRoute, Secret,
};
