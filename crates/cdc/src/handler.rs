//! The two Lambda handlers as plain library functions: a batch in, a report out whose
//! [`BatchReport::response`] is the partial-batch response Lambda expects.
//!
//! A record that can never succeed is dead-lettered with its reason and acknowledged: one
//! that does not decode (including a time the lake could never write, refused by the
//! transform before either sink sees it), one the search engine rejects (its mapping cannot take the
//! document), and every record of a tenant whose index can never take it (no search backend
//! configured, or an index the engine reports as corrupt: see [`SearchError::is_retryable`]). A
//! failure that may pass (an engine or store that is down) is reported as a batch item
//! failure at the first record it affects, so Lambda redelivers that record and every
//! later one of the shard. Records after it may already have been applied; that is
//! harmless, because every sink is idempotent by sequence number.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use cloudpf_lake::{LakeFailure, LakeWriter, LocalDirSink, ObjectSink, PurgedTenants};
use cloudpf_model::{Change, Document, Entity, Product, Purchase, SeqNo, TenantId};
use cloudpf_search::{ApplyOutcome, SearchEngine, SearchError, TantivyEngine, Versioned};
use serde::Serialize;

use crate::sinks::dlq::{DeadLetter, DeadLetters};
use crate::sinks::index::{by_tenant, versioned};
use crate::source::{Batch, Incoming};
use crate::transform::decode;

/// Everything a handler writes to, built once per process (per Lambda container).
#[derive(Debug, Clone)]
pub struct Pipeline {
    search: Arc<dyn SearchEngine>,
    lake: LakeWriter,
    dead_letters: DeadLetters,
    store: Arc<dyn ObjectSink>,
    /// Shops offboarded with `tenants remove --purge`: their records are dead-lettered.
    purged: Arc<PurgedTenants>,
}

impl Pipeline {
    /// Lake objects, dead letters and the purged shops' markers share one object sink
    /// (`lake/…`, `dlq/…`, `tenants/purged/…`).
    pub fn new(search: Arc<dyn SearchEngine>, sink: Arc<dyn ObjectSink>) -> Self {
        Self {
            search,
            lake: LakeWriter::new(sink.clone()),
            dead_letters: DeadLetters::new(sink.clone()),
            store: sink,
            purged: Arc::new(PurgedTenants::default()),
        }
    }

    /// Reads the purged shops' markers again once they are `every` old (default 10 s).
    #[must_use]
    pub fn with_purged_refresh(mut self, every: std::time::Duration) -> Self {
        self.purged = Arc::new(PurgedTenants::new(every));
        self
    }

    /// The embedded defaults: Tantivy under `<dir>/index`, lake and dead letters under `<dir>`.
    pub fn local(data_dir: &Path) -> Self {
        Self::new(
            Arc::new(TantivyEngine::new(data_dir)),
            Arc::new(LocalDirSink::new(data_dir)),
        )
    }

    pub fn search(&self) -> &Arc<dyn SearchEngine> {
        &self.search
    }
}

/// One of the two tables, with the sinks its changes go to.
#[async_trait]
pub trait Table: Document + Clone {
    async fn index(
        engine: &dyn SearchEngine,
        tenant: &TenantId,
        changes: Vec<Versioned<Self>>,
    ) -> Result<ApplyOutcome, SearchError>;

    async fn write_lake(
        lake: &LakeWriter,
        source: &str,
        changes: &[Change<Self>],
    ) -> Result<usize, LakeFailure>;
}

#[async_trait]
impl Table for Product {
    async fn index(
        engine: &dyn SearchEngine,
        tenant: &TenantId,
        changes: Vec<Versioned<Self>>,
    ) -> Result<ApplyOutcome, SearchError> {
        engine.apply_products(tenant, changes).await
    }

    async fn write_lake(
        lake: &LakeWriter,
        source: &str,
        changes: &[Change<Self>],
    ) -> Result<usize, LakeFailure> {
        lake.write_products(source, changes).await
    }
}

#[async_trait]
impl Table for Purchase {
    async fn index(
        engine: &dyn SearchEngine,
        tenant: &TenantId,
        changes: Vec<Versioned<Self>>,
    ) -> Result<ApplyOutcome, SearchError> {
        engine.apply_purchases(tenant, changes).await
    }

    async fn write_lake(
        lake: &LakeWriter,
        source: &str,
        changes: &[Change<Self>],
    ) -> Result<usize, LakeFailure> {
        lake.write_purchases(source, changes).await
    }
}

/// What one batch did; logged as one line, and turned into Lambda's response.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BatchReport {
    pub table: &'static str,
    pub records: usize,
    pub applied: usize,
    pub stale: usize,
    pub dead_lettered: usize,
    pub lake_objects: usize,
    pub first_seq: Option<String>,
    pub last_seq: Option<String>,
    /// The sequence number Lambda must redeliver from; `None` when all is durable.
    pub failed_from: Option<String>,
}

