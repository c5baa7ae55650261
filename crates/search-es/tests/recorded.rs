//! The engine against recorded Elasticsearch 8 responses on a local scripted server:
//! what it sends, and how it reads each kind of answer.
#![allow(clippy::unwrap_used)]

mod common;

use cloudpf_model::{Product, PurchaseStatus, SeqNo};
use cloudpf_search::suite::{product, purchase};
use cloudpf_search::{
    DocChange, Entity, ProductQuery, PurchaseQuery, Rejected, SearchEngine, SearchError, Versioned,
};
use cloudpf_search_es::documents::indexed;
use cloudpf_search_es::mapping::create_index_body;
use common::{Server, Step, step, tenant};
use serde_json::{Value, json};

const PRODUCTS: &str = "cloudpf-acme-products";
const PURCHASES: &str = "cloudpf-acme-purchases";

fn seq(s: &str) -> SeqNo {
    SeqNo::parse(s).unwrap()
}

fn upsert(p: Product, s: &str) -> Versioned<Product> {
    Versioned {
        key: p.product_id.clone(),
        seq: seq(s),
        change: DocChange::Upsert(p),
    }
}

fn stove(id: &str) -> Product {
    product(
        "acme",
        id,
        "Camping Stove",
        "Outdoor",
        "Trailcraft",
        "45.50",
        4,
    )
}

fn alias_missing(alias: &str) -> Step {
    step(
        "GET",
        &format!("/_alias/{alias}"),
        404,
        json!({ "error": format!("alias [{alias}] missing"), "status": 404 }),
    )
}

fn alias_exists(alias: &str) -> Step {
    step(
        "GET",
        &format!("/_alias/{alias}"),
        200,
        json!({ format!("{alias}-v1"): { "aliases": { alias: { "is_write_index": true } } } }),
    )
}

fn index_created(alias: &str) -> Step {
    let index = format!("{alias}-v1");
    step(
        "PUT",
        &format!("/{index}"),
        200,
        json!({ "acknowledged": true, "shards_acknowledged": true, "index": index }),
    )
}

fn index_not_found(index: &str) -> Value {
    let cause = json!({
        "type": "index_not_found_exception",
        "reason": format!("no such index [{index}]"),
        "resource.type": "index_or_alias",
        "resource.id": index,
        "index_uuid": "_na_",
        "index": index
    });
    let mut error = cause.clone();
    error["root_cause"] = json!([cause]);
    json!({ "error": error, "status": 404 })
}

fn item(id: &str, status: u16, result: Option<&str>, error: Option<Value>) -> Value {
    let mut update = json!({ "_index": "cloudpf-acme-products-v1", "_id": id, "status": status });
    if let Some(result) = result {
        update["result"] = json!(result);
        update["_version"] = json!(2);
        update["_seq_no"] = json!(7);
        update["_primary_term"] = json!(1);
        update["_shards"] = json!({ "total": 2, "successful": 1, "failed": 0 });
    }
    if let Some(error) = error {
        update["error"] = error;
    }
    json!({ "update": update })
}

fn bulk_reply(items: Vec<Value>) -> Value {
    let errors = items
        .iter()
        .any(|i| i["update"]["status"].as_u64().unwrap() >= 300);
    json!({ "took": 12, "errors": errors, "items": items })
}

fn rejected_429(id: &str) -> Value {
    item(
        id,
        429,
        None,
        Some(json!({
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=2048, max_coordinating_and_primary_bytes=104857600]"
        })),
    )
}

/// The steps after a products bulk: the units sold of the upserted products are
/// recounted (here the tenant has no purchases index yet, so every count is zero).
fn units_sold_refresh(ids: &[&str]) -> Vec<Step> {
    vec![
        step(
            "POST",
            &format!("/{PURCHASES}/_search"),
            404,
            index_not_found(PURCHASES),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(
                ids.iter()
                    .map(|id| item(id, 200, Some("noop"), None))
                    .collect(),
            ),
        ),
    ]
}

fn ids_of_bulk(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .step_by(2)
        .map(|l| l["update"]["_id"].as_str().unwrap().to_owned())
        .collect()
}

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

fn stored_source(p: &Product, s: &str) -> Value {
    let doc = indexed(&upsert(p.clone(), s)).unwrap();
    json!({ "source": doc["source"], "seq": doc["seq"], "deleted": false })
}

