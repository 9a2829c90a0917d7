//! Both functions as Lambda runs them: the bootstrap binaries that `cargo lambda build` packs
//! into the ZIPs, each started with its real configuration against a moto server (S3,
//! DynamoDB, SSM) and fed events through cargo-lambda's Lambda runtime emulator
//! (`cargo lambda watch --only-lambda-apis`). Event fixtures are in `tests/fixtures`.
//!
//! They are `#[ignore]`d, as a plain `cargo test` has no binaries to run: `scripts/test` builds
//! them first (`scripts/check-lambda x86_64`, into `target/lambda/x86_64`, or
//! `LUDEX_LAMBDA_DIR`) and runs these with `--include-ignored`. Without a moto server,
//! cargo-lambda or the binaries they skip loudly; with CI=true that is a failure.

use crate::moto;

use ludex::store::Stores;
use ludex_domain::{GameId, LedgerQuery};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET_PLACEHOLDER: &str = "ludex-test-bucket";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skips `suite` loudly, or fails it on CI.
fn skip(suite: &str, reason: &str) {
    moto::skip::skipped(suite, reason, "Run scripts/check-lambda x86_64 first.");
}

/// What the tests run: the moto server, cargo-lambda and a bootstrap binary.
struct Setup {
    moto: String,
    cargo_lambda: PathBuf,
    bootstrap: PathBuf,
}

impl Setup {
    fn find(suite: &str, function: &str) -> Option<Self> {
        let moto = moto::endpoint(suite)?;
        let cargo_lambda = std::env::var_os("LUDEX_CARGO_LAMBDA")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target/tools/venv/bin/cargo-lambda"));
        if !cargo_lambda.is_file() {
            skip(
                suite,
                &format!("cargo-lambda is not at {}", cargo_lambda.display()),
            );
            return None;
        }
        let lambda_dir = std::env::var_os("LUDEX_LAMBDA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target/lambda/x86_64"));
        let bootstrap = lambda_dir.join(function).join("bootstrap");
        if !bootstrap.is_file() {
            skip(suite, &format!("{} is not built", bootstrap.display()));
            return None;
        }
        Some(Self {
            moto,
            cargo_lambda,
            bootstrap,
        })
    }

    /// A fresh bucket and table on moto, named for this test only.
    async fn fresh_store(&self) -> (String, String, Stores) {
        let bucket = moto::unique_name("ludex-lambda");
        let table = moto::unique_name("ludex-lambda");
        moto::create_bucket(&self.moto, &bucket).await;
        // The functions never create tables (Terraform does); `open` does, like `ludex init`.
        let stores = ludex::store::open(&format!("dynamodb://{table}?endpoint={}", self.moto))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (bucket, table, stores)
    }

    /// An SSM parameter holding the hash of one write key, as `ludex keys` writes it; its name.
    async fn api_key_parameter(&self, key: &str) -> String {
        let keys = json!([{
            "name": "ci", "scope": "write", "created_at": "2026-11-23T00:00:00.000Z", "revoked": false,
            "hash": format!("blake3:{}", blake3::hash(key.as_bytes()).to_hex()),
        }]);
        self.secure_parameter("api-keys", &keys.to_string()).await
    }

    /// An SSM parameter holding a session secret, as Terraform creates it; its name.
    async fn session_secret_parameter(&self) -> String {
        let secret = moto::unique_name("a-session-secret-of-at-least-32-bytes");
        self.secure_parameter("session-secret", &secret).await
    }

    async fn secure_parameter(&self, what: &str, value: &str) -> String {
        let parameter = format!("/{}/{what}", moto::unique_name("ludex"));
        aws_sdk_ssm::Client::new(&ludex::aws::sdk_config(Some(&self.moto)).await)
            .put_parameter()
            .name(&parameter)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .value(value)
            .send()
            .await
            .unwrap();
        parameter
    }

    /// The two uploads the fixture `s3-put.json` names: `array` as `uploads/dir/my games.json`
    /// and one Tunic record as `uploads/more.ndjson`.
    async fn put_uploads(&self, bucket: &str, array: String) {
        let objects = self.bucket(bucket);
        objects
            .put("uploads/dir/my games.json", array.into())
            .await
            .unwrap();
        objects
            .put(
                "uploads/more.ndjson",
                format!("{}\n", game("Tunic", 2022)).into(),
            )
            .await
            .unwrap();
    }

    fn bucket(&self, name: &str) -> ludex::bucket::Bucket {
        ludex::bucket::Bucket::s3(name, Some(&self.moto)).unwrap()
    }

    /// The emulator, then the function over `bucket` and `table`, configured as Terraform
    /// configures it on AWS, with `env` on top.
    fn start(&self, bucket: &str, table: &str, env: &[(&str, &str)]) -> Running {
        let port = free_port();
        let mut emulator = Command::new(&self.cargo_lambda);
        emulator
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(workspace())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let emulator = Guard(emulator.spawn().expect("cargo lambda watch starts"));
        wait_for_port(port);
        let logs = tempfile::NamedTempFile::new().unwrap();
        let mut function = Command::new(&self.bootstrap);
        function
            .env_clear()
            .envs([
                (
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt"),
                ),
                ("AWS_LAMBDA_FUNCTION_NAME", "_".to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
                ("AWS_REGION", "us-east-1".to_owned()),
                ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
                ("AWS_ENDPOINT_URL", self.moto.clone()),
                ("LUDEX_STORE", format!("dynamodb://{table}")),
                ("LUDEX_BUCKET", format!("s3://{bucket}")),
                ("LUDEX_UPLOAD_PREFIX", "uploads/".to_owned()),
                ("LUDEX_LOG_FORMAT", "json".to_owned()),
                ("RUST_LOG", "info".to_owned()),
            ])
            .envs(env.iter().copied())
            // Logs go to stderr and EMF metrics to stdout; CloudWatch gets both, in order.
            .stdout(append(logs.path()))
            .stderr(append(logs.path()));
        let function = Guard(function.spawn().expect("the bootstrap binary starts"));
        Running {
            port,
            _function: function,
            _emulator: emulator,
            logs,
        }
    }
}

