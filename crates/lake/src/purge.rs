//! Offboarding a shop (issue #13), the object-store side: its current catalog and
//! purchases read back from the lake's change logs (what a shop leaving with its data
//! gets), every object of it removed (lake partitions of the three logs, search events,
//! dead letters), and the marker that keeps its late stream records out.
//!
//! The marker, `tenants/purged/<tenant>.json`, lives in the same store as the lake and
//! the dead letters, so every writer (the CDC Lambdas, `poll`, `backfill`, `replay`, the
//! demo) can see it without more configuration: the handler reads the list of markers
//! at most once per [`PurgedTenants::every`] while batches arrive (one `LIST`, nothing
//! when idle) and dead-letters a purged shop's records with the reason instead of
//! recreating its index and partitions.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cloudpf_model::TenantId;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::layout::Dataset;
use crate::sink::{ObjectKey, ObjectSink, SinkError};

/// Where the markers of purged shops live.
pub const PURGED_PREFIX: &str = "tenants/purged/";

/// How long a writer trusts its list of purged shops before listing the markers again.
pub const PURGED_REFRESH: Duration = Duration::from_secs(10);

/// The marker of a purged shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeMarker {
    pub tenant: String,
    /// When the purge began, RFC 3339 UTC.
    pub purged_at: String,
    /// The Elasticsearch cluster that held the shop's indexes, so that a purge run again
    /// (after an interruption) finds them once the shop is out of the tenants file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_cluster: Option<String>,
}

fn marker_key(tenant: &TenantId) -> Result<ObjectKey, SinkError> {
    Ok(ObjectKey::parse(&format!("{PURGED_PREFIX}{tenant}.json"))?)
}

/// Marks `tenant` purged: from the next refresh on, writers dead-letter its records.
/// `search_cluster` is the cluster its Elasticsearch indexes are on, if any.
pub async fn mark_purged(
    sink: &dyn ObjectSink,
    tenant: &TenantId,
    at: DateTime<Utc>,
    search_cluster: Option<String>,
) -> Result<ObjectKey, SinkError> {
    let key = marker_key(tenant)?;
    let marker = PurgeMarker {
        tenant: tenant.to_string(),
        purged_at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        search_cluster,
    };
    let body =
        serde_json::to_vec_pretty(&marker).map_err(|e| SinkError::Unavailable(e.to_string()))?;
    sink.put(&key, body).await?;
    Ok(key)
}

/// The marker of `tenant`, if it was purged.
pub async fn purge_marker(
    sink: &dyn ObjectSink,
    tenant: &TenantId,
) -> Result<Option<PurgeMarker>, SinkError> {
    let Some(body) = sink.get(&marker_key(tenant)?).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| SinkError::Unavailable(format!("purge marker of {tenant}: {e}")))
}

/// Lets a shop with a purged id write again (it was added anew).
pub async fn unmark_purged(sink: &dyn ObjectSink, tenant: &TenantId) -> Result<(), SinkError> {
    sink.delete(&marker_key(tenant)?).await
}

/// The purged shops as a writer sees them: the markers' list, read again once it is
/// [`PurgedTenants::every`] old and a batch asks.
#[derive(Debug)]
pub struct PurgedTenants {
    every: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl Default for PurgedTenants {
    fn default() -> Self {
        Self::new(PURGED_REFRESH)
    }
}

impl PurgedTenants {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    pub fn every(&self) -> Duration {
        self.every
    }

    /// The purged shops' ids.
    pub async fn current(&self, sink: &dyn ObjectSink) -> Result<Arc<HashSet<String>>, SinkError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, set)) = cached.as_ref()
            && at.elapsed() < self.every
        {
            return Ok(set.clone());
        }
        let set: HashSet<String> = sink
            .list(PURGED_PREFIX)
            .await?
            .iter()
            .filter_map(|k| {
                k.as_str()
                    .strip_prefix(PURGED_PREFIX)?
                    .strip_suffix(".json")
            })
            .map(str::to_owned)
            .collect();
        let set = Arc::new(set);
        *cached = Some((Instant::now(), set.clone()));
        Ok(set)
    }
}

/// What a purge removed from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgedObjects {
    pub lake_objects: Vec<String>,
    pub dead_letters: Vec<String>,
}

/// Removes every lake object of `tenant` (all datasets, every date) and every dead letter
/// whose record names it. Safe to run again: what is gone stays gone.
pub async fn purge_objects(
    sink: &dyn ObjectSink,
    tenant: &TenantId,
) -> Result<PurgedObjects, SinkError> {
    let mut out = PurgedObjects::default();
    for dataset in Dataset::ALL {
        for key in sink.list(&dataset.tenant_prefix(tenant)).await? {
            sink.delete(&key).await?;
            out.lake_objects.push(key.to_string());
        }
    }
    // Dead letters are keyed by stream and sequence number, not by shop: each is read.
    for key in sink.list("dlq/").await? {
        let Some(bytes) = sink.get(&key).await? else {
            continue;
        };
        let names_tenant = serde_json::from_slice::<Value>(&bytes)
            .map(|letter| names_tenant(&letter, tenant.as_str()))
            // A letter that is not JSON is matched on its text.
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).contains(&format!("\"{tenant}\"")));
        if names_tenant {
            sink.delete(&key).await?;
            out.dead_letters.push(key.to_string());
        }
    }
    Ok(out)
}

