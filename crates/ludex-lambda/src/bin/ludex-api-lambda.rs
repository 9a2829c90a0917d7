//! The API function: the router of `ludex serve` behind API Gateway (HTTP API payload 2.0 or
//! REST API; `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` drops a stage prefix from paths).
//! Settings: see `ludex_lambda::config`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    ludex::telemetry::init("info");
    let router = ludex_lambda::api::router_from_env()
        .await
        .inspect_err(|e| tracing::error!(error = format!("{e:#}"), "init failed"))?;
    lambda_http::run(router).await
}
