//! The S3 object sink: the same keys and bytes as the local-directory sink, in a bucket.

use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use cloudpf_lake::{ObjectKey, ObjectSink, SinkError};

/// Where and how objects are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3SinkConfig {
    pub bucket: String,
    /// Prepended to every key (`""` for none; otherwise ends with `/`).
    pub prefix: String,
    /// KMS key for SSE-KMS; without one objects use SSE-S3 (AES256).
    pub kms_key_id: Option<String>,
    /// Path-style addressing, for S3-compatible stores (MinIO, moto) on localhost.
    pub force_path_style: bool,
}

/// Objects in an S3 bucket. A put is atomic by S3's own semantics and overwrites, so a
/// retried batch replaces its objects. Failures (after the SDK's standard retries) are
/// [`SinkError::Unavailable`]: the handler reports them as batch item failures, so no
/// change is acknowledged before its objects exist.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: aws_sdk_s3::Client,
    config: S3SinkConfig,
}

fn unavailable<E: std::error::Error>(e: E) -> SinkError {
    SinkError::Unavailable(DisplayErrorContext(e).to_string())
}

impl S3Sink {
    /// A sink using the standard AWS environment (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`) and the SDK's standard retry policy.
    pub async fn from_env(config: S3SinkConfig) -> Self {
        let shared = aws_config::load_from_env().await;
        Self::new(&shared, config)
    }

    pub fn new(shared: &aws_config::SdkConfig, config: S3SinkConfig) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(config.force_path_style)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(s3),
            config,
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Creates the bucket unless it exists (for local stacks and tests; on AWS the SAM
    /// template owns it).
    pub async fn ensure_bucket(&self) -> Result<(), SinkError> {
        match self
            .client
            .create_bucket()
            .bucket(&self.config.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    fn full_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.config.prefix, key.as_str())
    }
}

fn content_type(key: &ObjectKey) -> &'static str {
    let k = key.as_str();
    if k.ends_with(".gz") {
        "application/gzip"
    } else if k.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

#[async_trait]
impl ObjectSink for S3Sink {
    async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(self.full_key(key))
            .content_type(content_type(key))
            .body(ByteStream::from(body));
        let request = match &self.config.kms_key_id {
            Some(kms) => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms),
            None => request.server_side_encryption(ServerSideEncryption::Aes256),
        };
        request.send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>, SinkError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match result {
            Ok(output) => {
                let bytes = output.body.collect().await.map_err(unavailable)?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, SinkError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(format!("{}{prefix}", self.config.prefix))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            for object in page.map_err(unavailable)?.contents() {
                let Some(full) = object.key() else { continue };
                let Some(relative) = full.strip_prefix(&self.config.prefix) else {
                    continue;
                };
                // Objects that are not valid keys were not written by cloudpf; skip them.
                if let Ok(key) = ObjectKey::parse(relative) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), SinkError> {
        // S3 answers a delete of a missing key with success, as the trait asks.
        self.client
            .delete_object()
            .bucket(&self.config.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
