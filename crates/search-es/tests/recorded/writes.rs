//! Writes: creating an index behind its alias on first use, bulk outcomes (applied,
//! stale, rejected), retries of conflicts and 429s, and the units-sold recount.

use cloudpf_model::PurchaseStatus;
use cloudpf_search::suite::purchase;
use cloudpf_search::{DocChange, Entity, Rejected, SearchEngine, SearchError, Versioned};
use cloudpf_search_es::mapping::create_index_body;
use serde_json::json;

use crate::common::{Server, step, tenant};
use crate::steps::*;

#[tokio::test]
async fn a_first_write_creates_the_index_behind_its_alias_and_waits_for_the_refresh() {
    let mut steps = vec![
        alias_missing(PRODUCTS),
        index_created(PRODUCTS),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![item("p1", 201, Some("created"), None)]),
        ),
    ];
    steps.extend(units_sold_refresh(&["p1"]));
    // The second batch goes straight to the bulk: the index is known to exist.
    steps.push(step(
        "POST",
        &format!("/{PRODUCTS}/_bulk"),
        200,
        bulk_reply(vec![item("p1", 200, Some("updated"), None)]),
    ));
    steps.extend(units_sold_refresh(&["p1"]));
    let server = Server::start(steps).await;
    let engine = server.engine();

    let first = engine
        .apply_products(&tenant("acme"), vec![upsert(stove("p1"), "100")])
        .await
        .unwrap();
    assert_eq!((first.applied, first.stale), (1, 0));
    let second = engine
        .apply_products(&tenant("acme"), vec![upsert(stove("p1"), "101")])
        .await
        .unwrap();
    assert_eq!(second.applied, 1);
    server.assert_done();

    let seen = server.seen();
    assert_eq!(
        seen[1].json(),
        create_index_body(Entity::Products, Some(PRODUCTS)),
        "the index is created with its mapping and as the alias's write index"
    );
    let bulk = &seen[2];
    assert_eq!(
        bulk.query.as_deref(),
        Some("refresh=wait_for&require_alias=true")
    );
    assert_eq!(bulk.content_type.as_deref(), Some("application/x-ndjson"));
    let lines = bulk.lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        json!({ "update": { "_id": "p1", "retry_on_conflict": 3 } })
    );
    assert_eq!(
        lines[1]["script"]["params"]["seq"],
        "0000000000000000000000000000000000000100"
    );
    assert_eq!(lines[1]["scripted_upsert"], true);
    // Units sold are written as partial updates that create a stub if needed.
    assert_eq!(
        seen[4].lines()[1],
        json!({ "doc": { "units_sold": 0 }, "doc_as_upsert": true })
    );
}

#[tokio::test]
async fn an_index_that_already_exists_is_fine() {
    let mut steps = vec![
        alias_missing(PRODUCTS),
        step(
            "PUT",
            "/cloudpf-acme-products-v1",
            400,
            json!({
                "error": {
                    "root_cause": [{ "type": "resource_already_exists_exception",
                        "reason": "index [cloudpf-acme-products-v1/Qx3LmIy8TGaD1bkEw_Vg2A] already exists",
                        "index_uuid": "Qx3LmIy8TGaD1bkEw_Vg2A", "index": "cloudpf-acme-products-v1" }],
                    "type": "resource_already_exists_exception",
                    "reason": "index [cloudpf-acme-products-v1/Qx3LmIy8TGaD1bkEw_Vg2A] already exists",
                    "index_uuid": "Qx3LmIy8TGaD1bkEw_Vg2A",
                    "index": "cloudpf-acme-products-v1"
                },
                "status": 400
            }),
        ),
        // The process that created it first created the alias with it.
        alias_exists(PRODUCTS),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![item("p1", 201, Some("created"), None)]),
        ),
    ];
    steps.extend(units_sold_refresh(&["p1"]));
    let server = Server::start(steps).await;
    let outcome = server
        .engine()
        .apply_products(&tenant("acme"), vec![upsert(stove("p1"), "100")])
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);
    server.assert_done();
}

#[tokio::test]
async fn an_index_left_without_its_alias_is_reported_instead_of_written_blindly() {
    let server = Server::start(vec![
        alias_missing(PRODUCTS),
        step(
            "PUT",
            "/cloudpf-acme-products-v1",
            400,
            json!({
                "error": {
                    "root_cause": [{ "type": "resource_already_exists_exception",
                        "reason": "index [cloudpf-acme-products-v1/Qx3LmIy8TGaD1bkEw_Vg2A] already exists" }],
                    "type": "resource_already_exists_exception",
                    "reason": "index [cloudpf-acme-products-v1/Qx3LmIy8TGaD1bkEw_Vg2A] already exists"
                },
                "status": 400
            }),
        ),
        alias_missing(PRODUCTS),
    ])
    .await;
    let err = server
        .engine()
        .apply_products(&tenant("acme"), vec![upsert(stove("p1"), "100")])
        .await
        .unwrap_err();
    server.assert_done();
    assert_eq!(
        err.to_string(),
        "search engine unavailable: index cloudpf-acme-products-v1 exists but alias \
         cloudpf-acme-products does not; add the alias to it"
    );
}

