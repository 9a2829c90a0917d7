//! Finding the servers the tests need. Without one, a suite is skipped loudly under plain
//! `cargo test`; on CI (`CI=true`) a missing server is a failure, never a skip.

use std::io::Write as _;

/// The value of `var` (where the test command put the server's address), or `None` after a
/// banner saying what was skipped and which `script` starts the server.
pub fn server(var: &str, suite: &str, what: &str, script: &str) -> Option<String> {
    if let Ok(value) = std::env::var(var)
        && !value.is_empty()
    {
        return Some(value);
    }
    skipped(
        suite,
        &format!("{var} is not set, so there is no {what} to test against"),
        &format!("Run `{script} cargo test` to start one."),
    );
    None
}

/// Skips `suite` loudly, saying why and what to run first; on CI, fails it instead.
pub fn skipped(suite: &str, reason: &str, remedy: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}: on CI the {suite} suite must run, never be skipped");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
    let banner = "!".repeat(78);
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n{banner}\n!! SKIPPED: {suite}\n!! {reason}.\n!! {remedy}\n{banner}\n"
    );
}
