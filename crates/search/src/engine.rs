//! The search engine trait and the types it speaks.

use std::fmt;

use async_trait::async_trait;
use cloudpf_model::{Product, Purchase, SeqNo, TenantId};

use crate::query::{ProductQuery, ProductResults, PurchaseQuery, PurchaseResults, Suggestion};

/// What kind of document an index holds. Each tenant has one index per entity.
pub use cloudpf_model::Entity;

/// A change to one document, stamped with the stream sequence number it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub key: String,
    pub seq: SeqNo,
    pub change: DocChange<T>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DocChange<T> {
    Upsert(T),
    Delete,
}

/// A document as the index holds it, with the sequence number that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub doc: T,
    pub seq: SeqNo,
}

/// What applying a batch did. `stale` counts changes ignored because the index already
/// held the same or a newer sequence number for their key (replays, duplicates,
/// out-of-order delivery). `rejected` lists changes the engine refused for good (a
/// document its mapping cannot take): retrying them cannot succeed, so the caller
/// dead-letters them with the reason instead of retrying the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub applied: usize,
    pub stale: usize,
    pub rejected: Vec<Rejected>,
}

/// A change the engine refused, with the engine's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub key: String,
    pub seq: SeqNo,
    pub reason: String,
}

impl std::ops::AddAssign for ApplyOutcome {
    fn add_assign(&mut self, rhs: Self) {
        self.applied += rhs.applied;
        self.stale += rhs.stale;
        self.rejected.extend(rhs.rejected);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The engine could not be reached or failed to write; retrying may succeed.
    #[error("search engine unavailable: {0}")]
    Unavailable(String),
    /// The engine's stored data is not what this version of cloudpf wrote.
    #[error("search index is corrupt: {0}")]
    Corrupt(String),
    /// No search backend is configured for the tenant (holds the tenant id). Retrying
    /// cannot help until the configuration changes.
    #[error("no search backend configured for tenant {0}")]
    NotConfigured(String),
}

impl SearchError {
    /// Whether the same call may succeed later without anyone changing anything: the
    /// CDC handler retries the batch on these and dead-letters the changes otherwise
    /// (a corrupt index or a missing backend would block the stream for every tenant).
    pub fn is_retryable(&self) -> bool {
        match self {
            SearchError::Unavailable(_) => true,
            SearchError::Corrupt(_) | SearchError::NotConfigured(_) => false,
        }
    }
}

/// One search backend. Writes are idempotent and order-safe per key: a change whose
/// sequence number is not newer than the indexed one is a no-op, so replaying a batch
/// never changes the result.
#[async_trait]
pub trait SearchEngine: Send + Sync + fmt::Debug {
    async fn apply_products(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Product>>,
    ) -> Result<ApplyOutcome, SearchError>;

    async fn apply_purchases(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Purchase>>,
    ) -> Result<ApplyOutcome, SearchError>;

    async fn get_product(
        &self,
        tenant: &TenantId,
        product_id: &str,
    ) -> Result<Option<Stored<Product>>, SearchError>;

    async fn get_purchase(
        &self,
        tenant: &TenantId,
        purchase_id: &str,
    ) -> Result<Option<Stored<Purchase>>, SearchError>;

    /// Live (not deleted) documents of the entity for the tenant.
    async fn count(&self, tenant: &TenantId, entity: Entity) -> Result<u64, SearchError>;

    /// Active products matching the query, with facets and highlights. A tenant without
    /// an index has no products.
    async fn search_products(
        &self,
        tenant: &TenantId,
        query: &ProductQuery,
    ) -> Result<ProductResults, SearchError>;

    /// Up to `size` product names completing `prefix`, best first: exact prefix matches
    /// before typo matches, a match at the start of a name before one inside it, then
    /// by units sold.
    async fn autocomplete(
        &self,
        tenant: &TenantId,
        prefix: &str,
        size: usize,
    ) -> Result<Vec<Suggestion>, SearchError>;

    async fn search_purchases(
        &self,
        tenant: &TenantId,
        query: &PurchaseQuery,
    ) -> Result<PurchaseResults, SearchError>;

    /// Removes every index of the tenant (both entities, every version) for good, for
    /// offboarding (`cloudpf tenants remove --purge`), and names what it removed. Removing
    /// a tenant without indexes succeeds with nothing removed.
    async fn purge_tenant(&self, tenant: &TenantId) -> Result<Vec<String>, SearchError>;

    /// Whether the engine can serve these tenants (`/ready`). By default, every tenant's
    /// products are counted; an engine where that opens indexes checks more cheaply, since
    /// a probe every few seconds must not keep a thousand idle tenants open.
    async fn ready(&self, tenants: &[TenantId]) -> Result<(), SearchError> {
        for tenant in tenants {
            self.count(tenant, Entity::Products).await?;
        }
        Ok(())
    }

    /// Background maintenance a serving process runs every few hundred milliseconds:
    /// an engine that keeps derived structures (the embedded autocomplete) brings them up
    /// to date with new commits here, so requests rarely wait for it.
    async fn refresh(&self) -> Result<(), SearchError> {
        Ok(())
    }

    /// Makes every acknowledged change searchable now. An engine that acknowledges a
    /// batch before committing it (the embedded engine's logged durability) commits here,
    /// including what a process that stopped early left logged. Writers call it before
    /// they exit; by default there is nothing to do.
    async fn flush(&self) -> Result<(), SearchError> {
        Ok(())
    }
}
