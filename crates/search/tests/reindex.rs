//! Issue #13: rebuilding an embedded index without downtime. A rebuild in one engine (the
//! `cloudpf reindex` process) while another (the server and the poller) keeps searching
//! and writing: every search answers with the whole catalog, every write lands, and the
//! tenant ends on the new directory with nothing lost. A schema upgrade takes the same
//! path.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cloudpf_model::{Money, Product, SeqNo};
use cloudpf_search::suite::{product, tenant};
use cloudpf_search::{
    DocChange, Entity, ProductQuery, SearchEngine, SearchError, TantivyEngine, Versioned,
};

const PRODUCTS: u64 = 1_500;

fn catalog_product(n: u64) -> Product {
    product(
        "shop-a",
        &format!("p-{n}"),
        &format!("Trail Lantern {n}"),
        "Outdoor",
        "Acme",
        "10.00",
        1,
    )
}

fn upsert(p: Product, seq: u64) -> Versioned<Product> {
    Versioned {
        key: p.product_id.clone(),
        seq: SeqNo::parse(&seq.to_string()).unwrap(),
        change: DocChange::Upsert(p),
    }
}

async fn fill(engine: &TantivyEngine) {
    let changes: Vec<_> = (0..PRODUCTS)
        .map(|n| upsert(catalog_product(n), 1_000 + n))
        .collect();
    for chunk in changes.chunks(500) {
        engine
            .apply_products(&tenant("shop-a"), chunk.to_vec())
            .await
            .unwrap();
    }
    // A removed product stays removed through the rebuild (its tombstone is copied).
    engine
        .apply_products(
            &tenant("shop-a"),
            vec![Versioned {
                key: "p-0".into(),
                seq: SeqNo::parse("999999").unwrap(),
                change: DocChange::Delete,
            }],
        )
        .await
        .unwrap();
}

/// What an earlier release left: shop-a's filled products index under an older schema
/// version's name. The data directory, and the shop's directory in it.
async fn left_by_an_older_release() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = TantivyEngine::new(dir.path());
        fill(&engine).await;
        engine.flush().await.unwrap();
    }
    let tenant_dir = dir.path().join("index/shop-a");
    std::fs::rename(
        tenant_dir.join("products-v1"),
        tenant_dir.join("products-v0"),
    )
    .unwrap();
    (dir, tenant_dir)
}

fn lanterns() -> ProductQuery {
    ProductQuery {
        text: "lantern".into(),
        limit: 10,
        ..ProductQuery::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_during_continuous_searches_and_writes_answers_every_search_and_loses_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let serving = TantivyEngine::new(dir.path());
    fill(&serving).await;
    let shop = tenant("shop-a");
    let live = PRODUCTS - 1;
    assert_eq!(
        serving
            .search_products(&shop, &lanterns())
            .await
            .unwrap()
            .total,
        live
    );

    let done = AtomicBool::new(false);
    let searches = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    // Searches and the refresher of the serving process, without a pause.
    let search = async {
        while !done.load(Ordering::SeqCst) {
            let found = serving.search_products(&shop, &lanterns()).await.unwrap();
            assert_eq!(found.total, live, "every search sees the whole catalog");
            searches.fetch_add(1, Ordering::Relaxed);
            serving.refresh().await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    // The stream keeps repricing products; a batch refused during the switch comes again,
    // as Lambda or the poller would deliver it.
    let write = async {
        for n in 1..=60_u64 {
            let mut p = catalog_product(n);
            p.price = Money::parse(&format!("{n}.50")).unwrap();
            let batch = vec![upsert(p, 10_000 + n)];
            loop {
                match serving.apply_products(&shop, batch.clone()).await {
                    Ok(outcome) => {
                        assert_eq!(outcome.applied, 1);
                        break;
                    }
                    Err(SearchError::Unavailable(reason)) => {
                        assert!(reason.contains("switching"), "{reason}");
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let rebuild = async {
        let rebuilding = TantivyEngine::new(dir.path());
        rebuilding
            .reindex(&shop, Entity::Products, Duration::from_millis(300))
            .await
            .unwrap()
    };
    let (report, ()) = tokio::join!(
        async {
            let (report, ()) = tokio::join!(
                async {
                    let report = rebuild.await;
                    // Searches go on a little after the switch, through the reopen.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    report
                },
                write
            );
            done.store(true, Ordering::SeqCst);
            report
        },
        search,
    );
    assert!(searches.load(Ordering::Relaxed) > 0);
    assert_eq!(
        (report.from.as_str(), report.to.as_str()),
        ("products-v1", "products-v1-g1")
    );
    assert_eq!(
        report.documents, PRODUCTS,
        "live documents and the tombstone"
    );

    // Every write is there (in whichever index it first landed), the removal too.
    serving.flush().await.unwrap();
    serving.refresh().await.unwrap();
    for n in 1..=60_u64 {
        let stored = serving
            .get_product(&shop, &format!("p-{n}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.doc.price.to_string(), format!("{n}.50"), "p-{n}");
    }
    assert_eq!(serving.get_product(&shop, "p-0").await.unwrap(), None);
    assert_eq!(serving.count(&shop, Entity::Products).await.unwrap(), live);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("index/shop-a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(names.contains(&"products-v1-g1".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"products-v1".to_owned()),
        "the old directory is removed: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.ends_with(".next")),
        "the freeze is lifted"
    );

    // A second rebuild goes on from the new generation, and a fresh process finds it.
    let again = TantivyEngine::new(dir.path())
        .reindex(&shop, Entity::Products, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.to, "products-v1-g2");
    let fresh = TantivyEngine::new(dir.path());
    assert_eq!(
        fresh
            .search_products(&shop, &lanterns())
            .await
            .unwrap()
            .total,
        live
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_an_older_schema_version_is_copied_into_the_current_one_on_upgrade() {
    let (dir, tenant_dir) = left_by_an_older_release().await;
    let engine = TantivyEngine::new(dir.path());
    assert_eq!(
        engine
            .count(&tenant("shop-a"), Entity::Products)
            .await
            .unwrap(),
        0
    );

    let upgraded = engine.upgrade_schemas().await.unwrap();
    assert_eq!(upgraded.len(), 1, "{upgraded:?}");
    assert_eq!(
        (upgraded[0].from.as_str(), upgraded[0].to.as_str()),
        ("products-v0", "products-v1-g1")
    );
    assert_eq!(
        engine
            .search_products(&tenant("shop-a"), &lanterns())
            .await
            .unwrap()
            .total,
        PRODUCTS - 1
    );
    assert!(!tenant_dir.join("products-v0").exists());
    assert!(
        engine.upgrade_schemas().await.unwrap().is_empty(),
        "nothing left to upgrade"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_the_first_batch_after_a_schema_upgrade_brings_the_older_index_along() {
    let (dir, tenant_dir) = left_by_an_older_release().await;
    // A CDC Lambda after the deploy: no flush, no upgrade command, just its next batch.
    let lambda = TantivyEngine::new(dir.path());
    lambda
        .apply_products(
            &tenant("shop-a"),
            vec![upsert(catalog_product(PRODUCTS), 5_000_000)],
        )
        .await
        .unwrap();
    let api = TantivyEngine::new(dir.path());
    assert_eq!(
        api.count(&tenant("shop-a"), Entity::Products)
            .await
            .unwrap(),
        PRODUCTS,
        "the old catalog (less its removed product) and the new change"
    );
    assert!(!tenant_dir.join("products-v0").exists());
}