/// The API function's settings as Terraform sets them, with its keys in `parameter`.
/// The API function's settings as Terraform sets them, with these parameters.
fn api_settings<'a>(keys: &'a str, session_secret: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("LUDEX_API_KEYS_PARAMETER", keys),
        ("LUDEX_SESSION_SECRET_PARAMETER", session_secret),
        ("LUDEX_READS_REQUIRE_KEY", "false"),
        ("LUDEX_CORS_ORIGINS", ""),
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
    ]
}

/// A child process, killed when the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Running {
    port: u16,
    // Dropped in this order: the function, then the emulator.
    _function: Guard,
    _emulator: Guard,
    logs: tempfile::NamedTempFile,
}

impl Running {
    /// Invokes the function with an event; the emulator's status and the function's reply.
    async fn invoke(&self, event: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
                self.port
            ))
            .json(event)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoke: {e}\nlogs:\n{}", self.logs()));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let reply = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("reply {text:?}: {e}\nlogs:\n{}", self.logs()));
        (status, reply)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.logs.path()).unwrap_or_default()
    }

    /// The function's log lines (JSON, as on Lambda).
    fn log_lines(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
            })
            .collect()
    }
}

fn append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().append(true).open(path).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the emulator did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fixture, with the test's bucket name and values for `${…}` placeholders.
fn fixture(name: &str, bucket: &str, vars: &[(&str, &str)]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text = text.replace(BUCKET_PLACEHOLDER, bucket);
    for (name, value) in vars {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    serde_json::from_str(&text).unwrap()
}

fn game(title: &str, year: u16) -> String {
    json!({"title": title, "platforms": ["PC"], "release_date": format!("{year}-05-01"), "rating": 8.5})
        .to_string()
}

async fn has_game(stores: &Stores, id: &str) -> bool {
    stores
        .catalog
        .get(&GameId::parse(id).unwrap())
        .await
        .unwrap()
        .is_some()
}

async fn ledger(stores: &Stores) -> Vec<ludex_domain::report::IngestRecord> {
    stores
        .ledger
        .list(&LedgerQuery {
            limit: 100,
            cursor: None,
        })
        .await
        .unwrap()
        .items
}

#[tokio::test]
#[ignore = "needs the x86_64 packages of scripts/check-lambda; scripts/test runs it"]
async fn an_s3_event_ingests_every_upload_it_names_and_a_replay_changes_nothing() {
    let Some(setup) = Setup::find("ingest function (S3 events)", "ludex-ingest-lambda") else {
        return;
    };
    let (bucket, table, stores) = setup.fresh_store().await;
    let array = format!(
        "[{}, {}]",
        game("Celeste", 2018),
        game("Hollow Knight", 2017)
    );
    setup.put_uploads(&bucket, array).await;
    let function = setup.start(&bucket, &table, &[]);

    let event = fixture("s3-put.json", &bucket, &[]);
    let (status, reply) = function.invoke(&event).await;
    assert_eq!(status, 200, "{reply}\n{}", function.logs());
    assert_eq!(reply, json!({"batchItemFailures": []}));
    for id in ["celeste-2018", "hollow-knight-2017", "tunic-2022"] {
        assert!(has_game(&stores, id).await, "{id} was ingested");
    }
    let first = ledger(&stores).await;
    let mut keys: Vec<&str> = first.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["uploads/dir/my games.json", "uploads/more.ndjson"],
        "keys are decoded"
    );

    // At-least-once delivery: the same event again is a no-op.
    let (status, _) = function.invoke(&event).await;
    assert_eq!(status, 200);
    let second = ledger(&stores).await;
    assert_eq!(second.len(), 2, "no new ledger entries");
    assert_eq!(
        first.iter().map(|r| &r.finished_at).collect::<Vec<_>>(),
        second.iter().map(|r| &r.finished_at).collect::<Vec<_>>(),
        "the entries are untouched"
    );
    let logs = function.log_lines();
    assert!(
        logs.iter()
            .any(|l| l["message"] == "upload seen before; nothing to do"),
        "the replay is logged: {logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l["_aws"]["CloudWatchMetrics"].is_array()),
        "EMF metrics are written on Lambda"
    );
}

