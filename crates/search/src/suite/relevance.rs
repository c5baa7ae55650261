//! The relevance test set (`tests/relevance/`): a fixed catalog and the queries a shopper
//! types, each with the products that must be in the first ten results and some that
//! must not. [`relevance`] runs every case on an engine, reports recall@10 and the mean
//! reciprocal rank per kind of case (exact, prefix, typo, joined, split, plural), and
//! fails when a kind falls below its floor in `tests/relevance/floors.json`, or when a
//! product that must not appear does. A ranking change shows up as a change of these
//! figures; raise a floor when the engine gets better.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use super::fixtures::{Writer, product, tenant};
use crate::engine::SearchEngine;
use crate::query::ProductQuery;

const CATALOG: &str = include_str!("../../../../tests/relevance/catalog.json");
const CASES: &str = include_str!("../../../../tests/relevance/cases.json");
const FLOORS: &str = include_str!("../../../../tests/relevance/floors.json");

/// The tenant the catalog is written to.
pub const RELEVANCE_TENANT: &str = "shop-r";

#[derive(Deserialize)]
struct Item {
    id: String,
    name: String,
    category: String,
    brand: String,
    price: String,
    description: String,
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct Case {
    kind: String,
    query: String,
    must: Vec<String>,
    must_not: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
struct Floor {
    recall: f64,
    mrr: f64,
}

/// Per kind: recall@10 and MRR, averaged over its cases.
pub type Figures = BTreeMap<String, (f64, f64)>;

/// Writes the catalog, runs every case, prints the figures per kind to stderr, and
/// panics when a kind is below its floor for `engine_name` (a key of `floors.json`) or a
/// case finds a product it must not.
pub async fn relevance(engine: &dyn SearchEngine, engine_name: &str) -> Figures {
    let items: Vec<Item> = serde_json::from_str(CATALOG).expect("tests/relevance/catalog.json");
    let cases: Vec<Case> = serde_json::from_str(CASES).expect("tests/relevance/cases.json");
    let floors: BTreeMap<String, BTreeMap<String, Floor>> =
        serde_json::from_str(FLOORS).expect("tests/relevance/floors.json");
    let products = items
        .into_iter()
        .map(|i| {
            let mut p = product(
                RELEVANCE_TENANT,
                &i.id,
                &i.name,
                &i.category,
                &i.brand,
                &i.price,
                10,
            );
            p.description = i.description;
            p.tags = i.tags;
            p
        })
        .collect();
    Writer::new(engine).products(products).await;
    let shop = tenant(RELEVANCE_TENANT);

    let mut sums: BTreeMap<String, (f64, f64, u32)> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut report = String::new();
    for case in &cases {
        let query = ProductQuery {
            text: case.query.clone(),
            limit: 10,
            ..ProductQuery::default()
        };
        let found: Vec<String> = engine
            .search_products(&shop, &query)
            .await
            .expect("search works")
            .hits
            .into_iter()
            .map(|h| h.product.product_id)
            .collect();
        let hit = |id: &String| found.contains(id);
        #[allow(clippy::cast_precision_loss)] // a handful of products per case
        let recall = case.must.iter().filter(|id| hit(id)).count() as f64 / case.must.len() as f64;
        #[allow(clippy::cast_precision_loss)]
        let mrr = found
            .iter()
            .position(|id| case.must.contains(id))
            .map_or(0.0, |rank| 1.0 / (rank + 1) as f64);
        let entry = sums.entry(case.kind.clone()).or_default();
        *entry = (entry.0 + recall, entry.1 + mrr, entry.2 + 1);
        let unwanted: Vec<&String> = case.must_not.iter().filter(|id| hit(id)).collect();
        if !unwanted.is_empty() {
            problems.push(format!(
                "{:?} found {unwanted:?}, which it must not",
                case.query
            ));
        }
        let _ = writeln!(
            report,
            "  {:<7} {:<14} recall {recall:.2} rr {mrr:.2} top {:?}",
            case.kind,
            format!("{:?}", case.query),
            &found[..found.len().min(5)]
        );
    }
    let figures: Figures = sums
        .into_iter()
        .map(|(kind, (r, m, n))| (kind, (r / f64::from(n), m / f64::from(n))))
        .collect();
    let _ = writeln!(report, "relevance on {engine_name}: kind, recall@10, MRR");
    let floors = floors.get(engine_name);
    for (kind, (recall, mrr)) in &figures {
        let floor = floors.and_then(|f| f.get(kind));
        let _ = writeln!(
            report,
            "  {kind:<7} {recall:.3} {mrr:.3}   floor {}",
            floor.map_or("none".to_owned(), |f| format!(
                "{:.3} {:.3}",
                f.recall, f.mrr
            ))
        );
        if let Some(f) = floor
            && (*recall + 1e-9 < f.recall || *mrr + 1e-9 < f.mrr)
        {
            problems.push(format!(
                "{kind}: recall@10 {recall:.3} / MRR {mrr:.3} below the floor {:.3} / {:.3}",
                f.recall, f.mrr
            ));
        }
    }
    // Straight to stderr: the figures are the point of this test, passing or not.
    {
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(report.as_bytes());
    }
    assert!(
        problems.is_empty(),
        "relevance regressed:\n{}",
        problems.join("\n")
    );
    figures
}
