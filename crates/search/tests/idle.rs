//! Regression, issue #11: an idle server must cost nothing. The refresher ran every 250 ms
//! and, because every reload makes a new searcher generation, rebuilt every suggester on
//! every tick: one 100k-product tenant or a hundred small ones kept a core busy with no
//! write at all. These tests count the engine's reloads and rebuilds.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cloudpf_search::suite::{Writer, product, tenant};
use cloudpf_search::{EngineOptions, ProductQuery, SearchEngine, TantivyEngine};

/// An in-stock outdoor product of Acme.
fn outdoor(shop: &str, id: &str, name: &str, price: &str) -> cloudpf_model::Product {
    product(shop, id, name, "Outdoor", "Acme", price, 1)
}

fn query(text: &str) -> ProductQuery {
    ProductQuery {
        text: text.into(),
        limit: 10,
        ..ProductQuery::default()
    }
}

async fn names(engine: &TantivyEngine, shop: &str, text: &str) -> Vec<String> {
    let r = engine
        .search_products(&tenant(shop), &query(text))
        .await
        .unwrap();
    r.hits.into_iter().map(|h| h.product.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_does_nothing_when_nothing_changed_and_rebuilds_once_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::new(dir.path());
    let w = Writer::new(&engine);
    let a = tenant("shop-a");
    w.products(vec![outdoor("shop-a", "p1", "Trail Lantern", "9.00")])
        .await;
    assert_eq!(engine.autocomplete(&a, "lan", 5).await.unwrap().len(), 1);
    engine.refresh().await.unwrap();
    let settled = engine.work_done();
    for _ in 0..20 {
        engine.refresh().await.unwrap();
        engine.autocomplete(&a, "lan", 5).await.unwrap();
    }
    assert_eq!(
        engine.work_done(),
        settled,
        "idle refreshes reloaded or rebuilt"
    );

    w.products(vec![outdoor("shop-a", "p2", "Lantern Hook", "2.00")])
        .await;
    engine.refresh().await.unwrap();
    let s = engine.autocomplete(&a, "lan", 5).await.unwrap();
    assert_eq!(s.len(), 2, "{s:?}");
    let after = engine.work_done();
    assert_eq!(after.suggester_builds, settled.suggester_builds + 1);
    for _ in 0..20 {
        engine.refresh().await.unwrap();
    }
    assert_eq!(engine.work_done(), after, "idle again after the change");
}

/// A serving process reads what another process writes: it reloads and rebuilds once per
/// commit it sees, and not at all between commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_process_reloads_only_after_another_process_commits() {
    let dir = tempfile::tempdir().unwrap();
    let writer = TantivyEngine::new(dir.path());
    let reader = TantivyEngine::new(dir.path());
    let w = Writer::new(&writer);
    let a = tenant("shop-a");
    w.products(vec![outdoor("shop-a", "p1", "Trail Lantern", "9.00")])
        .await;
    assert_eq!(reader.autocomplete(&a, "lan", 5).await.unwrap().len(), 1);
    reader.refresh().await.unwrap();
    let settled = reader.work_done();
    for _ in 0..20 {
        reader.refresh().await.unwrap();
    }
    assert_eq!(reader.work_done(), settled);

    w.products(vec![outdoor("shop-a", "p2", "Lantern Hook", "2.00")])
        .await;
    reader.refresh().await.unwrap();
    assert_eq!(reader.autocomplete(&a, "lan", 5).await.unwrap().len(), 2);
    let after = reader.work_done();
    assert!(
        after.reloads > settled.reloads,
        "the commit was not picked up"
    );
    assert_eq!(after.suggester_builds, settled.suggester_builds + 1);
    for _ in 0..20 {
        reader.refresh().await.unwrap();
    }
    assert_eq!(reader.work_done(), after);
}