#[tokio::test]
#[ignore = "needs the x86_64 packages of scripts/check-lambda; scripts/test runs it"]
async fn bad_files_are_reported_and_only_transient_faults_fail_the_invocation() {
    let Some(setup) = Setup::find("ingest function (rejects, faults)", "ludex-ingest-lambda")
    else {
        return;
    };
    let (bucket, table, stores) = setup.fresh_store().await;
    let objects = setup.bucket(&bucket);
    let bad = include_str!("../../../examples/bad-games.ndjson");
    objects
        .put("uploads/bad-games.ndjson", bad.into())
        .await
        .unwrap();
    objects
        .put(
            "exports/games.json",
            format!("[{}]", game("Outside", 2001)).into(),
        )
        .await
        .unwrap();
    let function = setup.start(&bucket, &table, &[]);

    // S3 sends a test message when a notification is configured.
    let (status, reply) = function
        .invoke(&fixture("s3-test-event.json", &bucket, &[]))
        .await;
    assert_eq!((status, reply), (200, json!({"batchItemFailures": []})));

    let (status, _) = function
        .invoke(&fixture("s3-outside-prefix.json", &bucket, &[]))
        .await;
    assert_eq!(status, 200);
    assert!(!has_game(&stores, "outside-2001").await);
    assert!(
        ledger(&stores).await.is_empty(),
        "nothing outside uploads/ is ingested"
    );

    // A bad file is the file's problem: rejects are recorded, the invocation succeeds.
    let (status, reply) = function
        .invoke(&fixture("s3-bad-file.json", &bucket, &[]))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        has_game(&stores, "mass-effect-2").await,
        "good records land"
    );
    let entries = ledger(&stores).await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0].rejected > 0, "{:?}", entries[0]);
    let report = entries[0].rejects_key.clone().expect("a rejects report");
    let report = objects
        .get(&report)
        .await
        .unwrap()
        .expect("the report is in the bucket");
    assert!(
        std::str::from_utf8(&report)
            .unwrap()
            .contains("11.5 is above the maximum 10")
    );

    // An object that cannot be read is worth a retry: the invocation fails, typed.
    let (status, reply) = function
        .invoke(&fixture("s3-missing-object.json", &bucket, &[]))
        .await;
    assert_ne!(status, 200, "{reply}");
    assert_eq!(reply["errorType"], "Ludex.TransientIngestError", "{reply}");

    let logs = function.log_lines();
    assert!(logs.iter().any(|l| l["key"] == "exports/games.json"
        && l["message"].as_str().is_some_and(|m| m.contains("ignored"))));
    assert!(logs.iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.contains("s3:TestEvent"))
    }));
}

