//! Cold init and warm overhead of the Lambda functions, measured on the real bootstrap binaries
//! that `scripts/check-lambda` builds (the x86_64 ones, runnable here), configured as on AWS
//! but pointing at a moto server.
//!
//! - init: from spawning the binary to its first `GET /2018-06-01/runtime/invocation/next`,
//!   seen by a small runtime API served here, against a hello-world `lambda_runtime` binary
//!   (examples/hello.rs, built by this bench with the same profile) measured in the same run;
//! - ZIP size of each function;
//! - warm invocations of the API function through that runtime API, against the same request
//!   sent to the router in this process (`oneshot`), both over the same moto store.
//!
//! Run: `scripts/check-lambda x86_64` once, then
//! `scripts/with-moto cargo bench -p ludex-lambda --bench cold_start`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};
use tower::ServiceExt as _;

const INITS: usize = 20;
const INVOCATIONS: usize = 300;

/// The runtime API side of Lambda: hands out queued events, collects replies.
struct RuntimeApi {
    first_next: mpsc::UnboundedSender<Instant>,
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    replies: mpsc::UnboundedSender<(String, Instant)>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> (HeaderMap, String) {
    let _ = api.first_next.send(Instant::now());
    let Some((id, event)) = api.events.lock().await.recv().await else {
        // No more events: keep the function waiting, as Lambda does between invocations.
        return std::future::pending().await;
    };
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id.as_str()),
        ("lambda-runtime-deadline-ms", "32503680000000"),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench",
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-6741a8f2-3b1c2d4e5f6a7b8c9d0e1f2a;Sampled=0",
        ),
    ] {
        headers.insert(name, HeaderValue::from_str(value).unwrap());
    }
    (headers, event.to_string())
}

async fn reply(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>, _: Bytes) {
    let _ = api.replies.send((id, Instant::now()));
}

struct Harness {
    port: u16,
    first_next: mpsc::UnboundedReceiver<Instant>,
    events: mpsc::UnboundedSender<(String, Value)>,
    replies: mpsc::UnboundedReceiver<(String, Instant)>,
}

async fn runtime_api() -> Harness {
    let (first_tx, first_next) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::unbounded_channel();
    let (replies_tx, replies) = mpsc::unbounded_channel();
    let api = Arc::new(RuntimeApi {
        first_next: first_tx,
        events: Mutex::new(events_rx),
        replies: replies_tx,
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(reply))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(reply))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness {
        port,
        first_next,
        events,
        replies,
    }
}

struct Function {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
}

impl Function {
    fn spawn(&self, port: u16) -> std::process::Child {
        Command::new(&self.binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.binary.display()))
    }

    /// Milliseconds from spawn to the first `next`, `INITS` times.
    async fn inits(&self) -> Vec<f64> {
        let mut times = Vec::new();
        for _ in 0..INITS {
            let mut harness = runtime_api().await;
            let spawned = Instant::now();
            let mut child = self.spawn(harness.port);
            let first = tokio::time::timeout(Duration::from_secs(10), harness.first_next.recv())
                .await
                .unwrap_or_else(|_| panic!("{} never asked for an event", self.name))
                .unwrap();
            times.push((first - spawned).as_secs_f64() * 1000.0);
            let _ = child.kill();
            let _ = child.wait();
        }
        times
    }
}

/// Builds examples/hello.rs with the functions' profile and returns the binary.
fn hello_world(workspace: &std::path::Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--profile", "lambda-release", "--locked"])
        .args(["--package", "ludex-lambda", "--example", "hello"])
        .current_dir(workspace)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cannot build the hello-world baseline");
    workspace.join("target/lambda-release/examples/hello")
}

fn summary(times: &mut [f64]) -> String {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.2}  median {:.2}  p90 {:.2}  max {:.2} ms",
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    )
}

fn api_event(path: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "bench.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "23/Nov/2026:10:15:30 +0000", "timeEpoch": 1795429530000_u64},
        "isBase64Encoded": false
    })
}

