//! The Lambda functions' shared code: configuration from the environment, the context
//! built once per container, and the plain handler the binaries wrap.

pub use cloudpf_aws::reload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use cloudpf_aws::{S3Sink, S3SinkConfig, TenantsFile};
use cloudpf_cdc::{Batch, Entity, Pipeline};
use cloudpf_engines::vars::{self, Var};
use cloudpf_engines::{Routing, SearchBackend, search_engine};
use cloudpf_lake::ObjectSink;
use cloudpf_search::EngineOptions;
use serde_json::value::RawValue;

/// The functions' configuration, read from the environment variables of
/// [`cloudpf_engines::vars`] (the same names as the CLI's flags): `CLOUDPF_LAKE_BUCKET`
/// is required; `CLOUDPF_DATA_DIR` defaults to `/mnt/index` (the EFS mount) and
/// `CLOUDPF_TENANTS_FILE`, a path or an `s3://bucket/key` URL, to
/// `<data dir>/tenants.toml`, checked for changes at most every
/// `CLOUDPF_TENANTS_REFRESH_SECONDS` (1, so that a revoked key is refused within a second); the Athena workgroup and database come as a
/// pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaConfig {
    pub lake: S3SinkConfig,
    /// The embedded engine's data directory (as `--data-dir` is for `cloudpf`).
    pub data_dir: PathBuf,
    /// A path, or an `s3://bucket/key` URL.
    pub tenants_file: String,
    /// The longest a change of the tenants file waits to be seen by a warm function.
    pub tenants_refresh: Duration,
    /// Where the search API runs reports, when configured.
    pub athena: Option<AthenaSettings>,
    pub search_backend: SearchBackend,
}

/// The Athena workgroup and Glue database of the reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaSettings {
    pub workgroup: String,
    pub database: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(String),
}

impl LambdaConfig {
    /// From a variable lookup (the process environment in `main`, a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty variable counts as unset, as it does for the CLI's flags.
        let get = |v: Var| var(v.name).filter(|value| !value.is_empty());
        for (old, new) in vars::RENAMED {
            if var(old).is_some() {
                // A stack still setting the old name would quietly get the default.
                return Err(ConfigError::Invalid(format!(
                    "{old} was renamed {}",
                    new.name
                )));
            }
        }
        let bucket = get(vars::LAKE_BUCKET).ok_or(ConfigError::Missing(vars::LAKE_BUCKET.name))?;
        let prefix = cloudpf_lake::key_prefix(&get(vars::LAKE_PREFIX).unwrap_or_default());
        let force_path_style =
            vars::parse_bool(&get(vars::S3_FORCE_PATH_STYLE).unwrap_or_default()).map_err(|e| {
                ConfigError::Invalid(format!("{} {e}", vars::S3_FORCE_PATH_STYLE.name))
            })?;
        let search_backend = match get(vars::SEARCH_BACKEND) {
            None => SearchBackend::default(),
            Some(text) => text
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", vars::SEARCH_BACKEND.name)))?,
        };
        let data_dir =
            PathBuf::from(get(vars::DATA_DIR).unwrap_or_else(|| "/mnt/index".to_owned()));
        let tenants_file = get(vars::TENANTS_FILE)
            .unwrap_or_else(|| data_dir.join("tenants.toml").display().to_string());
        let tenants_refresh = match get(vars::TENANTS_REFRESH_SECONDS) {
            None => DEFAULT_TENANTS_REFRESH,
            Some(text) => text.parse().map(Duration::from_secs).map_err(|_| {
                ConfigError::Invalid(format!(
                    "{} must be a whole number of seconds, got {text:?}",
                    vars::TENANTS_REFRESH_SECONDS.name
                ))
            })?,
        };
        let athena = match (get(vars::ATHENA_WORKGROUP), get(vars::ATHENA_DATABASE)) {
            (Some(workgroup), Some(database)) => Some(AthenaSettings {
                workgroup,
                database,
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "{} and {} go together",
                    vars::ATHENA_WORKGROUP.name,
                    vars::ATHENA_DATABASE.name
                )));
            }
        };
        Ok(Self {
            lake: S3SinkConfig {
                bucket,
                prefix,
                kms_key_id: get(vars::LAKE_KMS_KEY_ID),
                force_path_style,
            },
            data_dir,
            tenants_file,
            tenants_refresh,
            search_backend,
            athena,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The tenants file, reached with `shared`.
    pub fn tenants_file(&self, shared: &aws_config::SdkConfig) -> TenantsFile {
        TenantsFile::new(&self.tenants_file, shared, self.lake.force_path_style)
    }
}

/// How often a warm function checks the tenants file unless configured.
pub const DEFAULT_TENANTS_REFRESH: Duration = Duration::from_secs(1);

/// A CDC function's pipeline: fixed for the embedded engine (which reads no routes),
/// rebuilt from the tenants file when it changes for Elasticsearch.
#[derive(Debug)]
pub enum CdcPipeline {
    Fixed(Arc<Pipeline>),
    Reloading(Box<reload::Reloading<Pipeline>>),
}

impl CdcPipeline {
    /// The pipeline for this invocation.
    pub async fn current(&self) -> Arc<Pipeline> {
        match self {
            Self::Fixed(pipeline) => pipeline.clone(),
            Self::Reloading(reloading) => reloading.current().await,
        }
    }
}

/// Built once per Lambda container: the pipeline with its search engine and S3 sink. The
/// Elasticsearch backend takes its routes from the tenants file (and the credentials it
/// names from Secrets Manager), and follows the file's changes.
pub async fn pipeline(
    config: &LambdaConfig,
    shared: &aws_config::SdkConfig,
) -> Result<CdcPipeline, lambda_runtime::Error> {
    let sink: Arc<dyn ObjectSink> = Arc::new(S3Sink::new(shared, config.lake.clone()));
    match config.search_backend {
        SearchBackend::Embedded => {
            let engine = search_engine(
                SearchBackend::Embedded,
                &config.data_dir,
                &Routing::default(),
                EngineOptions::default(),
            )?;
            Ok(CdcPipeline::Fixed(Arc::new(Pipeline::new(engine, sink))))
        }
        SearchBackend::Elasticsearch => {
            let origin = config.tenants_file.clone();
            let data_dir = config.data_dir.clone();
            let shared_for_build = shared.clone();
            let secrets = Arc::new(cloudpf_aws::secrets::SecretCache::default());
            let build: reload::Build<Pipeline> = Box::new(move |text| {
                let (origin, data_dir, shared, sink, secrets) = (
                    origin.clone(),
                    data_dir.clone(),
                    shared_for_build.clone(),
                    sink.clone(),
                    secrets.clone(),
                );
                Box::pin(async move {
                    let resolved = secrets
                        .resolve(Routing::from_toml(&text, &origin)?, &shared)
                        .await;
                    let engine = search_engine(
                        SearchBackend::Elasticsearch,
                        &data_dir,
                        &resolved.routing,
                        EngineOptions::default(),
                    )?;
                    Ok(reload::Built {
                        value: Pipeline::new(engine, sink),
                        partial: !resolved.unread.is_empty(),
                    })
                })
            });
            let reloading = reload::Reloading::start(
                config.tenants_file(shared),
                config.tenants_refresh,
                build,
            )
            .await?;
            Ok(CdcPipeline::Reloading(Box::new(reloading)))
        }
    }
}

/// The handler: a `DynamoDbEvent` (as JSON text, so one malformed record cannot fail the
/// whole invocation, and records are read straight from it) in, the partial-batch
/// response out.
pub async fn handle(
    event: &RawValue,
    table: Entity,
    pipeline: &Pipeline,
) -> Result<DynamoDbEventResponse, cloudpf_cdc::source::SourceError> {
    let batch = Batch::from_slice(event.get().as_bytes())?;
    let report = cloudpf_cdc::handle(table, batch, pipeline).await;
    Ok(report.response())
}

/// JSON logs to stdout, as CloudWatch expects; `RUST_LOG` sets the level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .without_time()
        .init();
}

