//! The search API through `oneshot`, without a socket: auth, bad input, shapes, freshness.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_cdc::{Batch, Pipeline, handle_products, handle_purchases};
use cloudpf_engines::{SearchBackend, search_engine};
use cloudpf_lake::LocalDirSink;
use cloudpf_model::{
    Currency, LineItem, Money, Op, Product, Purchase, PurchaseStatus, TenantId, Timestamp,
};
use cloudpf_search::TantivyEngine;
use cloudpf_search_api::tenants::{RawKey, RawTenant, RawTenantsFile, Scope, hash_key};
use cloudpf_search_api::{AppState, RawConfig, Tenants, app};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const SEARCH_A: &str = "cpfs_search_key_of_shop_a";
const ADMIN_A: &str = "cpfa_admin_key_of_shop_a";
const SEARCH_B: &str = "cpfs_search_key_of_shop_b";
const ADMIN_B: &str = "cpfa_admin_key_of_shop_b";

struct Harness {
    _dir: tempfile::TempDir,
    state: AppState,
    pipeline: Pipeline,
    products: StreamWriter,
    purchases: StreamWriter,
}

fn tenants() -> Tenants {
    let tenant = |id: &str, keys: &[(Scope, &str)]| RawTenant {
        id: id.to_owned(),
        cors_origins: vec![format!("https://{id}.example")],
        keys: keys
            .iter()
            .map(|(scope, k)| RawKey::new(*scope, hash_key(k)))
            .collect(),
        search_cluster: None,
    };
    Tenants::from_raw(RawTenantsFile {
        tenants: vec![
            tenant(
                "shop-a",
                &[(Scope::Search, SEARCH_A), (Scope::Admin, ADMIN_A)],
            ),
            tenant(
                "shop-b",
                &[(Scope::Search, SEARCH_B), (Scope::Admin, ADMIN_B)],
            ),
        ],
        elasticsearch: None,
        rate_limits: None,
    })
    .unwrap()
}

fn product(t: &str, id: &str, name: &str, price: &str) -> Product {
    Product {
        tenant_id: TenantId::parse(t).unwrap(),
        product_id: id.to_owned(),
        name: name.to_owned(),
        description: String::new(),
        category: "Electronics".to_owned(),
        brand: "Voltix".to_owned(),
        price: Money::parse(price).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        stock: 3,
        tags: vec![],
        attributes: Default::default(),
        is_active: true,
        created_at: Timestamp::parse("2025-06-01T10:00:00Z").unwrap(),
        updated_at: None,
    }
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = TantivyEngine::new(dir.path());
        let pipeline = Pipeline::new(
            Arc::new(engine.clone()),
            Arc::new(LocalDirSink::new(dir.path())),
        );
        let config = RawConfig {
            data_dir: Some(dir.path().to_owned()),
            ..RawConfig::default()
        }
        .validate()
        .unwrap();
        let analytics = Arc::new(cloudpf_analytics::DataFusionEngine::new(dir.path()));
        let state = AppState::new(Arc::new(engine), tenants(), config)
            .with_analytics(analytics)
            .unwrap();
        let mut h = Harness {
            _dir: dir,
            state,
            pipeline,
            products: StreamWriter::new("products"),
            purchases: StreamWriter::new("purchases"),
        };
        h.put_products(vec![
            product("shop-a", "p1", "Gaming Laptop 15", "1299.00"),
            product("shop-a", "p2", "Wireless Mouse", "19.99"),
            product("shop-b", "p1", "Laptop Sleeve Secret", "15.00"),
        ])
        .await;
        let purchase = Purchase {
            tenant_id: TenantId::parse("shop-a").unwrap(),
            purchase_id: "o-1".into(),
            customer_id: "c-1".into(),
            items: vec![LineItem {
                product_id: "p1".into(),
                name: "Gaming Laptop 15".into(),
                quantity: 1,
                unit_price: Money::parse("1299.00").unwrap(),
            }],
            total_amount: Money::parse("1299.00").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            status: PurchaseStatus::Paid,
            payment_method: "card".into(),
            shipping_country: "DE".into(),
            shipping_city: "Berlin".into(),
            created_at: Timestamp::parse("2025-06-02T10:00:00Z").unwrap(),
            updated_at: None,
        };
        h.put_purchases(vec![purchase]).await;
        h
    }

    async fn put_purchases(&mut self, items: Vec<Purchase>) {
        let records = items
            .iter()
            .map(|p| {
                self.purchases.record(
                    Op::Insert,
                    events::purchase_keys(p),
                    Some(events::purchase_item(p)),
                    None,
                    p.created_at.utc(),
                )
            })
            .collect();
        let report =
            handle_purchases(Batch::from_event(events::event(records)), &self.pipeline).await;
        assert_eq!(report.failed_from, None);
    }

    async fn put_products(&mut self, items: Vec<Product>) {
        let records = items
            .iter()
            .map(|p| {
                self.products.record(
                    Op::Insert,
                    events::product_keys(p),
                    Some(events::product_item(p)),
                    None,
                    p.created_at.utc(),
                )
            })
            .collect();
        let report =
            handle_products(Batch::from_event(events::event(records)), &self.pipeline).await;
        assert_eq!(report.failed_from, None);
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = app(self.state.clone())
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, json)
    }

    async fn get(&self, uri: &str, key: Option<&str>) -> (StatusCode, Value) {
        let headers: Vec<(&str, &str)> = key.map(|k| vec![("x-api-key", k)]).unwrap_or_default();
        let (status, _, json) = self.call(Method::GET, uri, &headers, Body::empty()).await;
        (status, json)
    }
}

fn code(json: &Value) -> &str {
    json["error"]["code"].as_str().unwrap_or("<no error code>")
}

