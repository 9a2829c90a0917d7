//! Browser sessions: the web UI exchanges an API key once for a session cookie, so the key
//! never sits in page script or local storage.
//!
//! The session is the cookie: the BLAKE3 hash of the key it was opened with, its CSRF token and
//! its expiry, sealed with the session key (AES-256-GCM through `cookie`'s private jar:
//! encrypted, authenticated, and bound to the cookie's name). There is no server-side state,
//! so any instance that has the same session key reads the session: a second `ludex serve`
//! behind a load balancer, another Lambda instance, the same process after a restart. The key
//! hash is checked against the key ring on every request, so revoking a key ends its sessions
//! everywhere at their next request.
//!
//! Signing out clears the cookie in the browser. It cannot revoke a copy of the cookie taken
//! before (no server remembers it): such a copy works until it expires, [`LIFETIME`] after
//! signing in, or until its key is revoked, which is how every session of a key is ended at once.
//!
//! CSRF: the session cookie is `SameSite=Strict`, and every unsafe request signed in by cookie
//! must also carry the session's CSRF token (the synchronizer-token pattern): in the
//! `X-CSRF-Token` header for API calls made by the UI's script, or in the `csrf_token` field
//! of a form post.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::keys::{Access, KeyError, KeySource};
use axum::http::{HeaderMap, HeaderValue, Method, header, request::Parts};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

/// The cookie that carries the session over plain HTTP.
pub const SESSION_COOKIE: &str = "ludex_session";
/// The cookie that carries the session over TLS: the `__Host-` prefix makes browsers refuse it
/// unless it is `Secure`, for the whole site (`Path=/`) and from this host only (no `Domain`).
pub const TLS_SESSION_COOKIE: &str = "__Host-ludex_session";
/// The header the UI's script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field form posts send the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";
/// How long a session lasts after signing in, whatever its use.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The shortest session secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The key sessions are sealed with.
#[derive(Clone)]
pub struct SessionKey(cookie::Key);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

impl SessionKey {
    /// A random key: sessions sealed with it die with the process.
    pub fn generate() -> Result<Self, String> {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes)
            .map_err(|e| format!("the random number generator failed: {e}"))?;
        Ok(Self(cookie::Key::from(&bytes)))
    }

    /// The key derived (HKDF) from a secret of at least [`MIN_SECRET_BYTES`] bytes.
    pub fn from_secret(secret: &str) -> Result<Self, String> {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "a session secret needs at least {MIN_SECRET_BYTES} bytes; it has {}",
                secret.len()
            ));
        }
        Ok(Self(cookie::Key::derive_from(secret.as_bytes())))
    }

    /// The key of a secret kept in a file, created (random, readable by the owner only) when
    /// the file does not exist. Several processes starting at once agree on one secret: each
    /// writes its own and links it into place, and only the first link succeeds.
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        if !path.exists() {
            // 32 bytes of secret, then 8 that name this writer's file (process or thread).
            let mut bytes = [0u8; 40];
            getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
            let hex =
                |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
            let secret = hex(&bytes[..32]);
            let temp = path.with_extension(format!("{}.tmp", hex(&bytes[32..])));
            {
                use std::io::Write as _;
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temp)?;
                file.write_all(secret.as_bytes())?;
                file.sync_all()?;
            }
            let linked = std::fs::hard_link(&temp, path);
            std::fs::remove_file(&temp)?;
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let secret = std::fs::read_to_string(path)?;
        Self::from_secret(&secret).map_err(|e| invalid(format!("{}: {e}", path.display())))
    }

    fn seal(&self, value: String) -> Option<String> {
        self.seal_as(SESSION_COOKIE, value)
    }

    fn unseal(&self, sealed: &str) -> Option<String> {
        self.unseal_as(SESSION_COOKIE, sealed)
    }

    /// Encrypts and authenticates `value` bound to `name` (AES-256-GCM, the private jar's
    /// sealing): only this key opens it, and only under the same name, so a value sealed for
    /// one purpose is never accepted for another.
    pub fn seal_as(&self, name: &'static str, value: String) -> Option<String> {
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&self.0)
            .add(cookie::Cookie::new(name, value));
        jar.get(name).map(|c| c.value().to_owned())
    }

    /// What [`SessionKey::seal_as`] sealed under `name`, or `None` when it was sealed with
    /// another key or name, or altered.
    pub fn unseal_as(&self, name: &'static str, sealed: &str) -> Option<String> {
        let jar = cookie::CookieJar::new();
        jar.private(&self.0)
            .decrypt(cookie::Cookie::new(name, sealed.to_owned()))
            .map(|c| c.value().to_owned())
    }
}

