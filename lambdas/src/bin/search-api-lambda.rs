//! The search API on Lambda behind an API Gateway HTTP API: the same axum app as
//! `cloudpf serve`, over the indexes on the EFS mount the CDC functions write.

use std::sync::Arc;

use cloudpf_search::TantivyEngine;
use cloudpf_search_api::{AppState, RawConfig, app};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cloudpf_lambdas::init_logging();
    let config = cloudpf_lambdas::LambdaConfig::from_env()?;
    let api = RawConfig {
        data_dir: Some(config.index_dir.clone()),
        ..RawConfig::default()
    }
    .validate()?;
    let shared = aws_config::load_from_env().await;
    let tenants =
        cloudpf_lambdas::load_tenants(&config.tenants_file, &shared, config.lake.force_path_style)
            .await?;
    let state = AppState::new(Arc::new(TantivyEngine::new(&api.data_dir)), tenants, api);
    lambda_http::run(app(state)).await
}
