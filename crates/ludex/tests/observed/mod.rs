//! What the observability suites share: the app with its metrics captured, and a buffer that
//! captures log lines or EMF documents.

use crate::app::{TestApp, app_with_metrics};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ludex::api::ApiConfig;
use ludex::ingest::{IngestConfig, IngestOutcome, Ingestor, Upload};
use ludex::metrics::Metrics;
use ludex::telemetry;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use tracing_subscriber::EnvFilter;

pub const TRACE_HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
pub const TRACE_ID: &str = "1-5759e988-bd862e3fe1be46a994272793";

/// The app as the observability suites drive it: replies as (status, headers, text), and
/// uploads ingested as the inbox watcher would.
pub struct Observed(TestApp);

impl std::ops::Deref for Observed {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

pub fn app(metrics: Metrics) -> Observed {
    Observed(app_with_metrics(ApiConfig::default(), metrics))
}

impl Observed {
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// Stores an upload in the bucket and ingests it as the inbox watcher would.
    pub async fn ingest(&self, key: &str, content: &[u8], metrics: Metrics) -> IngestOutcome {
        let root = self.state.bucket.local_root().unwrap();
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        let ingestor = Ingestor::new(
            self.state.stores.clone(),
            self.state.bucket.clone(),
            IngestConfig::default(),
        )
        .with_metrics(metrics);
        ingestor
            .ingest(
                &Upload {
                    source: &self.state.bucket,
                    key,
                    ledger_key: key.to_owned(),
                },
                &(),
            )
            .await
            .unwrap()
    }
}

/// A shared buffer that log lines and EMF documents are written to.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Every line, each parsed as one JSON object.
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                assert!(value.is_object(), "not an object: {line}");
                value
            })
            .collect()
    }

    /// Installs the JSON log subscriber for this thread until the guard drops.
    pub fn logs(&self, filter: &str) -> tracing::subscriber::DefaultGuard {
        let captured = self.clone();
        let guard = tracing::subscriber::set_default(telemetry::json_subscriber(
            EnvFilter::new(filter),
            move || captured.clone(),
        ));
        // Callsites first hit by a test without a subscriber may have cached "never".
        tracing::callsite::rebuild_interest_cache();
        guard
    }
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}
