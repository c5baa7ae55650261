//! The report catalog on the embedded DataFusion engine, over a lake written by the real
//! CDC handlers, including a retried (overlapping) batch, a purchase modified to
//! cancelled, a refund and a REMOVEd purchase. Expected numbers are worked out by hand
//! below, independently of the SQL.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use chrono::NaiveDate;
use cloudpf_analytics::{
    AnalyticsEngine, DataFusionEngine, Granularity, Report, ReportRequest, ReportTable,
};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_cdc::{Batch, Pipeline, handle_purchases};
use cloudpf_model::{Currency, LineItem, Money, Op, Purchase, PurchaseStatus, TenantId, Timestamp};

fn purchase(
    t: &str,
    id: &str,
    customer: &str,
    day: &str,
    status: PurchaseStatus,
    lines: &[(&str, i64, &str)],
) -> Purchase {
    let items: Vec<LineItem> = lines
        .iter()
        .map(|(p, q, price)| LineItem {
            product_id: (*p).into(),
            name: format!("Product {p}"),
            quantity: *q,
            unit_price: Money::parse(price).unwrap(),
        })
        .collect();
    let total = items
        .iter()
        .map(|i| i.line_total().unwrap())
        .fold(Money::ZERO, |a, b| a.checked_add(b).unwrap());
    Purchase {
        tenant_id: TenantId::parse(t).unwrap(),
        purchase_id: id.into(),
        customer_id: customer.into(),
        items,
        total_amount: total,
        currency: Currency::parse("EUR").unwrap(),
        status,
        payment_method: "card".into(),
        shipping_country: "DE".into(),
        shipping_city: "Berlin".into(),
        created_at: Timestamp::parse(&format!("{day}T10:00:00Z")).unwrap(),
        updated_at: None,
    }
}

/// The fixture lake. Current state, by hand:
/// - o-1 2025-11-20 c-1 paid:      p1 2×19.99 + p2 1×5.01 = 44.99
/// - o-2 2025-11-21 c-2 cancelled: p1 1×19.99 = 19.99
/// - o-3 2025-11-21 c-2 REMOVEd:   p3 3×10.00 = 30.00 (gone)
/// - o-4 2025-11-22 c-3 refunded:  p2 4×5.01 = 20.04
/// - o-5 2025-11-22 c-1 paid:      p1 1×19.99 + p3 1×10.00 = 29.99
/// - o-6 2025-11-25 c-4 paid:      p2 3×5.01 + p1 1×19.99 = 35.02 (outside most ranges)
/// - other tenant: o-9 2025-11-21 paid 1000.00 (must never show)
async fn lake(dir: &std::path::Path) {
    use PurchaseStatus::*;
    let pipeline = Pipeline::local(dir);
    let mut stream = StreamWriter::new("purchases");
    let o1 = purchase(
        "acme",
        "o-1",
        "c-1",
        "2025-11-20",
        Placed,
        &[("p1", 2, "19.99"), ("p2", 1, "5.01")],
    );
    let o2 = purchase(
        "acme",
        "o-2",
        "c-2",
        "2025-11-21",
        Paid,
        &[("p1", 1, "19.99")],
    );
    let o3 = purchase(
        "acme",
        "o-3",
        "c-2",
        "2025-11-21",
        Shipped,
        &[("p3", 3, "10.00")],
    );
    let o4 = purchase(
        "acme",
        "o-4",
        "c-3",
        "2025-11-22",
        Shipped,
        &[("p2", 4, "5.01")],
    );
    let o5 = purchase(
        "acme",
        "o-5",
        "c-1",
        "2025-11-22",
        Paid,
        &[("p1", 1, "19.99"), ("p3", 1, "10.00")],
    );
    let o6 = purchase(
        "acme",
        "o-6",
        "c-4",
        "2025-11-25",
        Paid,
        &[("p2", 3, "5.01"), ("p1", 1, "19.99")],
    );
    let o9 = purchase(
        "other",
        "o-9",
        "c-9",
        "2025-11-21",
        Paid,
        &[("p1", 1, "1000.00")],
    );
    let with = |p: &Purchase, s: PurchaseStatus| Purchase {
        status: s,
        ..p.clone()
    };
    let at = |p: &Purchase| p.created_at.utc();
    let mut rec = |op: Op, new: Option<&Purchase>, old: Option<&Purchase>| {
        let p = new.or(old).unwrap();
        stream.record(
            op,
            events::purchase_keys(p),
            new.map(events::purchase_item),
            old.map(events::purchase_item),
            at(p),
        )
    };
    let records = vec![
        rec(Op::Insert, Some(&o1), None),
        rec(Op::Insert, Some(&o2), None),
        rec(Op::Insert, Some(&o3), None),
        rec(Op::Modify, Some(&with(&o1, Paid)), Some(&o1)),
        rec(Op::Insert, Some(&o4), None),
        rec(Op::Insert, Some(&o5), None),
        rec(Op::Insert, Some(&o9), None),
        rec(Op::Modify, Some(&with(&o2, Cancelled)), Some(&o2)),
        rec(Op::Remove, None, Some(&o3)),
        rec(Op::Modify, Some(&with(&o4, Refunded)), Some(&o4)),
        rec(Op::Insert, Some(&o6), None),
    ];
    // Delivered as Lambda would after a partial failure: the second batch starts again
    // at the fourth record, so records 4-6 land in the lake twice, in other objects.
    for batch in [&records[..6], &records[3..]] {
        let report =
            handle_purchases(Batch::from_event(events::event(batch.to_vec())), &pipeline).await;
        assert_eq!(report.failed_from, None);
    }
    // And a plain replay of the whole history changes nothing.
    let report = handle_purchases(Batch::from_event(events::event(records)), &pipeline).await;
    assert_eq!(report.failed_from, None);
}