#[tokio::main]
async fn main() {
    let Ok(moto) = std::env::var("LUDEX_TEST_S3_ENDPOINT") else {
        eprintln!("cold_start: LUDEX_TEST_S3_ENDPOINT is not set; run under scripts/with-moto");
        return;
    };
    // reqwest here is built without a TLS provider of its own; moto is plain HTTP anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lambda_dir = std::env::var_os("LUDEX_LAMBDA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/lambda/x86_64"));

    let suffix = format!("{:08x}", std::process::id());
    let (bucket, table) = (
        format!("ludex-bench-{suffix}"),
        format!("ludex-bench-{suffix}"),
    );
    reqwest::Client::new()
        .put(format!("{moto}/{bucket}"))
        .send()
        .await
        .unwrap();
    let stores = ludex::store::open(&format!("dynamodb://{table}?endpoint={moto}"))
        .await
        .unwrap();
    let hades =
        json!({"title": "Hades", "platforms": ["PC"], "release_date": "2020-09-17", "rating": 9.3});
    let hades = ludex_domain::Game::from_object(hades.as_object().unwrap()).unwrap();
    let id = hades.id.to_string();
    let author = ludex_domain::Author::key("bench");
    stores.catalog.create(&hades, &author).await.unwrap();
    let env: Vec<(String, String)> = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", &moto),
        ("LUDEX_STORE", &format!("dynamodb://{table}")),
        ("LUDEX_BUCKET", &format!("s3://{bucket}")),
        ("LUDEX_UPLOAD_PREFIX", "uploads/"),
        ("LUDEX_API_KEYS_PARAMETER", "/ludex/bench/api-keys"),
        ("LUDEX_READS_REQUIRE_KEY", "false"),
        ("LUDEX_CORS_ORIGINS", ""),
        ("LUDEX_LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let functions = ["ludex-ingest-lambda", "ludex-api-lambda"].map(|name| Function {
        name,
        binary: lambda_dir.join(name).join("bootstrap"),
        env: env.clone(),
    });

    let baseline = Function {
        name: "hello-world baseline",
        binary: hello_world(&workspace),
        env: Vec::new(),
    };
    println!("cold init (spawn → first invocation/next), {INITS} runs each:");
    for function in std::iter::once(&baseline).chain(&functions) {
        let mut times = function.inits().await;
        println!("  {:<22} {}", function.name, summary(&mut times));
    }

    println!("package sizes:");
    for function in &functions {
        for dir in [lambda_dir.clone(), workspace.join("target/lambda")] {
            let zip = dir.join(function.name).join("bootstrap.zip");
            if let Ok(meta) = std::fs::metadata(&zip) {
                println!(
                    "  {:>9} bytes ({:.2} MB)  {}",
                    meta.len(),
                    meta.len() as f64 / 1e6,
                    zip.display()
                );
            }
        }
    }

    // Warm invocations: the function through the runtime API vs the router in process.
    let mut harness = runtime_api().await;
    let mut child = functions[1].spawn(harness.port);
    harness.first_next.recv().await.unwrap();
    // The same router over the same store and bucket, in this process (metrics off: the
    // function also writes EMF lines, which counts as its overhead).
    let router = ludex::api::router(ludex::api::AppState {
        stores: stores.clone(),
        bucket: ludex::bucket::Bucket::s3(&bucket, Some(&moto)).unwrap(),
        keys: Arc::new(ludex::keys::Keys::default()),
        config: Arc::new(ludex::api::ApiConfig::default()),
        metrics: ludex::metrics::Metrics::off(),
    });
    println!("warm invocations of the API function, {INVOCATIONS} each:");
    for path in ["/healthz".to_owned(), format!("/games/{id}")] {
        let mut through_lambda = Vec::new();
        for n in 0..INVOCATIONS {
            let sent = Instant::now();
            harness
                .events
                .send((format!("req-{n}"), api_event(&path)))
                .unwrap();
            let (_, replied) = harness.replies.recv().await.unwrap();
            through_lambda.push((replied - sent).as_secs_f64() * 1000.0);
        }
        let mut direct = Vec::new();
        for _ in 0..INVOCATIONS {
            let request = axum::http::Request::get(&path)
                .body(axum::body::Body::empty())
                .unwrap();
            let started = Instant::now();
            let response = router.clone().oneshot(request).await.unwrap();
            let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            direct.push((started.elapsed()).as_secs_f64() * 1000.0);
        }
        println!("  GET {path}");
        println!(
            "    through the runtime API  {}",
            summary(&mut through_lambda)
        );
        println!("    router.oneshot           {}", summary(&mut direct));
    }
    let _ = child.kill();
    let _ = child.wait();
}
