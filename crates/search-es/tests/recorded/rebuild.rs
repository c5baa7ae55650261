//! Rebuilds: copying into the current mapping version with a reindex task and swapping
//! the alias in one request, or leaving it where it was when the copy fails.

use cloudpf_search::Entity;
use cloudpf_search_es::mapping::create_index_body;
use serde_json::{Value, json};

use crate::common::{Server, Step, step, tenant};
use crate::steps::*;

fn rebuild_start() -> Vec<Step> {
    vec![
        step(
            "GET",
            &format!("/_alias/{PRODUCTS}"),
            200,
            json!({ "cloudpf-acme-products-v0": { "aliases": { PRODUCTS: { "is_write_index": true } } } }),
        ),
        step(
            "PUT",
            "/cloudpf-acme-products-v1",
            200,
            json!({ "acknowledged": true, "shards_acknowledged": true, "index": "cloudpf-acme-products-v1" }),
        ),
        step(
            "POST",
            "/_reindex",
            200,
            json!({ "task": "oTUltX4IQMOUUVeiohTt8A:12345" }),
        ),
    ]
}

const TASK_PATH: &str = "/_tasks/oTUltX4IQMOUUVeiohTt8A:12345";

/// The reindex task, as `GET _tasks/<id>` shows it in each of its states.
enum Task {
    Running,
    Done(Value),
    Failed(Value),
}

fn task_status(task: Task) -> Step {
    let (completed, response, error) = match task {
        Task::Running => (false, None, None),
        Task::Done(response) => (true, Some(response), None),
        Task::Failed(error) => (true, None, Some(error)),
    };
    let mut body = json!({
        "completed": completed,
        "task": {
            "node": "oTUltX4IQMOUUVeiohTt8A", "id": 12345, "type": "transport",
            "action": "indices:data/write/reindex",
            "status": { "total": 42, "updated": 0, "created": 20, "deleted": 0, "batches": 1,
                "version_conflicts": 0, "noops": 0, "retries": { "bulk": 0, "search": 0 },
                "throttled_millis": 0, "requests_per_second": -1.0, "throttled_until_millis": 0 },
            "description": "reindex from [cloudpf-acme-products] to [cloudpf-acme-products-v1]",
            "start_time_in_millis": 1_750_000_000_000_u64, "running_time_in_nanos": 1_500_000_000_u64,
            "cancellable": true, "cancelled": false, "headers": {}
        }
    });
    if let Some(response) = response {
        body["response"] = response;
    }
    if let Some(error) = error {
        body["error"] = error;
    }
    step("GET", TASK_PATH, 200, body)
}

fn reindex_response(total: u64, failures: Value) -> Value {
    json!({
        "took": 147, "timed_out": false, "total": total, "updated": 0, "created": total,
        "deleted": 0, "batches": 1, "version_conflicts": 0, "noops": 0,
        "retries": { "bulk": 0, "search": 0 }, "throttled": "0s", "throttled_millis": 0,
        "requests_per_second": -1.0, "throttled_until": "0s", "throttled_until_millis": 0,
        "failures": failures
    })
}

#[tokio::test]
async fn a_rebuild_copies_into_the_current_version_and_swaps_the_alias_in_one_request() {
    let mut steps = rebuild_start();
    steps.push(task_status(Task::Done(reindex_response(42, json!([])))));
    steps.push(step(
        "POST",
        "/_aliases",
        200,
        json!({ "acknowledged": true }),
    ));
    let server = Server::start(steps).await;
    let rebuilt = server
        .engine()
        .rebuild(&tenant("acme"), Entity::Products)
        .await
        .unwrap();
    server.assert_done();
    assert_eq!(
        rebuilt,
        cloudpf_search_es::Rebuilt::Swapped {
            alias: PRODUCTS.into(),
            from: "cloudpf-acme-products-v0".into(),
            to: "cloudpf-acme-products-v1".into(),
            copied: 42,
        }
    );
    let seen = server.seen();
    assert_eq!(
        seen[1].json(),
        create_index_body(Entity::Products, None),
        "the new index is not in the alias until the swap"
    );
    assert_eq!(
        seen[2].query.as_deref(),
        Some("refresh=true&wait_for_completion=false"),
        "the copy runs as a task, not inside one request that may time out"
    );
    assert_eq!(
        seen[2].json(),
        json!({ "source": { "index": PRODUCTS }, "dest": { "index": "cloudpf-acme-products-v1" } })
    );
    assert_eq!(
        seen[4].json(),
        cloudpf_search_es::alias_swap_body(
            PRODUCTS,
            "cloudpf-acme-products-v0",
            "cloudpf-acme-products-v1"
        )
    );
}