#[tokio::test]
async fn setup_creates_both_indexes_where_missing_and_leaves_existing_ones() {
    let server = Server::start(vec![
        alias_exists(PRODUCTS),
        alias_missing(PURCHASES),
        index_created(PURCHASES),
    ])
    .await;
    server.engine().setup(&tenant("acme")).await.unwrap();
    server.assert_done();
    assert_eq!(
        server.seen()[2].json(),
        create_index_body(Entity::Purchases, Some(PURCHASES))
    );
}

#[tokio::test]
async fn a_mixed_bulk_counts_applied_stale_and_rejects_a_document_the_mapping_refuses() {
    let mut steps = vec![
        alias_exists(PRODUCTS),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![
                item("p1", 201, Some("created"), None),
                item("p2", 200, Some("noop"), None),
                item(
                    "p3",
                    400,
                    None,
                    Some(json!({
                        "type": "document_parsing_exception",
                        "reason": "[1:412] failed to parse field [price] of type [scaled_float] in document with id 'p3'. Preview of field's value: '1E+30'",
                        "caused_by": { "type": "illegal_argument_exception", "reason": "[scaled_float] only supports finite values, but got [1.0E36]" }
                    })),
                ),
            ]),
        ),
    ];
    // The rejected p3 gets no units-sold stub.
    steps.extend(units_sold_refresh(&["p1", "p2"]));
    let server = Server::start(steps).await;
    let outcome = server
        .engine()
        .apply_products(
            &tenant("acme"),
            vec![
                upsert(stove("p1"), "100"),
                upsert(stove("p2"), "101"),
                upsert(stove("p3"), "102"),
            ],
        )
        .await
        .unwrap();
    server.assert_done();
    assert_eq!((outcome.applied, outcome.stale), (1, 1));
    assert_eq!(
        outcome.rejected,
        [Rejected {
            key: "p3".into(),
            seq: seq("102"),
            reason: "document_parsing_exception: [1:412] failed to parse field [price] of type \
                     [scaled_float] in document with id 'p3'. Preview of field's value: '1E+30' \
                     (caused by illegal_argument_exception: [scaled_float] only supports finite \
                     values, but got [1.0E36])"
                .into(),
        }]
    );
    let bulks: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("_bulk"))
        .collect();
    assert_eq!(bulks.len(), 2, "a rejected document is not retried");
    assert_eq!(ids_of_bulk(&bulks[1].lines()), ["p1", "p2"]);
}

#[tokio::test]
async fn a_version_conflict_is_retried_for_that_item_only() {
    let mut steps = vec![
        alias_exists(PRODUCTS),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![
                item("p1", 201, Some("created"), None),
                item(
                    "p2",
                    409,
                    None,
                    Some(json!({
                        "type": "version_conflict_engine_exception",
                        "reason": "[p2]: version conflict, required seqNo [5], primary term [1]. current document has seqNo [6] and primary term [1]",
                        "index_uuid": "Qx3LmIy8TGaD1bkEw_Vg2A",
                        "shard": "0",
                        "index": "cloudpf-acme-products-v1"
                    })),
                ),
            ]),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![item("p2", 200, Some("updated"), None)]),
        ),
    ];
    steps.extend(units_sold_refresh(&["p1", "p2"]));
    let server = Server::start(steps).await;
    let outcome = server
        .engine()
        .apply_products(
            &tenant("acme"),
            vec![upsert(stove("p1"), "100"), upsert(stove("p2"), "101")],
        )
        .await
        .unwrap();
    server.assert_done();
    assert_eq!(
        (outcome.applied, outcome.stale, outcome.rejected.len()),
        (2, 0, 0)
    );
    let retry = &server.seen()[2];
    assert_eq!(ids_of_bulk(&retry.lines()), ["p2"]);
    assert_eq!(
        retry.lines()[1]["script"]["params"]["seq"],
        "0000000000000000000000000000000000000101"
    );
}

