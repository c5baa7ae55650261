//! Issue #11: queries run on a fixed number of threads, whatever the number of requests
//! in flight. Every thread that runs searches keeps its allocator's working set, so a
//! pool that grew with the load (Tokio's blocking pool: 8 threads here, 150+ before its
//! cap) held 130 MB where two threads held 74 MB. Its own test binary: it counts the
//! process's threads by name.
#![allow(clippy::unwrap_used)]

use cloudpf_search::suite::{Writer, product, tenant};
use cloudpf_search::{EngineOptions, ProductQuery, SearchEngine, TantivyEngine};

fn query_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with("cloudpf-query"))
        .count()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_searches_at_once_all_answer_on_at_most_the_configured_query_threads() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::with_options(
        dir.path(),
        EngineOptions {
            query_concurrency: 2,
            ..EngineOptions::default()
        },
    );
    let w = Writer::new(&engine);
    let items = (0..64)
        .map(|i| {
            product(
                "shop-a",
                &format!("p{i}"),
                &format!("Lantern {i}"),
                "Outdoor",
                "Acme",
                "9.00",
                1,
            )
        })
        .collect();
    w.products(items).await;
    assert_eq!(
        query_threads(),
        0,
        "an engine that only wrote started query threads"
    );

    let searches = (0..64).map(|i| {
        let engine = engine.clone();
        tokio::spawn(async move {
            let q = ProductQuery {
                text: format!("lantern {i}"),
                limit: 5,
                ..ProductQuery::default()
            };
            engine.search_products(&tenant("shop-a"), &q).await.unwrap()
        })
    });
    for (i, search) in searches.enumerate() {
        let found = search.await.unwrap();
        assert_eq!(found.hits[0].product.name, format!("Lantern {i}"));
    }
    let threads = query_threads();
    assert!((1..=2).contains(&threads), "{threads} query threads");
}