#[tokio::test]
#[ignore = "needs the x86_64 packages of scripts/check-lambda; scripts/test runs it"]
async fn an_sqs_batch_reports_only_the_messages_that_failed() {
    let Some(setup) = Setup::find("ingest function (SQS)", "ludex-ingest-lambda") else {
        return;
    };
    let (bucket, table, stores) = setup.fresh_store().await;
    let objects = setup.bucket(&bucket);
    objects
        .put(
            "uploads/queued/spring sale.ndjson",
            format!("{}\n", game("Spiritfarer", 2020)).into(),
        )
        .await
        .unwrap();
    let function = setup.start(&bucket, &table, &[]);

    let (status, reply) = function
        .invoke(&fixture("sqs-s3-put.json", &bucket, &[]))
        .await;
    assert_eq!(status, 200, "{reply}\n{}", function.logs());
    assert_eq!(
        reply,
        json!({"batchItemFailures": [{"itemIdentifier": "9a8b7c6d-missing-object"}]}),
        "the test message and the good upload are done; the missing object is retried"
    );
    assert!(has_game(&stores, "spiritfarer-2020").await);
}

#[tokio::test]
#[ignore = "needs the x86_64 packages of scripts/check-lambda; scripts/test runs it"]
async fn api_gateway_requests_of_both_payload_versions_reach_the_router() {
    let Some(setup) = Setup::find("API function", "ludex-api-lambda") else {
        return;
    };
    let (bucket, table, stores) = setup.fresh_store().await;
    let key = "ludex_emulator-test-key";
    let parameter = setup.api_key_parameter(key).await;
    let session_secret = setup.session_secret_parameter().await;
    let settings = api_settings(&parameter, &session_secret);
    let function = setup.start(&bucket, &table, &settings);
    let vars = [("API_KEY", key)];

    // HTTP API (payload 2.0) on its `$default` stage, as Terraform deploys it.
    let mut anonymous = fixture("apigw-v2-post-game.json", &bucket, &vars);
    anonymous["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let (_, reply) = function.invoke(&anonymous).await;
    assert_eq!(reply["statusCode"], 401, "{reply}");

    let (status, reply) = function
        .invoke(&fixture("apigw-v2-post-game.json", &bucket, &vars))
        .await;
    assert_eq!(status, 200);
    assert_eq!(reply["statusCode"], 201, "{reply}\n{}", function.logs());
    assert_eq!(reply["headers"]["etag"], "\"1\"");

    let (_, reply) = function
        .invoke(&fixture("apigw-v2-get-game.json", &bucket, &vars))
        .await;
    assert_eq!(reply["statusCode"], 200, "{reply}");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["title"], "Hades");

    let (_, reply) = function
        .invoke(&fixture("apigw-v2-get-missing.json", &bucket, &vars))
        .await;
    assert_eq!(reply["statusCode"], 404, "{reply}");
    assert_eq!(reply["headers"]["content-type"], "application/problem+json");

    // REST API (payload 1.0), stage "prod".
    let (_, reply) = function
        .invoke(&fixture("apigw-v1-patch-stale.json", &bucket, &vars))
        .await;
    assert_eq!(reply["statusCode"], 412, "{reply}");
    let problem: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(problem["current_version"], 1);

    let (_, reply) = function
        .invoke(&fixture("apigw-v1-get-game.json", &bucket, &vars))
        .await;
    assert_eq!(reply["statusCode"], 200, "{reply}");

    let stored = stores
        .catalog
        .get(&GameId::parse("hades-2020").unwrap())
        .await
        .unwrap()
        .expect("the game is stored");
    assert_eq!(stored.version, 1, "the stale PATCH changed nothing");

    // A cover goes through the function up to its body limit, under Lambda's 6 MB request once
    // base64-encoded; one byte more is a 413 problem from ludex, not a platform error.
    let cover = |size: usize| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(jpeg_of(size))
    };
    let limit = ludex_lambda::api::BODY_LIMIT_BYTES as usize;
    for (size, status) in [(limit, 200), (limit + 1, 413)] {
        let (_, reply) = function
            .invoke(&http_event(
                &bucket,
                "PUT",
                "/games/hades-2020/cover",
                &[("authorization", &format!("Bearer {key}"))],
                Some(("image/jpeg", cover(size), true)),
            ))
            .await;
        assert_eq!(
            reply["statusCode"], status,
            "a cover of {size} bytes: {reply}"
        );
    }

    // A file too big for a Lambda request goes straight to S3: the function signs a URL with
    // its own credentials, for the object's key, size and type, and S3 (moto) takes the PUT.
    let file = format!("{}\n", game("Direct", 2024));
    let (_, reply) = function
        .invoke(&http_event(
            &bucket,
            "POST",
            &format!(
                "/uploads/presign?filename=direct.ndjson&size={}",
                file.len()
            ),
            &[("authorization", &format!("Bearer {key}"))],
            None,
        ))
        .await;
    assert_eq!(reply["statusCode"], 200, "{reply}\n{}", function.logs());
    let grant: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    let url = grant["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/{bucket}/uploads/direct.ndjson?", setup.moto)),
        "{url}"
    );
    let mut put = reqwest::Client::new().put(url).body(file.clone());
    for (name, value) in grant["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let sent = put.send().await.unwrap();
    assert_eq!(sent.status(), 200, "{}", sent.text().await.unwrap());
    assert_eq!(
        setup
            .bucket(&bucket)
            .get("uploads/direct.ndjson")
            .await
            .unwrap()
            .as_deref(),
        Some(file.as_bytes())
    );

    // A web UI session opened on this instance is read by another one: the session lives in
    // its cookie, sealed with the secret both fetch from SSM.
    let cookie = sign_in(&function, &bucket, key).await;
    let other = setup.start(&bucket, &table, &settings);
    let home = other
        .invoke(&http_event(
            &bucket,
            "GET",
            "/",
            &[("cookie", &cookie)],
            None,
        ))
        .await
        .1;
    assert_eq!(home["statusCode"], 200, "{home}");
    assert!(
        home["body"].as_str().unwrap().contains("Sign out"),
        "{home}\n{}",
        other.logs()
    );
}