fn day(d: &str) -> NaiveDate {
    NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
}

async fn run(engine: &DataFusionEngine, report: Report, from: &str, to: &str) -> ReportTable {
    run_by(engine, report, from, to, Granularity::Day).await
}

async fn run_by(
    engine: &DataFusionEngine,
    report: Report,
    from: &str,
    to: &str,
    granularity: Granularity,
) -> ReportTable {
    let request = ReportRequest {
        report,
        from: day(from),
        to: day(to),
        limit: 10,
        granularity,
    };
    engine
        .run(&TenantId::parse("acme").unwrap(), &request)
        .await
        .unwrap()
}

fn rows(table: &ReportTable) -> Vec<Vec<&str>> {
    table
        .rows
        .iter()
        .map(|r| r.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_matches_the_numbers_worked_out_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    lake(dir.path()).await;
    let engine = DataFusionEngine::new(dir.path());

    let summary = run(&engine, Report::Summary, "2025-11-20", "2025-11-22").await;
    assert_eq!(
        summary.columns,
        [
            "orders",
            "revenue",
            "units",
            "average_order_value",
            "customers",
            "all_orders",
            "cancelled_orders",
            "refunded_orders"
        ]
    );
    // Valid orders o-1 and o-5: 44.99 + 29.99 = 74.98 over 2 orders, 3 + 2 units, one customer.
    assert_eq!(
        rows(&summary),
        [["2", "74.98", "5", "37.49", "1", "4", "1", "1"]]
    );

    let daily = run(&engine, Report::Timeseries, "2025-11-20", "2025-11-22").await;
    assert_eq!(
        rows(&daily),
        [["2025-11-20", "1", "44.99"], ["2025-11-22", "1", "29.99"]]
    );
    // 2025-11-20 (Thursday) and 2025-11-22 (Saturday) share the week of Monday 2025-11-17.
    let weekly = run_by(
        &engine,
        Report::Timeseries,
        "2025-11-20",
        "2025-11-22",
        Granularity::Week,
    )
    .await;
    assert_eq!(rows(&weekly), [["2025-11-17", "2", "74.98"]]);
    let monthly = run_by(
        &engine,
        Report::Timeseries,
        "2025-11-20",
        "2025-11-22",
        Granularity::Month,
    )
    .await;
    assert_eq!(rows(&monthly), [["2025-11", "2", "74.98"]]);

    // Every fixture order ships to Germany and is paid by card.
    let country = run(&engine, Report::ByCountry, "2025-11-20", "2025-11-22").await;
    assert_eq!(rows(&country), [["DE", "2", "74.98"]]);
    let payment = run(&engine, Report::ByPaymentMethod, "2025-11-20", "2025-11-22").await;
    assert_eq!(rows(&payment), [["card", "2", "74.98"]]);

    let top = run(&engine, Report::TopProducts, "2025-11-20", "2025-11-22").await;
    assert_eq!(
        rows(&top),
        [
            ["p1", "Product p1", "3", "59.97", "2"],
            ["p3", "Product p3", "1", "10.00", "1"],
            ["p2", "Product p2", "1", "5.01", "1"],
        ]
    );

    // Every fixture order ships to Germany and is paid by card.
    let country = run(&engine, Report::ByCountry, "2025-11-20", "2025-11-22").await;
    assert_eq!(rows(&country), [["DE", "2", "74.98"]]);
    let payment = run(&engine, Report::ByPaymentMethod, "2025-11-20", "2025-11-22").await;
    assert_eq!(rows(&payment), [["card", "2", "74.98"]]);

    // On 2025-11-25 p1 earns more (19.99 > 15.03) but p2 sells more (3 > 1 units).
    let by_revenue = run(&engine, Report::TopProducts, "2025-11-25", "2025-11-25").await;
    let by_units = run(
        &engine,
        Report::TopProductsByUnits,
        "2025-11-25",
        "2025-11-25",
    )
    .await;
    assert_eq!(
        rows(&by_revenue),
        [
            ["p1", "Product p1", "1", "19.99", "1"],
            ["p2", "Product p2", "3", "15.03", "1"]
        ]
    );
    assert_eq!(
        rows(&by_units),
        [
            ["p2", "Product p2", "3", "15.03", "1"],
            ["p1", "Product p1", "1", "19.99", "1"]
        ]
    );

    let status = run(&engine, Report::ByStatus, "2025-11-20", "2025-11-22").await;
    assert_eq!(
        rows(&status),
        [
            ["paid", "2", "74.98"],
            ["cancelled", "1", "19.99"],
            ["refunded", "1", "20.04"]
        ]
    );

    // One day: only o-2 (cancelled) is left of 2025-11-21; the other tenant never shows.
    let one_day = run(&engine, Report::Summary, "2025-11-21", "2025-11-21").await;
    assert_eq!(
        rows(&one_day),
        [["0", "0.00", "0", "0.00", "0", "1", "1", "0"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_day_report_reads_only_that_days_partition_of_that_tenant() {
    let dir = tempfile::tempdir().unwrap();
    lake(dir.path()).await;
    let engine = DataFusionEngine::new(dir.path());
    let request = ReportRequest {
        report: Report::Summary,
        from: day("2025-11-21"),
        to: day("2025-11-21"),
        limit: 10,
        granularity: Granularity::Day,
    };
    let plan = engine
        .plan(&TenantId::parse("acme").unwrap(), &request)
        .await
        .unwrap();
    let files: Vec<&str> = plan
        .split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter(|w| w.ends_with(".csv.gz"))
        .collect();
    assert!(!files.is_empty(), "{plan}");
    assert!(
        files
            .iter()
            .all(|f| f.contains("tenant_id=acme/dt=2025-11-21/")),
        "{files:?}"
    );
    // The lake holds three days of acme and one of another tenant.
    let all = walk(&dir.path().join("lake/purchases/csv"));
    assert!(all.len() > files.len(), "{all:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_without_purchases_reports_zeros_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DataFusionEngine::new(dir.path());
    let summary = run(&engine, Report::Summary, "2025-11-20", "2025-11-22").await;
    assert_eq!(
        rows(&summary),
        [["0", "0.00", "0", "0.00", "0", "0", "0", "0"]]
    );
    assert!(
        run(&engine, Report::TopProducts, "2025-11-20", "2025-11-22")
            .await
            .rows
            .is_empty()
    );
}