/// Issue #11: open indexes are a cache. An index nobody asked for during the idle time is
/// closed (with its tenant's autocomplete), the refresher does not reopen it, and the next
/// request opens it again and answers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_unused_for_the_idle_time_is_closed_and_the_next_request_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::with_options(
        dir.path(),
        EngineOptions {
            idle_close: Duration::from_millis(200),
            max_open: 100,
            ..EngineOptions::default()
        },
    );
    let w = Writer::new(&engine);
    w.products(vec![outdoor("shop-a", "p1", "Trail Lantern", "9.00")])
        .await;
    assert_eq!(names(&engine, "shop-a", "lantern").await, ["Trail Lantern"]);
    assert_eq!(
        engine
            .autocomplete(&tenant("shop-a"), "lan", 5)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(engine.open_indexes(), 1);

    let deadline = Instant::now() + Duration::from_secs(20);
    while engine.open_indexes() > 0 {
        assert!(Instant::now() < deadline, "the idle index was never closed");
        engine.refresh().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = engine.work_done();
    assert_eq!(closed.closes, 1);
    for _ in 0..20 {
        engine.refresh().await.unwrap();
    }
    assert_eq!(
        engine.work_done(),
        closed,
        "the refresher reopened or rebuilt a closed index"
    );

    assert_eq!(names(&engine, "shop-a", "lantern").await, ["Trail Lantern"]);
    assert_eq!(
        engine
            .autocomplete(&tenant("shop-a"), "lan", 5)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(engine.work_done().opens, closed.opens + 1);
}

/// Issue #11: a server with more tenants than it may keep open closes the least recently
/// used index to open another, and every tenant still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_more_indexes_than_the_cap_closes_the_least_recently_used_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::with_options(
        dir.path(),
        EngineOptions {
            idle_close: Duration::from_secs(3600),
            max_open: 2,
            ..EngineOptions::default()
        },
    );
    let w = Writer::new(&engine);
    for shop in ["shop-a", "shop-b", "shop-c"] {
        w.products(vec![outdoor(
            shop,
            "p1",
            &format!("Lantern of {shop}"),
            "9.00",
        )])
        .await;
    }
    assert_eq!(engine.open_indexes(), 2);
    assert_eq!(engine.work_done().closes, 1);
    // shop-b is now the least recently used; asking shop-a (closed) closes it.
    assert_eq!(
        names(&engine, "shop-a", "lantern").await,
        ["Lantern of shop-a"]
    );
    assert_eq!(
        names(&engine, "shop-c", "lantern").await,
        ["Lantern of shop-c"]
    );
    assert_eq!(engine.open_indexes(), 2);
    let before = engine.work_done();
    assert_eq!(
        names(&engine, "shop-c", "lantern").await,
        ["Lantern of shop-c"]
    );
    assert_eq!(engine.work_done(), before, "an open index was reopened");
    assert_eq!(
        names(&engine, "shop-b", "lantern").await,
        ["Lantern of shop-b"]
    );
    assert_eq!(engine.work_done().closes, before.closes + 1);
}

/// Issue #11: a small change to a large catalog must not rebuild autocomplete from
/// scratch. Segments never change, so a rebuild reads only the segments committed since
/// the last build, and applies deletions through the segments' alive bitsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_after_a_small_change_reads_only_the_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::new(dir.path());
    let w = Writer::new(&engine);
    let a = tenant("shop-a");
    for (i, name) in ["Trail Lantern", "Lantern Hook", "Camping Stove"]
        .iter()
        .enumerate()
    {
        w.products(vec![outdoor("shop-a", &format!("p{i}"), name, "9.00")])
            .await;
    }
    assert_eq!(engine.autocomplete(&a, "lan", 5).await.unwrap().len(), 2);
    let first = engine.work_done();
    assert_eq!(first.suggester_builds, 1);
    assert!(first.suggester_segments_read >= 1);

    w.products(vec![outdoor("shop-a", "p9", "Lantern Stand", "5.00")])
        .await;
    w.delete_product("shop-a", "p0").await;
    let s = engine.autocomplete(&a, "lan", 5).await.unwrap();
    let mut names: Vec<_> = s.iter().map(|s| s.text.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Lantern Hook", "Lantern Stand"]);
    let second = engine.work_done();
    assert_eq!(second.suggester_builds, 2);
    assert!(
        second.suggester_segments_read - first.suggester_segments_read <= 2,
        "read {} segments for two small commits",
        second.suggester_segments_read - first.suggester_segments_read
    );
}

/// Issue #11: `/ready` opened every tenant's index on every probe, so a thousand idle
/// tenants stayed open for ever. Readiness reads each index's metadata and opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_check_opens_no_index() {
    let dir = tempfile::tempdir().unwrap();
    let writer = TantivyEngine::new(dir.path());
    Writer::new(&writer)
        .products(vec![outdoor("shop-a", "p1", "Trail Lantern", "9.00")])
        .await;
    let server = TantivyEngine::new(dir.path());
    server
        .ready(&[tenant("shop-a"), tenant("shop-without-data")])
        .await
        .unwrap();
    assert_eq!(server.open_indexes(), 0);
    assert_eq!(names(&server, "shop-a", "lantern").await, ["Trail Lantern"]);
}
