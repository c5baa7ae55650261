//! Index management: creating a tenant's indexes behind their aliases, and rebuilding an
//! index under a new mapping version with an atomic alias swap.

use std::time::{Duration, Instant};

use cloudpf_model::TenantId;
use cloudpf_search::{Entity, SearchError};
use elasticsearch::http::Method;
use serde_json::{Value, json};

use crate::client::{Body, Conn, Reply, RetryPolicy, describe_error};
use crate::mapping::{self, IndexNames, MAPPING_VERSION};

fn failed(what: &str, reply: &Reply) -> SearchError {
    SearchError::Unavailable(format!("{what}: {}", reply.describe()))
}

/// The concrete indexes behind `alias`; empty when the alias does not exist.
pub(crate) async fn alias_targets(
    conn: &Conn,
    retry: &RetryPolicy,
    alias: &str,
) -> Result<Vec<String>, SearchError> {
    let reply = conn
        .send_retrying(retry, Method::Get, &format!("/_alias/{alias}"), &[], None)
        .await?;
    match reply.status {
        // A missing alias answers 404 with `"error": "alias [..] missing"` (a string).
        404 => Ok(Vec::new()),
        200 => Ok(reply
            .body
            .as_object()
            .map(|indexes| indexes.keys().cloned().collect())
            .unwrap_or_default()),
        _ => Err(failed(&format!("alias {alias} not read"), &reply)),
    }
}

/// Deletes every concrete index of the tenant's `entity` (the alias goes with its
/// indexes): those behind the alias and any other mapping version a rebuild left. Indexes
/// are named in the `DELETE`, since clusters refuse wildcard deletes by default
/// (`action.destructive_requires_name`). Returns the deleted names.
pub(crate) async fn purge(
    conn: &Conn,
    retry: &RetryPolicy,
    tenant: &TenantId,
    entity: Entity,
) -> Result<Vec<String>, SearchError> {
    let names = IndexNames::new(&conn.cluster.index_prefix, tenant, entity);
    let mut indexes = alias_targets(conn, retry, &names.alias).await?;
    let pattern = format!("{}-v*", names.alias);
    let reply = conn
        .send_retrying(
            retry,
            Method::Get,
            &format!("/_cat/indices/{pattern}"),
            &[
                ("format", "json"),
                ("h", "index"),
                ("expand_wildcards", "all"),
            ],
            None,
        )
        .await?;
    match reply.status {
        404 => {}
        200 => indexes.extend(
            reply
                .body
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|row| row.get("index").and_then(Value::as_str))
                .filter(|index| names.version_of(index).is_some())
                .map(str::to_owned),
        ),
        _ => return Err(failed(&format!("indexes {pattern} not listed"), &reply)),
    }
    indexes.sort();
    indexes.dedup();
    if indexes.is_empty() {
        return Ok(indexes);
    }
    let reply = conn
        .send_retrying(
            retry,
            Method::Delete,
            &format!("/{}", indexes.join(",")),
            &[("ignore_unavailable", "true")],
            None,
        )
        .await?;
    if !reply.is_success() && reply.status != 404 {
        return Err(failed(
            &format!("indexes {} not deleted", indexes.join(",")),
            &reply,
        ));
    }
    tracing::info!(cluster = %conn.cluster.name, %tenant, %entity, indexes = %indexes.join(","), "indexes deleted");
    Ok(indexes)
}

/// A scroll over every document of one index, `page` at a time, for a rebuild's
/// catch-up: `_doc` order (the cheapest), each hit's `_id` and `_source`.
pub(crate) struct Scroll {
    id: Option<String>,
    first: Option<(String, usize)>,
}

/// How long the cluster keeps a scroll's context between two pages.
const SCROLL_KEEP: &str = "2m";

impl Scroll {
    pub(crate) fn over(index: &str, page: usize) -> Self {
        Self {
            id: None,
            first: Some((index.to_owned(), page)),
        }
    }

