//! What the handler does when the search engine refuses instead of failing: a tenant
//! without a configured backend, and documents the engine's mapping rejects. Both are
//! dead-lettered with the reason; neither blocks the stream nor is dropped silently.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use cloudpf_cdc::source::events::StreamWriter;
use cloudpf_cdc::{Pipeline, handle_products};
use cloudpf_lake::LocalDirSink;
use cloudpf_model::{Op, Product, Purchase, TenantId};
use cloudpf_search::{
    ApplyOutcome, DocChange, Entity, ProductQuery, ProductResults, PurchaseQuery, PurchaseResults,
    Rejected, SearchEngine, SearchError, Stored, Suggestion, TantivyEngine, Versioned,
};
use common::*;

/// The embedded engine, except that tenant `unrouted` has no backend, tenant `damaged`
/// has a corrupt index, tenant `down` has an unreachable one, and products named
/// `Rejected …` are refused, as Elasticsearch refuses a document its mapping cannot take.
#[derive(Debug)]
struct Refusing {
    inner: TantivyEngine,
}

#[async_trait]
impl SearchEngine for Refusing {
    async fn purge_tenant(&self, tenant: &TenantId) -> Result<Vec<String>, SearchError> {
        self.inner.purge_tenant(tenant).await
    }

    async fn apply_products(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Product>>,
    ) -> Result<ApplyOutcome, SearchError> {
        match tenant.as_str() {
            "unrouted" => return Err(SearchError::NotConfigured(tenant.to_string())),
            "damaged" => return Err(SearchError::Corrupt("segment checksum mismatch".into())),
            "down" => return Err(SearchError::Unavailable("connection refused".into())),
            _ => {}
        }
        let (refused, accepted): (Vec<_>, Vec<_>) = changes.into_iter().partition(
            |c| matches!(&c.change, DocChange::Upsert(p) if p.name.starts_with("Rejected")),
        );
        let mut outcome = self.inner.apply_products(tenant, accepted).await?;
        outcome
            .rejected
            .extend(refused.into_iter().map(|c| Rejected {
                key: c.key,
                seq: c.seq,
                reason: "document_parsing_exception: [price] failed to parse".into(),
            }));
        Ok(outcome)
    }

    async fn apply_purchases(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Purchase>>,
    ) -> Result<ApplyOutcome, SearchError> {
        self.inner.apply_purchases(tenant, changes).await
    }

    async fn get_product(
        &self,
        tenant: &TenantId,
        product_id: &str,
    ) -> Result<Option<Stored<Product>>, SearchError> {
        self.inner.get_product(tenant, product_id).await
    }

    async fn get_purchase(
        &self,
        tenant: &TenantId,
        purchase_id: &str,
    ) -> Result<Option<Stored<Purchase>>, SearchError> {
        self.inner.get_purchase(tenant, purchase_id).await
    }

    async fn count(&self, tenant: &TenantId, entity: Entity) -> Result<u64, SearchError> {
        self.inner.count(tenant, entity).await
    }

    async fn search_products(
        &self,
        tenant: &TenantId,
        query: &ProductQuery,
    ) -> Result<ProductResults, SearchError> {
        self.inner.search_products(tenant, query).await
    }

    async fn autocomplete(
        &self,
        tenant: &TenantId,
        prefix: &str,
        size: usize,
    ) -> Result<Vec<Suggestion>, SearchError> {
        self.inner.autocomplete(tenant, prefix, size).await
    }

    async fn search_purchases(
        &self,
        tenant: &TenantId,
        query: &PurchaseQuery,
    ) -> Result<PurchaseResults, SearchError> {
        self.inner.search_purchases(tenant, query).await
    }
}

fn refusing_pipeline(dir: &std::path::Path) -> Pipeline {
    Pipeline::new(
        Arc::new(Refusing {
            inner: TantivyEngine::new(dir),
        }),
        Arc::new(LocalDirSink::new(dir)),
    )
}

fn letter(objects: &[(String, String)], key: &str) -> serde_json::Value {
    let (_, text) = objects
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no dead letter {key} among {objects:?}"));
    serde_json::from_str(text).unwrap()
}

