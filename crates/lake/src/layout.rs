//! Where lake objects go: `lake/<table>/<format>/tenant_id=<tenant>/dt=<YYYY-MM-DD>/<name>`,
//! Hive-style partitions that Athena's partition projection and DataFusion both read, and
//! `lake/purchases/tombstones/tenant_id=<tenant>/<name>` for the few changes whose
//! partition of origin is unknown.

use chrono::NaiveDate;
use cloudpf_model::seq::SEQ_MAX_DIGITS;
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
    /// The search log: searches, autocompletes and clicks (issue #12), one per line,
    /// partitioned by the event's date.
    SearchEvents,
}

impl Dataset {
    pub const ALL: [Dataset; 5] = [
        Dataset::PurchasesCsv,
        Dataset::PurchasesJson,
        Dataset::ProductsJson,
        Dataset::PurchaseTombstones,
        Dataset::SearchEvents,
    ];

    pub fn prefix(&self) -> &'static str {
        match self {
            Dataset::PurchasesCsv => "lake/purchases/csv",
            Dataset::PurchasesJson => "lake/purchases/json",
            Dataset::ProductsJson => "lake/products/json",
            Dataset::PurchaseTombstones => "lake/purchases/tombstones",
            Dataset::SearchEvents => "lake/search_events/json",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            Dataset::PurchasesCsv | Dataset::PurchaseTombstones => "csv.gz",
            Dataset::PurchasesJson | Dataset::ProductsJson | Dataset::SearchEvents => "json.gz",
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

    /// A name as [`ObjectName::new`] or [`ObjectName::compacted`] made it, or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = |s: &str| s.len() == SEQ_MAX_DIGITS && s.bytes().all(|b| b.is_ascii_digit());
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let ok = match text.split('-').collect::<Vec<_>>().as_slice() {
            [first, last, stream] if digits(first) && digits(last) => {
                hex(stream, 8) || stream.strip_prefix('c').is_some_and(|d| hex(d, 16))
            }
            [first, last, inputs, chunk] if digits(first) && digits(last) => {
                inputs.strip_prefix('c').is_some_and(|d| hex(d, 16))
                    && chunk
                        .strip_prefix('s')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }
            _ => false,
        };
        ok.then(|| Self(text.to_owned()))
    }

    /// The name of the object that replaces the objects `keys` (named `names`): from the
    /// first to the last sequence number they hold, and a digest of the keys, so that
    /// compacting the same objects again gives the same name. `sealed` numbers the full
    /// objects of a partition too large for one, which are never compacted again.
    pub fn compacted(names: &[ObjectName], keys: &[&str], sealed: Option<usize>) -> Self {
        let first = names.iter().filter_map(|n| n.0.split('-').next()).min();
        let last = names.iter().filter_map(|n| n.0.split('-').nth(1)).max();
        let zero = "0".repeat(SEQ_MAX_DIGITS);
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        let digest = Sha256::digest(sorted.join("\n").as_bytes());
        let mut name = format!(
            "{}-{}-c{}",
            first.unwrap_or(&zero),
            last.unwrap_or(&zero),
            hex::encode(&digest[..8])
        );
        if let Some(n) = sealed {
            name.push_str(&format!("-s{n}"));
        }
        Self(name)
    }

    /// A full object of a compacted partition, left alone by later compactions.
    pub fn is_sealed(&self) -> bool {
        self.0.split('-').count() == 4
    }
}

/// A bucket key prefix as configured (`""`, `tenants/eu`, `tenants/eu/`) in the form
/// every key is built from: empty, or ending in `/`.
pub fn key_prefix(configured: &str) -> String {
    let mut prefix = configured.to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    prefix
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

    #[test]
    fn a_configured_prefix_ends_in_one_slash_and_no_prefix_stays_empty() {
        assert_eq!(key_prefix(""), "");
        assert_eq!(key_prefix("eu"), "eu/");
        assert_eq!(key_prefix("eu/"), "eu/");
        assert_eq!(key_prefix("a/b"), "a/b/");
    }
}