#[tokio::test]
async fn search_results_carry_hits_scores_highlights_facets_and_the_total() {
    let mut backpack = product(
        "acme",
        "p1",
        "Ultralight Laptop Backpack",
        "Outdoor",
        "Northpeak",
        "89.00",
        10,
    );
    backpack.description = "Fits a 15 inch notebook & a water bottle".into();
    let laptop = product(
        "acme",
        "p2",
        "Gaming Laptop 15",
        "Electronics",
        "Voltix",
        "1299.00",
        3,
    );
    let server = Server::start(vec![step(
        "POST",
        &format!("/{PRODUCTS}/_search"),
        200,
        json!({
            "took": 5, "timed_out": false,
            "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 },
            "hits": {
                "total": { "value": 4, "relation": "eq" },
                "max_score": 31.5,
                "hits": [
                    { "_index": "cloudpf-acme-products-v1", "_id": "p2", "_score": 31.5,
                      "_source": stored_source(&laptop, "100"),
                      "highlight": { "name": ["Gaming \u{E000}Laptop\u{E001} 15"] },
                      "sort": [31.5, "p2"] },
                    { "_index": "cloudpf-acme-products-v1", "_id": "p1", "_score": 30.25,
                      "_source": stored_source(&backpack, "101"),
                      "highlight": {
                          "name": ["Ultralight \u{E000}Laptop\u{E001} Backpack"],
                          "description": ["Fits a 15 inch \u{E000}notebook\u{E001} & a water bottle"]
                      },
                      "sort": [30.25, "p1"] }
                ]
            },
            "aggregations": {
                "category": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                    "buckets": [{ "key": "Electronics", "doc_count": 3 }, { "key": "Outdoor", "doc_count": 1 }] },
                "brand": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                    "buckets": [{ "key": "Voltix", "doc_count": 2 }, { "key": "Northpeak", "doc_count": 1 }, { "key": "Pixelon", "doc_count": 1 }] }
            }
        }),
    )])
    .await;
    let r = server
        .engine()
        .search_products(
            &tenant("acme"),
            &ProductQuery {
                text: "laptop".into(),
                limit: 2,
                ..ProductQuery::default()
            },
        )
        .await
        .unwrap();
    server.assert_done();
    assert_eq!(r.total, 4);
    assert_eq!(r.hits.len(), 2);
    assert_eq!(r.hits[0].product, laptop);
    assert_eq!(r.hits[0].score, 31.5);
    assert_eq!(
        r.hits[0].highlights.name.as_deref(),
        Some("Gaming <em>Laptop</em> 15")
    );
    assert_eq!(r.hits[0].highlights.description, None);
    assert_eq!(r.hits[1].product.price.to_string(), "89.00");
    assert_eq!(
        r.hits[1].highlights.description.as_deref(),
        Some("Fits a 15 inch <em>notebook</em> &amp; a water bottle")
    );
    let facets: Vec<(&str, u64)> = r
        .facets
        .brand
        .iter()
        .map(|f| (f.value.as_str(), f.count))
        .collect();
    assert_eq!(facets, [("Voltix", 2), ("Northpeak", 1), ("Pixelon", 1)]);
    assert_eq!(r.facets.category[0].value, "Electronics");
    assert_eq!(server.seen()[0].json()["size"], 2);
}

#[tokio::test]
async fn highlights_are_escaped_like_the_embedded_engine_and_marked_with_em() {
    let mut guide = product(
        "acme",
        "p3",
        "Kid's Bike 16\"/20\"",
        "Outdoor",
        "Northpeak",
        "149.00",
        2,
    );
    guide.description = "Fits riders 4/5 years & up".into();
    // What Elasticsearch answers with the private-use marks as tags and no encoder.
    let server = Server::start(vec![step(
        "POST",
        &format!("/{PRODUCTS}/_search"),
        200,
        json!({
            "took": 3, "timed_out": false,
            "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 },
            "hits": {
                "total": { "value": 1, "relation": "eq" }, "max_score": 12.0,
                "hits": [
                    { "_index": "cloudpf-acme-products-v1", "_id": "p3", "_score": 12.0,
                      "_source": stored_source(&guide, "100"),
                      "highlight": {
                          "name": ["\u{E000}Kid's\u{E001} Bike 16\"/20\""],
                          "description": ["Fits riders 4/5 \u{E000}years\u{E001} & up"]
                      },
                      "sort": [12.0, "p3"] }
                ]
            },
            "aggregations": {
                "category": { "buckets": [] },
                "brand": { "buckets": [] }
            }
        }),
    )])
    .await;
    let r = server
        .engine()
        .search_products(
            &tenant("acme"),
            &ProductQuery {
                text: "kid years".into(),
                limit: 10,
                ..ProductQuery::default()
            },
        )
        .await
        .unwrap();
    server.assert_done();
    let h = &r.hits[0].highlights;
    assert_eq!(
        h.name.as_deref(),
        Some("<em>Kid&#39;s</em> Bike 16&quot;/20&quot;")
    );
    assert_eq!(
        h.description.as_deref(),
        Some("Fits riders 4/5 <em>years</em> &amp; up")
    );
    let sent = server.seen()[0].json();
    assert_eq!(sent["highlight"]["encoder"], "default");
    assert_eq!(sent["highlight"]["pre_tags"], json!(["\u{E000}"]));
    assert_eq!(sent["highlight"]["post_tags"], json!(["\u{E001}"]));
    assert_eq!(
        sent["highlight"]["fields"]["name"]["matched_fields"],
        json!(["name", "name.prefix"]),
        "a name found by a prefix with a typo is highlighted too"
    );
}

