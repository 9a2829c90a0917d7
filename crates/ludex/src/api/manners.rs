//! What every response gets, whatever produced it: the security headers, and an `ETag` with
//! `If-None-Match` → 304 for reads that have none of their own (listings, reports, ledger
//! pages), so clients and pages that poll pay one small answer while nothing changed.

use super::session;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use http_body_util::BodyExt;

/// The policy of HTML responses: scripts and styles from this site only, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Bodies up to this size get an `ETag` computed from their bytes; larger ones (none today) are
/// passed through untouched rather than held in memory.
const ETAG_MAX_BYTES: u64 = 8 * 1024 * 1024;

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Whether the request names a caller: an API key or a session cookie.
fn is_authenticated(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || session::cookie(headers, session::SESSION_COOKIE).is_some()
        || session::cookie(headers, session::TLS_SESSION_COOKIE).is_some()
}

/// `X-Content-Type-Options: nosniff` and `Referrer-Policy` on every response, the CSP on every
/// HTML one (the API's /docs page too), and `Cache-Control: no-store` on JSON answered to an
/// authenticated request, so no cache keeps what a key was allowed to read.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let authenticated = is_authenticated(request.headers());
    let mut response = next.run(request).await;
    let html = content_type(response.headers()).starts_with("text/html");
    let json = {
        let kind = content_type(response.headers());
        kind.starts_with("application/json") || kind.starts_with("application/problem+json")
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    if html {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    }
    if authenticated && json {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for GET).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || strip(tag) == strip(etag))
}

/// A weak `ETag` from the body's bytes for successful reads that have none, and 304 when the
/// request's `If-None-Match` names it.
pub async fn conditional_get(request: Request, next: Next) -> Response {
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    let conditions = request.headers().clone();
    let response = next.run(request).await;
    let small = response
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= ETAG_MAX_BYTES);
    if !read
        || response.status() != StatusCode::OK
        || response.headers().contains_key(header::ETAG)
        || !small
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return super::ApiError::Internal(format!("reading a response body: {e}"))
                .into_response();
        }
    };
    let etag = format!("W/\"{}\"", &blake3::hash(&bytes).to_hex()[..32]);
    let Ok(value) = HeaderValue::from_str(&etag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if none_match(&conditions, &etag) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [
            header::CACHE_CONTROL,
            header::CONTENT_LOCATION,
            header::VARY,
        ] {
            if let Some(value) = parts.headers.get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        not_modified.headers_mut().insert(header::ETAG, value);
        return not_modified;
    }
    parts.headers.insert(header::ETAG, value);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::none_match;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_a_star() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(none_match(&headers, "W/\"b\""));
        assert!(none_match(&headers, "W/\"a\""));
        assert!(!none_match(&headers, "W/\"c\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&headers, "W/\"c\""));
        assert!(!none_match(&HeaderMap::new(), "W/\"c\""));
    }
}