#[tokio::test]
async fn a_rejected_execution_429_is_retried_with_backoff_then_succeeds() {
    let mut steps = vec![
        alias_exists(PRODUCTS),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![rejected_429("p1")]),
        ),
        // A whole-request 429 (the node's queue is full) is retried the same way.
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            429,
            json!({ "error": { "type": "es_rejected_execution_exception", "reason": "rejected execution of TimedRunnable" }, "status": 429 }),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![item("p1", 201, Some("created"), None)]),
        ),
    ];
    steps.extend(units_sold_refresh(&["p1"]));
    let server = Server::start(steps).await;
    let outcome = server
        .engine()
        .apply_products(&tenant("acme"), vec![upsert(stove("p1"), "100")])
        .await
        .unwrap();
    server.assert_done();
    assert_eq!(outcome.applied, 1);
}

#[tokio::test]
async fn a_429_that_persists_fails_the_batch_as_unavailable_after_the_bounded_attempts() {
    let bulk = || {
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![
                item("p1", 201, Some("created"), None),
                rejected_429("p2"),
            ]),
        )
    };
    let server = Server::start(vec![
        alias_exists(PRODUCTS),
        bulk(),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![rejected_429("p2")]),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![rejected_429("p2")]),
        ),
    ])
    .await;
    let err = server
        .engine()
        .apply_products(
            &tenant("acme"),
            vec![upsert(stove("p1"), "100"), upsert(stove("p2"), "101")],
        )
        .await
        .unwrap_err();
    server.assert_done();
    match err {
        SearchError::Unavailable(m) => {
            assert!(m.starts_with("1 of 2 changes to cloudpf-acme-products still failing after 3 attempts: es_rejected_execution_exception"), "{m}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_purchases_batch_recounts_units_sold_of_old_and_new_line_items() {
    let order = purchase(
        "acme",
        "o1",
        "c1",
        "2025-06-02T10:00:00Z",
        PurchaseStatus::Paid,
        &[("p1", "Camping Stove", 3, "45.50")],
    );
    let server = Server::start(vec![
        alias_exists(PURCHASES),
        alias_exists(PRODUCTS),
        step(
            "POST",
            &format!("/{PURCHASES}/_mget"),
            200,
            json!({ "docs": [{
                "_index": "cloudpf-acme-purchases-v1", "_id": "o1", "_version": 1,
                "_seq_no": 0, "_primary_term": 1, "found": true,
                "_source": { "product_ids": ["p9"] }
            }] }),
        ),
        step(
            "POST",
            &format!("/{PURCHASES}/_bulk"),
            200,
            json!({ "took": 8, "errors": false, "items": [{ "update": {
                "_index": "cloudpf-acme-purchases-v1", "_id": "o1", "_version": 2, "result": "updated",
                "_shards": { "total": 2, "successful": 1, "failed": 0 }, "_seq_no": 1, "_primary_term": 1, "status": 200
            } }] }),
        ),
        step(
            "POST",
            &format!("/{PURCHASES}/_search"),
            200,
            json!({
                "took": 3, "timed_out": false,
                "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 },
                "hits": { "total": { "value": 4, "relation": "eq" }, "max_score": null, "hits": [] },
                "aggregations": { "items": { "doc_count": 6, "touched": { "doc_count": 4, "products": {
                    "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                    "buckets": [{ "key": "p1", "doc_count": 4, "units": { "value": 11.0 } }]
                } } } }
            }),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(vec![
                item("p1", 200, Some("updated"), None),
                item("p9", 200, Some("updated"), None),
            ]),
        ),
    ])
    .await;
    let outcome = server
        .engine()
        .apply_purchases(
            &tenant("acme"),
            vec![Versioned {
                key: "o1".into(),
                seq: seq("200"),
                change: DocChange::Upsert(order),
            }],
        )
        .await
        .unwrap();
    server.assert_done();
    assert_eq!(outcome.applied, 1);
    let seen = server.seen();
    assert_eq!(
        seen[2].json(),
        json!({ "docs": [{ "_id": "o1", "_source": ["product_ids"] }] })
    );
    let agg = seen[4].json();
    assert_eq!(
        agg["query"]["bool"]["filter"][1],
        json!({ "terms": { "product_ids": ["p1", "p9"] } })
    );
    assert_eq!(
        seen[5].lines(),
        [
            json!({ "update": { "_id": "p1", "retry_on_conflict": 3 } }),
            json!({ "doc": { "units_sold": 11 }, "doc_as_upsert": true }),
            json!({ "update": { "_id": "p9", "retry_on_conflict": 3 } }),
            json!({ "doc": { "units_sold": 0 }, "doc_as_upsert": true }),
        ],
        "p9 left the purchase, so it is recounted (to zero) too"
    );
}
