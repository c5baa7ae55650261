//! The search log's reports (issue #12) on the embedded engine, over events written by
//! the API's own log writer, checked against an independent computation in plain Rust
//! on random histories: repeated queries, searches without results, several clicks of
//! one search on different days, clicks whose search lies outside the range, events of
//! another shop, and days outside the range.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use cloudpf_analytics::{
    AnalyticsEngine, DataFusionEngine, Filters, Granularity, Report, ReportRequest, ReportTable,
};
use cloudpf_lake::{LocalDirSink, SearchLog};
use cloudpf_model::{SearchEvent, SearchEventKind, TenantId, Timestamp};

const QUERIES: [&str; 6] = [
    "boots",
    "tent",
    "hiking boots",
    "lamp",
    "zzz",
    "rain jacket",
];

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn at(d: NaiveDate, seconds: i64) -> Timestamp {
    let midnight = Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap());
    Timestamp::from_utc(midnight + Duration::seconds(seconds))
}

/// A random history of two shops over November 1 to 7.
fn history(seed: u64) -> Vec<(TenantId, SearchEvent)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
    let mut out = Vec::new();
    for i in 0..400u64 {
        let tenant = if rng.u8(0..10) < 8 { &a } else { &b };
        let d = day(rng.u32(1..=7));
        let query = QUERIES[rng.usize(..QUERIES.len())];
        let results = if query == "zzz" || rng.u8(0..10) == 0 {
            0
        } else {
            rng.u64(1..60)
        };
        let query_id = format!("{i:016x}");
        let when = rng.i64(0..80_000);
        out.push((
            tenant.clone(),
            SearchEvent {
                kind: SearchEventKind::Search,
                query: query.into(),
                query_id: query_id.clone(),
                results: Some(results),
                product_id: None,
                position: None,
                at: at(d, when),
            },
        ));
        // Keystrokes before it: logged, never counted as searches.
        out.push((
            tenant.clone(),
            SearchEvent {
                kind: SearchEventKind::Autocomplete,
                query: query[..2].into(),
                query_id: format!("{:016x}", 10_000 + i),
                results: Some(5),
                product_id: None,
                position: None,
                at: at(d, when - 3),
            },
        ));
        if results > 0 && rng.u8(0..10) < 4 {
            for _ in 0..rng.u8(1..=3) {
                // Some clicks land the next day (after midnight).
                let next = rng.u8(0..5) == 0;
                out.push((
                    tenant.clone(),
                    SearchEvent {
                        kind: SearchEventKind::Click,
                        query: query.into(),
                        query_id: query_id.clone(),
                        results: None,
                        product_id: Some(format!("p-{}", rng.u8(1..50))),
                        position: Some(rng.u32(1..=15)),
                        at: if next {
                            at(d + Duration::days(1), rng.i64(0..3_000))
                        } else {
                            at(d, when + rng.i64(1..300))
                        },
                    },
                ));
            }
        }
    }
    out
}

fn request(report: Report, limit: u32) -> ReportRequest {
    ReportRequest {
        report,
        from: day(2),
        to: day(5),
        limit,
        granularity: Granularity::Day,
        filters: Filters::default(),
    }
}

fn rows(t: &ReportTable) -> Vec<BTreeMap<String, String>> {
    t.rows
        .iter()
        .map(|r| {
            t.columns
                .iter()
                .cloned()
                .zip(r.iter().map(|v| v.clone().unwrap_or_default()))
                .collect()
        })
        .collect()
}

fn close(got: &str, want: f64, unit: f64) -> bool {
    (got.parse::<f64>().unwrap() - want).abs() <= unit / 2.0 + 1e-9
}

/// The events of shop `a` whose date is in the range.
fn in_range(events: &[(TenantId, SearchEvent)]) -> Vec<&SearchEvent> {
    events
        .iter()
        .filter(|(t, e)| t.as_str() == "a" && (day(2)..=day(5)).contains(&e.at.date()))
        .map(|(_, e)| e)
        .collect()
}