    /// The next page; `None` once the index is read (the context is then cleared).
    pub(crate) async fn next(
        &mut self,
        conn: &Conn,
        retry: &RetryPolicy,
    ) -> Result<Option<Vec<(String, Value)>>, SearchError> {
        let reply = match (self.first.take(), &self.id) {
            (Some((index, page)), _) => {
                conn.send_retrying(
                    retry,
                    Method::Post,
                    &format!("/{index}/_search"),
                    &[("scroll", SCROLL_KEEP)],
                    Some(Body::Json(json!({ "size": page, "sort": ["_doc"] }))),
                )
                .await?
            }
            (None, Some(id)) => {
                conn.send_retrying(
                    retry,
                    Method::Post,
                    "/_search/scroll",
                    &[],
                    Some(Body::Json(
                        json!({ "scroll": SCROLL_KEEP, "scroll_id": id }),
                    )),
                )
                .await?
            }
            (None, None) => return Ok(None),
        };
        if !reply.is_success() {
            return Err(failed("a scroll page was not read", &reply));
        }
        self.id = reply.body["_scroll_id"].as_str().map(str::to_owned);
        let hits: Vec<(String, Value)> = reply.body["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h["_id"].as_str()?.to_owned(), h["_source"].clone())))
            .collect();
        if hits.is_empty() {
            if let Some(id) = self.id.take() {
                // Best effort: an uncleared context expires by itself.
                let _ = conn
                    .send_retrying(
                        retry,
                        Method::Delete,
                        "/_search/scroll",
                        &[],
                        Some(Body::Json(json!({ "scroll_id": id }))),
                    )
                    .await;
            }
            return Ok(None);
        }
        Ok(Some(hits))
    }
}

/// Deletes one index by name (a rebuild's old index, once the alias left it).
pub(crate) async fn delete_index(
    conn: &Conn,
    retry: &RetryPolicy,
    index: &str,
) -> Result<(), SearchError> {
    let reply = conn
        .send_retrying(retry, Method::Delete, &format!("/{index}"), &[], None)
        .await?;
    if reply.is_success() || reply.status == 404 {
        Ok(())
    } else {
        Err(failed(&format!("index {index} not deleted"), &reply))
    }
}

/// Creates `index` with the current mapping; with `alias`, as the alias's write index.
/// An index that already exists is success: another process created it first.
async fn create_index(
    conn: &Conn,
    retry: &RetryPolicy,
    entity: Entity,
    index: &str,
    alias: Option<&str>,
) -> Result<bool, SearchError> {
    let body = mapping::create_index_body(entity, alias);
    let reply = conn
        .send_retrying(
            retry,
            Method::Put,
            &format!("/{index}"),
            &[],
            Some(Body::Json(body)),
        )
        .await?;
    if reply.is_success() {
        tracing::info!(cluster = %conn.cluster.name, index, "index created");
        return Ok(true);
    }
    if reply.status == 400 && reply.error_type() == Some("resource_already_exists_exception") {
        return Ok(false);
    }
    Err(failed(&format!("index {index} not created"), &reply))
}

/// Makes sure the tenant's alias for `entity` exists: if it does (whatever version it
/// points to), nothing is done; else the current version's index is created with it.
pub(crate) async fn ensure(
    conn: &Conn,
    retry: &RetryPolicy,
    tenant: &TenantId,
    entity: Entity,
) -> Result<(), SearchError> {
    let names = IndexNames::new(&conn.cluster.index_prefix, tenant, entity);
    let targets = alias_targets(conn, retry, &names.alias).await?;
    if let Some(old) = targets
        .iter()
        .find(|t| names.version_of(t).is_some_and(|v| v < MAPPING_VERSION))
    {
        tracing::warn!(alias = %names.alias, index = %old, current = MAPPING_VERSION, "index has an older mapping version; rebuild it");
    }
    if targets.is_empty() {
        let index = names.current();
        let created = create_index(conn, retry, entity, &index, Some(&names.alias)).await?;
        // An index and its alias are created in one step, so an index that already
        // exists normally has the alias too (another process won the race); if someone
        // removed the alias, writing would fail on every batch, so say so.
        if !created && alias_targets(conn, retry, &names.alias).await?.is_empty() {
            return Err(SearchError::Unavailable(format!(
                "index {index} exists but alias {} does not; add the alias to it",
                names.alias
            )));
        }
    }
    Ok(())
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuilt {
    /// The alias already points to the current mapping version.
    AlreadyCurrent { alias: String, index: String },
    /// The alias was created with an empty index: there was nothing to copy.
    Created { alias: String, index: String },
    /// Documents were copied to a new index and the alias moved to it. The old index is
    /// kept, for the operator to delete once satisfied.
    Swapped {
        alias: String,
        from: String,
        to: String,
        copied: u64,
    },
}

/// How long a rebuild waits for its `_reindex` task, and how often it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskWait {
    /// The longest a rebuild waits for the copy; past it the rebuild fails and the alias
    /// stays where it was (the task itself keeps running in the cluster).
    pub max_wait: Duration,
    /// The wait before the first status request; it doubles up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

impl Default for TaskWait {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(60 * 60),
            first_poll: Duration::from_millis(500),
            max_poll: Duration::from_secs(15),
        }
    }
}