#[tokio::test]
async fn a_page_past_the_result_window_has_the_total_and_facets_but_asks_for_no_hits() {
    let server = Server::start(vec![step(
        "POST",
        &format!("/{PRODUCTS}/_search"),
        200,
        json!({
            "took": 4, "timed_out": false,
            "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 },
            "hits": { "total": { "value": 12_345, "relation": "eq" }, "max_score": null, "hits": [] },
            "aggregations": {
                "category": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                    "buckets": [{ "key": "Outdoor", "doc_count": 12_345 }] },
                "brand": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                    "buckets": [{ "key": "Northpeak", "doc_count": 12_345 }] }
            }
        }),
    )])
    .await;
    let r = server
        .engine()
        .search_products(
            &tenant("acme"),
            &ProductQuery {
                offset: 10_000,
                limit: 20,
                ..ProductQuery::default()
            },
        )
        .await
        .unwrap();
    server.assert_done();
    assert_eq!(r.total, 12_345);
    assert!(r.hits.is_empty());
    assert_eq!(r.facets.category[0].count, 12_345);
    let sent = server.seen()[0].json();
    assert_eq!((&sent["from"], &sent["size"]), (&json!(0), &json!(0)));
}

#[tokio::test]
async fn a_purchase_page_straddling_the_result_window_is_cut_at_it() {
    let server = Server::start(vec![step(
        "POST",
        &format!("/{PURCHASES}/_search"),
        200,
        json!({
            "took": 4, "timed_out": false,
            "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 },
            "hits": { "total": { "value": 10_500, "relation": "eq" }, "max_score": null, "hits": [] }
        }),
    )])
    .await;
    let r = server
        .engine()
        .search_purchases(
            &tenant("acme"),
            &PurchaseQuery {
                offset: 9_990,
                limit: 50,
                ..PurchaseQuery::default()
            },
        )
        .await
        .unwrap();
    server.assert_done();
    assert_eq!(r.total, 10_500);
    let sent = server.seen()[0].json();
    let (from, size) = (
        sent["from"].as_u64().unwrap(),
        sent["size"].as_u64().unwrap(),
    );
    assert_eq!((from, size), (9_990, 10));
    assert!(from + size <= 10_000);
}

