//! The `products` table's CDC function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cloudpf_lambdas::run_cdc(cloudpf_cdc::Entity::Products).await
}
