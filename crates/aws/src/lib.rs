//! cloudpf on AWS: the S3 object sink (same keys and bytes as the local lake), the
//! DynamoDB Streams poller that feeds the CDC handlers outside Lambda, the source tables
//! for local stacks, the tenants file where a deployment keeps it (S3), and the stored
//! secrets (Secrets Manager) it names; and the backfill of items a table held before its
//! stream was read (a scan, or a point-in-time export).

pub mod backfill;
pub mod checkpoint;
pub mod poller;
pub mod reload;
pub mod s3;
pub mod secrets;
pub mod tables;
pub mod tenants_file;

pub use backfill::{Backfill, BackfillConfig, BackfillFrom, BackfillReport};
pub use poller::{PollReport, Poller, PollerConfig};
pub use s3::{S3Sink, S3SinkConfig};
pub use secrets::{SecretsError, read_secrets};
pub use tenants_file::{TenantsFile, TenantsFileError};
