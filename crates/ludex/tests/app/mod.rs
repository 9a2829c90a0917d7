//! The whole router over a fresh SQLite catalog and bucket folder, with one write key and one
//! read key: what the API tests and the web UI tests drive with `oneshot`.

use axum::Router;
use ludex::api::{self, ApiConfig, AppState};
use ludex::bucket::Bucket;
use ludex::keys::{KeyFile, Keys, Scope};
use ludex::metrics::Metrics;
use ludex::store;
use std::sync::Arc;

#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    /// A key with the write scope.
    pub writer: String,
    /// A key with the read scope only.
    pub reader: String,
    /// The key file the app follows (`ludex keys revoke` on it takes effect at once).
    pub key_file: std::path::PathBuf,
    _dir: Arc<tempfile::TempDir>,
}

pub fn app_with(config: ApiConfig) -> TestApp {
    app_with_metrics(config, Metrics::prometheus())
}

/// The app whose metrics go to `metrics` (the observability suites capture them).
pub fn app_with_metrics(config: ApiConfig, metrics: Metrics) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let stores = store::Stores::sqlite(&dir.path().join("ludex.db")).unwrap();
    app_over(dir, stores, config, metrics)
}

/// The app over `stores`, keeping its keys and bucket in `dir`.
pub fn app_over(
    dir: tempfile::TempDir,
    stores: store::Stores,
    config: ApiConfig,
    metrics: Metrics,
) -> TestApp {
    let bucket = Bucket::local(&dir.path().join("bucket")).unwrap();
    let key_path = dir.path().join("keys.json");
    let keys = KeyFile::new(&key_path);
    let (writer, _) = keys.create("writer", Scope::Write, "t".into()).unwrap();
    let (reader, _) = keys.create("reader", Scope::Read, "t".into()).unwrap();
    let state = AppState {
        stores,
        bucket,
        keys: Arc::new(Keys::from_file(&key_path).unwrap()),
        config: Arc::new(config),
        metrics,
    };
    TestApp {
        router: api::router(state.clone()),
        state,
        writer,
        reader,
        key_file: key_path,
        _dir: Arc::new(dir),
    }
}

impl TestApp {
    /// The same stores, bucket and keys behind a router with another configuration.
    pub fn with_config(&self, config: ApiConfig) -> TestApp {
        let mut state = self.state.clone();
        state.config = Arc::new(config);
        TestApp {
            router: api::router(state.clone()),
            state,
            ..self.clone()
        }
    }
}

pub fn app() -> TestApp {
    app_with(ApiConfig::default())
}
