//! Report time on the embedded engine, as the dashboard waits for it: each report of the
//! catalog over a lake written by the real handlers. `cargo bench -p cloudpf-analytics`.
//!
//! Setup runs a generated shop's history (2,000 products, 20,000 purchases with their
//! life: payments, shipments, cancellations, refunds) through the CDC handlers into a
//! local lake once; the measured call is `AnalyticsEngine::run`, the API's call, so this
//! is the engine time of a report request without HTTP. Every run reads the gzip files
//! again (the engine keeps no cache), as every API request does.

use chrono::{Days, NaiveDate, TimeZone, Utc};
use cloudpf_analytics::{
    AnalyticsEngine, DataFusionEngine, Filters, Granularity, Report, ReportRequest,
};
use cloudpf_cdc::{Batch, Pipeline, handle_products, handle_purchases};
use cloudpf_model::TenantId;
use criterion::{Criterion, criterion_group, criterion_main};

const PRODUCTS: usize = 2_000;
const PURCHASES: usize = 20_000;

fn setup(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (TenantId, NaiveDate) {
    let tenant = TenantId::parse("bench-shop").expect("tenant id");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .expect("a time");
    let history =
        cloudpf_demo::generate_history(7, std::slice::from_ref(&tenant), PRODUCTS, PURCHASES, now);
    let pipeline = Pipeline::local(dir);
    rt.block_on(async {
        for event in &history.product_batches {
            handle_products(Batch::from_event(event.clone()), &pipeline).await;
        }
        for event in &history.purchase_batches {
            handle_purchases(Batch::from_event(event.clone()), &pipeline).await;
        }
    });
    (tenant, now.date_naive())
}

fn request(report: Report, from: NaiveDate, to: NaiveDate) -> ReportRequest {
    ReportRequest {
        report,
        from,
        to,
        limit: 10,
        granularity: Granularity::Day,
        filters: Filters::default(),
    }
}

fn reports(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (tenant, today) = setup(&rt, dir.path());
    let engine = DataFusionEngine::new(dir.path());
    let quarter = today - Days::new(90);
    let mut group = c.benchmark_group("report_20k_purchases");
    group.sample_size(10);
    let cases = [
        ("summary_90_days", request(Report::Summary, quarter, today)),
        (
            "summary_1_day",
            request(Report::Summary, today - Days::new(1), today),
        ),
        (
            "timeseries_90_days",
            request(Report::Timeseries, quarter, today),
        ),
        (
            "top_products_90_days",
            request(Report::TopProducts, quarter, today),
        ),
        (
            "by_category_90_days",
            request(Report::ByCategory, quarter, today),
        ),
        ("rfm_90_days", request(Report::Rfm, quarter, today)),
    ];
    for (name, req) in &cases {
        let rows = rt
            .block_on(engine.run(&tenant, req))
            .expect("the report runs")
            .rows
            .len();
        assert!(rows > 0, "{name} has rows");
        group.bench_function(*name, |b| {
            b.to_async(&rt)
                .iter(|| async { engine.run(&tenant, req).await.expect("the report runs") })
        });
    }
    group.finish();
}

criterion_group!(benches, reports);
criterion_main!(benches);
