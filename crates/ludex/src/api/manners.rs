//! What every request and response gets, whatever the route: the security headers, the rate
//! limits, and `If-None-Match` → 304 for reads with an `ETag`: their own (covers), or one made
//! here for reads that have none (listings, reports, ledger pages), so clients and pages that
//! poll pay one small answer while nothing changed.

use super::{rate, session};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either, FutureExt as _, TryFutureExt as _};
use http_body::Body as _;
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer as _, ServiceExt as _};
use tower_http::compression::{CompressionBody, CompressionLayer};

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

/// The headers every response carries, set by the outermost layers so that a panic's 500 and a
/// timeout's 408 have them too: nothing is sniffed into another type, no referrer leaves the
/// site, and every HTML response (the API's /docs page too) has the CSP.
pub fn security_headers<S>(
    service: S,
) -> impl tower::Service<Request, Response = Response, Error = S::Error, Future = impl Send> + Clone
where
    S: tower::Service<Request, Response = Response> + Clone + Send,
    S::Future: Send,
{
    use tower_http::set_header::SetResponseHeaderLayer;
    let csp = |response: &Response| {
        content_type(response.headers())
            .starts_with("text/html")
            .then(|| HeaderValue::from_static(CONTENT_SECURITY_POLICY))
    };
    let service =
        SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, csp).layer(service);
    let service = SetResponseHeaderLayer::if_not_present(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    )
    .layer(service);
    SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
    .layer(service)
}

/// The compression layer, used only for requests that say which encodings they accept: for the
/// others (most API clients, and every benchmark) nothing would be compressed, and wrapping
/// each response body for nothing costs a share of a point read.
///
/// axum clones a route's whole layer stack for every request, so this holds the inner service
/// once and builds the compressing wrapper only for a request that asks for it.
#[derive(Clone)]
pub struct CompressWhenAsked<S> {
    inner: S,
}

pub fn compress_when_asked<S>(inner: S) -> CompressWhenAsked<S> {
    CompressWhenAsked { inner }
}

type Compressed = axum::http::Response<CompressionBody<Body>>;

impl<S> tower::Service<Request> for CompressWhenAsked<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    /// The compressed branch is boxed: most requests take the other one, and a future the
    /// size of both would be moved around on every request.
    type Future = Either<BoxFuture<'static, Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            let into: fn(Compressed) -> Response = IntoResponse::into_response;
            // A fresh clone, made ready by `oneshot` (the one this was polled for stays ready).
            let compressed = CompressionLayer::new().layer(self.inner.clone());
            Either::Left(compressed.oneshot(request).map_ok(into).boxed())
        } else {
            Either::Right(self.inner.call(request))
        }
    }
}

/// Per request, inside the router's observation (so a 429 is counted and logged): the rate
/// limits, then, on the way out, `Cache-Control: no-store` on JSON answered to a request with a
/// key or a session cookie (no cache keeps what a key was allowed to read), and the conditional
/// GET of reads that have no `ETag` of their own.
///
/// A service rather than `axum::middleware::from_fn`, which clones the inner stack and boxes it
/// into a `Next` on every request (BENCHMARKS.md, "Found: each route's layer stack was cloned
/// per request").
#[derive(Clone)]
pub struct Manners<S> {
    inner: S,
    limiters: Arc<rate::Limiters>,
}

/// The layer of [`Manners`].
pub fn manners<S>(
    limiters: Arc<rate::Limiters>,
) -> impl tower::Layer<S, Service = Manners<S>> + Clone {
    tower::layer::layer_fn(move |inner| Manners {
        inner,
        limiters: Arc::clone(&limiters),
    })
}

impl<S> tower::Service<Request> for Manners<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Err(refused) = self.limiters.admit(&request) {
            return futures::future::ready(Ok(refused.into_response())).boxed();
        }
        let authenticated = is_authenticated(request.headers());
        let if_none_match = matches!(*request.method(), Method::GET | Method::HEAD)
            .then(|| request.headers().get(header::IF_NONE_MATCH).cloned());
        let response = self.inner.call(request);
        async move {
            let Ok(mut response) = response.await;
            if authenticated {
                let kind = content_type(response.headers());
                if kind.starts_with("application/json")
                    || kind.starts_with("application/problem+json")
                {
                    response
                        .headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
            }
            Ok(match if_none_match {
                Some(condition) => conditional_get(response, condition).await,
                None => response,
            })
        }
        .boxed()
    }
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, as RFC 9110 asks for GET).
fn none_match(condition: &HeaderValue, etag: &str) -> bool {
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    condition
        .to_str()
        .unwrap_or("")
        .split(',')
        .any(|tag| tag.trim() == "*" || strip(tag) == strip(etag))
}

/// 304 when the request's `If-None-Match` (`condition`) names the `ETag` of a successful read:
/// its own (a cover's), or else a weak one from the body's bytes.
async fn conditional_get(response: Response, condition: Option<HeaderValue>) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    if let Some(etag) = response.headers().get(header::ETAG) {
        let named = condition
            .as_ref()
            .is_some_and(|condition| none_match(condition, etag.to_str().unwrap_or("")));
        return if named {
            not_modified(response.headers(), etag.clone())
        } else {
            response
        };
    }
    let small = response
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= ETAG_MAX_BYTES);
    if !small {
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
    if condition.is_some_and(|condition| none_match(&condition, &etag)) {
        return not_modified(&parts.headers, value);
    }
    parts.headers.insert(header::ETAG, value);
    Response::from_parts(parts, Body::from(bytes))
}

/// A 304 for a response with these headers and `etag`: no body, the headers a cache needs.
fn not_modified(headers: &HeaderMap, etag: HeaderValue) -> Response {
    let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::VARY,
    ] {
        if let Some(value) = headers.get(&name) {
            not_modified.headers_mut().insert(name, value.clone());
        }
    }
    not_modified.headers_mut().insert(header::ETAG, etag);
    not_modified
}

#[cfg(test)]
mod tests {
    use super::none_match;
    use axum::http::HeaderValue;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_a_star() {
        let list = HeaderValue::from_static("\"a\", W/\"b\"");
        assert!(none_match(&list, "W/\"b\""));
        assert!(none_match(&list, "W/\"a\""));
        assert!(!none_match(&list, "W/\"c\""));
        assert!(none_match(&HeaderValue::from_static("*"), "W/\"c\""));
    }
}
