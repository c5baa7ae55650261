//! Regression, issue #11: an idle server must cost nothing. The refresher ran every 250 ms
//! and, because every reload makes a new searcher generation, rebuilt every suggester on
//! every tick: one 100k-product tenant or a hundred small ones kept a core busy with no
//! write at all. These tests count the engine's reloads and rebuilds.
#![allow(clippy::unwrap_used)]

use cloudpf_search::suite::{Writer, product, tenant};
use cloudpf_search::{SearchEngine, TantivyEngine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_does_nothing_when_nothing_changed_and_rebuilds_once_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::new(dir.path());
    let w = Writer::new(&engine);
    let a = tenant("shop-a");
    w.products(vec![product(
        "shop-a",
        "p1",
        "Trail Lantern",
        "Outdoor",
        "Acme",
        "9.00",
        1,
    )])
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

    w.products(vec![product(
        "shop-a",
        "p2",
        "Lantern Hook",
        "Outdoor",
        "Acme",
        "2.00",
        1,
    )])
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
    w.products(vec![product(
        "shop-a",
        "p1",
        "Trail Lantern",
        "Outdoor",
        "Acme",
        "9.00",
        1,
    )])
    .await;
    assert_eq!(reader.autocomplete(&a, "lan", 5).await.unwrap().len(), 1);
    reader.refresh().await.unwrap();
    let settled = reader.work_done();
    for _ in 0..20 {
        reader.refresh().await.unwrap();
    }
    assert_eq!(reader.work_done(), settled);

    w.products(vec![product(
        "shop-a",
        "p2",
        "Lantern Hook",
        "Outdoor",
        "Acme",
        "2.00",
        1,
    )])
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