impl BatchReport {
    /// The partial-batch response: empty, or the one record to resume from.
    pub fn response(&self) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        if let Some(seq) = &self.failed_from {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq.clone());
            response.batch_item_failures.push(failure);
        }
        response
    }
}

/// Runs one batch of `T`'s table through transform and sinks: decode each record (or
/// dead-letter it), index the changes per tenant, write them to the lake, and report
/// the first record Lambda must redeliver, if any.
async fn handle_batch<T: Table>(batch: Batch, ctx: &Pipeline) -> BatchReport {
    let mut run = Run::<T>::new(&batch, ctx);
    let (changes, positions) = run.transform().await;
    let (changes, positions) = run.refuse_purged(changes, positions).await;
    run.index(&changes, &positions).await;
    run.write_lake(&changes, &positions).await;
    run.finish()
}

/// One batch on its way through the handler: what has been done so far, and the
/// earliest record (by position in the batch) that failed transiently.
struct Run<'a, T> {
    batch: &'a Batch,
    ctx: &'a Pipeline,
    source: String,
    report: BatchReport,
    first_failure: Option<usize>,
    _entity: std::marker::PhantomData<T>,
}

/// Where the change with `seq` sits in the batch.
fn position_of<T>(changes: &[Change<T>], positions: &[usize], seq: &SeqNo) -> Option<usize> {
    changes
        .iter()
        .position(|c| &c.seq == seq)
        .map(|i| positions[i])
}

impl<'a, T: Table> Run<'a, T> {
    fn new(batch: &'a Batch, ctx: &'a Pipeline) -> Self {
        let seq = |r: Option<&Incoming>| r.and_then(|r| r.sequence_number()).map(str::to_owned);
        Self {
            batch,
            ctx,
            source: batch.source().to_owned(),
            report: BatchReport {
                table: T::ENTITY.as_str(),
                records: batch.len(),
                first_seq: seq(batch.records.first()),
                last_seq: seq(batch.records.last()),
                ..BatchReport::default()
            },
            first_failure: None,
            _entity: std::marker::PhantomData,
        }
    }

    /// The record at `position` must be redelivered (and everything after it).
    fn failed_at(&mut self, position: usize) {
        self.first_failure = Some(self.first_failure.map_or(position, |p| p.min(position)));
    }

    /// The batch's changes with each one's position in the batch; records that can
    /// never become a change are dead-lettered with the reason.
    async fn transform(&mut self) -> (Vec<Change<T>>, Vec<usize>) {
        let mut changes = Vec::new();
        let mut positions = Vec::new();
        for (position, incoming) in self.batch.records.iter().enumerate() {
            let reason = match incoming {
                Incoming::Record(record) => match decode::<T>(record) {
                    Ok(change) => {
                        changes.push(change);
                        positions.push(position);
                        continue;
                    }
                    Err(reason) => reason,
                },
                Incoming::Undecodable { reason, .. } => reason.clone(),
            };
            self.dead_letter(position, &reason).await;
        }
        (changes, positions)
    }

    /// The changes of shops that are not purged. A purged shop's records are
    /// dead-lettered with the reason, so a record arriving after the purge cannot
    /// recreate its index or partitions. If the markers cannot be read, nothing of the
    /// batch is applied and it is retried.
    async fn refuse_purged(
        &mut self,
        changes: Vec<Change<T>>,
        positions: Vec<usize>,
    ) -> (Vec<Change<T>>, Vec<usize>) {
        if changes.is_empty() {
            return (changes, positions);
        }
        let purged = match self.ctx.purged.current(self.ctx.store.as_ref()).await {
            Ok(purged) => purged,
            Err(e) => {
                tracing::error!(table = T::ENTITY.as_str(), error = %e, "purged shops unknown; the batch will be retried");
                self.failed_at(positions[0]);
                return (Vec::new(), Vec::new());
            }
        };
        if purged.is_empty() {
            return (changes, positions);
        }
        let (mut kept, mut kept_positions) = (Vec::new(), Vec::new());
        for (change, position) in changes.into_iter().zip(positions) {
            if purged.contains(change.tenant.as_str()) {
                let reason = format!(
                    "tenant {} was purged (cloudpf tenants remove --purge); its records are no longer applied",
                    change.tenant
                );
                self.dead_letter(position, &reason).await;
            } else {
                kept.push(change);
                kept_positions.push(position);
            }
        }
        (kept, kept_positions)
    }

