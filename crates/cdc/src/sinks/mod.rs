//! Where decoded changes go: the search index (through the engine trait), the lake, and
//! the dead letters for records that can never succeed.

pub mod dlq;
pub mod index;
