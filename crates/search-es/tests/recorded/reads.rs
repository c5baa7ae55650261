//! Reads: searches with hits, highlights, facets and the result window, autocomplete,
//! get by key, tenants without a route or an index, and connection failures.

use cloudpf_model::Product;
use cloudpf_search::suite::product;
use cloudpf_search::{Entity, ProductQuery, PurchaseQuery, SearchEngine, SearchError};
use cloudpf_search_es::documents::indexed;
use serde_json::{Value, json};

use crate::common::{Server, step, tenant};
use crate::steps::*;

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
                      "_source": { "product_id": "p6", "name": "Camping Stove", "units_sold": 7, "price_exact": "39.9900", "currency": "EUR" },
                      "matched_queries": ["word", "fuzzy"], "sort": [2.0, 7, "p6"] },
                    { "_index": "cloudpf-acme-products-v1", "_id": "p7", "_score": 1.0,
                      "_source": { "product_id": "p7", "name": "Marble Stone Coasters", "units_sold": 0, "price_exact": "12.5000", "currency": "EUR" },
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
    let got: Vec<(&str, &str, String, &str, u64, bool)> = s
        .iter()
        .map(|s| {
            (
                s.text.as_str(),
                s.product_id.as_str(),
                s.price.to_string(),
                s.currency.as_str(),
                s.popularity,
                s.fuzzy,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Camping Stove", "p6", "39.9900".into(), "EUR", 7, false),
            (
                "Marble Stone Coasters",
                "p7",
                "12.5000".into(),
                "EUR",
                0,
                true
            )
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
