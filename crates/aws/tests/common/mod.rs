//! Helpers of the moto test suites: an SDK config for moto, a fresh bucket, and the lake
//! objects a sink holds.
#![allow(dead_code, clippy::unwrap_used)] // each suite uses some of them

use std::io::Read;

use aws_config::{BehaviorVersion, SdkConfig};
use cloudpf_aws::{S3Sink, S3SinkConfig};
use cloudpf_lake::ObjectSink;
use cloudpf_testkit::unique;

pub async fn aws(url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .load()
        .await
}

pub async fn bucket(shared: &SdkConfig) -> S3Sink {
    let name = unique("lake");
    let sink = S3Sink::new(
        shared,
        S3SinkConfig {
            bucket: name.clone(),
            prefix: String::new(),
            kms_key_id: None,
            force_path_style: true,
        },
    );
    // Twice: an existing bucket is fine.
    sink.ensure_bucket().await.unwrap();
    sink.ensure_bucket().await.unwrap();
    sink
}

/// Every lake object and dead letter, with its bytes.
pub async fn objects(sink: &dyn ObjectSink) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for prefix in ["dlq/", "lake/"] {
        for key in sink.list(prefix).await.unwrap() {
            out.push((key.to_string(), sink.get(&key).await.unwrap().unwrap()));
        }
    }
    out
}

pub fn same_objects(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    let keys = |o: &[(String, Vec<u8>)]| o.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(a), keys(b), "{what}: keys differ");
    for ((key, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{what}: bytes of {key} differ");
    }
}

pub fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}
