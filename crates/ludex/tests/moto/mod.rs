//! The moto server (S3, DynamoDB, SQS) that `scripts/with-moto` starts for the tests. Without
//! one, a suite is skipped loudly under plain `cargo test`; on CI that is a failure.

use std::io::Write as _;

pub const SERVER_VAR: &str = "LUDEX_TEST_S3_ENDPOINT";

/// The moto endpoint to test `suite` against, or `None` after a loud skip (never on CI).
/// Also installs the TLS crypto provider the tests' HTTP clients need.
pub fn endpoint(suite: &str) -> Option<String> {
    if let Ok(endpoint) = std::env::var(SERVER_VAR)
        && !endpoint.is_empty()
    {
        // Another test of the same binary may have installed it already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        return Some(endpoint);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{SERVER_VAR} is not set: on CI the {suite} suite must run, never be skipped");
    }
    let banner = "!".repeat(78);
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n{banner}\n!! SKIPPED: {suite}\n!! {SERVER_VAR} is not set, so there is no moto \
         server to test against.\n!! Run `scripts/with-moto cargo test` to start one.\n{banner}\n"
    );
    None
}

/// A name no other test uses, for tables and buckets.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", getrandom::u64().unwrap_or_default())
}
