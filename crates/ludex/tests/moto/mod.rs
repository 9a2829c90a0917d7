//! The moto server (S3, DynamoDB, SQS) that `scripts/with-moto` starts for the tests. Without
//! one, a suite is skipped loudly under plain `cargo test`; on CI that is a failure.

// Public for suites that skip for other reasons than a missing server.
#[path = "../skip/mod.rs"]
pub mod skip;

pub const SERVER_VAR: &str = "LUDEX_TEST_S3_ENDPOINT";

/// The moto endpoint to test `suite` against, or `None` after a loud skip (never on CI).
/// Also installs the TLS crypto provider the tests' HTTP clients need.
pub fn endpoint(suite: &str) -> Option<String> {
    let endpoint = skip::server(SERVER_VAR, suite, "moto server", "scripts/with-moto")?;
    // Another test of the same binary may have installed it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Some(endpoint)
}

/// Creates a bucket with the unsigned CreateBucket of the S3 REST API, which moto accepts.
#[allow(
    dead_code,
    reason = "not every test binary that finds moto makes buckets"
)]
pub async fn create_bucket(endpoint: &str, name: &str) {
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{created:?}");
}

/// A name no other test uses, for tables and buckets.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", getrandom::u64().unwrap_or_default())
}
