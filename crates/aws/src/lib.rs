//! cloudpf on AWS: the S3 object sink (same keys and bytes as the local lake) and the
//! DynamoDB Streams poller that feeds the CDC handlers outside Lambda, and the source
//! tables for local stacks.

pub mod checkpoint;
pub mod poller;
pub mod s3;
pub mod tables;

pub use poller::{PollReport, Poller, PollerConfig};
pub use s3::{S3Sink, S3SinkConfig};