/// Where the session key comes from: given at start, or a secret fetched when a session is
/// first opened or read (an SSM parameter on Lambda, so a cold start does not wait for it).
pub struct SessionKeys {
    key: OnceCell<SessionKey>,
    source: Option<Arc<dyn KeySource>>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Some(source) => write!(f, "SessionKeys(from {})", source.describe()),
            None => f.write_str("SessionKeys(given)"),
        }
    }
}

impl SessionKeys {
    pub fn given(key: SessionKey) -> Self {
        Self {
            key: OnceCell::new_with(Some(key)),
            source: None,
        }
    }

    /// A random key, for one process: its sessions end when it does. Without randomness (never
    /// seen) there is no key, and signing in answers 500 instead of the process failing.
    pub fn random() -> Self {
        match SessionKey::generate() {
            Ok(key) => Self::given(key),
            Err(error) => {
                tracing::error!(%error, "no session key: signing in to the web UI will fail");
                Self {
                    key: OnceCell::new(),
                    source: None,
                }
            }
        }
    }

    /// A secret fetched from `source` once, when first needed.
    pub fn fetched(source: impl KeySource + 'static) -> Self {
        Self {
            key: OnceCell::new(),
            source: Some(Arc::new(source)),
        }
    }

    /// The session key; fetching it may fail (503), and is tried again on the next request.
    pub async fn key(&self) -> ApiResult<&SessionKey> {
        self.key
            .get_or_try_init(|| async {
                let Some(source) = &self.source else {
                    return Err(ApiError::Internal("no session key was given".into()));
                };
                let secret = source.fetch().await.map_err(|reason| {
                    ApiError::Unavailable(format!(
                        "the session secret could not be read from {}: {reason}",
                        source.describe()
                    ))
                })?;
                SessionKey::from_secret(&secret).map_err(|reason| {
                    ApiError::Internal(format!(
                        "the session secret in {}: {reason}",
                        source.describe()
                    ))
                })
            })
            .await
    }
}

/// What the cookie holds, sealed.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The hex BLAKE3 hash of the API key.
    key: String,
    csrf: String,
    /// Seconds since the Unix epoch.
    expires: u64,
}

