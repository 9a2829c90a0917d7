//! The baseline of the cold-start benchmark (benches/cold_start.rs): the smallest
//! `lambda_runtime` function, which returns its event. Built with the same `lambda-release`
//! profile as the functions, so the difference in init is what ludex does at start.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
