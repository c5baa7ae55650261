//! The search behaviour suite on the embedded Tantivy engine.

use cloudpf_search::TantivyEngine;

cloudpf_search::search_engine_suite!(dir => TantivyEngine::new(dir.path()));

/// Issue #16: recall@10 and MRR per kind of query on the relevance test set, held to
/// the floors recorded in `tests/relevance/floors.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relevance_per_kind_of_query_stays_at_or_above_its_recorded_floor() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = TantivyEngine::new(dir.path());
    cloudpf_search::suite::relevance(&engine, "tantivy").await;
}

/// An engine holding `names` as products h1, h2, … of the tenant `shop-h`.
async fn shop_h(dir: &tempfile::TempDir, names: &[&str]) -> TantivyEngine {
    use cloudpf_search::suite::{Writer, product};
    let engine = TantivyEngine::new(dir.path());
    let products = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            product(
                "shop-h",
                &format!("h{}", i + 1),
                name,
                "Misc",
                "Acme",
                "9.00",
                1,
            )
        })
        .collect();
    Writer::new(&engine).products(products).await;
    engine
}

/// Issue #16: the highlight marks the form that matched: the other English form of a
/// word, the two words a joined query found, the one word a split query found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highlights_mark_plural_joined_and_split_matches() {
    use cloudpf_search::suite::tenant;
    use cloudpf_search::{ProductQuery, SearchEngine as _};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = shop_h(
        &dir,
        &["Trail Boots", "Laptop Stand", "Wireless Headphones"],
    )
    .await;
    for (query, id, highlighted) in [
        ("boot", "h1", "Trail <em>Boots</em>"),
        ("laptopstand", "h2", "<em>Laptop</em> <em>Stand</em>"),
        ("head phones", "h3", "Wireless <em>Headphones</em>"),
    ] {
        let results = engine
            .search_products(
                &tenant("shop-h"),
                &ProductQuery {
                    text: query.into(),
                    limit: 10,
                    ..ProductQuery::default()
                },
            )
            .await
            .expect("search works");
        let hit = results
            .hits
            .iter()
            .find(|h| h.product.product_id == id)
            .unwrap_or_else(|| panic!("{query:?} should find {id}"));
        assert_eq!(
            hit.highlights.name.as_deref(),
            Some(highlighted),
            "{query:?}"
        );
    }
}

/// Issue #16: autocomplete completes the word being typed when it joins the last two
/// words of a name, or when the last two typed words are one word of a name, offered as
/// inexact matches. (The suggester's typo pass already does this: a missing or an extra
/// space is one edit of the typed prefix.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocomplete_completes_joined_and_split_words_as_inexact_matches() {
    use cloudpf_search::SearchEngine as _;
    use cloudpf_search::suite::tenant;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = shop_h(
        &dir,
        &["Laptop Stand", "Wireless Headphones", "Laptop Sleeve"],
    )
    .await;
    // The first request asks for the shop's suggester; the maintenance pass builds it,
    // so the requests below use it rather than the search fallback.
    engine
        .autocomplete(&tenant("shop-h"), "lap", 5)
        .await
        .expect("autocomplete works");
    engine.refresh().await.expect("refresh works");
    for (typed, expected) in [
        ("laptopst", "Laptop Stand"),
        ("laptops", "Laptop Sleeve"),
        ("head pho", "Wireless Headphones"),
        ("wireless head pho", "Wireless Headphones"),
    ] {
        let suggestions = engine
            .autocomplete(&tenant("shop-h"), typed, 5)
            .await
            .expect("autocomplete works");
        let found: Vec<(&str, bool)> = suggestions
            .iter()
            .map(|s| (s.text.as_str(), s.fuzzy))
            .collect();
        assert!(found.contains(&(expected, true)), "{typed:?}: {found:?}");
    }
}