/// One batch: a product of `failing` (a tenant whose index cannot take it), then one of
/// `acme`. Returns the report, the failing record's dead letter (if written) and the
/// lake objects of the failing tenant.
async fn batch_with_a_failing_tenant(
    dir: &std::path::Path,
    pipeline: &Pipeline,
    failing: &str,
) -> (cloudpf_cdc::BatchReport, Option<serde_json::Value>, usize) {
    let mut stream = StreamWriter::new("products");
    let lost = product(failing, "p-1", "Camping Stove", "30.00");
    let kept = product("acme", "p-2", "Trail Shoes", "80.00");
    let records = vec![
        product_record(
            &mut stream,
            Op::Insert,
            Some(&lost),
            None,
            "2025-11-23T09:00:00Z",
        ),
        product_record(
            &mut stream,
            Op::Insert,
            Some(&kept),
            None,
            "2025-11-23T09:01:00Z",
        ),
    ];
    let lost_seq = records[0].change.sequence_number.clone().unwrap();

    let report = handle_products(batch(records), pipeline).await;

    assert!(
        pipeline
            .search()
            .get_product(&tenant("acme"), "p-2")
            .await
            .unwrap()
            .is_some(),
        "the other tenant's product must be indexed"
    );
    let letters = lake_objects(dir, "dlq/products/").await;
    let key = format!("dlq/products/2026-01-01T00-00-00.000/{lost_seq}.json");
    let letter = letters
        .iter()
        .any(|(k, _)| *k == key)
        .then(|| letter(&letters, &key));
    let lake_prefix = format!("lake/products/json/tenant_id={failing}/");
    (report, letter, lake_objects(dir, &lake_prefix).await.len())
}

#[tokio::test]
async fn a_tenant_without_a_search_backend_is_dead_lettered_with_the_reason_and_others_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = refusing_pipeline(dir.path());

    let (report, letter, lake) =
        batch_with_a_failing_tenant(dir.path(), &pipeline, "unrouted").await;

    assert_eq!(
        (report.applied, report.dead_lettered, report.failed_from),
        (1, 1, None),
        "the unrouted tenant must neither block the stream nor be retried forever"
    );
    let letter = letter.expect("a dead letter for the unrouted tenant's record");
    assert_eq!(
        letter["reason"],
        "no search backend configured for tenant unrouted"
    );
    assert_eq!(
        letter["record"]["dynamodb"]["NewImage"]["product_id"]["S"],
        "p-1"
    );
    // The lake still takes the unrouted tenant's record: only the index lacks a backend.
    assert_eq!(lake, 1);
}

#[tokio::test]
async fn issue_14_a_damaged_index_dead_letters_its_tenants_changes_and_an_unreachable_one_is_retried()
 {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = refusing_pipeline(dir.path());

    let (report, letter, lake) =
        batch_with_a_failing_tenant(dir.path(), &pipeline, "damaged").await;
    assert_eq!(
        (report.applied, report.dead_lettered, report.failed_from),
        (1, 1, None),
        "a corrupt index must not hold up the shard's other tenants for ever"
    );
    assert_eq!(
        letter.expect("a dead letter for the damaged tenant's record")["reason"],
        "search index is corrupt: segment checksum mismatch"
    );
    assert_eq!(lake, 1);

    // An engine that is merely unreachable may come back: the batch is retried from the
    // tenant's first record, and nothing is dead-lettered.
    let dir = tempfile::tempdir().unwrap();
    let pipeline = refusing_pipeline(dir.path());
    let (report, letter, _) = batch_with_a_failing_tenant(dir.path(), &pipeline, "down").await;
    assert_eq!(
        (report.dead_lettered, report.failed_from.as_deref(), letter),
        (0, report.first_seq.as_deref(), None)
    );
}

#[tokio::test]
async fn a_document_the_engine_rejects_is_dead_lettered_with_the_engines_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = refusing_pipeline(dir.path());
    let mut stream = StreamWriter::new("products");
    let good = product("acme", "p-1", "Camping Stove", "30.00");
    let bad = product("acme", "p-2", "Rejected Lantern", "12.00");
    let records = vec![
        product_record(
            &mut stream,
            Op::Insert,
            Some(&good),
            None,
            "2025-11-23T09:00:00Z",
        ),
        product_record(
            &mut stream,
            Op::Insert,
            Some(&bad),
            None,
            "2025-11-23T09:01:00Z",
        ),
    ];
    let bad_seq = records[1].change.sequence_number.clone().unwrap();

    let report = handle_products(batch(records), &pipeline).await;

    assert_eq!(
        (report.applied, report.dead_lettered, report.failed_from),
        (1, 1, None)
    );
    let letters = lake_objects(dir.path(), "dlq/products/").await;
    let letter = letter(
        &letters,
        &format!("dlq/products/2026-01-01T00-00-00.000/{bad_seq}.json"),
    );
    assert_eq!(
        letter["reason"],
        "search index rejected the document: document_parsing_exception: [price] failed to parse"
    );
    assert_eq!(
        letter["record"]["dynamodb"]["NewImage"]["name"]["S"],
        "Rejected Lantern"
    );
    assert!(
        pipeline
            .search()
            .get_product(&tenant("acme"), "p-2")
            .await
            .unwrap()
            .is_none()
    );
}
