//! The search API on Lambda behind an API Gateway HTTP API: the same axum app as
//! `cloudpf serve`, over the indexes on the EFS mount the CDC functions write.

use std::sync::Arc;
use std::time::Duration;

use cloudpf_analytics::{AthenaConfig, AthenaEngine};

use cloudpf_engines::search_engine;
use cloudpf_search_api::{AppState, RawConfig, app};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cloudpf_lambdas::init_logging();
    let config = cloudpf_lambdas::LambdaConfig::from_env()?;
    let api = RawConfig {
        data_dir: Some(config.data_dir.clone()),
        ..RawConfig::default()
    }
    .validate()?;
    let shared = aws_config::load_from_env().await;
    let text = cloudpf_lambdas::read_tenants_file(
        &config.tenants_file,
        &shared,
        config.lake.force_path_style,
    )
    .await?;
    let tenants = cloudpf_search_api::Tenants::from_toml(&text, &config.tenants_file)?;
    let engine = search_engine(
        config.search_backend,
        &api.data_dir,
        &tenants.routing(),
        api.embedded,
    )?;
    let mut state = AppState::new(engine, tenants, api);
    if let Some(settings) = &config.athena {
        let athena = AthenaConfig {
            workgroup: settings.workgroup.clone(),
            database: settings.database.clone(),
            // Inside the function's own timeout, so a slow report is a clean 503.
            timeout: Duration::from_secs(20),
            first_poll: Duration::from_millis(200),
        };
        state = state.with_analytics(Arc::new(AthenaEngine::new(&shared, athena)))?;
    }
    lambda_http::run(app(state)).await
}
