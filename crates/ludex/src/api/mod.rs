//! The HTTP API: one `axum::Router` served by `ludex serve`, by the API Lambda function and by
//! the tests, unchanged.

mod batch;
mod bulk;
mod covers;
pub mod error;
mod extract;
mod games;
pub(crate) mod history;
mod ingests;
mod manners;
mod observe;
pub mod openapi;
pub mod rate;
mod revert;
pub mod session;

use crate::bucket::Bucket;
use crate::keys::{Access, Keys, Scope};
use crate::metrics::Metrics;
use crate::store::Stores;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use error::{ApiError, ApiResult};
use http_body_util::BodyExt;
use ludex_domain::Author;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The largest upload unless configured: 512 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// Settings of the API, read once at start.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Require a key (any scope) for reads too.
    pub reads_require_key: bool,
    /// Origins allowed by CORS; empty means CORS is off.
    pub cors_origins: Vec<String>,
    /// Largest JSON request body.
    pub max_json_bytes: usize,
    /// Largest upload file sent through the API (`POST /uploads`).
    pub max_upload_bytes: u64,
    /// Largest upload file sent straight to the bucket (`POST /uploads/presign`). Above
    /// `max_upload_bytes` where the platform limits request bodies (Lambda).
    pub max_direct_upload_bytes: u64,
    /// Largest cover image (an upload, and a stored original its sizes are made from).
    pub max_cover_bytes: usize,
    /// How long a direct-upload URL from `POST /uploads/presign` stays valid.
    pub upload_url_lifetime: Duration,
    pub request_timeout: Duration,
    /// A listing still running after this is stopped (the store's query is cancelled) and
    /// answered 503.
    pub list_timeout: Duration,
    /// Requests slower than this are logged even when they succeed.
    pub slow_request: Duration,
    /// What web UI sessions are sealed with (see [`session`]): instances that share it share
    /// their sessions.
    pub sessions: Arc<session::SessionKeys>,
    /// The rate limits of writes and sign-ins, with their counts (see [`rate`]).
    pub rate_limiters: Arc<rate::Limiters>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            reads_require_key: false,
            cors_origins: Vec::new(),
            max_json_bytes: 1024 * 1024,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_direct_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_cover_bytes: crate::covers::MAX_COVER_BYTES,
            upload_url_lifetime: Duration::from_secs(15 * 60),
            request_timeout: Duration::from_secs(30),
            list_timeout: Duration::from_secs(2),
            slow_request: Duration::from_secs(1),
            sessions: Arc::new(session::SessionKeys::random()),
            rate_limiters: Arc::new(rate::Limiters::new(rate::RateLimits::default())),
        }
    }
}

/// Everything a handler may use, built once.
#[derive(Clone)]
pub struct AppState {
    pub stores: Stores,
    pub bucket: Bucket,
    pub keys: Arc<Keys>,
    pub config: Arc<ApiConfig>,
    /// Where request and ingest metrics go; `GET /metrics` serves it when it is a registry.
    pub metrics: Metrics,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let config = Arc::clone(&state.config);
    let metrics = state.metrics.clone();
    let routes = Router::new()
        .route("/games", get(games::list).post(games::create))
        // `POST /games/batch`; the game whose id is `batch` keeps its other methods (see
        // `extract::GamePath`).
        .route("/games/batch/filter", post(bulk::step))
        .route(
            "/games/batch",
            post(batch::apply)
                .get(games::get)
                .put(games::replace)
                .patch(games::patch)
                .delete(games::delete),
        )
        .route(
            "/games/{id}",
            get(games::get)
                .put(games::replace)
                .patch(games::patch)
                .delete(games::delete),
        )
        .route(
            "/games/{id}/cover",
            get(covers::get_cover).put(covers::put_cover),
        )
        .route("/games/{id}/history", get(history::history))
        .route("/games/{id}/restore", post(history::restore))
        .route("/uploads/presign", post(ingests::presign))
        .route("/uploads/{filename}", get(ingests::latest_upload))
        .route("/ingests", get(ingests::list))
        .route("/ingests/{ingest_id}", get(ingests::get))
        .route("/ingests/{ingest_id}/rejects", get(ingests::rejects))
        .route("/ingests/{ingest_id}/revert", post(revert::revert))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::page))
        .merge(crate::ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        // Added after the timeout: an upload streams for as long as its body keeps coming
        // (`serve`'s body timeout between chunks) up to its size limit, however long that is.
        .route(
            "/uploads",
            post(ingests::upload).fallback(method_not_allowed),
        )
        .route(
            "/uploads/direct",
            put(ingests::direct).fallback(method_not_allowed),
        )
        .with_state(state);
    let cors = (!config.cors_origins.is_empty()).then(|| {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
            ])
            .expose_headers([header::ETAG, header::LOCATION])
    });
    // One `ServiceBuilder`, given to `Router::layer` once: each `Router::layer` call boxes the
    // route again, and axum clones a route's boxes for every request at every level, so a stack
    // of separate calls cost a box per layer per level on each request (BENCHMARKS.md, "Found:
    // each route's layer stack was cloned per request, once per layer").
    // The first layer is the outermost. Security headers, so every response has them, a
    // panic's 500 and a timeout's 408 included: no response is ever sniffed into another type
    // (a cover that holds HTML, a report). Then the request id is set and echoed, then the
    // request is observed (metrics, request context, access log), so a panic turned into a 500
    // by the layer inside is counted and logged with its request id.
    // The span is at debug level: an info span per request costs about a third of the read
    // throughput (BENCHMARKS.md); info lines get the request id from the request context.
    let stack = tower::ServiceBuilder::new()
        .layer(tower::layer::layer_fn(manners::security_headers))
        .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(observe::ObserveLayer::new(metrics, config.slow_request))
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // Also on the span: lines logged while the body streams out, after the request
                // context has ended, keep both ids.
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id,
                    trace_id = request
                        .headers()
                        .get(crate::telemetry::TRACE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(crate::telemetry::trace_id_of),
                )
            }),
        )
        // gzip, brotli or zstd by Accept-Encoding, for bodies of text (not images).
        .layer(tower::layer::layer_fn(manners::compress_when_asked))
        // Rate limits, no-store and conditional GET (see `manners`). Inside the compression:
        // the ETag is of the identity body, and weak, so one tag stands for every encoding.
        .layer(manners::manners(Arc::clone(&config.rate_limiters)))
        .option_layer(cors)
        // Bodies are read by the handlers with their own limits and problem+json errors.
        .layer(DefaultBodyLimit::disable());
    routes.layer(stack)
}