/// An HTTP API (payload 2.0) request over TLS, as API Gateway sends it.
/// A JPEG of exactly `size` bytes (at least 700): a small image, padded with comment segments,
/// which the server strips from the original.
fn jpeg_of(size: usize) -> Vec<u8> {
    let mut small = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(16, 24, image::Rgb([200, 60, 20]))
        .write_to(&mut small, image::ImageFormat::Jpeg)
        .unwrap();
    let small = small.into_inner();
    let mut jpeg = small[..2].to_vec();
    let mut missing = size - small.len();
    while missing > 0 {
        // A segment is 4 bytes and up to 65,533 of comment; none may be left under 4.
        let mut comment = missing.min(65_537) - 4;
        if (1..4).contains(&(missing - comment - 4)) {
            comment -= 4;
        }
        jpeg.extend_from_slice(&[0xFF, 0xFE]);
        jpeg.extend_from_slice(&u16::try_from(comment + 2).unwrap().to_be_bytes());
        jpeg.resize(jpeg.len() + comment, b'x');
        missing -= comment + 4;
    }
    jpeg.extend_from_slice(&small[2..]);
    assert_eq!(jpeg.len(), size);
    jpeg
}

fn http_event(
    bucket: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, String, bool)>,
) -> Value {
    let mut event = fixture("apigw-v2-get-game.json", bucket, &[]);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    event["rawPath"] = path.into();
    event["rawQueryString"] = query.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    for (name, value) in headers {
        event["headers"][*name] = (*value).into();
    }
    if let Some((content_type, body, base64)) = body {
        event["headers"]["content-type"] = content_type.into();
        event["body"] = body.into();
        event["isBase64Encoded"] = base64.into();
    }
    event
}

