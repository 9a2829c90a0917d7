//! Browser sessions: the web UI exchanges an API key once for a session cookie, so the key
//! never sits in page script or local storage.
//!
//! Sessions are kept server-side, in this process's memory: a map from the BLAKE3 hash of the
//! cookie's random token to the key it was opened with, its CSRF token and its expiry. The key
//! is checked against the key ring on every request, so revoking a key ends its sessions at
//! once. A restart signs everyone out, and behind a load balancer with several instances (the
//! API Lambda function) a session lives on the instance that opened it; the JSON API with
//! `Authorization: Bearer` is the interface for anything that must not depend on that.
//!
//! CSRF: the session cookie is `SameSite=Strict`, and every unsafe request signed in by cookie
//! must also carry the session's CSRF token (the synchronizer-token pattern): in the
//! `X-CSRF-Token` header for API calls made by the UI's script, or in the `csrf_token` field
//! of a form post.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::keys::{KeyError, Scope};
use axum::http::{HeaderMap, HeaderValue, Method, header, request::Parts};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The cookie that carries the session token.
pub const SESSION_COOKIE: &str = "ludex_session";
/// The header the UI's script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field form posts send the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";
/// How long a session lasts after signing in, whatever its use.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; the oldest go first beyond this, so memory stays bounded.
const MAX_SESSIONS: usize = 10_000;

struct Entry {
    key: String,
    csrf: String,
    expires: Instant,
}

/// Open sessions, by the hash of their token.
#[derive(Default)]
pub struct SessionStore {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

/// A session found for a request.
#[derive(Clone, Debug)]
pub struct Session {
    /// The API key the session was opened with (kept in memory only).
    key: String,
    /// The token forms and script must send back on unsafe requests.
    pub csrf: String,
}

impl Session {
    /// The scope of the session's key now, `None` once the key is revoked.
    pub async fn scope(&self, state: &AppState) -> Result<Option<Scope>, KeyError> {
        state.keys.scope_of(&self.key).await
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// 256 random bits, URL-safe.
pub fn random_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("the random number generator failed: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl SessionStore {
    /// Opens a session for a key that has been checked; returns its cookie token.
    pub fn open(&self, key: &str) -> ApiResult<String> {
        self.open_at(key, Instant::now())
    }

    fn open_at(&self, key: &str, now: Instant) -> ApiResult<String> {
        let token = random_token()?;
        let entry = Entry {
            key: key.to_owned(),
            csrf: random_token()?,
            expires: now + LIFETIME,
        };
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, e| e.expires > now);
        while entries.len() >= MAX_SESSIONS {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(hash, _)| *hash);
            match oldest {
                Some(hash) => entries.remove(&hash),
                None => break,
            };
        }
        entries.insert(token_hash(&token), entry);
        Ok(token)
    }

    /// The live session of a token.
    pub fn find(&self, token: &str) -> Option<Session> {
        self.find_at(token, Instant::now())
    }

    fn find_at(&self, token: &str, now: Instant) -> Option<Session> {
        let hash = token_hash(token);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&hash) {
            Some(entry) if entry.expires > now => Some(Session {
                key: entry.key.clone(),
                csrf: entry.csrf.clone(),
            }),
            Some(_) => {
                entries.remove(&hash);
                None
            }
            None => None,
        }
    }

    /// Ends a session (signing out).
    pub fn close(&self, token: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token_hash(token));
    }
}

/// The sessions of this process.
pub fn store() -> &'static SessionStore {
    static STORE: LazyLock<SessionStore> = LazyLock::new(SessionStore::default);
    &STORE
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The session token a request carries, if any.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// Whether the client reached us over TLS: directly (an absolute `https` URI, as the Lambda
/// adapter builds them) or through a proxy that says so (`X-Forwarded-Proto`, as API Gateway
/// and most load balancers send).
pub fn over_tls(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` over TLS. `None` as the value
/// clears the cookie.
pub fn set_cookie(name: &str, value: Option<&str>, path: &str, tls: bool) -> HeaderValue {
    let (value, max_age) = match value {
        Some(v) => (v, LIFETIME.as_secs()),
        None => ("", 0),
    };
    let secure = if tls { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    // Tokens are base64url and names and paths are ours: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("ludex_invalid=; Max-Age=0"))
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    blake3::hash(expected.as_bytes()) == blake3::hash(presented.as_bytes())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The scope a session cookie grants this request, for the `CanRead`/`CanWrite` extractors.
/// `Ok(None)` when there is no session cookie; an error for an expired session, a revoked key
/// or an unsafe request without the session's CSRF token.
pub(crate) async fn authorize(parts: &Parts, state: &AppState) -> ApiResult<Option<Scope>> {
    let Some(token) = token(&parts.headers) else {
        return Ok(None);
    };
    let session = store().find(token).ok_or_else(|| {
        ApiError::Unauthorized("the session has expired; sign in again at /ui/sign-in".into())
    })?;
    let Some(scope) = session.scope(state).await? else {
        store().close(token);
        return Err(ApiError::Unauthorized(
            "the API key of this session is no longer valid; sign in again at /ui/sign-in".into(),
        ));
    };
    if !is_safe(&parts.method) {
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !tokens_match(&session.csrf, presented) {
            return Err(ApiError::Forbidden(
                "a request signed in by session cookie must carry the session's CSRF token in the X-CSRF-Token header".into(),
            ));
        }
    }
    Ok(Some(scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_token_until_it_expires() {
        let sessions = SessionStore::default();
        let now = Instant::now();
        let token = sessions.open_at("key-1", now).unwrap();
        let found = sessions.find_at(&token, now).unwrap();
        assert_eq!(found.key, "key-1");
        assert_ne!(found.csrf, token, "the CSRF token is not the session token");
        assert!(sessions.find_at("another-token", now).is_none());
        assert!(sessions.find_at(&token, now + LIFETIME).is_none());
        assert!(
            sessions.find_at(&token, now).is_none(),
            "an expired session is gone"
        );
    }

    #[test]
    fn signing_out_ends_the_session() {
        let sessions = SessionStore::default();
        let token = sessions.open("key-1").unwrap();
        sessions.close(&token);
        assert!(sessions.find(&token).is_none());
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let plain = set_cookie(SESSION_COOKIE, Some("abc"), "/", false);
        assert_eq!(
            plain.to_str().unwrap(),
            "ludex_session=abc; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict"
        );
        let tls = set_cookie(SESSION_COOKIE, Some("abc"), "/", true);
        assert!(
            tls.to_str()
                .unwrap()
                .ends_with("; HttpOnly; SameSite=Strict; Secure")
        );
        let cleared = set_cookie(SESSION_COOKIE, None, "/", true);
        assert!(
            cleared
                .to_str()
                .unwrap()
                .starts_with("ludex_session=; Path=/; Max-Age=0;")
        );
    }

    #[test]
    fn tls_is_recognised_from_the_forwarded_protocol_or_the_uri() {
        let request = |uri: &str, proto: Option<&str>| {
            let mut builder = axum::http::Request::builder().uri(uri);
            if let Some(p) = proto {
                builder = builder.header("x-forwarded-proto", p);
            }
            builder.body(()).unwrap().into_parts().0
        };
        assert!(!over_tls(&request("/", None)));
        assert!(over_tls(&request("/", Some("https"))));
        assert!(!over_tls(&request("/", Some("http"))));
        assert!(over_tls(&request("https://example.org/", None)));
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("ludex_session=t0k"),
        );
        assert_eq!(token(&headers), Some("t0k"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
