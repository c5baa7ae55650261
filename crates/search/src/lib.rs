//! Search engines of cloudpf. [`SearchEngine`] is the one trait every backend implements
//! (the embedded Tantivy engine here; Elasticsearch in `cloudpf-search-es`); nothing engine-specific leaks
//! past it, so the CDC handlers and the API work with any of them.

pub mod embedded;
pub mod engine;
pub mod query;
/// The behaviour every engine must show, as tests any engine's crate can run
/// ([`search_engine_suite!`]); only in builds with the `testsuite` feature.
#[cfg(feature = "testsuite")]
pub mod suite;

pub use embedded::{COMMIT_WITHIN, Durability, EngineOptions, Reindexed, TantivyEngine, WorkDone};
pub use engine::{
    ApplyOutcome, DocChange, Entity, Rejected, SearchEngine, SearchError, Stored, Versioned,
};
pub use query::{
    FacetCount, Facets, Highlights, MAX_SUGGESTIONS, ProductHit, ProductQuery, ProductResults,
    ProductSort, PurchaseQuery, PurchaseResults, Suggestion, auto_fuzziness, escape_html,
    plural_variants,
};
