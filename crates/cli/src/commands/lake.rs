//! Where a command finds the lake: `<data dir>/lake` by default, or an S3 bucket. One set
//! of flags (and environment variables) for every command that touches it: `poll`
//! (writes it), `serve` and `report` (read it), `compact` (rewrites it), `seed` (creates
//! the bucket).

use std::path::Path;
use std::sync::Arc;

use cloudpf_analytics::{DataFusionEngine, S3Lake};
use cloudpf_aws::{S3Sink, S3SinkConfig};
use cloudpf_engines::vars;
use cloudpf_lake::{LocalDirSink, ObjectSink};

#[derive(Debug, Clone, clap::Args)]
pub struct LakeArgs {
    #[command(flatten)]
    pub location: LakeLocation,
    /// Path-style S3 addressing (implied by --s3-endpoint).
    #[arg(long, env = vars::S3_FORCE_PATH_STYLE.name, value_parser = vars::parse_bool)]
    pub force_path_style: bool,
}

/// Where the lake is, without the addressing style: for commands that have their own
/// `--force-path-style` (`tenants`, whose file may be in S3 too).
#[derive(Debug, Clone, clap::Args)]
pub struct LakeLocation {
    /// The lake (and dead letters) in this S3 bucket instead of under the data directory.
    #[arg(long, env = vars::LAKE_BUCKET.name)]
    pub lake_bucket: Option<String>,
    /// Key prefix of the lake inside the bucket.
    #[arg(long, default_value = "", env = vars::LAKE_PREFIX.name)]
    pub lake_prefix: String,
    /// S3 endpoint (MinIO, moto); default AWS, or `AWS_ENDPOINT_URL`.
    #[arg(long, env = vars::S3_ENDPOINT.name)]
    pub s3_endpoint: Option<String>,
}

impl LakeArgs {
    /// The key prefix before `lake/`: empty or ending in `/`.
    pub fn prefix(&self) -> String {
        cloudpf_lake::key_prefix(&self.location.lake_prefix)
    }

    /// The bucket's sink, when the lake is in S3.
    pub async fn s3_sink(&self) -> Option<S3Sink> {
        let bucket = self.location.lake_bucket.as_ref()?;
        let mut loader = aws_config::from_env();
        if let Some(endpoint) = &self.location.s3_endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        Some(S3Sink::new(
            &shared,
            S3SinkConfig {
                bucket: bucket.clone(),
                prefix: self.prefix(),
                kms_key_id: None,
                // S3-compatible stores on custom endpoints (MinIO, moto) want path style.
                force_path_style: self.force_path_style || self.location.s3_endpoint.is_some(),
            },
        ))
    }

    /// The object sink of this lake: the bucket when one is given, else `data_dir`.
    pub async fn sink(&self, data_dir: &Path) -> Arc<dyn ObjectSink> {
        match self.s3_sink().await {
            Some(s3) => Arc::new(s3),
            None => Arc::new(LocalDirSink::new(data_dir)),
        }
    }

    /// The report engine over this lake: the bucket when one is given, else the lake
    /// under `data_dir`.
    pub fn analytics(&self, data_dir: &Path) -> anyhow::Result<DataFusionEngine> {
        let Some(bucket) = &self.location.lake_bucket else {
            return Ok(DataFusionEngine::new(data_dir));
        };
        Ok(DataFusionEngine::over_s3(&S3Lake {
            bucket: bucket.clone(),
            prefix: self.prefix(),
            endpoint: self.location.s3_endpoint.clone(),
            region: None,
        })?)
    }
}
