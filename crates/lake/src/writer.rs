//! Writes a batch of changes into the lake: one object per dataset and partition.
//!
//! Purchases are partitioned by their `created_at` date, which a change can correct, and
//! readers take the latest change per partition. So that the latest row of every
//! partition a purchase has left says it left, a change that moves a purchase out of a
//! partition also writes a departure there ([`Placement::Departure`]): a REMOVE in its old
//! image's partition, a `created_at` correction in the old date's partition. A change
//! without a usable old image cannot know which partition it leaves; it writes a
//! tombstone to the tenant's small, undated tombstones dataset instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use cloudpf_model::{Change, Op, Product, Purchase, SeqNo, TenantId};
use futures_util::{StreamExt, stream};

use crate::encode::{self, EncodeError, Placed, Placement};
use crate::layout::{Dataset, ObjectName};
use crate::sink::{ObjectKey, ObjectSink};

/// Part of a batch could not be made durable. Every change from `first_seq` on must be
/// delivered again; changes before it are in the lake.
#[derive(Debug, thiserror::Error)]
#[error(
    "lake write failed from sequence number {first_seq}: {reason} ({written} object(s) written)"
)]
pub struct LakeFailure {
    pub first_seq: SeqNo,
    pub reason: String,
    /// Objects of the batch that were written all the same.
    pub written: usize,
}

/// Writes change batches through an [`ObjectSink`].
#[derive(Debug, Clone)]
pub struct LakeWriter {
    sink: Arc<dyn ObjectSink>,
}

/// Puts in flight at once per batch.
const PUT_CONCURRENCY: usize = 16;

type Groups<'a, T> = BTreeMap<(TenantId, NaiveDate), Vec<T>>;

fn group<T>(changes: &[Change<T>], dt: impl Fn(&Change<T>) -> NaiveDate) -> Groups<'_, &Change<T>> {
    let mut groups: Groups<'_, &Change<T>> = BTreeMap::new();
    for c in changes {
        groups.entry((c.tenant.clone(), dt(c))).or_default().push(c);
    }
    groups
}

/// The partitions a purchase change is written to, and whether it needs a tombstone.
fn placements(c: &Change<Purchase>) -> (Vec<(NaiveDate, Placement)>, bool) {
    let old_dt = c.old_image.as_ref().map(|p| p.created_at.date());
    match (c.op, c.new_image.as_ref()) {
        (Op::Remove, _) | (_, None) => match old_dt {
            Some(old) => (vec![(old, Placement::Departure)], false),
            // Where the purchase was is unknown: the change log keeps the change in the
            // event date's partition, and the tombstone removes it from every partition.
            None => (vec![(c.event_time.date(), Placement::Departure)], true),
        },
        (_, Some(new)) => {
            let new_dt = new.created_at.date();
            let mut out = vec![(new_dt, Placement::Present)];
            match old_dt {
                Some(old) if old != new_dt => out.push((old, Placement::Departure)),
                Some(_) => {}
                // An INSERT comes from nowhere; a MODIFY without an old image may have
                // moved the purchase from any partition.
                None => return (out, c.op == Op::Modify),
            }
            (out, false)
        }
    }
}

impl LakeWriter {
    pub fn new(sink: Arc<dyn ObjectSink>) -> Self {
        Self { sink }
    }

    /// Products change log; `dt` is the date of the change event.
    pub async fn write_products(
        &self,
        source: &str,
        changes: &[Change<Product>],
    ) -> Result<usize, LakeFailure> {
        let groups = group(changes, |c| c.event_time.date());
        let mut objects = Vec::new();
        for ((tenant, dt), group) in &groups {
            let body = encode::json_lines(group, "product_id");
            objects.push(self.object(
                Dataset::ProductsJson,
                source,
                tenant,
                Some(*dt),
                group,
                body,
            ));
        }
        self.put_all(objects).await
    }

