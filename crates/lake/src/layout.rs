//! Where lake objects go: `lake/<table>/<format>/tenant_id=<tenant>/dt=<YYYY-MM-DD>/<name>`,
//! Hive-style partitions that Athena's partition projection and DataFusion both read, and
//! `lake/purchases/tombstones/tenant_id=<tenant>/<name>` for the few changes whose
//! partition of origin is unknown.

use chrono::NaiveDate;
use cloudpf_model::{SeqNo, TenantId};
use sha2::{Digest, Sha256};

use crate::sink::{InvalidKey, ObjectKey};

/// The datasets of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// One row per line item per purchase change.
    PurchasesCsv,
    /// The purchases change log, one change per line.
    PurchasesJson,
    /// The products change log, one change per line.
    ProductsJson,
    /// One row per purchase change whose partition of origin is unknown (a REMOVE or
    /// MODIFY without a usable old image); partitioned by tenant only.
    PurchaseTombstones,
}

impl Dataset {
    pub const ALL: [Dataset; 4] = [
        Dataset::PurchasesCsv,
        Dataset::PurchasesJson,
        Dataset::ProductsJson,
        Dataset::PurchaseTombstones,
    ];

    pub fn prefix(&self) -> &'static str {
        match self {
            Dataset::PurchasesCsv => "lake/purchases/csv",
            Dataset::PurchasesJson => "lake/purchases/json",
            Dataset::ProductsJson => "lake/products/json",
            Dataset::PurchaseTombstones => "lake/purchases/tombstones",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            Dataset::PurchasesCsv | Dataset::PurchaseTombstones => "csv.gz",
            Dataset::PurchasesJson | Dataset::ProductsJson => "json.gz",
        }
    }

    /// `lake/<table>/<format>/tenant_id=<tenant>/`: everything of one tenant.
    pub fn tenant_prefix(&self, tenant: &TenantId) -> String {
        format!("{}/tenant_id={tenant}/", self.prefix())
    }

    /// `lake/<table>/<format>/tenant_id=<tenant>/dt=<date>/`: one partition.
    pub fn partition_prefix(&self, tenant: &TenantId, dt: NaiveDate) -> String {
        format!(
            "{}dt={}/",
            self.tenant_prefix(tenant),
            dt.format("%Y-%m-%d")
        )
    }

    /// The key of an object in partition `dt`, or directly under the tenant's prefix
    /// when `dt` is `None` (the tombstones, which have no date).
    pub fn object_key(
        &self,
        tenant: &TenantId,
        dt: Option<NaiveDate>,
        name: &ObjectName,
    ) -> Result<ObjectKey, InvalidKey> {
        let dir = match dt {
            Some(dt) => self.partition_prefix(tenant, dt),
            None => self.tenant_prefix(tenant),
        };
        ObjectKey::parse(&format!("{dir}{}.{}", name.0, self.extension()))
    }
}

/// The name of the object a batch writes into one partition, derived from the stream and
/// the first and last sequence numbers it holds: a retried batch computes the same name
/// and overwrites its own object instead of adding a duplicate. Sequence numbers are
/// zero-padded so names sort in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName(String);

impl ObjectName {
    pub fn new(source: &str, first: &SeqNo, last: &SeqNo) -> Self {
        let digest = Sha256::digest(source.as_bytes());
        let stream = hex::encode(&digest[..4]);
        Self(format!("{}-{}-{stream}", first.padded(), last.padded()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let t = TenantId::parse("acme").unwrap();
        let dt = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let name = ObjectName::new(
            "arn:x",
            &SeqNo::parse("12").unwrap(),
            &SeqNo::parse("15").unwrap(),
        );
        let key = Dataset::PurchasesCsv
            .object_key(&t, Some(dt), &name)
            .unwrap();
        assert!(
            key.as_str()
                .starts_with("lake/purchases/csv/tenant_id=acme/dt=2026-11-03/0000")
        );
        assert!(key.as_str().ends_with(".csv.gz"));
        let tombstones = Dataset::PurchaseTombstones
            .object_key(&t, None, &name)
            .unwrap();
        assert!(
            tombstones
                .as_str()
                .starts_with("lake/purchases/tombstones/tenant_id=acme/0000"),
            "{tombstones}"
        );
        let other = ObjectName::new(
            "arn:y",
            &SeqNo::parse("12").unwrap(),
            &SeqNo::parse("15").unwrap(),
        );
        assert_ne!(name, other, "two streams must not share object names");
    }
}