/// `name=value` of the cookie `name` a payload 2.0 reply sets.
fn reply_cookie(reply: &Value, name: &str) -> Option<String> {
    reply["cookies"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// Signs in to the web UI through `function` with `key`; the session cookie, or what went
/// wrong.
async fn try_sign_in(function: &Running, bucket: &str, key: &str) -> Result<String, String> {
    let (_, form) = function
        .invoke(&http_event(bucket, "GET", "/ui/sign-in", &[], None))
        .await;
    let page = form["body"].as_str().unwrap_or_default();
    let marker = "name=\"sign_in_token\" value=\"";
    let start = page
        .find(marker)
        .ok_or(format!("no sign-in form: {form}"))?
        + marker.len();
    let token = page[start..].split('"').next().unwrap_or_default();
    let double_submit = reply_cookie(&form, "ludex_sign_in").ok_or(format!("{form}"))?;
    let (_, reply) = function
        .invoke(&http_event(
            bucket,
            "POST",
            "/ui/sign-in",
            &[("cookie", &double_submit)],
            Some((
                "application/x-www-form-urlencoded",
                format!("key={key}&next=%2F&sign_in_token={token}"),
                false,
            )),
        ))
        .await;
    if reply["statusCode"] != 303 {
        return Err(format!("POST /ui/sign-in: {reply}"));
    }
    // Over TLS (x-forwarded-proto: https) the cookie has the __Host- prefix.
    reply_cookie(&reply, "__Host-ludex_session").ok_or(format!("no session cookie: {reply}"))
}

async fn sign_in(function: &Running, bucket: &str, key: &str) -> String {
    try_sign_in(function, bucket, key)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", function.logs()))
}

// --- Least privilege: both functions under IAM enforcement ----------------------------------

/// A moto server of the test's own, whose IAM enforcement the test turns on and off (the
/// shared server answers other tests, whose credentials no IAM user holds).
struct EnforcingMoto {
    endpoint: String,
    _server: Guard,
}

impl EnforcingMoto {
    fn start(suite: &str) -> Option<Self> {
        let server = workspace().join("target/tools/venv/bin/moto_server");
        if !server.is_file() {
            skip(
                suite,
                &format!("moto_server is not at {}", server.display()),
            );
            return None;
        }
        let port = free_port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let guard = Guard(child);
        wait_for_port(port);
        Some(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _server: guard,
        })
    }

    /// Turns IAM enforcement on (every request must be allowed by its user's policy) or off.
    async fn enforce(&self, on: bool) {
        let status = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(if on { "0" } else { "inf" })
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "reset-auth: {status}");
    }

    /// A new IAM user whose only policy is `function`'s as Terraform renders it (for this
    /// bucket, table and parameter), without `removed`; its access key, and the actions the
    /// function's code calls.
    fn user(
        &self,
        function: &str,
        names: (&str, &str, &str),
        removed: Option<&str>,
    ) -> (String, String, Vec<String>) {
        let (bucket, table, parameter) = names;
        let user = moto::unique_name("fn");
        let mut command = Command::new(workspace().join("target/tools/venv/bin/python"));
        command
            .arg("moto_iam_user.py")
            .args([&self.endpoint, function, bucket, table, parameter, &user])
            .current_dir(workspace().join("tests/infra"));
        if let Some(action) = removed {
            command.args(["--without", action]);
        }
        let output = command.output().expect("python runs");
        assert!(output.status.success(), "{output:?}");
        let reply: Value = serde_json::from_slice(&output.stdout).unwrap();
        let text = |k: &str| reply[k].as_str().unwrap().to_owned();
        let actions = reply["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        (text("access_key_id"), text("secret_access_key"), actions)
    }
}

/// The ingest function over two uploads: one with a bad record (a rejects report is written)
/// and a clean one (a stale report is deleted), its user's policy without `removed`. The code's
/// actions, and what went wrong, if anything.
async fn ingest_under_its_policy(
    setup: &Setup,
    moto: &EnforcingMoto,
    removed: Option<&str>,
) -> (Vec<String>, Result<(), String>) {
    moto.enforce(false).await;
    let (bucket, table, stores) = setup.fresh_store().await;
    let array = format!(
        "[{}, {{\"title\": \"No year\", \"rating\": 42}}]",
        game("Celeste", 2018)
    );
    setup.put_uploads(&bucket, array).await;
    let (id, secret, actions) = moto.user("ingest_function", (&bucket, &table, "/-"), removed);
    let function = setup.start(
        &bucket,
        &table,
        &[
            ("AWS_ACCESS_KEY_ID", &id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    );
    moto.enforce(true).await;
    let (status, reply) = function.invoke(&fixture("s3-put.json", &bucket, &[])).await;
    moto.enforce(false).await;
    let outcome = async {
        if status != 200 || reply != json!({"batchItemFailures": []}) {
            return Err(format!("the invocation: {status} {reply}"));
        }
        for id in ["celeste-2018", "tunic-2022"] {
            if !has_game(&stores, id).await {
                return Err(format!("{id} did not land"));
            }
        }
        let mut statuses: Vec<String> = ledger(&stores)
            .await
            .iter()
            .map(|r| r.status.to_string())
            .collect();
        statuses.sort();
        if statuses != ["partially_failed", "succeeded"] {
            return Err(format!("the ledger says {statuses:?}"));
        }
        Ok(())
    }
    .await;
    (
        actions,
        outcome.map_err(|e| format!("{e}\n{}", function.logs())),
    )
}

/// The API function through a game's life (create, read, list, cover up and down, delete),
/// its user's policy without `removed`.
async fn api_under_its_policy(
    setup: &Setup,
    moto: &EnforcingMoto,
    removed: Option<&str>,
) -> (Vec<String>, Result<(), String>) {
    moto.enforce(false).await;
    let (bucket, table, _stores) = setup.fresh_store().await;
    let key = "ludex_least-privilege-key";
    let parameter = setup.api_key_parameter(key).await;
    let session_secret = setup.session_secret_parameter().await;
    let (id, secret, actions) = moto.user("api_function", (&bucket, &table, &parameter), removed);
    let mut settings = api_settings(&parameter, &session_secret).to_vec();
    settings.extend([
        ("AWS_ACCESS_KEY_ID", id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
    ]);
    let function = setup.start(&bucket, &table, &settings);
    // One request of the HTTP API (payload 2.0), built from the GET fixture.
    let bearer = format!("Bearer {key}");
    let request = |method: &str, path: &str, body: Option<(&str, String, bool)>| {
        http_event(&bucket, method, path, &[("authorization", &bearer)], body)
    };
    let jpeg = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(jpeg_of(2048))
    };
    let steps = [
        (
            request(
                "POST",
                "/games",
                Some(("application/json", game("Hades", 2020), false)),
            ),
            201,
        ),
        (request("GET", "/games/hades-2020", None), 200),
        (request("GET", "/games?limit=5", None), 200),
        // A search reads index items, then the games they name.
        (request("GET", "/games?q=had", None), 200),
        (
            request(
                "PUT",
                "/games/hades-2020/cover",
                Some(("image/jpeg", jpeg, true)),
            ),
            200,
        ),
        (request("GET", "/games/hades-2020/cover", None), 200),
        (
            request("GET", "/games/hades-2020/cover?size=thumb", None),
            200,
        ),
        (request("DELETE", "/games/hades-2020", None), 204),
    ];
    moto.enforce(true).await;
    let mut outcome = Ok(());
    for (event, expected) in steps {
        let (_, reply) = function.invoke(&event).await;
        if reply["statusCode"] != expected {
            outcome = Err(format!(
                "{} {}: {reply}",
                event["requestContext"]["http"]["method"], event["rawPath"]
            ));
            break;
        }
    }
    // Signing in to the web UI reads the session secret.
    if outcome.is_ok() {
        outcome = try_sign_in(&function, &bucket, key).await.map(|_| ());
    }
    moto.enforce(false).await;
    (
        actions,
        outcome.map_err(|e| format!("{e}\n{}", function.logs())),
    )
}

/// Each function's policy, as Terraform renders it, is enough for what its code does, and
/// every action in it is needed: taken away, some step fails. The actions the Lambda service
/// uses with the role (logs, traces, the dead-letter queue, network interfaces, KMS for the
/// bucket's and table's encryption) cannot be exercised here; docs/deploy.md lists them.
#[tokio::test]
#[ignore = "needs the x86_64 packages of scripts/check-lambda; scripts/test runs it"]
async fn each_function_runs_on_its_policy_alone_and_needs_every_action_in_it() {
    for function in ["ingest_function", "api_function"] {
        let suite = format!("least privilege ({function})");
        let binary = match function {
            "ingest_function" => "ludex-ingest-lambda",
            _ => "ludex-api-lambda",
        };
        let Some(mut setup) = Setup::find(&suite, binary) else {
            return;
        };
        let Some(moto) = EnforcingMoto::start(&suite) else {
            return;
        };
        setup.moto = moto.endpoint.clone();
        let run = |removed: Option<String>| {
            let (setup, moto) = (&setup, &moto);
            async move {
                match function {
                    "ingest_function" => {
                        ingest_under_its_policy(setup, moto, removed.as_deref()).await
                    }
                    _ => api_under_its_policy(setup, moto, removed.as_deref()).await,
                }
            }
        };
        let (actions, outcome) = run(None).await;
        if let Err(e) = outcome {
            panic!("{function} fails on its own policy: {e}");
        }
        assert!(!actions.is_empty());
        let mut unneeded = Vec::new();
        for action in &actions {
            let (_, outcome) = run(Some(action.clone())).await;
            if outcome.is_ok() {
                unneeded.push(action.clone());
            }
        }
        assert!(
            unneeded.is_empty(),
            "{function} runs without {unneeded:?}: the policy grants more than the code uses"
        );
    }
}