    /// Purchases CSV and change log; `dt` is the purchase's own `created_at` date (the
    /// business date), with departures and tombstones as the module explains.
    pub async fn write_purchases(
        &self,
        source: &str,
        changes: &[Change<Purchase>],
    ) -> Result<usize, LakeFailure> {
        let mut groups: Groups<'_, Placed<'_>> = BTreeMap::new();
        let mut tombstones: BTreeMap<TenantId, Vec<&Change<Purchase>>> = BTreeMap::new();
        for c in changes {
            let (placed, tombstone) = placements(c);
            for (dt, placement) in placed {
                groups
                    .entry((c.tenant.clone(), dt))
                    .or_default()
                    .push((c, placement));
            }
            if tombstone {
                tombstones.entry(c.tenant.clone()).or_default().push(c);
            }
        }
        let mut objects = Vec::new();
        for ((tenant, dt), group) in &groups {
            let changes: Vec<&Change<Purchase>> = group.iter().map(|(c, _)| *c).collect();
            let csv = encode::purchase_csv(group);
            objects.push(self.object(
                Dataset::PurchasesCsv,
                source,
                tenant,
                Some(*dt),
                &changes,
                csv,
            ));
            let json = encode::purchase_json_lines(group);
            objects.push(self.object(
                Dataset::PurchasesJson,
                source,
                tenant,
                Some(*dt),
                &changes,
                json,
            ));
        }
        for (tenant, changes) in &tombstones {
            let csv = encode::tombstone_csv(changes);
            objects.push(self.object(
                Dataset::PurchaseTombstones,
                source,
                tenant,
                None,
                changes,
                csv,
            ));
        }
        self.put_all(objects).await
    }

    fn object<T>(
        &self,
        dataset: Dataset,
        source: &str,
        tenant: &TenantId,
        dt: Option<NaiveDate>,
        group: &[&Change<T>],
        body: Result<Vec<u8>, EncodeError>,
    ) -> PendingObject {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            unreachable!("groups are built from at least one change")
        };
        let (first, last) = (first.seq.clone(), &last.seq);
        let name = ObjectName::new(source, &first, last);
        let prepared = body
            .and_then(|b| encode::gzip(&b))
            .map_err(|e| e.to_string())
            .and_then(|gz| {
                dataset
                    .object_key(tenant, dt, &name)
                    .map(|k| (k, gz))
                    .map_err(|e| e.to_string())
            });
        PendingObject {
            first_seq: first,
            prepared,
        }
    }

    /// Puts a batch's objects a few at a time: each put is a round trip (an S3 request,
    /// or a file's and its directory's fsync), and a batch writes one or two objects per
    /// tenant and day it touches.
    async fn put_all(&self, objects: Vec<PendingObject>) -> Result<usize, LakeFailure> {
        let results: Vec<(SeqNo, Result<(), String>)> = stream::iter(objects)
            .map(|obj| async move {
                let result = match obj.prepared {
                    Ok((key, body)) => self.sink.put(&key, body).await.map_err(|e| e.to_string()),
                    Err(reason) => Err(reason),
                };
                (obj.first_seq, result)
            })
            .buffer_unordered(PUT_CONCURRENCY)
            .collect()
            .await;
        let mut failure: Option<LakeFailure> = None;
        let mut written = 0;
        for (first_seq, result) in results {
            match result {
                Ok(()) => written += 1,
                Err(reason) => {
                    tracing::warn!(%first_seq, %reason, "lake object not written");
                    if failure.as_ref().is_none_or(|f| first_seq < f.first_seq) {
                        failure = Some(LakeFailure {
                            first_seq,
                            reason,
                            written: 0,
                        });
                    }
                }
            }
        }
        match failure {
            Some(f) => Err(LakeFailure { written, ..f }),
            None => Ok(written),
        }
    }
}

struct PendingObject {
    first_seq: SeqNo,
    prepared: Result<(ObjectKey, Vec<u8>), String>,
}
