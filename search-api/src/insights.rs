//! Search analytics (issue #12): what the endpoints record in the search log, and the
//! shop's popular queries that autocomplete offers.
//!
//! Popular queries are the most searched successful queries of the last
//! [`POPULAR_DAYS`] days, from the `top_queries` report over the log. They are refreshed
//! by an autocomplete request of the shop that finds them older than
//! [`POPULAR_REFRESH`] (or finds that this process has written new events since, at most
//! every [`POPULAR_MIN_GAP`]), in the background: the request answers with what is there.
//! Nothing runs for a shop nobody types into, and memory is bounded: at most
//! [`POPULAR_PER_TENANT`] queries of at most [`POPULAR_TENANTS`] shops.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use cloudpf_analytics::{Filters, Granularity, Report, ReportRequest};
use cloudpf_lake::SearchLog;
use cloudpf_model::search_event::{new_query_id, normalise_query};
use cloudpf_model::{SearchEvent, SearchEventKind, TenantId, Timestamp};

use crate::AppState;

/// Days of the log popular queries are counted over.
pub const POPULAR_DAYS: u64 = 30;
/// Age after which a shop's popular queries are recomputed.
pub const POPULAR_REFRESH: Duration = Duration::from_secs(600);
/// Shortest time between two recomputations of one shop's popular queries.
pub const POPULAR_MIN_GAP: Duration = Duration::from_secs(10);
/// Queries kept per shop.
pub const POPULAR_PER_TENANT: u32 = 200;
/// Shops whose popular queries are kept at once.
pub const POPULAR_TENANTS: usize = 2_000;
/// Popular queries offered per autocomplete answer, at most.
pub const MAX_QUERY_SUGGESTIONS: usize = 3;

/// Records a search or autocomplete of `text` with `results` matches; returns its query
/// id, or `None` when there is no log or nothing was typed.
pub fn record_query(
    log: Option<&SearchLog>,
    tenant: &TenantId,
    kind: SearchEventKind,
    text: &str,
    results: u64,
) -> Option<String> {
    let log = log?;
    let query = normalise_query(text);
    if query.is_empty() {
        return None;
    }
    let query_id = new_query_id();
    log.record(
        tenant,
        SearchEvent {
            kind,
            query,
            query_id: query_id.clone(),
            results: Some(results),
            product_id: None,
            position: None,
            at: Timestamp::now(),
        },
    );
    Some(query_id)
}

#[derive(Debug)]
struct Popular {
    /// (normalised query, searches), sorted by query for prefix lookups.
    queries: Arc<Vec<(String, u64)>>,
    refreshed: Instant,
    /// The log's flush count the queries were computed after.
    flushes_seen: u64,
    refreshing: bool,
}

/// The popular queries of the shops that have been typed into.
#[derive(Debug, Default)]
pub struct PopularQueries {
    shops: RwLock<HashMap<TenantId, Popular>>,
}

impl PopularQueries {
    /// Up to `n` popular queries starting with what was typed (not equal to it), most
    /// searched first.
    pub fn matching(&self, tenant: &TenantId, typed: &str, n: usize) -> Vec<String> {
        let prefix = normalise_query(typed);
        let queries = {
            let shops = self.shops.read().unwrap_or_else(|e| e.into_inner());
            match shops.get(tenant) {
                Some(p) => p.queries.clone(),
                None => return Vec::new(),
            }
        };
        let start = queries.partition_point(|(q, _)| q.as_str() < prefix.as_str());
        let mut found: Vec<&(String, u64)> = queries[start..]
            .iter()
            .take_while(|(q, _)| q.starts_with(&prefix))
            .filter(|(q, _)| *q != prefix)
            .collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        found.into_iter().take(n).map(|(q, _)| q.clone()).collect()
    }