/// Whether `id` has the form of a task id (`<node id>:<number>`), so that a reply's
/// text is never put into a path unchecked.
fn is_task_id(id: &str) -> bool {
    let Some((node, number)) = id.split_once(':') else {
        return false;
    };
    !node.is_empty()
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

/// Copies every document of `alias` into `to` as a background task: the start is sent
/// once (a retried start would run a second full copy beside the first), then the task
/// is polled until it completes or `wait.max_wait` passes. Returns how many documents
/// were copied; any failure of the copy is an error.
async fn reindex(
    conn: &Conn,
    retry: &RetryPolicy,
    wait: &TaskWait,
    alias: &str,
    to: &str,
) -> Result<u64, SearchError> {
    let what = format!("reindex of {alias} into {to}");
    let body = json!({
        "source": { "index": alias },
        "dest": { "index": to }
    });
    let reply = conn
        .send(
            Method::Post,
            "/_reindex",
            &[("refresh", "true"), ("wait_for_completion", "false")],
            Some(Body::Json(body)),
        )
        .await
        .map_err(|e| {
            SearchError::Unavailable(format!(
                "{what} not confirmed as started ({e}); look for a running reindex task \
                 (GET _tasks?actions=*reindex) before rebuilding again"
            ))
        })?;
    if !reply.is_success() {
        return Err(failed(&format!("{what}: start not acknowledged"), &reply));
    }
    let task = reply
        .body
        .get("task")
        .and_then(Value::as_str)
        .filter(|t| is_task_id(t))
        .ok_or_else(|| {
            SearchError::Corrupt(format!("{what}: the reply names no task: {}", reply.body))
        })?
        .to_owned();
    tracing::info!(%alias, %to, %task, "reindex started");
    let started = Instant::now();
    let mut poll = wait.first_poll;
    let status = loop {
        let waited = started.elapsed();
        if waited >= wait.max_wait {
            return Err(SearchError::Unavailable(format!(
                "{what} (task {task}) still running after {} s; the alias was not moved; \
                 rebuild again once the task is done (GET _tasks/{task})",
                waited.as_secs()
            )));
        }
        tokio::time::sleep(poll.min(wait.max_wait - waited)).await;
        poll = poll.saturating_mul(2).min(wait.max_poll);
        let reply = conn
            .send_retrying(retry, Method::Get, &format!("/_tasks/{task}"), &[], None)
            .await?;
        if !reply.is_success() {
            return Err(failed(&format!("{what}: task {task} not read"), &reply));
        }
        if reply.body.get("completed").and_then(Value::as_bool) == Some(true) {
            break reply.body;
        }
    };
    if let Some(error) = status.get("error") {
        return Err(SearchError::Unavailable(format!(
            "{what} (task {task}) failed: {}; the alias was not moved",
            describe_error(error)
        )));
    }
    let response = status.get("response").ok_or_else(|| {
        SearchError::Corrupt(format!("{what}: task {task} completed without a response"))
    })?;
    if let Some(failures) = response.get("failures").and_then(Value::as_array)
        && !failures.is_empty()
    {
        let first = failures
            .first()
            .and_then(|f| f.get("cause").or_else(|| f.get("reason")))
            .map(describe_error)
            .unwrap_or_default();
        return Err(SearchError::Unavailable(format!(
            "{what} had {} failures (first: {first}); the alias was not moved",
            failures.len()
        )));
    }
    // A cancelled task completes too, with its reason in `canceled` and no failures.
    if let Some(reason) = response.get("canceled").and_then(Value::as_str) {
        return Err(SearchError::Unavailable(format!(
            "{what} (task {task}) was cancelled ({reason}); the alias was not moved"
        )));
    }
    if response.get("timed_out").and_then(Value::as_bool) == Some(true) {
        return Err(SearchError::Unavailable(format!(
            "{what} (task {task}) timed out; the alias was not moved"
        )));
    }
    Ok(response.get("total").and_then(Value::as_u64).unwrap_or(0))
}

/// The one `_aliases` request that moves `alias` from `from` to `to`: Elasticsearch
/// applies its actions atomically, so readers see either index, never none or both.
pub fn alias_swap_body(alias: &str, from: &str, to: &str) -> Value {
    json!({
        "actions": [
            { "remove": { "index": from, "alias": alias } },
            { "add": { "index": to, "alias": alias, "is_write_index": true } }
        ]
    })
}

/// The snapshot repository every cloudpf cluster with a `snapshot_bucket` gets.
pub const SNAPSHOT_REPOSITORY: &str = "cloudpf-s3";
/// Its nightly snapshot policy.
pub const SNAPSHOT_POLICY: &str = "cloudpf-nightly";

/// The S3 repository of a cluster's snapshots: its own prefix of the bucket (the only
/// one its task role may write).
pub fn snapshot_repository_body(bucket: &str, cluster: &str) -> Value {
    json!({
        "type": "s3",
        "settings": { "bucket": bucket, "base_path": cluster }
    })
}

/// Every night at 02:30 UTC a snapshot of the cluster's cloudpf indexes (not its global
/// state), kept 30 days, at least 5 and at most 60 of them.
pub fn snapshot_policy_body(index_prefix: &str) -> Value {
    json!({
        "schedule": "0 30 2 * * ?",
        "name": "<cloudpf-nightly-{now/d}>",
        "repository": SNAPSHOT_REPOSITORY,
        "config": {
            "indices": [format!("{index_prefix}-*")],
            "include_global_state": false
        },
        "retention": { "expire_after": "30d", "min_count": 5, "max_count": 60 }
    })
}

/// Registers the snapshot repository and nightly policy of a cluster with a
/// `snapshot_bucket` (both `PUT`s replace what was there: running it twice is harmless);
/// `false` for a cluster without one.
pub(crate) async fn setup_snapshots(conn: &Conn, retry: &RetryPolicy) -> Result<bool, SearchError> {
    let Some(bucket) = &conn.cluster.snapshot_bucket else {
        return Ok(false);
    };
    let requests = [
        (
            format!("/_snapshot/{SNAPSHOT_REPOSITORY}"),
            snapshot_repository_body(bucket, &conn.cluster.name),
        ),
        (
            format!("/_slm/policy/{SNAPSHOT_POLICY}"),
            snapshot_policy_body(&conn.cluster.index_prefix),
        ),
    ];
    for (path, body) in requests {
        let reply = conn
            .send_retrying(retry, Method::Put, &path, &[], Some(Body::Json(body)))
            .await?;
        if !reply.is_success() {
            return Err(failed(&format!("{path} not set up"), &reply));
        }
    }
    tracing::info!(cluster = %conn.cluster.name, bucket, "snapshot repository and nightly policy set up");
    Ok(true)
}

/// Rebuilds a tenant's `entity` index under the current [`MAPPING_VERSION`]: creates the
/// new index, `_reindex`es every document (tombstones and sequence numbers included) from
/// the alias as a background task, waits for it (at most `wait.max_wait`), then swaps
/// the alias in one request, only if the copy finished without failures.
///
/// Writes that reach the old index while the copy runs are not in the new one: pause the
/// stream's event source mapping during a rebuild, or replay the stream from before the
/// rebuild afterwards (writes are idempotent by sequence number, so a replay is safe).
pub(crate) async fn rebuild(
    conn: &Conn,
    retry: &RetryPolicy,
    wait: &TaskWait,
    tenant: &TenantId,
    entity: Entity,
) -> Result<Rebuilt, SearchError> {
    let names = IndexNames::new(&conn.cluster.index_prefix, tenant, entity);
    let alias = names.alias.clone();
    let to = names.current();
    let targets = alias_targets(conn, retry, &alias).await?;
    let from = match targets.as_slice() {
        [] => {
            create_index(conn, retry, entity, &to, Some(&alias)).await?;
            return Ok(Rebuilt::Created { alias, index: to });
        }
        [one] => one.clone(),
        many => {
            return Err(SearchError::Corrupt(format!(
                "alias {alias} points to {} indexes ({}); expected one",
                many.len(),
                many.join(", ")
            )));
        }
    };
    match names.version_of(&from) {
        Some(v) if v == MAPPING_VERSION => {
            return Ok(Rebuilt::AlreadyCurrent { alias, index: from });
        }
        Some(v) if v > MAPPING_VERSION => {
            return Err(SearchError::Corrupt(format!(
                "alias {alias} points to {from}, newer than this build's mapping version {MAPPING_VERSION}"
            )));
        }
        _ => {}
    }
    create_index(conn, retry, entity, &to, None).await?;
    let copied = reindex(conn, retry, wait, &alias, &to).await?;
    let reply = conn
        .send_retrying(
            retry,
            Method::Post,
            "/_aliases",
            &[],
            Some(Body::Json(alias_swap_body(&alias, &from, &to))),
        )
        .await?;
    if !reply.is_success() {
        return Err(failed(&format!("alias {alias} not moved to {to}"), &reply));
    }
    tracing::info!(%alias, %from, %to, copied, "index rebuilt and alias swapped");
    Ok(Rebuilt::Swapped {
        alias,
        from,
        to,
        copied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alias_swap_body_is_as_recorded() {
        insta::assert_json_snapshot!(alias_swap_body(
            "cloudpf-acme-products",
            "cloudpf-acme-products-v1",
            "cloudpf-acme-products-v2"
        ));
    }

    #[test]
    fn the_snapshot_repository_and_policy_bodies_are_as_recorded() {
        insta::assert_json_snapshot!(
            "snapshot_repository",
            snapshot_repository_body("cloudpf-prod-snapshots", "alpine")
        );
        insta::assert_json_snapshot!("snapshot_policy", snapshot_policy_body("cloudpf"));
    }
}
