//! The two AWS Lambda functions of ludex, as a library the binaries wire up: settings from the
//! environment ([`config`]), the S3/SQS events ([`event`]), the ingest handler ([`ingest`]) and
//! the API function's state ([`api`]). Everything else is the `ludex` crate, unchanged.

pub mod api;
pub mod aws;
pub mod config;
pub mod event;
pub mod ingest;

use anyhow::Context as _;
use config::Config;
use ludex::bucket::Bucket;
use ludex::store::Stores;

/// Opens the store the settings name. It must exist: the functions never create tables or run
/// migrations (Terraform and `ludex init` do).
pub async fn open_store(config: &Config) -> anyhow::Result<Stores> {
    let context = || format!("LUDEX_STORE={}", ludex::store::redact(&config.store));
    // Only a postgres:// store has a password secret (see `Config`). The store asks the
    // secret again when the server refuses the password, so a rotation does not break a warm
    // function.
    #[cfg(feature = "postgres")]
    if let Some(secret) = &config.store_password_secret {
        let source = std::sync::Arc::new(aws::SecretPassword {
            secret: secret.clone(),
        });
        let store = ludex::store::postgres::PostgresStore::open_with(&config.store, Some(source))
            .await
            .with_context(context)?;
        return Ok(Stores::of(store));
    }
    ludex::store::connect(&config.store, config.retention.retention())
        .await
        .with_context(context)
}

/// Opens the bucket (`s3://BUCKET`; `LUDEX_S3_ENDPOINT` or `AWS_ENDPOINT_URL` for a local
/// server).
pub fn open_bucket(config: &Config) -> anyhow::Result<Bucket> {
    Bucket::open(&config.bucket).with_context(|| format!("LUDEX_BUCKET={}", config.bucket))
}