    /// Each tenant's changes into its index. Changes the engine refuses for good, and
    /// a tenant whose index can never take them, are dead-lettered; a transient
    /// failure retries the batch from the tenant's first record.
    async fn index(&mut self, changes: &[Change<T>], positions: &[usize]) {
        let position_of = |seq: &SeqNo| position_of(changes, positions, seq);
        let table = T::ENTITY.as_str();
        for (tenant, tenant_changes) in by_tenant(changes) {
            let docs = tenant_changes.iter().map(|c| versioned(c)).collect();
            match T::index(self.ctx.search.as_ref(), &tenant, docs).await {
                Ok(outcome) => {
                    self.report.applied += outcome.applied;
                    self.report.stale += outcome.stale;
                    for rejected in &outcome.rejected {
                        let Some(p) = position_of(&rejected.seq) else {
                            tracing::error!(table, %tenant, key = %rejected.key, seq = %rejected.seq, "engine rejected a change that is not in the batch");
                            continue;
                        };
                        let reason =
                            format!("search index rejected the document: {}", rejected.reason);
                        self.dead_letter(p, &reason).await;
                    }
                }
                Err(e) if !e.is_retryable() => {
                    // A configuration gap or a damaged index never heals by redelivery,
                    // and retrying would hold up every other tenant of the shard: dead
                    // letters keep the records for a replay once the index is fixed.
                    let reason = e.to_string();
                    tracing::error!(table, %tenant, error = %e, "indexing cannot succeed; changes dead-lettered");
                    for p in tenant_changes.iter().filter_map(|c| position_of(&c.seq)) {
                        self.dead_letter(p, &reason).await;
                    }
                }
                Err(e) => {
                    tracing::error!(table, %tenant, error = %e, "indexing failed; records will be retried");
                    if let Some(p) = tenant_changes.first().and_then(|c| position_of(&c.seq)) {
                        self.failed_at(p);
                    }
                }
            }
        }
    }

    /// The changes into the lake; objects already written stay (a retry rewrites them
    /// under the same keys).
    async fn write_lake(&mut self, changes: &[Change<T>], positions: &[usize]) {
        match T::write_lake(&self.ctx.lake, &self.source, changes).await {
            Ok(n) => self.report.lake_objects = n,
            Err(f) => {
                self.report.lake_objects = f.written;
                tracing::error!(table = T::ENTITY.as_str(), error = %f, "lake write failed; records will be retried");
                self.failed_at(position_of(changes, positions, &f.first_seq).unwrap_or(0));
            }
        }
    }

    /// Dead-letters the record at `position`; if the letter cannot be written, the
    /// record is retried instead, so nothing is dropped.
    async fn dead_letter(&mut self, position: usize, reason: &str) {
        let incoming = &self.batch.records[position];
        let letter = DeadLetter {
            table: T::ENTITY.as_str(),
            reason,
            sequence_number: incoming.sequence_number(),
            record: incoming.raw(),
        };
        let stream = incoming.source().unwrap_or(&self.source);
        match self.ctx.dead_letters.write(stream, &letter).await {
            Ok(key) => {
                tracing::warn!(table = T::ENTITY.as_str(), seq = ?letter.sequence_number, %reason, dead_letter = %key, "record dead-lettered");
                self.report.dead_lettered += 1;
            }
            Err(e) => {
                tracing::error!(table = T::ENTITY.as_str(), error = %e, "dead letter not written; record will be retried");
                self.failed_at(position);
            }
        }
    }

    /// The report, with the record to resume from, logged as one line.
    fn finish(mut self) -> BatchReport {
        if let Some(p) = self.first_failure {
            // Lambda matches the identifier against the record's own SequenceNumber text.
            self.report.failed_from = Some(
                self.batch.records[p]
                    .sequence_number()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        let report = self.report;
        tracing::info!(
            table = report.table,
            records = report.records,
            applied = report.applied,
            stale = report.stale,
            dead_lettered = report.dead_lettered,
            lake_objects = report.lake_objects,
            first_seq = report.first_seq.as_deref().unwrap_or(""),
            last_seq = report.last_seq.as_deref().unwrap_or(""),
            failed_from = report.failed_from.as_deref().unwrap_or(""),
            "batch processed"
        );
        report
    }
}

/// The handler of `entity`'s table: what the Lambdas, the poller, `replay` and the demo
/// call with each batch.
pub async fn handle(entity: Entity, batch: Batch, ctx: &Pipeline) -> BatchReport {
    match entity {
        Entity::Products => handle_batch::<Product>(batch, ctx).await,
        Entity::Purchases => handle_batch::<Purchase>(batch, ctx).await,
    }
}

/// The `products` table's handler.
pub async fn handle_products(batch: Batch, ctx: &Pipeline) -> BatchReport {
    handle(Entity::Products, batch, ctx).await
}

/// The `purchases` table's handler.
pub async fn handle_purchases(batch: Batch, ctx: &Pipeline) -> BatchReport {
    handle(Entity::Purchases, batch, ctx).await
}
