//! Regression, issue #10: reports ran on the search runtime with no limit, so one
//! tenant's dashboards could starve every storefront's search. These tests hold or block
//! reports on purpose and check what a storefront and a second dashboard still get.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cloudpf_analytics::{AnalyticsEngine, AnalyticsError, ReportRequest, ReportTable};
use cloudpf_model::TenantId;
use cloudpf_search::TantivyEngine;
use cloudpf_search_api::tenants::{RawKey, RawTenant, RawTenantsFile, Scope, hash_key};
use cloudpf_search_api::{AppState, RawConfig, Tenants, app};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::Semaphore;
use tower::ServiceExt;

const SEARCH_A: &str = "cpfs_search_key_of_shop_a";
const ADMIN_A: &str = "cpfa_admin_key_of_shop_a";
const ADMIN_B: &str = "cpfa_admin_key_of_shop_b";

fn tenants() -> Tenants {
    let tenant = |id: &str, keys: &[(Scope, &str)]| RawTenant {
        id: id.to_owned(),
        cors_origins: vec![],
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
            tenant("shop-b", &[(Scope::Admin, ADMIN_B)]),
        ],
        elasticsearch: None,
        rate_limits: None,
    })
    .unwrap()
}

/// Reports that wait for the test to let them finish, or that hold their thread hostage
/// (what a CPU-bound query does to the runtime it runs on).
#[derive(Debug)]
struct Held {
    started: AtomicUsize,
    gate: Semaphore,
    block_thread: AtomicBool,
    released: AtomicBool,
    gave_up: AtomicBool,
}

impl Default for Held {
    fn default() -> Self {
        Self {
            started: AtomicUsize::new(0),
            gate: Semaphore::new(0),
            block_thread: AtomicBool::new(false),
            released: AtomicBool::new(false),
            gave_up: AtomicBool::new(false),
        }
    }
}

#[async_trait::async_trait]
impl AnalyticsEngine for Held {
    async fn run(&self, _: &TenantId, _: &ReportRequest) -> Result<ReportTable, AnalyticsError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        if self.block_thread.load(Ordering::SeqCst) {
            // Bounded, so a broken build fails instead of hanging CI.
            let until = Instant::now() + Duration::from_secs(30);
            while !self.released.load(Ordering::SeqCst) {
                if Instant::now() > until {
                    self.gave_up.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            self.gate.acquire().await.unwrap().forget();
        }
        Ok(ReportTable {
            columns: vec!["orders".into()],
            rows: vec![vec![Some("1".into())]],
        })
    }
}

fn state(engine: Arc<Held>) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let config = RawConfig {
        data_dir: Some(dir.path().to_owned()),
        ..RawConfig::default()
    }
    .validate()
    .unwrap();
    let search = Arc::new(TantivyEngine::new(dir.path()));
    let state = AppState::new(search, tenants(), config)
        .with_analytics(engine)
        .unwrap();
    (dir, state)
}

async fn report(state: &AppState, tenant: &str, key: &str) -> (StatusCode, Option<String>, Value) {
    let request = Request::post(format!("/analytics/{tenant}/report"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"report": "summary", "from": "2026-01-01", "to": "2026-01-31"}"#,
        ))
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, retry, serde_json::from_slice(&bytes).unwrap())
}

async fn search(state: &AppState) -> StatusCode {
    let request = Request::get("/search/shop-a/products?q=laptop")
        .header("x-api-key", SEARCH_A)
        .body(Body::empty())
        .unwrap();
    app(state.clone()).oneshot(request).await.unwrap().status()
}

async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_report_limit_gets_429_while_search_and_other_tenants_go_on() {
    let engine = Arc::new(Held::default());
    let (_dir, state) = state(engine.clone());
    let held: Vec<_> = (0..2)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move { report(&state, "shop-a", ADMIN_A).await })
        })
        .collect();
    until("two running reports", || {
        engine.started.load(Ordering::SeqCst) == 2
    })
    .await;

    let (status, retry, json) = report(&state, "shop-a", ADMIN_A).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{json}");
    assert_eq!(json["error"]["code"], "too_many_reports");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(search(&state).await, StatusCode::OK);

    // Another tenant's dashboard is not refused because of shop-a's.
    let other = {
        let state = state.clone();
        tokio::spawn(async move { report(&state, "shop-b", ADMIN_B).await })
    };
    until("shop-b's report", || {
        engine.started.load(Ordering::SeqCst) == 3
    })
    .await;

    engine.gate.add_permits(3);
    for h in held {
        assert_eq!(h.await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(other.await.unwrap().0, StatusCode::OK);
    // Slots are given back: shop-a may run reports again.
    engine.gate.add_permits(1);
    let (status, _, json) = report(&state, "shop-a", ADMIN_A).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["rows"][0][0], "1");
}

// A single-threaded test runtime: if report work ran on it, a report that holds its
// thread would leave no thread for the search request.
#[tokio::test(flavor = "current_thread")]
async fn a_report_that_holds_its_thread_does_not_stop_search() {
    let engine = Arc::new(Held::default());
    engine.block_thread.store(true, Ordering::SeqCst);
    let (_dir, state) = state(engine.clone());
    let running = {
        let state = state.clone();
        tokio::spawn(async move { report(&state, "shop-a", ADMIN_A).await })
    };
    until("the report to start", || {
        engine.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let searched = tokio::time::timeout(Duration::from_secs(10), search(&state)).await;
    engine.released.store(true, Ordering::SeqCst);
    assert_eq!(
        searched.ok(),
        Some(StatusCode::OK),
        "search waited for the report"
    );
    assert_eq!(running.await.unwrap().0, StatusCode::OK);
    assert!(
        !engine.gave_up.load(Ordering::SeqCst),
        "the test could not run while the report held its thread"
    );
}
