//! Writes a batch of changes into the lake: one object per dataset and partition.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use cloudpf_model::{Change, Product, Purchase, SeqNo, TenantId};

use crate::encode::{self, EncodeError};
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

type Groups<'a, T> = BTreeMap<(TenantId, NaiveDate), Vec<&'a Change<T>>>;

fn group<T>(changes: &[Change<T>], dt: impl Fn(&Change<T>) -> NaiveDate) -> Groups<'_, T> {
    let mut groups: Groups<'_, T> = BTreeMap::new();
    for c in changes {
        groups.entry((c.tenant.clone(), dt(c))).or_default().push(c);
    }
    groups
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
            objects.push(self.object(Dataset::ProductsJson, source, tenant, *dt, group, body));
        }
        self.put_all(objects).await
    }

    /// Purchases CSV and change log; `dt` is the purchase's own `created_at` date (the
    /// business date), or the event date when no image says.
    pub async fn write_purchases(
        &self,
        source: &str,
        changes: &[Change<Purchase>],
    ) -> Result<usize, LakeFailure> {
        let groups = group(changes, |c| {
            c.latest_image()
                .map(|p| p.created_at.date())
                .unwrap_or_else(|| c.event_time.date())
        });
        let mut objects = Vec::new();
        for ((tenant, dt), group) in &groups {
            let csv = encode::purchase_csv(group);
            objects.push(self.object(Dataset::PurchasesCsv, source, tenant, *dt, group, csv));
            let json = encode::json_lines(group, "purchase_id");
            objects.push(self.object(Dataset::PurchasesJson, source, tenant, *dt, group, json));
        }
        self.put_all(objects).await
    }

    fn object<T>(
        &self,
        dataset: Dataset,
        source: &str,
        tenant: &TenantId,
        dt: NaiveDate,
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

    async fn put_all(&self, objects: Vec<PendingObject>) -> Result<usize, LakeFailure> {
        let mut failure: Option<LakeFailure> = None;
        let mut written = 0;
        for obj in objects {
            let result = match obj.prepared {
                Ok((key, body)) => self.sink.put(&key, body).await.map_err(|e| e.to_string()),
                Err(reason) => Err(reason),
            };
            match result {
                Ok(()) => written += 1,
                Err(reason) => {
                    tracing::warn!(first_seq = %obj.first_seq, %reason, "lake object not written");
                    if failure.as_ref().is_none_or(|f| obj.first_seq < f.first_seq) {
                        failure = Some(LakeFailure {
                            first_seq: obj.first_seq,
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