#[tokio::test]
async fn search_reports_agree_with_an_independent_count_of_the_log() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let log = SearchLog::new(Arc::new(LocalDirSink::new(dir.path())));
        let events = history(seed);
        for (tenant, e) in &events {
            log.record(tenant, e.clone());
        }
        log.flush().await.unwrap();
        let engine = DataFusionEngine::new(dir.path());
        let a = TenantId::parse("a").unwrap();
        let run = |report, limit| {
            let engine = engine.clone();
            let a = a.clone();
            async move { engine.run(&a, &request(report, limit)).await.unwrap() }
        };
        let mine = in_range(&events);

        // Per search (query id): its query, results and day, and whether it was clicked.
        let mut searches: BTreeMap<&str, (&str, u64, NaiveDate, bool)> = BTreeMap::new();
        for e in mine.iter().filter(|e| e.kind == SearchEventKind::Search) {
            searches.insert(
                &e.query_id,
                (&e.query, e.results.unwrap(), e.at.date(), false),
            );
        }
        let clicks: Vec<&&SearchEvent> = mine
            .iter()
            .filter(|e| e.kind == SearchEventKind::Click)
            .collect();
        for c in &clicks {
            if let Some(s) = searches.get_mut(c.query_id.as_str()) {
                s.3 = true;
            }
        }

        // top_queries
        let mut per_query: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for (query, results, _, clicked) in searches.values() {
            let q = per_query.entry(query).or_default();
            q.0 += 1;
            q.1 += u64::from(*clicked);
            q.2 += results;
        }
        let mut ranked: Vec<(&str, (u64, u64, u64))> = per_query.into_iter().collect();
        ranked.sort_by(|x, y| y.1.0.cmp(&x.1.0).then(x.0.cmp(y.0)));
        let got = rows(&run(Report::TopQueries, 4).await);
        assert_eq!(got.len(), 4.min(ranked.len()), "seed {seed}");
        for (row, (query, (n, clicked, results))) in got.iter().zip(&ranked) {
            assert_eq!(row["query"], *query, "seed {seed}");
            assert_eq!(row["searches"], n.to_string(), "{query}");
            assert_eq!(row["searches_with_clicks"], clicked.to_string(), "{query}");
            assert!(
                close(
                    &row["click_through_rate"],
                    *clicked as f64 / *n as f64,
                    1e-4
                ),
                "{row:?}"
            );
            assert!(
                close(&row["average_results"], *results as f64 / *n as f64, 0.1),
                "{row:?}"
            );
        }

        // no_result_queries
        let mut empty: BTreeMap<&str, (BTreeSet<&str>, String)> = BTreeMap::new();
        for e in mine
            .iter()
            .filter(|e| e.kind == SearchEventKind::Search && e.results == Some(0))
        {
            let q = empty.entry(&e.query).or_default();
            q.0.insert(&e.query_id);
            q.1 = q.1.clone().max(e.at.to_rfc3339());
        }
        let mut want: Vec<(&str, usize, String)> = empty
            .into_iter()
            .map(|(q, (ids, last))| (q, ids.len(), last))
            .collect();
        want.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
        let got: Vec<(String, String, String)> = rows(&run(Report::NoResultQueries, 10).await)
            .into_iter()
            .map(|r| {
                (
                    r["query"].clone(),
                    r["searches"].clone(),
                    r["last_searched"].clone(),
                )
            })
            .collect();
        let want: Vec<(String, String, String)> = want
            .into_iter()
            .map(|(q, n, last)| (q.to_owned(), n.to_string(), last))
            .collect();
        assert_eq!(got, want, "seed {seed}");

        // search_clicks
        let mut days: BTreeMap<NaiveDate, (u64, u64, u64, u64)> = BTreeMap::new();
        for (_, _, d, clicked) in searches.values() {
            let e = days.entry(*d).or_default();
            e.0 += 1;
            e.1 += u64::from(*clicked);
        }
        for c in &clicks {
            if let Some(e) = days.get_mut(&c.at.date()) {
                e.2 += 1;
                e.3 += u64::from(c.position.unwrap());
            }
        }
        let got = rows(&run(Report::SearchClicks, 10).await);
        assert_eq!(got.len(), days.len(), "seed {seed}");
        for (row, (d, (n, clicked, clicks, positions))) in got.iter().zip(&days) {
            assert_eq!(row["day"], d.to_string());
            assert_eq!(row["searches"], n.to_string(), "{d}");
            assert_eq!(row["searches_with_clicks"], clicked.to_string(), "{d}");
            assert!(close(
                &row["click_through_rate"],
                *clicked as f64 / *n as f64,
                1e-4
            ));
            assert_eq!(row["clicks"], clicks.to_string(), "{d}");
            if *clicks > 0 {
                let avg = *positions as f64 / *clicks as f64;
                assert!(close(&row["average_click_position"], avg, 0.01), "{row:?}");
            }
        }

        // click_positions, positions 1 to 10
        let mut positions: BTreeMap<u32, u64> = BTreeMap::new();
        for c in &clicks {
            let p = c.position.unwrap();
            if p <= 10 {
                *positions.entry(p).or_default() += 1;
            }
        }
        let got: Vec<(String, String)> = rows(&run(Report::ClickPositions, 10).await)
            .into_iter()
            .map(|r| (r["position"].clone(), r["clicks"].clone()))
            .collect();
        let want: Vec<(String, String)> = positions
            .into_iter()
            .map(|(p, n)| (p.to_string(), n.to_string()))
            .collect();
        assert_eq!(got, want, "seed {seed}");
    }
}

#[tokio::test]
async fn search_reports_of_a_shop_without_a_log_are_empty_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DataFusionEngine::new(dir.path());
    let a = TenantId::parse("a").unwrap();
    for report in [
        Report::TopQueries,
        Report::NoResultQueries,
        Report::SearchClicks,
        Report::ClickPositions,
    ] {
        let t = engine.run(&a, &request(report, 10)).await.unwrap();
        assert!(t.rows.is_empty(), "{}", report.name());
    }
}
