//! Demo data: plausible catalogs and purchases for a few shops, and the change history
//! (inserts, later modifications and deletes) as DynamoDB stream events, exactly as the
//! Lambda handlers receive them. Deterministic for a seed and an anchor date.

pub mod catalog;
pub mod history;

pub use catalog::{Catalog, generate_catalog};
pub use history::{DEFAULT_DAYS, History, generate_history, generate_history_over};
