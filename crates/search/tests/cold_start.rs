//! Regression, issue #11: the first autocomplete request of a 100k-product shop built its
//! suggester on the request and timed out (408 after 5 s). A catalog above
//! `sync_build_max_products` is built in the background, and requests are answered from
//! the index until the suggester is ready.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cloudpf_model::PurchaseStatus;
use cloudpf_search::suite::{Writer, product, purchase, tenant};
use cloudpf_search::{EngineOptions, SearchEngine, TantivyEngine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_autocomplete_of_a_large_catalog_answers_from_the_index_while_it_builds() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::with_options(
        dir.path(),
        EngineOptions {
            sync_build_max_products: 1,
            ..EngineOptions::default()
        },
    );
    let w = Writer::new(&engine);
    w.products(vec![
        product(
            "shop-a",
            "p1",
            "Trail Lantern",
            "Outdoor",
            "Acme",
            "9.00",
            1,
        ),
        product("shop-a", "p2", "Lantern Hook", "Outdoor", "Acme", "2.00", 1),
        product(
            "shop-a",
            "p3",
            "Camping Stove",
            "Outdoor",
            "Acme",
            "45.00",
            1,
        ),
    ])
    .await;
    w.purchases(vec![purchase(
        "shop-a",
        "o1",
        "c1",
        "2026-11-02T10:00:00Z",
        PurchaseStatus::Paid,
        &[("p2", "Lantern Hook", 7, "2.00")],
    )])
    .await;
    let a = tenant("shop-a");

    let first = engine.autocomplete(&a, "lant", 5).await.unwrap();
    let mut ids: Vec<_> = first.iter().map(|s| s.product_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["p1", "p2"], "{first:?}");

    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.work_done().suggester_builds == 0 {
        assert!(
            Instant::now() < deadline,
            "the background build never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let built = engine.autocomplete(&a, "lant", 5).await.unwrap();
    assert_eq!(
        built[0].product_id, "p2",
        "the best seller first: {built:?}"
    );
    assert_eq!(built[0].popularity, 7);
    assert_eq!(engine.work_done().suggester_builds, 1);
}