    /// Whether the caller should recompute `tenant`'s queries now; if so, the shop is
    /// marked as being recomputed until [`Self::store`].
    pub fn claim_refresh(&self, tenant: &TenantId, flushes: u64) -> bool {
        let due = |p: &Popular| {
            let age = p.refreshed.elapsed();
            !p.refreshing
                && (age >= POPULAR_REFRESH || (flushes > p.flushes_seen && age >= POPULAR_MIN_GAP))
        };
        // Every autocomplete asks; almost always the answer is no, under the shared lock.
        if let Some(p) = self
            .shops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            && !due(p)
        {
            return false;
        }
        let mut shops = self.shops.write().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = shops.get_mut(tenant) {
            // Checked again: another request may have claimed it in between.
            if !due(p) {
                return false;
            }
            p.refreshing = true;
            return true;
        }
        if shops.len() >= POPULAR_TENANTS {
            // The shop refreshed longest ago makes room.
            if let Some(oldest) = shops
                .iter()
                .filter(|(_, p)| !p.refreshing)
                .min_by_key(|(_, p)| p.refreshed)
                .map(|(t, _)| t.clone())
            {
                shops.remove(&oldest);
            }
        }
        shops.insert(
            tenant.clone(),
            Popular {
                queries: Arc::new(Vec::new()),
                refreshed: Instant::now(),
                flushes_seen: flushes,
                refreshing: true,
            },
        );
        true
    }

    /// The recomputed queries of `tenant` (`None`: the recomputation failed; the old
    /// ones stay and a later request tries again after [`POPULAR_MIN_GAP`]).
    pub fn store(&self, tenant: &TenantId, queries: Option<Vec<(String, u64)>>, flushes: u64) {
        let mut shops = self.shops.write().unwrap_or_else(|e| e.into_inner());
        let Some(p) = shops.get_mut(tenant) else {
            return;
        };
        p.refreshing = false;
        p.refreshed = Instant::now();
        if let Some(mut queries) = queries {
            queries.sort();
            p.queries = Arc::new(queries);
            p.flushes_seen = flushes;
        }
    }
}

/// Starts recomputing `tenant`'s popular queries in the background when they are due.
pub fn refresh_popular(state: &AppState, tenant: &TenantId) {
    let (Some(log), Some(runner)) = (state.search_log.clone(), state.analytics.clone()) else {
        return;
    };
    let flushes = log.flushes();
    if !state.popular.claim_refresh(tenant, flushes) {
        return;
    }
    let popular = state.popular.clone();
    let tenant = tenant.clone();
    tokio::spawn(async move {
        let to = Utc::now().date_naive();
        let from = to
            .checked_sub_days(Days::new(POPULAR_DAYS - 1))
            .unwrap_or(to);
        let request = ReportRequest {
            report: Report::TopQueries,
            from,
            to,
            limit: POPULAR_PER_TENANT,
            granularity: Granularity::Day,
            filters: Filters::default(),
        };
        let queries = match runner.run(&tenant, vec![request]).await {
            Ok(tables) => tables.into_iter().next().map(successful),
            Err(e) => {
                tracing::debug!(tenant = %tenant, error = %e, "popular queries not recomputed");
                None
            }
        };
        popular.store(&tenant, queries, flushes);
    });
}

/// The queries of a `top_queries` table that found something on average.
fn successful(table: cloudpf_analytics::ReportTable) -> Vec<(String, u64)> {
    let col = |name: &str| table.columns.iter().position(|c| c == name);
    let (Some(q), Some(n), Some(avg)) = (col("query"), col("searches"), col("average_results"))
    else {
        return Vec::new();
    };
    table
        .rows
        .iter()
        .filter_map(|row| {
            let query = row.get(q)?.clone()?;
            let searches = row.get(n)?.as_deref()?.parse().ok()?;
            let average: f64 = row.get(avg)?.as_deref()?.parse().ok()?;
            (average > 0.0).then_some((query, searches))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn popular_queries_match_by_prefix_most_searched_first() {
        let p = PopularQueries::default();
        let t = TenantId::parse("a").unwrap();
        assert!(p.claim_refresh(&t, 0));
        assert!(!p.claim_refresh(&t, 0), "one recomputation at a time");
        p.store(
            &t,
            Some(vec![
                ("hiking boots".into(), 3),
                ("hiking poles".into(), 9),
                ("hi".into(), 50),
                ("tent".into(), 20),
            ]),
            0,
        );
        assert_eq!(p.matching(&t, "Hik", 3), ["hiking poles", "hiking boots"]);
        assert_eq!(p.matching(&t, "hi", 1), ["hiking poles"]);
        assert!(p.matching(&t, "tent", 3).is_empty(), "not what was typed");
        assert!(
            p.matching(&TenantId::parse("b").unwrap(), "hik", 3)
                .is_empty()
        );
        // Fresh and nothing new in the log: not recomputed.
        assert!(!p.claim_refresh(&t, 0));
    }
}
