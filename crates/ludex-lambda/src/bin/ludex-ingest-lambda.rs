//! The ingest function: S3 `ObjectCreated` events (directly or through SQS) → the ingest
//! pipeline. Settings: see `ludex_lambda::config`.

// As in the `ludex` binary: the ingest path allocates small strings per record.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ludex::telemetry::init("info");
    let handler = ludex_lambda::ingest::IngestHandler::from_env()
        .await
        .inspect_err(|e| tracing::error!(error = format!("{e:#}"), "init failed"))?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| handler.invoke(event))).await
}
