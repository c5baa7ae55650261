//! The nightly lake compaction function (an EventBridge schedule invokes it).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cloudpf_lambdas::run_compactor().await
}
