//! The fuzz targets' harnesses (`fuzz/fuzz_targets/{query_params,report_spec}.rs`), also
//! called by the replay test of the committed corpora (`tests/fuzz_corpus.rs`) so that
//! `cargo test` re-runs every seed and every past crash on stable: one code path for both.
//! Each goes through the functions the handlers call, with the default limits.

use axum::Json;
use chrono::NaiveDate;
use cloudpf_analytics::{ReportRequest, Slot};
use cloudpf_model::TenantId;

use crate::config::Limits;
use crate::error::BadParameter;
use crate::params::Page;
use crate::routes::analytics::{DashboardParams, MAX_LIMIT, MAX_RANGE_DAYS, ReportSpec};
use crate::routes::search::{
    AutocompleteParams, MAX_SUGGESTIONS, ProductParams, PurchaseParams, SearchAllParams,
};

/// Which endpoints accepted a query string.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub search_all: bool,
    pub products: bool,
    pub autocomplete: bool,
    pub purchases: bool,
    pub dashboard: bool,
}

/// Arbitrary bytes as the query string of every GET endpoint. A query string is refused
/// with a 400 or accepted within the limits; never a panic.
pub fn query_params(data: &[u8]) -> Accepted {
    // axum hands the handlers the query as text; bytes that are not UTF-8 never reach them.
    let Ok(raw) = std::str::from_utf8(data) else {
        return Accepted::default();
    };
    let limits = Limits::default();
    let raw = Some(raw);
    let mut accepted = Accepted::default();

    if let Ok((text, size)) = SearchAllParams::from_query(raw, &limits) {
        check_text(&text, &limits, true);
        assert!((1..=20).contains(&size), "search size {size}");
        accepted.search_all = true;
    }
    if let Ok((q, page)) = ProductParams::from_query(raw, &limits) {
        check_text(&q.text, &limits, false);
        check_page(q.offset, q.limit, page, &limits);
        if let (Some(lo), Some(hi)) = (q.min_price, q.max_price) {
            assert!(lo <= hi, "min_price above max_price");
        }
        for m in [q.min_price, q.max_price].into_iter().flatten() {
            assert!(!m.is_negative(), "negative price bound");
        }
        accepted.products = true;
    }
    if let Ok((text, size)) = AutocompleteParams::from_query(raw, &limits) {
        check_text(&text, &limits, true);
        assert!((1..=MAX_SUGGESTIONS).contains(&size), "suggestions {size}");
        accepted.autocomplete = true;
    }
    if let Ok((q, page)) = PurchaseParams::from_query(raw, &limits) {
        check_text(&q.text, &limits, false);
        check_page(q.offset, q.limit, page, &limits);
        if let (Some(from), Some(to)) = (q.from, q.to) {
            assert!(from <= to, "from after to");
        }
        if let (Some(lo), Some(hi)) = (q.min_total, q.max_total) {
            assert!(lo <= hi, "min_total above max_total");
        }
        accepted.purchases = true;
    }
    if let Ok((from, to)) = DashboardParams::from_query(raw) {
        check_range(from, to);
        accepted.dashboard = true;
    }
    accepted
}

/// Arbitrary bytes as the body of `POST /analytics/{tenant_id}/report`, decoded as axum's
/// JSON extractor decodes it and checked as the handler checks it. An accepted spec is a
/// request within the API's bounds whose SQL parameters can all be bound.
pub fn report_spec(data: &[u8]) -> Result<(ReportRequest, bool), BadParameter> {
    let (request, csv) = ReportSpec::from_body(Json::<ReportSpec>::from_bytes(data))?;
    check_range(request.from, request.to);
    assert!(
        (1..=MAX_LIMIT).contains(&request.limit),
        "limit {}",
        request.limit
    );
    let tenant = TenantId::parse("fuzz").expect("a valid tenant id");
    let params = request.params(&tenant);
    assert_eq!(params.len(), request.report.slots().len());
    if request.filters.category.is_some() {
        assert!(request.report.accepts(Slot::Category));
    }
    for value in [&request.filters.country, &request.filters.category]
        .into_iter()
        .flatten()
    {
        assert!(!value.is_empty() && !value.chars().any(char::is_control));
    }
    Ok((request, csv))
}

fn check_text(text: &str, limits: &Limits, required: bool) {
    assert!(
        text.chars().count() <= limits.max_query_chars,
        "query too long"
    );
    assert!(
        cloudpf_search::query::words(text).count() <= limits.max_query_terms,
        "too many words"
    );
    assert_eq!(text, text.trim(), "untrimmed query");
    if required {
        assert!(!text.is_empty(), "a required query is empty");
    }
}

fn check_page(offset: usize, limit: usize, page: Page, limits: &Limits) {
    assert!(
        (1..=limits.max_page_size).contains(&limit),
        "page size {limit}"
    );
    assert_eq!(limit, page.size);
    assert!(page.number >= 1);
    assert_eq!(offset, (page.number - 1) * page.size);
    assert!(
        offset + limit <= limits.max_result_window,
        "beyond the result window"
    );
}

fn check_range(from: NaiveDate, to: NaiveDate) {
    assert!(from <= to, "from after to");
    assert!((to - from).num_days() < MAX_RANGE_DAYS, "range too long");
}
