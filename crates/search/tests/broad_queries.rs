//! Issue #11: a query matching most of a catalog (a one- or two-letter prefix) costs no
//! more than a few thousand matches. The embedded engine stops after
//! [`SCAN_LIMIT`] matches ordered by relevance and says that its total and facet counts are
//! estimates; a narrower query is counted exactly, and an order by price still finds the
//! true extremes of every match.
#![allow(clippy::unwrap_used)]

use cloudpf_search::embedded::collect::SCAN_LIMIT;
use cloudpf_search::suite::{Writer, product, tenant};
use cloudpf_search::{ProductQuery, ProductSort, SearchEngine, TantivyEngine};

const LANTERNS: usize = 4_000;
const LAMPS: usize = 2_000;

async fn catalog(engine: &TantivyEngine) {
    let w = Writer::new(engine);
    let mut items = Vec::new();
    for i in 0..LANTERNS {
        items.push(product(
            "shop-a",
            &format!("lantern-{i}"),
            &format!("Trail Lantern {i}"),
            "Outdoor",
            "Acme",
            &format!("{}.00", 10 + i % 50),
            1,
        ));
    }
    for i in 0..LAMPS {
        items.push(product(
            "shop-a",
            &format!("lamp-{i}"),
            &format!("Desk Lamp {i}"),
            "Home",
            "Zeta",
            &format!("{}.00", 20 + i % 50),
            1,
        ));
    }
    // The cheapest product comes last in the index.
    items.push(product(
        "shop-a",
        "bargain",
        "Lamp Bargain",
        "Home",
        "Zeta",
        "1.00",
        1,
    ));
    for chunk in items.chunks(1_000) {
        w.products(chunk.to_vec()).await;
    }
}

fn query(text: &str) -> ProductQuery {
    ProductQuery {
        text: text.into(),
        limit: 10,
        ..ProductQuery::default()
    }
}

fn facet(r: &cloudpf_search::ProductResults, value: &str) -> u64 {
    r.facets
        .category
        .iter()
        .find(|f| f.value == value)
        .map_or(0, |f| f.count)
}

fn within(got: u64, want: usize, percent: f64) -> bool {
    (got as f64 - want as f64).abs() <= want as f64 * percent / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_matching_most_of_the_catalog_is_estimated_and_a_narrow_one_is_exact() {
    const { assert!(LANTERNS + LAMPS > SCAN_LIMIT && LANTERNS < SCAN_LIMIT * 2) };
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::new(dir.path());
    catalog(&engine).await;
    let a = tenant("shop-a");

    let broad = engine.search_products(&a, &query("la")).await.unwrap();
    let all = LANTERNS + LAMPS + 1;
    assert!(broad.total_is_estimate);
    assert_eq!(broad.hits.len(), 10);
    assert!(
        within(broad.total, all, 15.0),
        "total {} for {all}",
        broad.total
    );
    assert!(
        within(facet(&broad, "Outdoor"), LANTERNS, 25.0),
        "{:?}",
        broad.facets
    );

    let narrow = engine.search_products(&a, &query("lamp")).await.unwrap();
    assert!(!narrow.total_is_estimate);
    assert_eq!(narrow.total, (LAMPS + 1) as u64);
    assert_eq!(facet(&narrow, "Home"), (LAMPS + 1) as u64);
    assert_eq!(facet(&narrow, "Outdoor"), 0);

    // A page past the first 5,000 matches is still served.
    let deep = engine
        .search_products(
            &a,
            &ProductQuery {
                offset: SCAN_LIMIT + 10,
                ..query("la")
            },
        )
        .await
        .unwrap();
    assert_eq!(deep.hits.len(), 10);

    let cheapest = engine
        .search_products(
            &a,
            &ProductQuery {
                sort: ProductSort::PriceAsc,
                ..query("la")
            },
        )
        .await
        .unwrap();
    assert_eq!(cheapest.hits[0].product.product_id, "bargain");
    assert_eq!(
        cheapest.total, all as u64,
        "a sorted query counts every match"
    );
}
