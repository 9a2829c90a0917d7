//! Rate limits on what costs the server or guesses at keys: writes, per API key (or session,
//! or else client address), and sign-in attempts, per client address. Over a limit the answer
//! is 429 with `Retry-After` and a problem+json body. The limiters are `governor`'s GCRA,
//! kept per process: behind a load balancer or on Lambda each instance counts on its own, and
//! API Gateway's throttling stays the first line there.

use super::error::ApiError;
use super::session;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// The client's address, as the server that accepted the request knows it (`ludex serve` from
/// the connection, the Lambda function from API Gateway's request context). Without it no
/// per-address limit applies.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// Requests a minute; 0 turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Writes (POST, PUT, PATCH, DELETE) per key, session or address.
    pub writes_per_minute: u32,
    /// Sign-in attempts per address.
    pub sign_ins_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            writes_per_minute: 1200,
            sign_ins_per_minute: 10,
        }
    }
}

/// One limiter per kind of request.
pub struct Limiters {
    writes: Option<DefaultKeyedRateLimiter<String>>,
    writes_per_minute: u32,
    sign_ins: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiters")
    }
}

/// Keys seen more than this many checks ago are forgotten once they are full again.
const PRUNE_EVERY: u64 = 4096;

impl Limiters {
    pub fn new(limits: RateLimits) -> Self {
        let keyed = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
        };
        Self {
            writes: keyed(limits.writes_per_minute),
            writes_per_minute: limits.writes_per_minute,
            sign_ins: keyed(limits.sign_ins_per_minute),
            checks: AtomicU64::new(0),
        }
    }

    fn check(&self, limiter: &DefaultKeyedRateLimiter<String>, key: String) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&key).map_err(|not_until| {
            whole_seconds(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Counts `n` more writes against the writer of a request already admitted (the further
    /// operations of a batch): 429 when they are more than are left, and nothing is counted.
    pub fn admit_more(
        &self,
        headers: &HeaderMap,
        address: Option<ClientAddr>,
        n: usize,
    ) -> Result<(), ApiError> {
        let (Some(limiter), Some(key), Some(n)) = (
            &self.writes,
            writer(headers, address),
            u32::try_from(n).ok().and_then(NonZeroU32::new),
        ) else {
            return Ok(());
        };
        let needs = u64::from(n.get()) + 1;
        let never = || ApiError::TooManyRequests {
            detail: format!(
                "this batch needs {needs} writes, more than a key may make in a minute ({}); send smaller batches",
                self.writes_per_minute
            ),
            retry_after: 60,
        };
        // The request itself took one write: the batch fits only if the whole quota holds it.
        if needs > u64::from(self.writes_per_minute) {
            return Err(never());
        }
        match limiter.check_key_n(&key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let retry_after =
                    whole_seconds(not_until.wait_time_from(DefaultClock::default().now()));
                Err(ApiError::TooManyRequests {
                    detail: format!(
                        "this batch needs {needs} writes, more than this key has left now; try again in {retry_after} s"
                    ),
                    retry_after,
                })
            }
            Err(_insufficient_capacity) => Err(never()),
        }
    }
}

/// A wait in whole seconds, rounded up: a client that waits that long is let through.
fn whole_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Who a write counts against: the API key, else the session, else the client's address.
fn writer(headers: &HeaderMap, address: Option<ClientAddr>) -> Option<String> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        return Some(format!(
            "key:{}",
            blake3::hash(authorization.as_bytes()).to_hex()
        ));
    }
    let cookie = session::cookie(headers, session::TLS_SESSION_COOKIE)
        .or_else(|| session::cookie(headers, session::SESSION_COOKIE));
    if let Some(cookie) = cookie {
        return Some(format!(
            "session:{}",
            blake3::hash(cookie.as_bytes()).to_hex()
        ));
    }
    address.map(|ClientAddr(ip)| format!("address:{ip}"))
}

impl Limiters {
    /// Whether the request may go on: `Err` with the 429 to answer when it is over a limit.
    pub fn admit(&self, request: &Request) -> Result<(), ApiError> {
        let method = request.method();
        let sign_in = method == Method::POST && request.uri().path() == "/ui/sign-in";
        let write = matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if !(sign_in || write) {
            return Ok(());
        }
        let address = request.extensions().get::<ClientAddr>().copied();
        let verdict = if sign_in {
            match (&self.sign_ins, address) {
                (Some(limiter), Some(ClientAddr(ip))) => self
                    .check(limiter, ip.to_string())
                    .map_err(|wait| (wait, "sign-in attempts from this address")),
                _ => Ok(()),
            }
        } else {
            match (&self.writes, writer(request.headers(), address)) {
                (Some(limiter), Some(key)) => self
                    .check(limiter, key)
                    .map_err(|wait| (wait, "writes with this key")),
                _ => Ok(()),
            }
        };
        verdict.map_err(|(retry_after, what)| ApiError::TooManyRequests {
            detail: format!("too many {what}; try again in {retry_after} s"),
            retry_after,
        })
    }
}