#[tokio::test]
async fn a_rebuild_waits_for_a_running_copy_task_before_swapping() {
    let mut steps = rebuild_start();
    steps.push(task_status(Task::Running));
    steps.push(task_status(Task::Running));
    steps.push(task_status(Task::Done(reindex_response(42, json!([])))));
    steps.push(step(
        "POST",
        "/_aliases",
        200,
        json!({ "acknowledged": true }),
    ));
    let server = Server::start(steps).await;
    let rebuilt = server
        .engine()
        .rebuild(&tenant("acme"), Entity::Products)
        .await
        .unwrap();
    server.assert_done();
    assert!(matches!(
        rebuilt,
        cloudpf_search_es::Rebuilt::Swapped { copied: 42, .. }
    ));
    let reindex_starts = server
        .seen()
        .iter()
        .filter(|s| s.path == "/_reindex")
        .count();
    assert_eq!(reindex_starts, 1, "the copy is started once");
}

#[tokio::test]
async fn a_rebuild_that_outlasts_its_wait_gives_up_without_moving_the_alias_or_copying_again() {
    let mut steps = rebuild_start();
    // Polled until the (short) wait of the test engine is over, never completed.
    for _ in 0..200 {
        steps.push(task_status(Task::Running));
    }
    let server = Server::start(steps).await;
    let engine = server.engine().with_task_wait(cloudpf_search_es::TaskWait {
        max_wait: std::time::Duration::from_millis(50),
        first_poll: std::time::Duration::from_millis(1),
        max_poll: std::time::Duration::from_millis(5),
    });
    let err = engine
        .rebuild(&tenant("acme"), Entity::Products)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("reindex of cloudpf-acme-products into cloudpf-acme-products-v1 (task oTUltX4IQMOUUVeiohTt8A:12345) still running after")
            && text.contains("the alias was not moved"),
        "{text}"
    );
    let seen = server.seen();
    assert_eq!(seen.iter().filter(|s| s.path == "/_reindex").count(), 1);
    assert!(seen.iter().all(|s| s.path != "/_aliases"));
    assert!(seen.iter().filter(|s| s.path == TASK_PATH).count() >= 2);
}

#[tokio::test]
async fn a_rebuild_whose_copy_had_failures_leaves_the_alias_where_it_was() {
    let mut steps = rebuild_start();
    steps.push(task_status(Task::Done(
        reindex_response(
            2,
            json!([{ "index": "cloudpf-acme-products-v1", "id": "p7", "status": 400,
                "cause": { "type": "document_parsing_exception", "reason": "[1:2] failed to parse" } }]),
        ),
    )));
    let server = Server::start(steps).await;
    let err = server
        .engine()
        .rebuild(&tenant("acme"), Entity::Products)
        .await
        .unwrap_err();
    server.assert_done();
    assert_eq!(
        err.to_string(),
        "search engine unavailable: reindex of cloudpf-acme-products into \
         cloudpf-acme-products-v1 had 1 failures (first: document_parsing_exception: \
         [1:2] failed to parse); the alias was not moved"
    );
}

#[tokio::test]
async fn a_rebuild_whose_copy_was_cancelled_leaves_the_alias_where_it_was() {
    let mut steps = rebuild_start();
    let mut cancelled = reindex_response(2, json!([]));
    cancelled["canceled"] = json!("by user request");
    steps.push(task_status(Task::Done(cancelled)));
    let server = Server::start(steps).await;
    let err = server
        .engine()
        .rebuild(&tenant("acme"), Entity::Products)
        .await
        .unwrap_err();
    server.assert_done();
    assert_eq!(
        err.to_string(),
        "search engine unavailable: reindex of cloudpf-acme-products into \
         cloudpf-acme-products-v1 (task oTUltX4IQMOUUVeiohTt8A:12345) was cancelled \
         (by user request); the alias was not moved"
    );
}

#[tokio::test]
async fn a_rebuild_whose_copy_task_failed_leaves_the_alias_where_it_was() {
    let mut steps = rebuild_start();
    steps.push(task_status(Task::Failed(
        json!({ "type": "index_not_found_exception", "reason": "no such index [cloudpf-acme-products-v1]" }),
    )));
    let server = Server::start(steps).await;
    let err = server
        .engine()
        .rebuild(&tenant("acme"), Entity::Products)
        .await
        .unwrap_err();
    server.assert_done();
    assert_eq!(
        err.to_string(),
        "search engine unavailable: reindex of cloudpf-acme-products into \
         cloudpf-acme-products-v1 (task oTUltX4IQMOUUVeiohTt8A:12345) failed: \
         index_not_found_exception: no such index [cloudpf-acme-products-v1]; the alias was not moved"
    );
}

