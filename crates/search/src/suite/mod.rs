//! The behaviour every search engine must show, written once against [`SearchEngine`].
//! Each backend's tests run every function here on a fresh, empty engine (see
//! `tests/tantivy_suite.rs`); the Elasticsearch backend runs the same functions.
//!
//! The functions panic with a message on failure, like any test.

mod fixtures;
mod relevance;
mod scenarios;

pub use fixtures::*;
pub use relevance::{Figures, RELEVANCE_TENANT, relevance};
pub use scenarios::*;

/// Instantiates the whole suite as `#[tokio::test]`s for one engine: `$make` is an
/// expression giving a fresh engine (it may use a `tempfile::TempDir` bound to `$dir`).
///
/// With `optional`, `$make` gives an `Option` of an engine, for engines that need an
/// outside service: on `None` each test prints why it is skipped and returns.
#[macro_export]
macro_rules! search_engine_suite {
    (optional $dir:ident => $make:expr) => {
        $crate::search_engine_suite!(@names (@optional_tests $dir => $make));
    };
    ($dir:ident => $make:expr) => {
        $crate::search_engine_suite!(@names (@tests $dir => $make));
    };
    (@names ($($head:tt)*)) => {
        $crate::search_engine_suite!($($head)*;
            a_product_is_found_by_a_typo_of_its_name,
            prefixes_of_one_and_of_several_words_match_while_typing,
            exact_matches_rank_above_prefix_and_typo_matches,
            every_field_is_searched_and_highlighted,
            filters_narrow_and_sorts_order_the_results,
            facets_count_every_match_not_just_the_page,
            pagination_is_stable_and_complete,
            autocomplete_completes_the_first_letters_and_prefers_best_sellers,
            autocomplete_ranks_best_sellers_first_among_hundreds_of_matches,
            issue_10_a_twenty_kilobyte_name_neither_crashes_autocomplete_nor_hides_the_product,
            a_removed_product_disappears_and_a_modified_price_is_what_search_returns,
            one_tenant_never_sees_another_tenants_documents,
            issue_13_a_purged_tenant_has_no_documents_left_and_the_others_keep_theirs,
            query_syntax_in_the_search_box_is_just_text,
            purchases_are_found_by_customer_product_status_date_total_and_text,
        );
    };
    (@optional_tests $dir:ident => $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let $dir = tempfile::tempdir().expect("a temporary directory");
                let Some(engine) = $make else {
                    // Straight to stderr: the test harness hides `eprintln!` of passing tests.
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "skipped {}: its engine is not available here",
                        stringify!($name)
                    );
                    return;
                };
                $crate::suite::$name(&engine).await;
            }
        )*
    };
    (@tests $dir:ident => $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let $dir = tempfile::tempdir().expect("a temporary directory");
                let engine = $make;
                $crate::suite::$name(&engine).await;
            }
        )*
    };
}
