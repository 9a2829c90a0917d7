//! What every request leaves behind: its metrics (count by route and status class, latency by
//! route), the request context that puts its request id and trace id on every line it logs,
//! and an access-log line when it failed or was slow. Fast successful requests log nothing.

use super::error::ProblemLogged;
use crate::metrics::{Metrics, UNMATCHED_ROUTE};
use crate::telemetry::{RequestContext, TRACE_HEADER};
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Uri};
use axum::response::Response;
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service};

/// Observes the requests of the service it wraps.
#[derive(Clone)]
pub(crate) struct ObserveLayer {
    metrics: Metrics,
    slow: Duration,
}

impl ObserveLayer {
    /// Requests that take at least `slow` are logged even when they succeed.
    pub(crate) fn new(metrics: Metrics, slow: Duration) -> Self {
        Self { metrics, slow }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.metrics.clone(),
            slow: self.slow,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    metrics: Metrics,
    slow: Duration,
}

impl<S> Service<Request<Body>> for Observe<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let context = RequestContext::from_headers(
            request.headers().get("x-request-id"),
            request.headers().get(TRACE_HEADER),
        );
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let uri = request.uri().clone();
        // The clone that was made ready serves this request; the fresh one waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let slow = self.slow;
        Box::pin(context.scope(async move {
            let response = inner.call(request).await?;
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
            metrics.record_request(route, status, elapsed);
            if status >= 400 || elapsed >= slow {
                access_log(&method, &uri, route, &response, elapsed);
            }
            Ok(response)
        }))
    }
}

/// One line for a failed or slow request: what was asked, what came back, how long it took
/// and, for errors, the problem type and detail sent to the client. The query string is left
/// out (it may hold search terms); headers never appear.
fn access_log(method: &Method, uri: &Uri, route: &str, response: &Response, elapsed: Duration) {
    let status = response.status().as_u16();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let problem = response.extensions().get::<ProblemLogged>();
    let kind = problem.map(|p| p.kind);
    let detail = problem.map(|p| p.detail.as_str());
    let path = uri.path();
    if status >= 500 {
        tracing::warn!(%method, path, route, status, latency_ms, problem = kind, detail, "request failed");
    } else if status >= 400 {
        tracing::info!(%method, path, route, status, latency_ms, problem = kind, detail, "request rejected");
    } else {
        tracing::warn!(%method, path, route, status, latency_ms, "slow request");
    }
}
