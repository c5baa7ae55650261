//! Search engines of cloudpf. [`SearchEngine`] is the one trait every backend implements
//! (the embedded Tantivy engine here; Elasticsearch later); nothing engine-specific leaks
//! past it, so the CDC handlers and the API work with any of them.

pub mod embedded;
pub mod engine;

pub use embedded::TantivyEngine;
pub use engine::{ApplyOutcome, DocChange, Entity, SearchEngine, SearchError, Stored, Versioned};