/// Request ids for requests that come without one: a per-process random prefix and a counter.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut seed = [0u8; 4];
        // Without randomness the ids are still unique within the process.
        let _ = getrandom::fill(&mut seed);
        Self {
            prefix: format!("{:08x}", u32::from_le_bytes(seed)).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /docs".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn healthz() -> Response {
    json_response(axum::http::StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

async fn readyz(State(state): State<AppState>) -> ApiResult<Response> {
    state.stores.catalog.ping().await?;
    Ok(json_response(
        axum::http::StatusCode::OK,
        r#"{"status":"ready"}"#.to_owned(),
    ))
}

/// The registry in the Prometheus text format; not found where metrics go to CloudWatch.
/// Behind the read key when reads require one: the counters describe the catalog's traffic.
async fn metrics_text(_: CanRead, State(state): State<AppState>) -> ApiResult<Response> {
    let text = state.metrics.prometheus_text().ok_or_else(|| {
        ApiError::NotFound("this deployment publishes its metrics to CloudWatch".into())
    })?;
    Ok((
        axum::http::StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(openapi::PROMETHEUS_TEXT),
        )],
        text,
    )
        .into_response())
}

/// A JSON response from an already serialised body.
pub(crate) fn json_response(status: axum::http::StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The key presented with a request, if any.
fn presented_key(parts: &Parts) -> ApiResult<Option<&str>> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not readable".into()))?;
    match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(Some(key.trim()))
        }
        _ => Err(ApiError::Unauthorized(
            "use the header Authorization: Bearer <key>".into(),
        )),
    }
}

/// Checks the request's key (`Authorization: Bearer`), or else the web UI's session cookie;
/// what the key grants.
async fn require(parts: &Parts, state: &AppState, needed: Scope) -> ApiResult<Access> {
    let access = match presented_key(parts)? {
        Some(key) => state
            .keys
            .access_of(key)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the API key is not valid".into()))?,
        None => session::authorize(parts, state).await?.ok_or_else(|| {
            ApiError::Unauthorized(
                "this request needs an API key: Authorization: Bearer <key> (create one with `ludex keys create`)".into(),
            )
        })?,
    };
    if access.scope < needed {
        return Err(ApiError::Forbidden(
            "this API key may only read; writes need a key with the write scope".into(),
        ));
    }
    Ok(access)
}

/// Proof that the request may write: a valid key with the write scope, or a session opened
/// with one (plus its CSRF token). Holds the key's name, as the author of what it writes.
pub struct CanWrite(pub Author);

impl FromRequestParts<AppState> for CanWrite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let access = require(parts, state, Scope::Write).await?;
        Ok(Self(Author::key(access.name)))
    }
}

/// Proof that the request may read: always, unless the deployment requires keys for reads.
pub struct CanRead;

impl FromRequestParts<AppState> for CanRead {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if state.config.reads_require_key {
            require(parts, state, Scope::Read).await?;
        }
        Ok(Self)
    }
}

/// Whether the request's content type is one of `allowed` (ignoring parameters).
pub(crate) fn content_type_is(headers: &HeaderMap, allowed: &[&str]) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|ct| allowed.contains(&ct.as_str()))
}

/// Why a listing gave no page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListFailure {
    #[error(transparent)]
    Store(#[from] ludex_domain::StoreError),
    #[error("the listing ran longer than {} ms and was stopped; narrow it or try again", .0.as_millis())]
    TimedOut(Duration),
}

/// A page of the catalog within the listing timeout. A listing still running then is stopped:
/// dropping the store's call cancels its query.
pub(crate) async fn list_within(
    state: &AppState,
    query: &ludex_domain::ListQuery,
) -> Result<ludex_domain::Page<ludex_domain::StoredGame>, ListFailure> {
    let limit = state.config.list_timeout;
    match tokio::time::timeout(limit, state.stores.catalog.list(query)).await {
        Ok(page) => Ok(page?),
        Err(_) => Err(ListFailure::TimedOut(limit)),
    }
}

/// Reads a whole body of at most `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> ApiResult<bytes::Bytes> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge(
            format!("the body is larger than the limit of {limit} bytes"),
        )),
        Err(e) => Err(ApiError::unreadable_body(
            "the request body could not be read",
            &*e,
        )),
    }
}
