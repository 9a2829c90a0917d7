//! The API function: the router of `ludex serve`, with its state built from the environment.

use crate::aws::SsmParameter;
use crate::config::{ApiSettings, Config, KeySetting, SessionSetting};
use ludex::api::rate::ClientAddr;
use ludex::api::session::SessionKeys;
use ludex::api::{ApiConfig, AppState};
use ludex::keys::Keys;
use ludex::metrics::Metrics;
use std::sync::Arc;

/// The largest upload or cover sent through the function: a Lambda request is at most 6 MB,
/// and API Gateway hands a binary body over in base64 (4 bytes for every 3), so 4 MiB is what
/// fits with the rest of the event. Larger upload files go straight to S3
/// (`POST /uploads/presign`); larger covers are refused with a 413 problem, never a platform
/// error.
pub const BODY_LIMIT_BYTES: u64 = 4 * 1024 * 1024;

/// The state of the API, from the settings. API keys kept in SSM are fetched when a request
/// first presents a key (and again once older than their maximum age), and the session secret
/// when a session is first opened or read, not here.
pub async fn state(config: &Config, settings: ApiSettings) -> anyhow::Result<AppState> {
    let keys = match settings.keys {
        KeySetting::Inline(ring) => Keys::new(ring),
        KeySetting::Parameter { name, max_age } => Keys::fetched(SsmParameter::new(&name), max_age),
    };
    let sessions = match settings.sessions {
        SessionSetting::Inline(key) => SessionKeys::given(key),
        SessionSetting::Parameter(name) => SessionKeys::fetched(SsmParameter::new(&name)),
        SessionSetting::Random => {
            tracing::warn!(
                "neither LUDEX_SESSION_SECRET_PARAMETER nor LUDEX_SESSION_SECRET is set: web UI sessions last only as long as this instance"
            );
            SessionKeys::random()
        }
    };
    Ok(AppState {
        stores: crate::open_store(config).await?,
        bucket: crate::open_bucket(config)?,
        keys: Arc::new(keys),
        config: Arc::new(ApiConfig {
            reads_require_key: settings.reads_require_key,
            cors_origins: settings.cors_origins,
            sessions: Arc::new(sessions),
            max_upload_bytes: BODY_LIMIT_BYTES,
            max_cover_bytes: BODY_LIMIT_BYTES as usize,
            ..ApiConfig::default()
        }),
        metrics: Metrics::for_sink(config.reporting.metrics),
    })
}

/// The router of `ludex serve` over the environment's settings, told each request's client
/// address (for the per-address rate limits).
pub async fn router_from_env() -> anyhow::Result<axum::Router> {
    let config = Config::from_env()?;
    let settings = ApiSettings::from_env()?;
    Ok(ludex::api::router(state(&config, settings).await?)
        .layer(axum::middleware::map_request(with_client_addr)))
}

/// The client's address from API Gateway's request context: the address API Gateway saw,
/// which a client cannot forge the way it can an X-Forwarded-For header.
async fn with_client_addr(mut request: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::RequestExt as _;
    use lambda_http::request::RequestContext;
    let source_ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = source_ip.and_then(|ip| ip.parse().ok()) {
        request.extensions_mut().insert(ClientAddr(ip));
    }
    request
}