/// What one compaction invocation compacts. The schedule's EventBridge event carries
/// its `time`: partitions before that day are compacted (that day's are still being
/// written). A manual invocation may say `{"before": "YYYY-MM-DD", "tenants": ["acme"]}`.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CompactionRequest {
    #[serde(default)]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub before: Option<chrono::NaiveDate>,
    #[serde(default)]
    pub tenants: Vec<cloudpf_model::TenantId>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error(transparent)]
    Sink(#[from] cloudpf_lake::SinkError),
    /// Some partitions could not be compacted (the others were); an alarm-worthy state
    /// such as a damaged object, which stays until someone looks.
    #[error("{} partition(s) were left as they are: {:?}", .0.len(), .0)]
    Partitions(Vec<(String, String)>),
}

/// The compaction function's handler: compacts the lake behind `sink` as `request` says,
/// starting no partition after `deadline` (the rest is the next run's).
pub async fn compact(
    request: &CompactionRequest,
    sink: Arc<dyn ObjectSink>,
    deadline: Option<std::time::Instant>,
) -> Result<cloudpf_lake::compact::Summary, CompactionError> {
    let before = request
        .before
        .or(request.time.map(|t| t.date_naive()))
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let options = cloudpf_lake::CompactOptions {
        tenants: request.tenants.clone(),
        before: Some(before),
        deadline,
        ..cloudpf_lake::CompactOptions::default()
    };
    let summary = cloudpf_lake::Compactor::new(sink, options)
        .run(|_, _| {})
        .await?;
    tracing::info!(
        before = %before,
        partitions = summary.partitions,
        objects_removed = summary.objects_removed(),
        objects_written = summary.objects_written(),
        unfinished = summary.unfinished,
        "compaction finished"
    );
    if summary.failed.is_empty() {
        Ok(summary)
    } else {
        Err(CompactionError::Partitions(summary.failed))
    }
}

/// The body of the compaction function's `main`: S3 sink as the CDC functions have it
/// (same bucket, prefix and KMS key), a minute of the invocation's time kept in reserve.
pub async fn run_compactor() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config = LambdaConfig::from_env()?;
    let shared = aws_config::load_from_env().await;
    let sink: Arc<dyn ObjectSink> = Arc::new(S3Sink::new(&shared, config.lake.clone()));
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<CompactionRequest>| {
            let sink = sink.clone();
            async move {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let left =
                    std::time::Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
                let deadline = std::time::Instant::now()
                    + left.saturating_sub(std::time::Duration::from_secs(60));
                compact(&event.payload, sink, Some(deadline))
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        },
    ))
    .await
}

/// The body of both CDC functions' `main`.
pub async fn run_cdc(table: Entity) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config = LambdaConfig::from_env()?;
    let shared = aws_config::load_from_env().await;
    let pipeline = pipeline(&config, &shared).await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<Box<RawValue>>| {
            let pipeline = &pipeline;
            async move {
                let pipeline = pipeline.current().await;
                handle(&event.payload, table, &pipeline)
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        },
    ))
    .await
}