const ENDPOINTS: [(&str, Scope); 4] = [
    ("/search/shop-a?q=laptop", Scope::Search),
    ("/search/shop-a/products?q=laptop", Scope::Search),
    ("/search/shop-a/autocomplete?q=lap", Scope::Search),
    ("/search/shop-a/purchases", Scope::Admin),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_enforces_the_full_auth_matrix() {
    let h = Harness::new().await;
    for (uri, needs) in ENDPOINTS {
        let (status, headers, json) = h.call(Method::GET, uri, &[], Body::empty()).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::UNAUTHORIZED, "missing_api_key"),
            "{uri}"
        );
        assert_eq!(
            headers.get("www-authenticate").map(|v| v.to_str().unwrap()),
            Some("Bearer")
        );
        let (status, json) = h.get(uri, Some("cpfs_not_a_key")).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            "{uri}"
        );
        let (status, json) = h.get(uri, Some(SEARCH_B)).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::FORBIDDEN, "wrong_tenant"),
            "{uri}"
        );
        let (status, json) = h.get(uri, Some(SEARCH_A)).await;
        if needs == Scope::Admin {
            assert_eq!(
                (status, code(&json)),
                (StatusCode::FORBIDDEN, "insufficient_scope"),
                "{uri}"
            );
        } else {
            assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        }
        let (status, json) = h.get(uri, Some(ADMIN_A)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        let bearer = format!("Bearer {ADMIN_A}");
        let (status, _, _) = h
            .call(
                Method::GET,
                uri,
                &[("authorization", &bearer)],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{uri} with a bearer token");
        // Regression, issue #10: a tenant that does not exist answers exactly like one
        // that does, so no key holder can enumerate the shops served here.
        let unknown = uri.replace("shop-a", "shop-z");
        let other = uri.replace("shop-a", "shop-b");
        let (status, json) = h.get(&unknown, Some(ADMIN_A)).await;
        let (other_status, other_json) = h.get(&other, Some(ADMIN_A)).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::FORBIDDEN, "wrong_tenant"),
            "{unknown}"
        );
        assert_eq!(
            (
                other_status,
                json["error"]["message"]
                    .as_str()
                    .map(|m| m.replace("shop-z", "shop-b"))
            ),
            (
                status,
                other_json["error"]["message"].as_str().map(str::to_owned)
            ),
            "{unknown} vs {other}"
        );
        // `%FF` does not decode to text: a 400 too, not a 500 (issue #10).
        for bad in ["Shop-A", "%2e%2e", "shop_a", "-shop", "%FF", "shop%00a"] {
            let invalid = uri.replace("shop-a", bad);
            let (status, json) = h.get(&invalid, Some(ADMIN_A)).await;
            assert_eq!(
                (status, code(&json)),
                (StatusCode::BAD_REQUEST, "invalid_tenant_id"),
                "{invalid}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_is_answered_with_its_own_4xx() {
    let h = Harness::new().await;
    let long = "a".repeat(201);
    let many = ["w"; 11].join("+");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("/search/shop-a/products?q={long}"),
            "query_too_long",
        ),
        (
            format!("/search/shop-a/products?q={many}"),
            "too_many_terms",
        ),
        // Regression, issue #10: punctuation splits words for the analyzer, so it does
        // for the limit too (`a.a.a…` was one word to the limit and 100 to the engine).
        (
            format!("/search/shop-a/products?q={}", ["a"; 100].join(".")),
            "too_many_terms",
        ),
        (
            format!("/search/shop-a/autocomplete?q={}", ["lap"; 11].join("-")),
            "too_many_terms",
        ),
        ("/search/shop-a/products?page=0".into(), "out_of_range"),
        ("/search/shop-a/products?size=1000".into(), "out_of_range"),
        (
            "/search/shop-a/products?page=5000&size=100".into(),
            "out_of_range",
        ),
        ("/search/shop-a/products?page=abc".into(), "invalid_number"),
        (
            "/search/shop-a/products?min_price=cheap".into(),
            "invalid_number",
        ),
        (
            "/search/shop-a/products?min_price=-1".into(),
            "invalid_number",
        ),
        (
            "/search/shop-a/products?min_price=50&max_price=10".into(),
            "invalid_range",
        ),
        (
            "/search/shop-a/products?in_stock=maybe".into(),
            "invalid_parameter",
        ),
        (
            "/search/shop-a/products?sort=cheapest".into(),
            "unknown_sort",
        ),
        (
            "/search/shop-a/products?categroy=Electronics".into(),
            "unknown_parameter",
        ),
        (
            "/search/shop-a/products?q=a&q=b".into(),
            "invalid_parameter",
        ),
        ("/search/shop-a/autocomplete".into(), "missing_parameter"),
        (
            "/search/shop-a/autocomplete?q=la&size=21".into(),
            "out_of_range",
        ),
        ("/search/shop-a?q=".into(), "missing_parameter"),
        (
            "/search/shop-a/purchases?from=yesterday".into(),
            "invalid_date",
        ),
        (
            "/search/shop-a/purchases?from=2025-06-10&to=2025-06-01".into(),
            "invalid_range",
        ),
        (
            "/search/shop-a/purchases?status=lost".into(),
            "invalid_parameter",
        ),
        (
            "/search/shop-a/purchases?max_total=1e".into(),
            "invalid_number",
        ),
    ];
    for (uri, expected) in cases {
        let (status, json) = h.get(&uri, Some(ADMIN_A)).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::BAD_REQUEST, expected),
            "{uri}: {json}"
        );
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{uri}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_are_found_by_a_typo_through_http_with_exact_money_and_facets() {
    let h = Harness::new().await;
    let (status, json) = h
        .get(
            "/search/shop-a/products?q=lpatop&sort=relevance",
            Some(SEARCH_A),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["total"], 1);
    assert_eq!(json["hits"][0]["product"]["product_id"], "p1");
    assert_eq!(
        json["hits"][0]["product"]["price"], "1299.00",
        "money is an exact decimal string"
    );
    assert_eq!(
        json["hits"][0]["highlights"]["name"],
        "Gaming <em>Laptop</em> 15"
    );
    assert_eq!(
        json["facets"]["category"][0],
        serde_json::json!({"value": "Electronics", "count": 1})
    );
    // Query syntax is just text, never an error or an escape to other documents.
    for q in ["name:laptop%20OR%20*", "%22laptop", "laptop)", "*"] {
        let (status, json) = h
            .get(&format!("/search/shop-a/products?q={q}"), Some(SEARCH_A))
            .await;
        assert_eq!(status, StatusCode::OK, "{q}: {json}");
        assert!(
            json["hits"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["product"]["tenant_id"] == "shop-a")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_finds_nothing_says_what_would_find_something() {
    // Issue #16: "lptp" is two edits from "laptop", beyond a four-letter word's typo budget.
    let h = Harness::new().await;
    let (status, json) = h
        .get("/search/shop-a/products?q=gaming+lptp", Some(SEARCH_A))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["total"], 0, "{json}");
    assert_eq!(json["did_you_mean"], "gaming laptop", "{json}");
    let (_, again) = h
        .get("/search/shop-a/products?q=gaming+laptop", Some(SEARCH_A))
        .await;
    assert_eq!(again["total"], 1);
    assert!(again.get("did_you_mean").is_none(), "{again}");
    // Only shop-a's catalog is consulted: shop-b's "Sleeve" is no suggestion here.
    let (_, other) = h
        .get("/search/shop-a/products?q=slevee", Some(SEARCH_A))
        .await;
    assert_eq!(other["total"], 0, "{other}");
    assert!(other.get("did_you_mean").is_none(), "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_box_shows_purchases_only_to_admin_keys() {
    let h = Harness::new().await;
    let (_, as_search) = h.get("/search/shop-a?q=gaming", Some(SEARCH_A)).await;
    assert_eq!(as_search["products"]["total"], 1);
    assert!(as_search.get("purchases").is_none(), "{as_search}");
    let (_, as_admin) = h.get("/search/shop-a?q=gaming", Some(ADMIN_A)).await;
    assert_eq!(as_admin["purchases"]["total"], 1);
    assert_eq!(as_admin["purchases"]["hits"][0]["purchase_id"], "o-1");
    assert_eq!(as_admin["purchases"]["hits"][0]["total_amount"], "1299.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_searchable_and_suggested_within_a_second() {
    let mut h = Harness::new().await;
    let (_, before) = h
        .get("/search/shop-a/autocomplete?q=ergo", Some(SEARCH_A))
        .await;
    assert_eq!(before["suggestions"], serde_json::json!([]));
    h.put_products(vec![product("shop-a", "p3", "Ergonomic Keyboard", "89.00")])
        .await;
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (_, s) = h
            .get("/search/shop-a/autocomplete?q=ergo", Some(SEARCH_A))
            .await;
        let (_, p) = h
            .get("/search/shop-a/products?q=ergonomic", Some(SEARCH_A))
            .await;
        if s["suggestions"][0]["text"] == "Ergonomic Keyboard" && p["total"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not visible within 1 s: {s} {p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id_and_every_error_is_json() {
    let h = Harness::new().await;
    for (method, uri) in [
        (Method::GET, "/health"),
        (Method::GET, "/nope"),
        (Method::DELETE, "/search/shop-a/products"),
        (Method::GET, "/search/shop-a/products"),
    ] {
        let (status, headers, json) = h.call(method.clone(), uri, &[], Body::empty()).await;
        assert!(
            headers.get("x-request-id").is_some_and(|v| v.len() >= 32),
            "{method} {uri}"
        );
        if status.is_client_error() {
            assert!(json["error"]["code"].is_string(), "{method} {uri}: {json}");
        }
    }
    let (status, _, json) = h.call(Method::GET, "/nope", &[], Body::empty()).await;
    assert_eq!((status, code(&json)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _, json) = h
        .call(
            Method::DELETE,
            "/search/shop-a/products",
            &[("x-api-key", SEARCH_A)],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let big = Body::from(vec![b'x'; 100_000]);
    let (status, _, json) = h
        .call(
            Method::POST,
            "/search/shop-a/products",
            &[("x-api-key", SEARCH_A), ("content-length", "100000")],
            big,
        )
        .await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_tenants_own_origins() {
    let h = Harness::new().await;
    let preflight = |origin: &'static str, uri: &'static str| {
        let h = &h;
        async move {
            let headers = [
                ("origin", origin),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-api-key"),
            ];
            let (_, headers, _) = h.call(Method::OPTIONS, uri, &headers, Body::empty()).await;
            headers
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        preflight("https://shop-a.example", "/search/shop-a/products")
            .await
            .as_deref(),
        Some("https://shop-a.example")
    );
    assert_eq!(
        preflight("https://shop-b.example", "/search/shop-a/products").await,
        None
    );
    assert_eq!(
        preflight("https://evil.example", "/search/shop-a/autocomplete").await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_docs_health_and_metrics_describe_the_service() {
    let h = Harness::new().await;
    let (status, doc) = h.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/search/{tenant_id}",
        "/search/{tenant_id}/products",
        "/search/{tenant_id}/autocomplete",
        "/search/{tenant_id}/purchases",
        "/health",
        "/ready",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["paths"]["/analytics/{tenant_id}"]["get"].is_object());
    assert!(doc["paths"]["/analytics/{tenant_id}/report"]["post"]["requestBody"].is_object());
    // Clients see the report filters they may send.
    let filters = &doc["components"]["schemas"]["ReportFilters"]["properties"];
    for f in ["status", "country", "category"] {
        assert!(
            filters[f].is_object(),
            "{f} missing from ReportFilters: {filters}"
        );
    }
    let params: Vec<&str> = doc["paths"]["/search/{tenant_id}/products"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "tenant_id",
        "q",
        "category",
        "brand",
        "min_price",
        "max_price",
        "in_stock",
        "sort",
        "page",
        "size",
    ] {
        assert!(params.contains(&p), "{p} not documented: {params:?}");
    }
    let (status, page) = h.get("/docs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str()
            .is_some_and(|p| p.contains("GET /search/{tenant_id}/autocomplete"))
    );
    assert_eq!(h.get("/health", None).await.1["status"], "ok");
    assert_eq!(h.get("/ready", None).await.1["tenants"], 2);

    h.get("/search/shop-a/products?q=laptop", Some(SEARCH_A))
        .await;
    let (_, metrics) = h.get("/metrics", None).await;
    let text = metrics.as_str().unwrap();
    assert!(text.contains(r#"cloudpf_http_requests_total{route="/search/{tenant_id}/products",method="GET",status="200"} 1"#), "{text}");
    // Regression, issue #10: the public scrape names no tenant.
    assert!(
        !text.contains("shop-a") && !text.contains("shop-b"),
        "{text}"
    );
    assert!(
        text.contains("cloudpf_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(!text.contains(SEARCH_A), "keys never appear in metrics");
}

/// Regression, issue #10: `/metrics` listed every tenant id with document counts to
/// anyone, and opened every index of every tenant on each scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_tenant_metrics_need_the_operators_metrics_token() {
    const TOKEN: &str = "cpfm_operator_metrics_token";
    let h = Harness::new().await;
    let config = RawConfig {
        data_dir: Some(h.state.config.data_dir.clone()),
        metrics_token_sha256: Some(hash_key(TOKEN)),
        ..RawConfig::default()
    }
    .validate()
    .unwrap();
    let state = AppState::new(h.state.engine.clone(), tenants(), config);
    let call = |uri: &'static str, headers: Vec<(&'static str, String)>| {
        let state = state.clone();
        async move {
            let mut req = Request::get(uri);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let response = app(state)
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    call(
        "/search/shop-a/products?q=laptop",
        vec![("x-api-key", SEARCH_A.into())],
    )
    .await;
    call(
        "/search/shop-b/products?q=laptop",
        vec![("x-api-key", SEARCH_A.into())],
    )
    .await;
    call(
        "/search/shop-zz/products?q=laptop",
        vec![("x-api-key", SEARCH_A.into())],
    )
    .await;

    let (status, public) = call("/metrics", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !public.contains("shop-") && !public.contains("tenant="),
        "{public}"
    );
    for wrong in [SEARCH_A, ADMIN_A, "cpfm_guess"] {
        let (_, text) = call(
            "/metrics",
            vec![("authorization", format!("Bearer {wrong}"))],
        )
        .await;
        assert!(!text.contains("shop-a"), "{wrong}: {text}");
    }
    let (_, private) = call(
        "/metrics",
        vec![("authorization", format!("Bearer {TOKEN}"))],
    )
    .await;
    assert!(
        private.contains(r#"cloudpf_tenant_http_requests_total{tenant="shop-a",outcome="ok"} 1"#),
        "{private}"
    );
    assert!(
        private.contains(
            r#"cloudpf_tenant_http_requests_total{tenant="shop-b",outcome="client_error"} 1"#
        ),
        "{private}"
    );
    assert!(
        !private.contains("shop-zz"),
        "unknown tenants get no series: {private}"
    );
    assert!(private.contains("cloudpf_http_requests_total"), "{private}");
}

fn report_request(body: &str, key: &str) -> (Method, String, Vec<(String, String)>, Body) {
    (
        Method::POST,
        "/analytics/shop-a/report".to_owned(),
        vec![
            ("x-api-key".to_owned(), key.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        Body::from(body.to_owned()),
    )
}

impl Harness {
    async fn post(&self, body: &str, key: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let (method, uri, headers, body) = report_request(body, key);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.call(method, &uri, &headers, body).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_need_an_admin_key_of_the_tenant() {
    let h = Harness::new().await;
    let uri = "/analytics/shop-a?from=2025-06-01&to=2025-06-30";
    assert_eq!(code(&h.get(uri, None).await.1), "missing_api_key");
    let (status, json) = h.get(uri, Some(SEARCH_A)).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert_eq!(code(&h.get(uri, Some(SEARCH_B)).await.1), "wrong_tenant");
    let spec = r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30"}"#;
    let (status, _, json) = h.post(spec, SEARCH_A).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let (status, _, json) = h.post(spec, SEARCH_B).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::FORBIDDEN, "wrong_tenant")
    );

    let (status, dashboard) = h.get(uri, Some(ADMIN_A)).await;
    assert_eq!(status, StatusCode::OK, "{dashboard}");
    assert_eq!(dashboard["summary"]["columns"][1], "revenue");
    assert_eq!(
        dashboard["summary"]["rows"],
        serde_json::json!([["1", "1299.00", "1", "1299.00", "1", "1", "0", "0"]])
    );
    assert_eq!(
        dashboard["daily"]["rows"],
        serde_json::json!([["2025-06-02", "1", "1299.00"]])
    );
    assert_eq!(dashboard["top_products"]["rows"][0][0], "p1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_comes_as_json_or_as_a_csv_download() {
    let h = Harness::new().await;
    let (status, _, json) = h
        .post(
            r#"{"report": "by_status", "from": "2025-06-01", "to": "2025-06-30"}"#,
            ADMIN_A,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["rows"], serde_json::json!([["paid", "1", "1299.00"]]));
    let (_, _, json) = h.post(r#"{"report": "timeseries", "from": "2025-06-01", "to": "2025-06-30", "granularity": "month"}"#, ADMIN_A).await;
    assert_eq!(
        json["rows"],
        serde_json::json!([["2025-06", "1", "1299.00"]])
    );
    let (status, headers, body) = h.post(r#"{"report": "top_products", "from": "2025-06-01", "to": "2025-06-30", "limit": 5, "format": "csv"}"#, ADMIN_A).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"shop-a-top_products-2025-06-01-2025-06-30.csv\""
    );
    assert_eq!(
        body.as_str().unwrap(),
        "product_id,product_name,category,units,revenue,orders\np1,Gaming Laptop 15,Electronics,1,1299.00,1\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_filters_narrow_the_rows_and_categories_come_from_the_catalog() {
    let h = Harness::new().await;
    let (status, _, json) = h
        .post(
            r#"{"report": "by_category", "from": "2025-06-01", "to": "2025-06-30"}"#,
            ADMIN_A,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json["rows"],
        serde_json::json!([["Electronics", "1", "1299.00", "1"]])
    );
    let (_, _, json) = h
        .post(
            r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30", "filters": {"country": "FR"}}"#,
            ADMIN_A,
        )
        .await;
    assert_eq!(
        json["rows"],
        serde_json::json!([["0", "0.00", "0", "0.00", "0", "0", "0", "0"]])
    );
    let (_, _, json) = h
        .post(
            r#"{"report": "rfm", "from": "2025-06-01", "to": "2025-06-30", "filters": {"status": "paid", "country": "DE"}}"#,
            ADMIN_A,
        )
        .await;
    assert_eq!(json["columns"][7], "segment");
    assert_eq!(json["rows"][0][0], "c-1");
    assert_eq!(json["rows"][0][3], "1299.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_report_specs_are_answered_with_400_naming_the_problem() {
    let h = Harness::new().await;
    let cases = [
        (
            r#"{"report": "sql", "from": "2025-06-01", "to": "2025-06-30"}"#,
            "unknown_report",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-30", "to": "2025-06-01"}"#,
            "invalid_range",
        ),
        (
            r#"{"report": "summary", "from": "2024-01-01", "to": "2025-06-30"}"#,
            "range_too_large",
        ),
        (
            r#"{"report": "summary", "from": "2025-13-01", "to": "2025-06-30"}"#,
            "invalid_date",
        ),
        (
            r#"{"report": "summary", "from": "yesterday", "to": "2025-06-30"}"#,
            "invalid_date",
        ),
        (
            r#"{"report": "top_products", "from": "2025-06-01", "to": "2025-06-30", "limit": 0}"#,
            "out_of_range",
        ),
        (
            r#"{"report": "top_products", "from": "2025-06-01", "to": "2025-06-30", "limit": 1001}"#,
            "out_of_range",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30", "filters": {"status": "lost"}}"#,
            "invalid_filter",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30", "filters": {"country": ""}}"#,
            "invalid_filter",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30", "filters": {"category": "Electronics"}}"#,
            "invalid_filter",
        ),
        (
            r#"{"report": "by_category", "from": "2025-06-01", "to": "2025-06-30", "filters": {"category": "a\u0000b"}}"#,
            "invalid_filter",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30", "filters": {"tenant_id": "shop-b"}}"#,
            "invalid_body",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30", "format": "xml"}"#,
            "invalid_parameter",
        ),
        (
            r#"{"report": "timeseries", "from": "2025-06-01", "to": "2025-06-30", "granularity": "hour"}"#,
            "invalid_parameter",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-01", "to": "2025-06-30", "sql": "DROP TABLE x"}"#,
            "invalid_body",
        ),
        (
            r#"{"report": "summary", "from": "2025-06-01""#,
            "invalid_body",
        ),
        (
            r#"{"from": "2025-06-01", "to": "2025-06-30"}"#,
            "invalid_body",
        ),
    ];
    for (spec, expected) in cases {
        let (status, _, json) = h.post(spec, ADMIN_A).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::BAD_REQUEST, expected),
            "{spec}: {json}"
        );
    }
    let (status, json) = h
        .get("/analytics/shop-a?from=2025-06-01", Some(ADMIN_A))
        .await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::BAD_REQUEST, "missing_parameter")
    );

    // Without an analytics engine the endpoints say so instead of failing obscurely.
    let mut bare = h.state.clone();
    bare.analytics = None;
    let response = app(bare)
        .oneshot(
            Request::get("/analytics/shop-a?from=2025-06-01&to=2025-06-30")
                .header("x-api-key", ADMIN_A)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_a_search_backend_is_answered_503_naming_the_problem() {
    let text = format!(
        r#"
[[tenants]]
id = "shop-a"
keys = [{{ scope = "search", sha256 = "{a}" }}]

[[tenants]]
id = "shop-b"
search_cluster = "main"
keys = [{{ scope = "search", sha256 = "{b}" }}]

[elasticsearch.clusters.main]
url = "http://127.0.0.1:9"
"#,
        a = hash_key(SEARCH_A),
        b = hash_key(SEARCH_B)
    );
    let tenants = Tenants::from_toml(&text, "test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = search_engine(
        SearchBackend::Elasticsearch,
        dir.path(),
        &tenants.routing(),
        Default::default(),
    )
    .unwrap();
    let config = RawConfig {
        data_dir: Some(dir.path().to_owned()),
        ..RawConfig::default()
    }
    .validate()
    .unwrap();
    let state = AppState::new(engine, tenants, config);
    let request = Request::get("/search/shop-a/products?q=laptop")
        .header("x-api-key", SEARCH_A)
        .body(Body::empty())
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(code(&json), "search_not_configured");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no search backend is configured for this tenant"),
        "{json}"
    );
}

#[test]
fn the_tenants_file_routes_tenants_to_clusters_and_names_a_missing_one() {
    let file = |cluster: &str| {
        format!(
            "[[tenants]]\nid = \"shop-a\"\nsearch_cluster = \"{cluster}\"\n\n[elasticsearch.clusters.es-a]\nurl = \"http://es-a:9200\"\n"
        )
    };
    let routed = Tenants::from_toml(&file("es-a"), "t").unwrap();
    let routes = routed.routing().elasticsearch_routes().unwrap();
    let shop_a = cloudpf_model::TenantId::parse("shop-a").unwrap();
    assert_eq!(
        routes.cluster_for(&shop_a).unwrap().url,
        "http://es-a:9200/"
    );
    let wrong = Tenants::from_toml(&file("es-z"), "t").unwrap();
    let error = wrong
        .routing()
        .elasticsearch_routes()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"es-z\", which is not configured"),
        "{error}"
    );
    let none = Tenants::from_toml("[[tenants]]\nid = \"shop-a\"\n", "t").unwrap();
    assert!(
        none.routing()
            .elasticsearch_routes()
            .unwrap_err()
            .to_string()
            .contains("needs an [elasticsearch] table")
    );
}

/// An engine whose product search never answers: what a hung backend looks like.
#[derive(Debug)]
struct Stalled(TantivyEngine);

#[async_trait::async_trait]
impl cloudpf_search::SearchEngine for Stalled {
    async fn purge_tenant(&self, t: &TenantId) -> Result<Vec<String>, cloudpf_search::SearchError> {
        self.0.purge_tenant(t).await
    }
    async fn apply_products(
        &self,
        t: &TenantId,
        c: Vec<cloudpf_search::Versioned<Product>>,
    ) -> Result<cloudpf_search::ApplyOutcome, cloudpf_search::SearchError> {
        self.0.apply_products(t, c).await
    }
    async fn apply_purchases(
        &self,
        t: &TenantId,
        c: Vec<cloudpf_search::Versioned<Purchase>>,
    ) -> Result<cloudpf_search::ApplyOutcome, cloudpf_search::SearchError> {
        self.0.apply_purchases(t, c).await
    }
    async fn get_product(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<cloudpf_search::Stored<Product>>, cloudpf_search::SearchError> {
        self.0.get_product(t, id).await
    }
    async fn get_purchase(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<cloudpf_search::Stored<Purchase>>, cloudpf_search::SearchError> {
        self.0.get_purchase(t, id).await
    }
    async fn count(
        &self,
        t: &TenantId,
        e: cloudpf_search::Entity,
    ) -> Result<u64, cloudpf_search::SearchError> {
        self.0.count(t, e).await
    }
    async fn search_products(
        &self,
        _: &TenantId,
        _: &cloudpf_search::ProductQuery,
    ) -> Result<cloudpf_search::ProductResults, cloudpf_search::SearchError> {
        std::future::pending().await
    }
    async fn autocomplete(
        &self,
        t: &TenantId,
        p: &str,
        n: usize,
    ) -> Result<Vec<cloudpf_search::Suggestion>, cloudpf_search::SearchError> {
        self.0.autocomplete(t, p, n).await
    }
    async fn search_purchases(
        &self,
        t: &TenantId,
        q: &cloudpf_search::PurchaseQuery,
    ) -> Result<cloudpf_search::PurchaseResults, cloudpf_search::SearchError> {
        self.0.search_purchases(t, q).await
    }
}

// Time is paused: the timeout fires as soon as nothing else can run, without waiting.
#[tokio::test(start_paused = true)]
async fn a_request_the_engine_never_answers_ends_in_a_json_408() {
    let dir = tempfile::tempdir().unwrap();
    let config = RawConfig {
        data_dir: Some(dir.path().to_owned()),
        limits: toml::from_str("request_timeout_ms = 250").unwrap(),
        ..RawConfig::default()
    }
    .validate()
    .unwrap();
    let engine = Arc::new(Stalled(TantivyEngine::new(dir.path())));
    let state = AppState::new(engine, tenants(), config);
    let request = Request::get("/search/shop-a/products?q=laptop")
        .header("x-api-key", SEARCH_A)
        .body(Body::empty())
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(response.headers().contains_key("x-request-id"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(code(&json), "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_bound_of_28_digits_is_answered_not_a_crash() {
    let h = Harness::new().await;
    let (status, json) = h
        .get(
            "/search/shop-a/products?q=laptop&min_price=9999999999999999999999999999",
            Some(SEARCH_A),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["total"], 0);
    let (status, json) = h
        .get(
            "/search/shop-a/products?q=laptop&max_price=9999999999999999999999999999",
            Some(SEARCH_A),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["total"], 1);
}

/// Regression, issue #10: a search key sits in a public web page, so whatever it is sent
/// anyone can read; exact units sold would tell a competitor the shop's sales.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_keys_get_a_rank_and_only_admin_keys_get_units_sold() {
    let h = Harness::new().await;
    let uri = "/search/shop-a/autocomplete?q=gam";
    let (status, public) = h.get(uri, Some(SEARCH_A)).await;
    assert_eq!(status, StatusCode::OK, "{public}");
    let first = &public["suggestions"][0];
    assert_eq!(first["product_id"], "p1", "{public}");
    assert_eq!(first["rank"], 1);
    assert!(
        public["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("popularity").is_none()),
        "{public}"
    );
    let (_, private) = h.get(uri, Some(ADMIN_A)).await;
    assert_eq!(private["suggestions"][0]["popularity"], 1, "{private}");
    assert_eq!(private["suggestions"][0]["rank"], 1);
}

/// Issue #10: every API key is held to its scope's rate from the tenants file; a key over
/// it gets a JSON 429 with `Retry-After`, and other keys are not slowed by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after_and_other_keys_do_not() {
    let h = Harness::new().await;
    let file: RawTenantsFile = toml::from_str(&format!(
        r#"
        [[tenants]]
        id = "shop-a"
        [[tenants.keys]]
        scope = "search"
        sha256 = "{}"
        [[tenants.keys]]
        scope = "admin"
        sha256 = "{}"
        [[tenants]]
        id = "shop-b"
        [[tenants.keys]]
        scope = "search"
        sha256 = "{}"
        [rate_limits.search]
        per_second = 1
        burst = 3
        "#,
        hash_key(SEARCH_A),
        hash_key(ADMIN_A),
        hash_key(SEARCH_B)
    ))
    .unwrap();
    let state = AppState::new(
        h.state.engine.clone(),
        Tenants::from_raw(file).unwrap(),
        (*h.state.config).clone(),
    );
    let get = |uri: &'static str, key: &'static str| {
        let state = state.clone();
        async move {
            let request = Request::get(uri)
                .header("x-api-key", key)
                .body(Body::empty())
                .unwrap();
            let response = app(state).oneshot(request).await.unwrap();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                retry,
                serde_json::from_slice::<Value>(&bytes).unwrap(),
            )
        }
    };
    let mut limited = None;
    for _ in 0..10 {
        let (status, retry, json) = get("/search/shop-a/products?q=laptop", SEARCH_A).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((retry, json));
            break;
        }
        assert_eq!(status, StatusCode::OK, "{json}");
    }
    let (retry, json) =
        limited.expect("ten requests in a row at 1/s with a burst of 3 were all served");
    assert_eq!(code(&json), "rate_limited");
    let seconds: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&seconds), "Retry-After: {seconds}");
    // The admin key of the same shop and another shop's search key still get through.
    assert_eq!(
        get("/search/shop-a/purchases", ADMIN_A).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get("/search/shop-b/products?q=laptop", SEARCH_B).await.0,
        StatusCode::OK
    );
    // Invalid settings are refused when the file is read.
    let zero = Tenants::from_toml("[rate_limits.admin]\nper_second = 0\nburst = 1\n", "t");
    assert!(
        zero.unwrap_err()
            .to_string()
            .contains("rate_limits.admin.per_second")
    );
}

/// Issue #10: every endpoint × every kind of caller, with the status each must get, and
/// not one byte of the other shop's data in any answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_isolation_holds_for_every_endpoint_and_every_caller() {
    let mut h = Harness::new().await;
    h.put_purchases(vec![Purchase {
        tenant_id: TenantId::parse("shop-b").unwrap(),
        purchase_id: "o-secret-b".into(),
        customer_id: "c-secret-b".into(),
        items: vec![LineItem {
            product_id: "p1".into(),
            name: "Laptop Sleeve Secret".into(),
            quantity: 2,
            unit_price: Money::parse("15.00").unwrap(),
        }],
        total_amount: Money::parse("30.00").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        status: PurchaseStatus::Paid,
        payment_method: "card".into(),
        shipping_country: "FR".into(),
        shipping_city: "Lyon".into(),
        created_at: Timestamp::parse("2025-06-03T10:00:00Z").unwrap(),
        updated_at: None,
    }])
    .await;
    let report = r#"{"report": "top_products", "from": "2025-06-01", "to": "2025-06-30"}"#;
    let endpoints: Vec<(Method, String, Option<&str>, Scope)> = ENDPOINTS
        .iter()
        .map(|(uri, scope)| (Method::GET, (*uri).to_owned(), None, *scope))
        .chain([
            (
                Method::GET,
                "/analytics/shop-a?from=2025-06-01&to=2025-06-30".to_owned(),
                None,
                Scope::Admin,
            ),
            (
                Method::POST,
                "/analytics/shop-a/report".to_owned(),
                Some(report),
                Scope::Admin,
            ),
        ])
        .collect();
    for (method, uri, body, needs) in &endpoints {
        let callers: [(Option<&str>, StatusCode, Option<&str>); 5] = [
            (None, StatusCode::UNAUTHORIZED, Some("missing_api_key")),
            (Some(SEARCH_B), StatusCode::FORBIDDEN, Some("wrong_tenant")),
            (Some(ADMIN_B), StatusCode::FORBIDDEN, Some("wrong_tenant")),
            if *needs == Scope::Admin {
                (
                    Some(SEARCH_A),
                    StatusCode::FORBIDDEN,
                    Some("insufficient_scope"),
                )
            } else {
                (Some(SEARCH_A), StatusCode::OK, None)
            },
            (Some(ADMIN_A), StatusCode::OK, None),
        ];
        for (key, want_status, want_code) in callers {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(k) = key {
                headers.push(("x-api-key", k));
            }
            let request_body = body.map_or_else(Body::empty, |b| Body::from(b.to_owned()));
            let (status, _, json) = h.call(method.clone(), uri, &headers, request_body).await;
            assert_eq!(status, want_status, "{method} {uri} as {key:?}: {json}");
            if let Some(c) = want_code {
                assert_eq!(code(&json), c, "{method} {uri} as {key:?}");
            }
            let text = json.to_string().to_lowercase();
            for foreign in ["secret", "shop-b", "c-secret-b"] {
                assert!(
                    !text.contains(foreign),
                    "{method} {uri} as {key:?} leaked {foreign}: {text}"
                );
            }
        }
    }
    // And the other way round: shop-b sees its own data, and none of shop-a's.
    let (status, json) = h.get("/search/shop-b/purchases", Some(ADMIN_B)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["hits"][0]["customer_id"], "c-secret-b");
    let text = json.to_string().to_lowercase();
    assert!(!text.contains("gaming") && !text.contains("o-1"), "{text}");
}

/// Issue #10: SQL injection through every field of a report spec. Fields with a closed
/// set of values refuse it (400); free-text filters are bound parameters, so the payload
/// is only a value that matches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_specs_carrying_sql_injection_are_refused_or_match_nothing() {
    let h = Harness::new().await;
    let payload = "x' OR '1'='1'; DROP TABLE purchases_csv; --";
    let base =
        serde_json::json!({"report": "top_products", "from": "2025-06-01", "to": "2025-06-30"});
    let with = |field: &str, value: Value| {
        let mut spec = base.clone();
        spec[field] = value;
        spec.to_string()
    };
    for field in ["report", "from", "to", "granularity", "format"] {
        let (status, _, json) = h.post(&with(field, Value::from(payload)), ADMIN_A).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {json}");
    }
    for limit in [
        Value::from(payload),
        Value::from("10; DROP TABLE x"),
        Value::from(-1),
    ] {
        let (status, _, json) = h.post(&with("limit", limit), ADMIN_A).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    }
    let (status, _, json) = h
        .post(
            &with("filters", serde_json::json!({"status": payload})),
            ADMIN_A,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let (status, _, json) = h
        .post(&with("tenant_id", Value::from("shop-b")), ADMIN_A)
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no field names the tenant: {json}"
    );
    for filter in ["country", "category"] {
        let (status, _, json) = h
            .post(
                &with("filters", serde_json::json!({ filter: payload })),
                ADMIN_A,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{filter}: {json}");
        assert_eq!(json["rows"], serde_json::json!([]), "{filter}: {json}");
    }
    // Unfiltered, the same report does find the shop's sale: the empty answers above are
    // the payload matching nothing, not a broken report.
    let (status, _, json) = h.post(&base.to_string(), ADMIN_A).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(1), "{json}");
}

/// Issue #12: the widget's dropdown shows each product's price from the one autocomplete
/// request it makes per keystroke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_carry_the_products_exact_price_and_currency() {
    let h = Harness::new().await;
    let (status, json) = h
        .get("/search/shop-a/autocomplete?q=wirel", Some(SEARCH_A))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let first = &json["suggestions"][0];
    assert_eq!(
        (&first["text"], &first["price"], &first["currency"]),
        (
            &Value::from("Wireless Mouse"),
            &Value::from("19.99"),
            &Value::from("EUR")
        ),
        "{json}"
    );
}

/// Issue #12: storefronts on other origins load the widget with a script tag; caches may
/// keep it, and a revalidation costs no body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_is_served_cacheable_and_revalidates_without_a_body() {
    let h = Harness::new().await;
    for (path, content_type, marker) in [
        (
            "/widget/v1/cloudpf-search.js",
            "text/javascript; charset=utf-8",
            "window.CloudpfSearch",
        ),
        (
            "/widget/v1/cloudpf-search.css",
            "text/css; charset=utf-8",
            ".cpf-listbox",
        ),
    ] {
        let (status, headers, body) = h.call(Method::GET, path, &[], Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], content_type);
        assert!(body.as_str().unwrap().contains(marker), "{path}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let (status, headers, body) = h
            .call(
                Method::GET,
                path,
                &[("if-none-match", &etag)],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(headers["etag"].to_str().unwrap(), etag);
        assert_eq!(body, Value::String(String::new()));
        let (status, ..) = h
            .call(
                Method::GET,
                path,
                &[("if-none-match", "\"stale\"")],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Issue #12: the demo storefront lists the shops it was given that the tenants file
/// still serves, with their search keys only, and its page runs only its own scripts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storefront_offers_its_served_shops_with_search_keys_only() {
    use cloudpf_search_api::routes::pages::StorefrontShop;
    let mut h = Harness::new().await;
    let shop = |t: &str, key: &str| StorefrontShop {
        tenant: TenantId::parse(t).unwrap(),
        search_key: key.to_owned(),
    };
    h.state = h.state.clone().with_storefront(vec![
        shop("shop-a", SEARCH_A),
        shop("shop-gone", "cpfs_key_of_a_removed_shop"),
    ]);
    let (status, headers, body) = h.call(Method::GET, "/", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let html = body.as_str().unwrap();
    assert!(
        html.contains(SEARCH_A) && html.contains("\"shop-a\""),
        "{html}"
    );
    assert!(!html.contains("shop-gone") && !html.contains(ADMIN_A));
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));

    // Without shops the page asks for one instead of listing any.
    h.state = h.state.clone().with_storefront(Vec::new());
    let (_, _, body) = h.call(Method::GET, "/", &[], Body::empty()).await;
    assert!(
        body.as_str()
            .unwrap()
            .contains(r#"<script type="application/json" id="shops">[]</script>"#)
    );
}

/// Issue #12: the dashboard page and its charting library come from the binary (no CDN),
/// and the page itself never carries a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_its_vendored_chart_library_are_served_offline() {
    let h = Harness::new().await;
    let (status, headers, body) = h.call(Method::GET, "/dashboard", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let html = body.as_str().unwrap();
    assert!(!html.contains("cpfa_") && !html.contains("cpfs_"));
    for src in [
        "/dashboard/vendor/uPlot.iife.min.js",
        "/dashboard/dashboard.js",
    ] {
        assert!(html.contains(&format!("src=\"{src}\"")), "{src}");
        let (status, headers, _) = h.call(Method::GET, src, &[], Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{src}");
        assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    }
    let (status, _, licence) = h
        .call(
            Method::GET,
            "/dashboard/vendor/uPlot.LICENSE",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(licence.as_str().unwrap().contains("MIT"));
}

fn with_search_log(h: &mut Harness) -> Arc<cloudpf_lake::SearchLog> {
    let log = Arc::new(cloudpf_lake::SearchLog::new(Arc::new(LocalDirSink::new(
        h._dir.path(),
    ))));
    h.state = h.state.clone().with_search_log(log.clone());
    log
}

async fn report(h: &Harness, name: &str) -> Vec<Vec<Value>> {
    // Yesterday too: a test running across midnight UTC logs on either day.
    let today = chrono::Utc::now().date_naive();
    let spec = serde_json::json!({
        "report": name,
        "from": today.pred_opt().unwrap().to_string(),
        "to": today.to_string(),
    });
    let (status, _, body) = h
        .call(
            Method::POST,
            "/analytics/shop-a/report",
            &[("x-api-key", ADMIN_A), ("content-type", "application/json")],
            Body::from(spec.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().clone())
        .collect()
}

fn click(query_id: &str, query: &str, position: u32) -> Body {
    Body::from(
        serde_json::json!({
            "type": "click", "query_id": query_id, "query": query,
            "product_id": "p1", "position": position,
        })
        .to_string(),
    )
}

/// Issue #12: a shop sees what its shoppers search for, what finds nothing and which
/// results they open; paging is not counted as another search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_and_clicks_are_logged_and_reported_to_the_shop() {
    let mut h = Harness::new().await;
    let log = with_search_log(&mut h);
    let (_, first) = h
        .get(
            "/search/shop-a/products?q=Gaming%20%20LAPTOP",
            Some(SEARCH_A),
        )
        .await;
    let query_id = first["query_id"].as_str().unwrap().to_owned();
    let (_, page2) = h
        .get("/search/shop-a/products?q=gaming&page=2", Some(SEARCH_A))
        .await;
    assert!(page2.get("query_id").is_none(), "{page2}");
    h.get("/search/shop-a/products?q=zzzqqq", Some(SEARCH_A))
        .await;
    h.get("/search/shop-a/autocomplete?q=gam", Some(SEARCH_A))
        .await;
    let json = [
        ("x-api-key", SEARCH_A),
        ("content-type", "application/json"),
    ];
    let (status, _, body) = h
        .call(
            Method::POST,
            "/events/shop-a",
            &json,
            click(&query_id, "gaming laptop", 1),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    log.flush().await.unwrap();

    let top = report(&h, "top_queries").await;
    let row = |cells: [&str; 5]| cells.map(Value::from).to_vec();
    assert_eq!(
        top,
        [
            row(["gaming laptop", "1", "1", "1.0000", "1.0"]),
            row(["zzzqqq", "1", "0", "0.0000", "0.0"]),
        ],
        "one search each (not the page 2, not the keystrokes); the first clicked"
    );
    let empty = report(&h, "no_result_queries").await;
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0][0], "zzzqqq");
    assert_eq!(
        report(&h, "click_positions").await,
        [vec![Value::from("1"), Value::from("1")]]
    );
    let days = report(&h, "search_clicks").await;
    assert_eq!(days.len(), 1);
    assert_eq!(days[0][1..5], ["2", "1", "0.5000", "1"].map(Value::from));
}

/// Issue #12: click events are validated like every other input, and go only to the
/// key's own shop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_click_events_are_refused_and_nothing_is_logged() {
    let mut h = Harness::new().await;
    let log = with_search_log(&mut h);
    let json = |key| [("x-api-key", key), ("content-type", "application/json")];
    let id = "00000000000000ff";
    for (body, want) in [
        (click(id, "boots", 0), "out_of_range"),
        (click(id, "boots", 10_001), "out_of_range"),
        (click("not-hex", "boots", 1), "invalid_parameter"),
        (click(id, "   ", 1), "invalid_parameter"),
        (Body::from(r#"{"type":"click"}"#), "invalid_body"),
        (
            Body::from(
                r#"{"type":"click","query_id":"00000000000000ff","query":"a","product_id":"p","position":1,"ip":"1.2.3.4"}"#,
            ),
            "invalid_body",
        ),
        (Body::from("not json"), "invalid_body"),
    ] {
        let (status, _, body) = h
            .call(Method::POST, "/events/shop-a", &json(SEARCH_A), body)
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, want),
            "{body}"
        );
    }
    let (status, _, body) = h
        .call(
            Method::POST,
            "/events/shop-a",
            &json(SEARCH_B),
            click(id, "boots", 1),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "wrong_tenant")
    );
    assert_eq!(log.stats().waiting, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_events_without_a_search_log_get_503() {
    let h = Harness::new().await;
    let (status, _, body) = h
        .call(
            Method::POST,
            "/events/shop-a",
            &[
                ("x-api-key", SEARCH_A),
                ("content-type", "application/json"),
            ],
            click("00000000000000ff", "boots", 1),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "search_log_not_configured")
    );
}

/// Issue #12: the shop's most frequent successful searches come back as suggestions
/// once the log holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn popular_searches_are_suggested_once_the_log_has_them() {
    let mut h = Harness::new().await;
    let log = with_search_log(&mut h);
    for _ in 0..2 {
        h.get("/search/shop-a/products?q=wireless%20mouse", Some(SEARCH_A))
            .await;
    }
    h.get("/search/shop-a/products?q=wireless%20zzz", Some(SEARCH_A))
        .await;
    log.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = h
            .get("/search/shop-a/autocomplete?q=wire", Some(SEARCH_A))
            .await;
        let queries: Vec<&str> = s["queries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["text"].as_str().unwrap())
            .collect();
        if !queries.is_empty() {
            // The search that found nothing is not offered.
            assert_eq!(queries, ["wireless mouse"], "{s}");
            assert_eq!(s["suggestions"][0]["text"], "Wireless Mouse");
            break;
        }
        assert!(Instant::now() < deadline, "never suggested: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another shop's searches are never offered.
    let (_, other) = h
        .get("/search/shop-b/autocomplete?q=wire", Some(SEARCH_B))
        .await;
    assert_eq!(other["queries"], serde_json::json!([]));
}

async fn mint(h: &Harness, key: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, json) = h
        .call(
            Method::POST,
            "/auth/shop-a/tokens",
            &[("x-api-key", key), ("content-type", "application/json")],
            Body::from(body.to_owned()),
        )
        .await;
    (status, json)
}

/// Issue #13: a page trades the long-lived admin key for a token that ends within the
/// hour, does what its scope allows, cannot mint more, and ends with its parent key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_key_trades_itself_for_a_short_lived_token_that_ends_with_it() {
    let mut h = Harness::new().await;
    let (status, json) = mint(&h, ADMIN_A, "{}").await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let token = json["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cpft_shop-a.admin.") && !token.contains(ADMIN_A));
    assert_eq!(json["scope"], "admin");
    let expires = Timestamp::parse(json["expires_at"].as_str().unwrap()).unwrap();
    let ttl = expires.utc() - chrono::Utc::now();
    assert!(ttl <= chrono::Duration::seconds(3600) && ttl > chrono::Duration::seconds(3500));

    let (status, _) = h.get("/search/shop-a/purchases", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, json) = h.get("/search/shop-b/purchases", Some(&token)).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::FORBIDDEN, "wrong_tenant")
    );
    let (status, json) = mint(&h, &token, "{}").await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::FORBIDDEN, "token_cannot_mint")
    );
    let forged = token.replace(".admin.", ".search.");
    let (status, json) = h.get("/search/shop-a/products?q=x", Some(&forged)).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );

    // A search token of an admin key searches but reads no purchases.
    let (_, json) = mint(&h, ADMIN_A, r#"{"scope":"search","ttl_seconds":60}"#).await;
    let search = json["token"].as_str().unwrap().to_owned();
    let (status, _) = h
        .get("/search/shop-a/products?q=laptop", Some(&search))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, json) = h.get("/search/shop-a/purchases", Some(&search)).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    // Bad requests and keys that may not mint.
    for (body, want) in [
        (r#"{"ttl_seconds":59}"#, "out_of_range"),
        (r#"{"ttl_seconds":3601}"#, "out_of_range"),
        (r#"{"scope":"root"}"#, "invalid_parameter"),
        (r#"{"ttl":5}"#, "invalid_body"),
    ] {
        let (status, json) = mint(&h, ADMIN_A, body).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::BAD_REQUEST, want),
            "{body}"
        );
    }
    let (status, json) = mint(&h, SEARCH_A, "{}").await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    // Revoking the admin key (a tenants file without it) ends its tokens.
    let revoked = Tenants::from_raw(RawTenantsFile {
        tenants: vec![RawTenant {
            id: "shop-a".into(),
            cors_origins: vec![],
            keys: vec![RawKey::new(Scope::Search, hash_key(SEARCH_A))],
            search_cluster: None,
        }],
        elasticsearch: None,
        rate_limits: None,
    })
    .unwrap();
    h.state.tenants = Arc::new(revoked);
    let (status, json) = h.get("/search/shop-a/products?q=x", Some(&search)).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_as_expired_and_no_secret_means_no_tokens() {
    use cloudpf_search_api::tokens::{Claims, TokenSigner};
    let mut h = Harness::new().await;
    let signer = TokenSigner::from_secret(&"k".repeat(32)).unwrap();
    h.state = h.state.clone().with_tokens(Some(signer.clone()));
    let (_, json) = mint(&h, ADMIN_A, "{}").await;
    let parent = json["token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(2)
        .unwrap()
        .to_owned();
    let expired = signer.mint(&Claims {
        tenant: TenantId::parse("shop-a").unwrap(),
        scope: Scope::Admin,
        parent,
        expires: chrono::Utc::now().timestamp() - 1,
    });
    let (status, json) = h.get("/search/shop-a/purchases", Some(&expired)).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::UNAUTHORIZED, "expired_api_key")
    );

    h.state = h.state.clone().with_tokens(None);
    let (status, json) = mint(&h, ADMIN_A, "{}").await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::SERVICE_UNAVAILABLE, "tokens_not_configured")
    );
}