/// A session, opened at sign-in or read from a request's cookie.
#[derive(Clone, Debug)]
pub struct Session {
    /// The hash of the API key the session was opened with (the key itself is never kept).
    key_hash: blake3::Hash,
    /// The token forms and script must send back on unsafe requests.
    pub csrf: String,
    expires: u64,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Session {
    /// A new session for a key that has been checked.
    pub fn open(key: &str) -> ApiResult<Self> {
        Ok(Self {
            key_hash: crate::keys::hash_of(key),
            csrf: random_token()?,
            expires: unix_now() + LIFETIME.as_secs(),
        })
    }

    /// What the session's key grants now, `None` once the key is revoked.
    pub async fn access(&self, state: &AppState) -> Result<Option<Access>, KeyError> {
        state.keys.access_of_hash(&self.key_hash).await
    }

    /// The cookie value that carries this session.
    pub fn seal(&self, key: &SessionKey) -> ApiResult<String> {
        let sealed = Sealed {
            key: self.key_hash.to_hex().to_string(),
            csrf: self.csrf.clone(),
            expires: self.expires,
        };
        let json = serde_json::to_string(&sealed).map_err(|e| ApiError::Internal(e.to_string()))?;
        key.seal(json)
            .ok_or_else(|| ApiError::Internal("the session could not be sealed".into()))
    }

    /// The session a cookie value carries: `None` when it was not sealed with this key (or
    /// was altered), or has expired.
    pub fn unseal(value: &str, key: &SessionKey) -> Option<Self> {
        Self::unseal_at(value, key, unix_now())
    }

    fn unseal_at(value: &str, key: &SessionKey, now: u64) -> Option<Self> {
        let sealed: Sealed = serde_json::from_str(&key.unseal(value)?).ok()?;
        (sealed.expires > now).then_some(())?;
        Some(Self {
            key_hash: blake3::Hash::from_hex(&sealed.key).ok()?,
            csrf: sealed.csrf,
            expires: sealed.expires,
        })
    }
}

/// 256 random bits, URL-safe.
pub fn random_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("the random number generator failed: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
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

/// The name of the session cookie for a request over TLS or not.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        TLS_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The session a request's cookie carries, if any, and whether it carried a cookie at all (an
/// expired, altered or foreign one is a cookie without a session).
pub async fn find(parts: &Parts, state: &AppState) -> ApiResult<(bool, Option<Session>)> {
    let Some(value) = cookie(&parts.headers, cookie_name(over_tls(parts))) else {
        return Ok((false, None));
    };
    let key = state.config.sessions.key().await?;
    Ok((true, Session::unseal(value, key)))
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
    // Values are base64 (tokens, sealed sessions) and names and paths are ours: always a valid
    // header value.
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
/// `Ok(None)` when there is no session cookie; an error for an expired or altered session, a
/// revoked key or an unsafe request without the session's CSRF token.
pub(crate) async fn authorize(parts: &Parts, state: &AppState) -> ApiResult<Option<Access>> {
    let session = match find(parts, state).await? {
        (false, _) => return Ok(None),
        (true, None) => {
            return Err(ApiError::Unauthorized(
                "the session has expired; sign in again at /ui/sign-in".into(),
            ));
        }
        (true, Some(session)) => session,
    };
    let Some(access) = session.access(state).await? else {
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
    Ok(Some(access))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_secret(&"s".repeat(MIN_SECRET_BYTES)).unwrap()
    }

    #[test]
    fn a_session_is_read_back_with_its_key_until_it_expires() {
        let session = Session::open("key-1").unwrap();
        let value = session.seal(&key()).unwrap();
        assert!(!value.contains(&session.csrf), "the cookie is encrypted");
        let found = Session::unseal(&value, &key()).unwrap();
        assert_eq!(found.key_hash, crate::keys::hash_of("key-1"));
        assert_eq!(found.csrf, session.csrf);
        assert!(Session::unseal_at(&value, &key(), session.expires).is_none());
        let other = SessionKey::from_secret(&"t".repeat(MIN_SECRET_BYTES)).unwrap();
        assert!(
            Session::unseal(&value, &other).is_none(),
            "another key reads nothing"
        );
    }

    #[test]
    fn an_altered_cookie_carries_no_session() {
        let value = Session::open("key-1").unwrap().seal(&key()).unwrap();
        let mut bytes = value.into_bytes();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        assert!(Session::unseal(&String::from_utf8(bytes).unwrap(), &key()).is_none());
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(SessionKey::from_secret("short").is_err());
    }

    #[test]
    fn processes_that_start_together_agree_on_one_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session-secret");
        let sealed = Session::open("k")
            .unwrap()
            .seal(&SessionKey::from_file(&path).unwrap())
            .unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || SessionKey::from_file(&path).unwrap())
            })
            .collect();
        for thread in threads {
            assert!(Session::unseal(&sealed, &thread.join().unwrap()).is_some());
        }
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let fresh = tempfile::tempdir().unwrap();
        let racing: Vec<_> = (0..8)
            .map(|_| {
                let path = fresh.path().join("session-secret");
                std::thread::spawn(move || SessionKey::from_file(&path).unwrap())
            })
            .collect();
        let keys: Vec<SessionKey> = racing.into_iter().map(|t| t.join().unwrap()).collect();
        let value = Session::open("k").unwrap().seal(&keys[0]).unwrap();
        assert!(keys.iter().all(|k| Session::unseal(&value, k).is_some()));
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
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("t0k"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
