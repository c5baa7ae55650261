//! Server-side time of the hot paths at 100k products in one tenant: autocomplete (the
//! search box, every keystroke) and product search. `cargo bench -p cloudpf-demo --bench search`.
//!
//! Setup indexes a generated 100k-product catalog with 20k purchases (popularity) once,
//! which takes a minute; the measured calls go through the `SearchEngine` trait exactly
//! as the API calls it, so this is the engine time of a request, without HTTP.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use cloudpf_model::{SeqNo, TenantId};
use cloudpf_search::{DocChange, ProductQuery, SearchEngine, TantivyEngine, Versioned};
use criterion::{Criterion, criterion_group, criterion_main};

const PRODUCTS: usize = 100_000;
const PURCHASES: usize = 20_000;

fn setup(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (Arc<TantivyEngine>, TenantId) {
    let tenant = TenantId::parse("bench-shop").expect("tenant id");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .expect("a time");
    let history =
        cloudpf_demo::generate_history(7, std::slice::from_ref(&tenant), PRODUCTS, PURCHASES, now);
    let engine = Arc::new(TantivyEngine::new(dir));
    let mut seq = 1u64;
    let mut next = || {
        seq += 1;
        SeqNo::parse(&seq.to_string()).expect("digits")
    };
    rt.block_on(async {
        for chunk in history.catalogs[0].products.chunks(10_000) {
            let changes = chunk
                .iter()
                .map(|p| Versioned {
                    key: p.product_id.clone(),
                    seq: next(),
                    change: DocChange::Upsert(p.clone()),
                })
                .collect();
            engine
                .apply_products(&tenant, changes)
                .await
                .expect("indexed");
        }
        let purchases: Vec<_> = history
            .purchase_batches
            .iter()
            .flat_map(|e| e.records.iter())
            .filter(|r| r.event_name == "INSERT")
            .filter_map(|r| {
                cloudpf_model::dynamo::from_item::<cloudpf_model::Purchase>(
                    r.change.new_image.clone(),
                )
                .ok()
            })
            .collect();
        for chunk in purchases.chunks(10_000) {
            let changes = chunk
                .iter()
                .map(|p| Versioned {
                    key: p.purchase_id.clone(),
                    seq: next(),
                    change: DocChange::Upsert(p.clone()),
                })
                .collect();
            engine
                .apply_purchases(&tenant, changes)
                .await
                .expect("indexed");
        }
        // Build the autocomplete once, as the serving process's refresher does, and say
        // how long that takes: it bounds how stale suggestions get at this size.
        let started = std::time::Instant::now();
        engine
            .autocomplete(&tenant, "warm", 8)
            .await
            .expect("autocomplete");
        eprintln!(
            "autocomplete build for {PRODUCTS} products: {:?}",
            started.elapsed()
        );
    });
    (engine, tenant)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, tenant) = setup(&rt, dir.path());

    let mut group = c.benchmark_group("autocomplete_100k");
    for input in [
        "he",
        "hea",
        "head",
        "headph",
        "wireless head",
        "headphnes",
        "ultrlight tent",
    ] {
        group.bench_function(input, |b| {
            b.to_async(&rt).iter(|| async {
                engine
                    .autocomplete(&tenant, input, 8)
                    .await
                    .expect("autocomplete")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("product_search_100k");
    for text in [
        "headphones",
        "wireless headphones",
        "wireles headphnes",
        "noise-cancelling head",
    ] {
        let query = ProductQuery {
            text: text.to_owned(),
            limit: 10,
            ..ProductQuery::default()
        };
        group.bench_function(text, |b| {
            b.to_async(&rt).iter(|| async {
                engine
                    .search_products(&tenant, &query)
                    .await
                    .expect("search")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = search;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(search);
