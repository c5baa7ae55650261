//! The CDC pipeline, in the words of a stream processor:
//!
//! - [`source`]: Lambda `DynamoDbEvent` batches (or the same JSON from a file or the
//!   poller), decoded record by record so one bad record cannot sink a batch;
//! - [`transform`]: stream record → typed [`Change`](cloudpf_model::Change), or a
//!   rejection with the reason;
//! - [`sinks`]: the search index, the lake and the dead letters;
//! - [`handler`]: the Lambda handlers, `event in, partial-batch response out`.

#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
pub mod sinks;
pub mod source;
pub mod transform;

pub use cloudpf_model::Entity;
pub use handler::{BatchReport, Pipeline, Table, handle, handle_products, handle_purchases};
pub use source::{Batch, Incoming};
