//! The lake: where every change lands as gzipped CSV and JSON Lines objects, partitioned
//! by tenant and date for Athena.
//!
//! - [`sink`]: the [`ObjectSink`] trait and its object keys;
//! - [`local`]: the local-directory sink (the default; the S3 sink lives with the AWS code);
//! - [`layout`]: which key each object gets (`lake/<table>/<format>/tenant_id=<t>/dt=<d>/…`);
//! - [`encode`]: the CSV and JSON Lines encodings;
//! - [`writer`]: groups a batch of changes into partitions and writes one object each;
//! - [`compact`]: rewrites a partition's many small objects into one;
//! - [`search_log`]: the API's search, autocomplete and click log, buffered and flushed;
//! - [`purge`]: offboarding a shop: its current documents, its objects, its marker.

pub mod compact;
pub mod encode;
pub mod layout;
pub mod local;
pub mod purge;
pub mod search_log;
pub mod sink;
pub mod writer;

pub use compact::{CompactOptions, Compactor};
pub use layout::{Dataset, key_prefix};
pub use local::LocalDirSink;
pub use purge::{PurgedObjects, PurgedTenants};
pub use search_log::SearchLog;
pub use sink::{ObjectKey, ObjectSink, SinkError};
pub use writer::{LakeFailure, LakeWriter};