/// Whether a `tenant_id` attribute anywhere in `value` (plain or DynamoDB JSON) is `tenant`.
fn names_tenant(value: &Value, tenant: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            (k == "tenant_id"
                && (v.as_str() == Some(tenant)
                    || v.get("S").and_then(Value::as_str) == Some(tenant)))
                || names_tenant(v, tenant)
        }),
        Value::Array(items) => items.iter().any(|v| names_tenant(v, tenant)),
        // The record of a letter that was not a stream record is kept as its text.
        Value::String(text) => text.contains(&format!("\"{tenant}\"")),
        _ => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{key}: {reason}")]
    Unreadable { key: String, reason: String },
}

/// One change of a JSON change log, as the export compares them.
struct Candidate {
    seq: String,
    dt: String,
    departure: bool,
    removed: bool,
    image: Option<Value>,
}

/// The current documents of `tenant` in a JSON change log (`products` or `purchases`),
/// by key: for each key the change with the highest sequence number wins (a departure
/// from a partition loses to the arrival in another with the same number), removed ones
/// are left out, and for purchases a tombstone newer than the winner that places the
/// purchase elsewhere (or nowhere) drops it: the rules of the lake's current-state views.
pub async fn current_documents(
    sink: &dyn ObjectSink,
    tenant: &TenantId,
    dataset: Dataset,
) -> Result<BTreeMap<String, Value>, ExportError> {
    let key_name = match dataset {
        Dataset::ProductsJson => "product_id",
        _ => "purchase_id",
    };
    let mut best: BTreeMap<String, Candidate> = BTreeMap::new();
    for key in sink.list(&dataset.tenant_prefix(tenant)).await? {
        let text = read_gz(sink, &key).await?;
        let dt = key
            .segments()
            .find_map(|s| s.strip_prefix("dt="))
            .unwrap_or_default()
            .to_owned();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let unreadable = |reason: String| ExportError::Unreadable {
                key: key.to_string(),
                reason,
            };
            let change: Value =
                serde_json::from_str(line).map_err(|e| unreadable(e.to_string()))?;
            let Some(id) = change["keys"][key_name].as_str() else {
                return Err(unreadable(format!("a change without keys.{key_name}")));
            };
            let seq = format!("{:0>40}", change["sequence_number"].as_str().unwrap_or("0"));
            let candidate = Candidate {
                dt: dt.clone(),
                departure: change["departure"].as_bool().unwrap_or(false),
                removed: change["op"] == "REMOVE",
                image: Some(change["new_image"].clone()).filter(|v| !v.is_null()),
                seq,
            };
            let better = match best.get(id) {
                None => true,
                Some(b) => {
                    candidate.seq > b.seq
                        || (candidate.seq == b.seq && b.departure && !candidate.departure)
                }
            };
            if better {
                best.insert(id.to_owned(), candidate);
            }
        }
    }
    if dataset == Dataset::PurchasesJson {
        for key in sink
            .list(&Dataset::PurchaseTombstones.tenant_prefix(tenant))
            .await?
        {
            let text = read_gz(sink, &key).await?;
            let mut rows = csv::Reader::from_reader(text.as_bytes());
            for row in rows.deserialize::<(String, String, String, String, String)>() {
                let (id, live_dt, _op, seq, _time) = row.map_err(|e| ExportError::Unreadable {
                    key: key.to_string(),
                    reason: e.to_string(),
                })?;
                let seq = format!("{seq:0>40}");
                if let Some(b) = best.get(&id)
                    && seq > b.seq
                    && live_dt != b.dt
                {
                    best.remove(&id);
                }
            }
        }
    }
    Ok(best
        .into_iter()
        .filter(|(_, c)| !c.departure && !c.removed)
        .filter_map(|(id, c)| Some((id, c.image?)))
        .collect())
}

async fn read_gz(sink: &dyn ObjectSink, key: &ObjectKey) -> Result<String, ExportError> {
    let bytes = sink.get(key).await?.unwrap_or_default();
    let mut text = String::new();
    MultiGzDecoder::new(bytes.as_slice())
        .read_to_string(&mut text)
        .map_err(|e| ExportError::Unreadable {
            key: key.to_string(),
            reason: format!("not gzipped text: {e}"),
        })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalDirSink;

    #[tokio::test]
    async fn the_purged_list_is_read_again_only_when_it_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let purged = PurgedTenants::new(Duration::from_secs(3600));
        assert!(purged.current(&sink).await.unwrap().is_empty());
        let shop = TenantId::parse("gone").unwrap();
        mark_purged(&sink, &shop, Utc::now(), None).await.unwrap();
        assert!(purged.current(&sink).await.unwrap().is_empty(), "cached");
        let fresh = PurgedTenants::new(Duration::ZERO);
        assert!(fresh.current(&sink).await.unwrap().contains("gone"));
        unmark_purged(&sink, &shop).await.unwrap();
        assert!(fresh.current(&sink).await.unwrap().is_empty());
        assert!(
            !dir.path().join("tenants").exists(),
            "no empty directory left"
        );
    }

    #[test]
    fn a_letter_names_its_tenant_in_keys_images_or_raw_text() {
        let letter =
            serde_json::json!({"record": {"dynamodb": {"Keys": {"tenant_id": {"S": "acme"}}}}});
        assert!(names_tenant(&letter, "acme"));
        assert!(!names_tenant(&letter, "acm"));
        let raw = serde_json::json!({"record": "{\"tenant_id\":{\"S\":\"acme\"},\"oops\""});
        assert!(names_tenant(&raw, "acme"));
        assert!(!names_tenant(&raw, "other"));
    }
}