#[tokio::test]
async fn autocomplete_reads_popularity_and_marks_typo_only_matches_fuzzy() {
    let server = Server::start(vec![step(
        "POST",
        &format!("/{PRODUCTS}/_search"),
        200,
        json!({
            "took": 2, "timed_out": false,
            "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 },
            "hits": {
                "total": { "value": 2, "relation": "eq" }, "max_score": null,
                "hits": [
                    { "_index": "cloudpf-acme-products-v1", "_id": "p6", "_score": 2.0,
                      "_source": { "product_id": "p6", "name": "Camping Stove", "units_sold": 7 },
                      "matched_queries": ["word", "fuzzy"], "sort": [2.0, 7, "p6"] },
                    { "_index": "cloudpf-acme-products-v1", "_id": "p7", "_score": 1.0,
                      "_source": { "product_id": "p7", "name": "Marble Stone Coasters", "units_sold": 0 },
                      "matched_queries": ["fuzzy"], "sort": [1.0, 0, "p7"] }
                ]
            }
        }),
    )])
    .await;
    let s = server
        .engine()
        .autocomplete(&tenant("acme"), "stov", 5)
        .await
        .unwrap();
    server.assert_done();
    let got: Vec<(&str, &str, u64, bool)> = s
        .iter()
        .map(|s| {
            (
                s.text.as_str(),
                s.product_id.as_str(),
                s.popularity,
                s.fuzzy,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Camping Stove", "p6", 7, false),
            ("Marble Stone Coasters", "p7", 0, true)
        ]
    );
}

#[tokio::test]
async fn a_tenant_without_an_index_has_no_results_rather_than_an_error() {
    let server = Server::start(vec![
        step(
            "POST",
            &format!("/{PRODUCTS}/_search"),
            404,
            index_not_found(PRODUCTS),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_search"),
            404,
            index_not_found(PRODUCTS),
        ),
        step(
            "POST",
            &format!("/{PURCHASES}/_search"),
            404,
            index_not_found(PURCHASES),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_count"),
            404,
            index_not_found(PRODUCTS),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_mget"),
            404,
            index_not_found(PRODUCTS),
        ),
    ])
    .await;
    let engine = server.engine();
    let acme = tenant("acme");
    let r = engine
        .search_products(
            &acme,
            &ProductQuery {
                text: "laptop".into(),
                limit: 5,
                ..ProductQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((r.total, r.hits.len()), (0, 0));
    assert!(
        engine
            .autocomplete(&acme, "lap", 5)
            .await
            .unwrap()
            .is_empty()
    );
    let p = engine
        .search_purchases(
            &acme,
            &PurchaseQuery {
                limit: 5,
                ..PurchaseQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.total, 0);
    assert_eq!(engine.count(&acme, Entity::Products).await.unwrap(), 0);
    assert_eq!(engine.get_product(&acme, "p1").await.unwrap(), None);
    server.assert_done();
}

#[tokio::test]
async fn get_sends_the_id_in_the_body_and_returns_the_exact_document_and_sequence_number() {
    let mut p = stove("a/b?c");
    p.price = cloudpf_model::Money::parse("45.5000").unwrap();
    let source = stored_source(&p, "4966889929127384629347829164987346826483");
    let server = Server::start(vec![
        step(
            "POST",
            &format!("/{PRODUCTS}/_mget"),
            200,
            json!({ "docs": [{ "_index": "cloudpf-acme-products-v1", "_id": "a/b?c", "_version": 3,
                "_seq_no": 9, "_primary_term": 1, "found": true, "_source": source }] }),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_mget"),
            200,
            json!({ "docs": [{ "_index": "cloudpf-acme-products-v1", "_id": "gone", "_version": 4,
                "_seq_no": 10, "_primary_term": 1, "found": true,
                "_source": { "seq": "0000000000000000000000000000000000000200", "deleted": true, "units_sold": 2 } }] }),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_mget"),
            200,
            json!({ "docs": [{ "_index": "cloudpf-acme-products-v1", "_id": "never", "found": false }] }),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_count"),
            200,
            json!({ "count": 41, "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 } }),
        ),
    ])
    .await;
    let engine = server.engine();
    let acme = tenant("acme");
    let got = engine.get_product(&acme, "a/b?c").await.unwrap().unwrap();
    assert_eq!(got.doc, p);
    assert_eq!(got.doc.price.to_string(), "45.5000");
    assert_eq!(got.seq.as_str(), "4966889929127384629347829164987346826483");
    assert_eq!(
        engine.get_product(&acme, "gone").await.unwrap(),
        None,
        "a tombstone"
    );
    assert_eq!(engine.get_product(&acme, "never").await.unwrap(), None);
    assert_eq!(engine.count(&acme, Entity::Products).await.unwrap(), 41);
    server.assert_done();
    let seen = server.seen();
    assert_eq!(
        seen[0].json(),
        json!({ "docs": [{ "_id": "a/b?c", "_source": ["source", "seq", "deleted"] }] })
    );
    assert_eq!(
        seen[3].json(),
        json!({ "query": { "term": { "deleted": false } } })
    );
}

#[tokio::test]
async fn a_tenant_without_a_route_is_not_configured_for_reads_and_writes() {
    let server = Server::start(Vec::new()).await;
    let engine = server.engine();
    let other = tenant("globex");
    let write = engine
        .apply_products(&other, vec![upsert(stove("p1"), "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(&write, SearchError::NotConfigured(t) if t == "globex"),
        "{write:?}"
    );
    assert_eq!(
        write.to_string(),
        "no search backend configured for tenant globex"
    );
    let read = engine
        .search_products(&other, &ProductQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(read, SearchError::NotConfigured(_)));
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_connection_failure_is_retried_then_reported_unavailable() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = cloudpf_search_es::EsConfig::default();
    config.clusters.insert(
        "down".into(),
        cloudpf_search_es::RawCluster {
            url,
            ..Default::default()
        },
    );
    let routes = cloudpf_search_es::EsRoutes::with_env(
        &config,
        [(tenant("acme"), "down".to_owned())],
        |_| None,
    )
    .unwrap();
    let engine = cloudpf_search_es::ElasticsearchEngine::with_options(
        routes,
        cloudpf_search_es::RetryPolicy {
            max_attempts: 2,
            initial_backoff: std::time::Duration::from_millis(1),
            max_backoff: std::time::Duration::from_millis(1),
        },
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let err = engine
        .search_products(&tenant("acme"), &ProductQuery::default())
        .await
        .unwrap_err();
    match err {
        SearchError::Unavailable(m) => assert!(m.contains("failed after 2 attempts"), "{m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

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
