//! Replays the committed fuzz inputs of `query_params` and `report_spec` (seeds in
//! `fuzz/corpus/<target>/`, crash reproducers in `fuzz/regressions/<target>/`) through the
//! same harnesses the fuzz targets call, so every `cargo test` re-runs them on stable. A
//! panic fails the test with the file's name.
#![allow(clippy::unwrap_used)] // a test that cannot read its inputs should fail loudly

use std::path::{Path, PathBuf};

use cloudpf_search_api::fuzzing::{query_params, report_spec};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

fn replay_all<T>(target: &str, harness: impl Fn(&[u8]) -> T + std::panic::RefUnwindSafe) {
    let seeds = inputs("corpus", target);
    assert!(seeds.len() >= 20, "the {target} seed corpus is missing");
    for path in seeds.iter().chain(&inputs("regressions", target)) {
        let bytes = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| harness(&bytes)).is_err() {
            panic!("{} panics {target}", path.display());
        }
    }
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(fuzz_dir().join("corpus").join(target).join(name)).unwrap()
}

#[test]
fn every_query_string_seed_and_reproducer_is_answered_without_panicking() {
    replay_all("query_params", query_params);
}

#[test]
fn every_report_spec_seed_and_reproducer_is_answered_without_panicking() {
    replay_all("report_spec", report_spec);
}

#[test]
fn the_query_string_seeds_still_mean_what_they_were_written_for() {
    let accepted = |s: &str| query_params(s.as_bytes());
    let all = accepted("q=boots&size=3");
    assert!(all.search_all && all.products && all.autocomplete && all.purchases);
    assert!(!all.dashboard, "the dashboard needs from and to");
    let full = accepted(std::str::from_utf8(&seed("query_params", "q03.txt")).unwrap());
    assert!(full.products && !full.purchases, "{full:?}");
    assert!(accepted("from=2026-01-01&to=2026-01-31").dashboard);
    for refused in [
        "q=%FF",
        "size=0",
        "page=18446744073709551615&size=100",
        "min_price=5&max_price=1",
        "min_price=-1",
        "unknown=1",
    ] {
        let a = accepted(refused);
        assert!(
            !a.products && !a.purchases && !a.dashboard,
            "{refused}: {a:?}"
        );
    }
    // Purchase search takes any range; the dashboard at most a year.
    let year = accepted("from=2026-01-01&to=2027-01-02");
    assert!(year.purchases && !year.dashboard, "{year:?}");
    assert_eq!(query_params(b"q=\xff"), Default::default());
}

#[test]
fn the_report_spec_seeds_still_mean_what_they_were_written_for() {
    let (request, csv) = report_spec(&seed("report_spec", "top-products-csv.json")).unwrap();
    assert_eq!(
        (request.report.name(), request.limit, csv),
        ("top_products", 1000, true)
    );
    assert_eq!(request.filters.category.as_deref(), Some("Outdoor"));
    for (name, code) in [
        ("unknown-report.json", "unknown_report"),
        ("range-too-long.json", "range_too_large"),
        ("range-inverted.json", "invalid_range"),
        ("limit-zero.json", "out_of_range"),
        ("limit-huge.json", "invalid_body"),
        ("format-xml.json", "invalid_parameter"),
        ("category-on-summary.json", "invalid_filter"),
        ("filter-control.json", "invalid_filter"),
        ("unknown-field.json", "invalid_body"),
        ("trailing.json", "invalid_body"),
        ("empty.txt", "invalid_body"),
    ] {
        let refused = report_spec(&seed("report_spec", name)).unwrap_err();
        assert_eq!(refused.code, code, "{name}: {}", refused.message);
    }
}