#[tokio::test]
async fn a_copy_start_that_fails_is_not_sent_again() {
    let mut steps = rebuild_start();
    // A gateway timeout: the copy may be running anyway, so a second start would copy twice.
    steps.pop();
    steps.push(step(
        "POST",
        "/_reindex",
        504,
        json!({ "error": { "type": "gateway_timeout", "reason": "upstream timed out" }, "status": 504 }),
    ));
    let server = Server::start(steps).await;
    let err = server
        .engine()
        .rebuild(&tenant("acme"), Entity::Products)
        .await
        .unwrap_err();
    server.assert_done();
    assert_eq!(
        err.to_string(),
        "search engine unavailable: reindex of cloudpf-acme-products into \
         cloudpf-acme-products-v1: start not acknowledged: status 504: gateway_timeout: upstream timed out"
    );
    assert_eq!(
        server
            .seen()
            .iter()
            .filter(|s| s.path == "/_reindex")
            .count(),
        1
    );
}

/// Issue #13: `cloudpf reindex` on Elasticsearch. After the copy and the swap, every
/// document of the old index is written again through the alias with the sequence guard
/// (a change that reached the old index during the copy is applied, the rest are noops),
/// then the old index is deleted.
#[tokio::test]
async fn a_reindex_catches_up_with_writes_to_the_old_index_and_then_deletes_it() {
    use cloudpf_search::{DocChange, Versioned};
    use cloudpf_search_es::documents::indexed;

    let newer = indexed(&upsert(stove("p1"), "105")).unwrap();
    let removed = indexed(&Versioned::<cloudpf_model::Product> {
        key: "p2".into(),
        seq: seq("106"),
        change: DocChange::Delete,
    })
    .unwrap();
    let mut steps = rebuild_start();
    steps.push(task_status(Task::Done(reindex_response(2, json!([])))));
    steps.push(step(
        "POST",
        "/_aliases",
        200,
        json!({ "acknowledged": true }),
    ));
    steps.push(step(
        "POST",
        "/cloudpf-acme-products-v0/_search",
        200,
        json!({
            "_scroll_id": "c2Nyb2xsLTE=",
            "hits": { "hits": [
                { "_index": "cloudpf-acme-products-v0", "_id": "p1", "_source": newer },
                { "_index": "cloudpf-acme-products-v0", "_id": "p2", "_source": removed },
                // A units-sold stub: derived, not copied.
                { "_index": "cloudpf-acme-products-v0", "_id": "p3", "_source": { "units_sold": 4 } }
            ] }
        }),
    ));
    steps.push(step(
        "POST",
        &format!("/{PRODUCTS}/_bulk"),
        200,
        bulk_reply(vec![
            item("p1", 200, Some("updated"), None),
            item("p2", 200, Some("noop"), None),
        ]),
    ));
    steps.extend(units_sold_refresh(&["p1"]));
    steps.push(step(
        "POST",
        "/_search/scroll",
        200,
        json!({ "_scroll_id": "c2Nyb2xsLTE=", "hits": { "hits": [] } }),
    ));
    steps.push(step(
        "DELETE",
        "/_search/scroll",
        200,
        json!({ "succeeded": true, "num_freed": 1 }),
    ));
    steps.push(step(
        "DELETE",
        "/cloudpf-acme-products-v0",
        200,
        json!({ "acknowledged": true }),
    ));
    let server = Server::start(steps).await;
    let (rebuilt, caught_up) = server
        .engine()
        .reindex(&tenant("acme"), Entity::Products, std::time::Duration::ZERO)
        .await
        .unwrap();
    server.assert_done();
    assert!(matches!(
        rebuilt,
        cloudpf_search_es::Rebuilt::Swapped { .. }
    ));
    assert_eq!(
        caught_up, 1,
        "the newer change is applied, the known tombstone is a noop"
    );
    let seen = server.seen();
    let scroll = seen
        .iter()
        .find(|r| r.path == "/cloudpf-acme-products-v0/_search")
        .unwrap();
    assert_eq!(scroll.query.as_deref(), Some("scroll=2m"));
    let bulk = seen
        .iter()
        .find(|r| r.path == format!("/{PRODUCTS}/_bulk"))
        .unwrap();
    assert_eq!(
        ids_of_bulk(&bulk.lines()),
        ["p1", "p2"],
        "written through the alias, guarded"
    );
}
