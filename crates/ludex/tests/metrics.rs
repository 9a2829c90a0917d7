//! Metrics as CloudWatch and Prometheus see them: EMF documents valid per the specification,
//! the Prometheus text at `/metrics`, and the names shared with the Terraform dashboard and
//! alarms.

use crate::observed::{Captured, app, examples};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ludex::metrics::{self, IngestMetrics, Metrics, Stage};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

// --- CloudWatch Embedded Metric Format ---------------------------------------------------

/// Units CloudWatch accepts (the EMF specification refers to the MetricDatum units).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one document against the EMF specification and returns (metric name, value,
/// dimension set) for each metric it defines.
fn check_emf(document: &Value) -> Vec<(String, f64, BTreeMap<String, String>)> {
    let root = document.as_object().expect("an object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let timestamp = aws["Timestamp"].as_u64().expect("Timestamp is an integer");
    let now = metrics::emf::now_millis();
    assert!(
        now.abs_diff(timestamp) < 60_000,
        "Timestamp is milliseconds since the epoch"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics array");
    assert!(!directives.is_empty());
    let mut defined = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"].as_str().expect("Namespace");
        assert_eq!(namespace, metrics::NAMESPACE);
        let sets = directive["Dimensions"]
            .as_array()
            .expect("Dimensions array");
        assert!(!sets.is_empty());
        let metric_list = directive["Metrics"].as_array().expect("Metrics array");
        assert!(!metric_list.is_empty() && metric_list.len() <= 100);
        for set in sets {
            let keys = set.as_array().expect("a dimension set is an array");
            assert!(keys.len() <= 30);
            let mut dimensions = BTreeMap::new();
            for key in keys {
                let key = key.as_str().expect("dimension keys are strings");
                let value = root
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("dimension {key} is not a string member"));
                assert!(!value.is_empty() && value.len() <= 1024);
                dimensions.insert(key.to_owned(), value.to_owned());
            }
            for metric in metric_list {
                let name = metric["Name"].as_str().expect("Name");
                assert!(!name.is_empty() && name.len() <= 1024);
                let unit = metric["Unit"].as_str().expect("Unit");
                assert!(UNITS.contains(&unit), "unit {unit}");
                let value = root
                    .get(name)
                    .and_then(Value::as_f64)
                    .unwrap_or_else(|| panic!("metric {name} has no numeric member"));
                defined.push((name.to_owned(), value, dimensions.clone()));
            }
        }
    }
    defined
}

/// Dimension names and values as `check_emf` reports them.
fn dimensions(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn emf_lines_follow_the_embedded_metric_format_with_the_dashboard_dimensions() {
    let out = Captured::default();
    let metrics = Metrics::emf(Box::new(out.clone()));
    let mut ingest = IngestMetrics {
        accepted: 3,
        rejected: 7,
        bytes: 1234,
        write_retries: 1,
        ingest_id: "i-1".into(),
        key: "uploads/bad.ndjson".into(),
        status: "partially_failed".into(),
        ..IngestMetrics::default()
    };
    ingest.stages.add(Stage::Write, Duration::from_micros(2500));
    metrics.record_ingest(&ingest);
    metrics.record_request("/games/{id}", 404, Duration::from_micros(1500));
    metrics.record_claim_lost();
    assert!(metrics.prometheus_text().is_none());

    let documents = out.json_lines();
    assert_eq!(
        documents.len(),
        8,
        "one ingest document, five stages, one request, one claim lost"
    );
    let defined: Vec<_> = documents.iter().flat_map(check_emf).collect();
    let value = |name: &str, dims: &[(&str, &str)]| {
        let dims = dimensions(dims);
        defined
            .iter()
            .find(|(n, _, d)| n == name && *d == dims)
            .map(|(_, v, _)| *v)
            .unwrap_or_else(|| panic!("no {name} with {dims:?} in {defined:?}"))
    };
    // The ingest counters have no dimensions: the rejected-records alarm reads them so.
    assert_eq!(value(metrics::INGEST_FILES, &[]), 1.0);
    assert_eq!(value(metrics::INGEST_RECORDS_ACCEPTED, &[]), 3.0);
    assert_eq!(value(metrics::INGEST_RECORDS_REJECTED, &[]), 7.0);
    assert_eq!(value(metrics::INGEST_BYTES, &[]), 1234.0);
    assert_eq!(value(metrics::INGEST_WRITE_RETRIES, &[]), 1.0);
    assert_eq!(value(metrics::INGEST_CLAIMS_LOST, &[]), 1.0);
    for stage in Stage::ALL {
        value(
            metrics::INGEST_STAGE_DURATION_MS,
            &[("Stage", stage.as_str())],
        );
    }
    assert_eq!(
        value(metrics::INGEST_STAGE_DURATION_MS, &[("Stage", "write")]),
        2.5
    );
    assert_eq!(
        value(
            metrics::API_REQUESTS,
            &[("Route", "/games/{id}"), ("StatusClass", "4xx")]
        ),
        1.0
    );
    assert_eq!(
        value(metrics::API_LATENCY_MS, &[("Route", "/games/{id}")]),
        1.5
    );
    let names: BTreeSet<&str> = defined.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, metrics::ALL_NAMES.into_iter().collect());
    // Context for Logs Insights rides along as plain members.
    assert_eq!(documents[0]["key"], "uploads/bad.ndjson");
}

#[test]
fn on_lambda_api_requests_are_counted_by_function_version_as_the_release_alarms_read_them() {
    let out = Captured::default();
    let metrics = Metrics::emf_of_version(Box::new(out.clone()), Some("7".into()));
    metrics.record_request("/games", 200, Duration::from_millis(2));
    metrics.record_request("/games", 503, Duration::from_millis(3));
    let defined: Vec<_> = out.json_lines().iter().flat_map(check_emf).collect();
    let sum = |dims: &[(&str, &str)]| -> f64 {
        let dims = dimensions(dims);
        defined
            .iter()
            .filter(|(n, _, d)| n == metrics::API_REQUESTS && *d == dims)
            .map(|(_, v, _)| *v)
            .sum()
    };
    assert_eq!(sum(&[("FunctionVersion", "7")]), 2.0);
    assert_eq!(
        sum(&[("FunctionVersion", "7"), ("StatusClass", "5xx")]),
        1.0
    );
    assert_eq!(sum(&[("Route", "/games"), ("StatusClass", "5xx")]), 1.0);

    // Every dimension set an alarm or the dashboard reads ludex_api_requests by is one the
    // documents define.
    let emitted: BTreeSet<BTreeSet<&str>> = metrics::API_REQUEST_DIMENSIONS
        .iter()
        .map(|set| set.iter().copied().collect())
        .collect();
    let main = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../infra/terraform/modules/observability/main.tf"),
    )
    .unwrap();
    let mut read = 0;
    for block in main.split("metric {").skip(1) {
        let block = &block[..block.find('}').map_or(block.len(), |e| e + 1)];
        let Some(dimensions) = block
            .lines()
            .find(|l| l.trim_start().starts_with("dimensions"))
            .filter(|_| block.contains("local.app_metric_names.api_requests"))
        else {
            continue;
        };
        let keys: BTreeSet<&str> = dimensions
            .split(['{', ',', '}'])
            .filter_map(|part| part.split_once('=').map(|(k, _)| k.trim()))
            .filter(|k| !k.is_empty() && *k != "dimensions")
            .collect();
        assert!(
            emitted.contains(&keys),
            "an alarm reads ludex_api_requests by {keys:?}, which no document defines"
        );
        read += 1;
    }
    assert!(read >= 2, "the release alarms read the request counts");
}

#[tokio::test]
async fn with_emf_metrics_requests_are_counted_on_stdout_and_metrics_is_not_served() {
    let out = Captured::default();
    let app = app(Metrics::emf(Box::new(out.clone())));
    let (status, _, _) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let documents = out.json_lines();
    assert_eq!(documents.len(), 1);
    let defined = check_emf(&documents[0]);
    assert!(
        defined
            .iter()
            .any(|(name, _, dims)| name == metrics::API_REQUESTS
                && dims.get("Route").map(String::as_str) == Some("/metrics")
                && dims.get("StatusClass").map(String::as_str) == Some("4xx"))
    );
}

// --- Prometheus text -----------------------------------------------------------------------

/// One sample of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (0.0.4): `# HELP` and `# TYPE` comments, then samples
/// `name{label="value",…} number`, each sample after the `# TYPE` of its family.
fn parse_prometheus(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars().enumerate().all(|(i, c)| {
                c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            assert!(is_name(name), "bad name {name:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type {kind:?}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{name} typed twice"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(is_name(&key), "bad label name {key:?} in {line}");
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut value = String::new();
                    loop {
                        match chars
                            .next()
                            .unwrap_or_else(|| panic!("unclosed value: {line}"))
                        {
                            '\\' => value.push(match chars.next() {
                                Some('n') => '\n',
                                Some(c) => c,
                                None => panic!("bad escape: {line}"),
                            }),
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    assert!(
                        labels.insert(key, value).is_none(),
                        "repeated label: {line}"
                    );
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (name, labels)
            }
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE: {line}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    (types, samples)
}

fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == labels)
        .map(|s| s.value)
}

#[tokio::test]
async fn metrics_serves_prometheus_text_that_counts_ingests_requests_and_the_process() {
    let app = app(Metrics::registry());
    let (status, headers, before) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; version=0.0.4");
    let (_, samples) = parse_prometheus(&before);
    assert_eq!(sample(&samples, metrics::INGEST_FILES, &[]), Some(0.0));

    let bad = std::fs::read(examples().join("bad-games.ndjson")).unwrap();
    app.ingest("uploads/bad.ndjson", &bad, app.state.metrics.clone())
        .await;
    for _ in 0..3 {
        app.send(Request::get("/healthz").body(Body::empty()).unwrap())
            .await;
    }
    app.send(
        Request::get("/games/nothing-here")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    app.send(
        Request::get("/no/such/endpoint")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    let (_, _, after) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let (types, samples) = parse_prometheus(&after);
    for name in metrics::ALL_NAMES {
        assert!(types.contains_key(name), "{name} is not exposed:\n{after}");
    }
    assert_eq!(types[metrics::INGEST_FILES], "counter");
    assert_eq!(types[metrics::API_REQUESTS], "counter");
    assert_eq!(types[metrics::API_LATENCY_MS], "histogram");
    assert_eq!(types[metrics::INGEST_STAGE_DURATION_MS], "histogram");

    assert_eq!(sample(&samples, metrics::INGEST_FILES, &[]), Some(1.0));
    assert_eq!(
        sample(&samples, metrics::INGEST_RECORDS_ACCEPTED, &[]),
        Some(3.0)
    );
    assert_eq!(
        sample(&samples, metrics::INGEST_RECORDS_REJECTED, &[]),
        Some(7.0)
    );
    assert_eq!(
        sample(&samples, metrics::INGEST_BYTES, &[]),
        Some(bad.len() as f64)
    );
    assert_eq!(
        sample(&samples, metrics::INGEST_WRITE_RETRIES, &[]),
        Some(0.0)
    );
    for stage in Stage::ALL {
        let stage = stage.as_str();
        assert_eq!(
            sample(
                &samples,
                "ludex_ingest_stage_duration_ms_count",
                &[("Stage", stage)]
            ),
            Some(1.0),
            "{stage}"
        );
        assert_eq!(
            sample(
                &samples,
                "ludex_ingest_stage_duration_ms_bucket",
                &[("Stage", stage), ("le", "+Inf")]
            ),
            Some(1.0)
        );
    }
    assert_eq!(
        sample(
            &samples,
            metrics::API_REQUESTS,
            &[("Route", "/healthz"), ("StatusClass", "2xx")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &samples,
            metrics::API_REQUESTS,
            &[("Route", "/games/{id}"), ("StatusClass", "4xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &samples,
            metrics::API_REQUESTS,
            &[("Route", "unmatched"), ("StatusClass", "4xx")]
        ),
        Some(1.0)
    );
    // The first /metrics request was counted when it finished.
    assert_eq!(
        sample(
            &samples,
            metrics::API_REQUESTS,
            &[("Route", "/metrics"), ("StatusClass", "2xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &samples,
            "ludex_api_latency_ms_count",
            &[("Route", "/healthz")]
        ),
        Some(3.0)
    );
    // Buckets are cumulative.
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|s| {
            s.name == "ludex_api_latency_ms_bucket"
                && s.labels.get("Route").map(String::as_str) == Some("/healthz")
        })
        .map(|s| s.value)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets.last(), Some(&3.0));

    if cfg!(target_os = "linux") {
        for name in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_uptime_seconds",
            "process_start_time_seconds",
        ] {
            assert!(
                sample(&samples, name, &[]).is_some_and(|v| v > 0.0),
                "{name}"
            );
        }
        assert!(sample(&samples, "process_cpu_seconds_total", &[]).is_some_and(|v| v >= 0.0));
    }
}

#[tokio::test]
async fn the_metrics_endpoint_is_in_the_openapi_document() {
    let app = app(Metrics::registry());
    let (_, _, body) = app
        .send(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await;
    let document: Value = serde_json::from_str(&body).unwrap();
    let ok = &document["paths"]["/metrics"]["get"]["responses"]["200"];
    assert!(
        ok["content"]["text/plain; version=0.0.4"].is_object(),
        "{ok}"
    );
}

// --- Names shared with Terraform ------------------------------------------------------------

/// Every string literal `"ludex_…"` in the observability module's Terraform files.
fn terraform_metric_names() -> BTreeSet<String> {
    let module =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/terraform/modules/observability");
    let mut names = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&module).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "tf") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (start, _) in text.match_indices("\"ludex_") {
            let rest = &text[start + 1..];
            let end = rest.find('"').expect("a closed string");
            names.insert(rest[..end].to_owned());
        }
    }
    assert!(files > 0, "no .tf files in {}", module.display());
    names
}

#[test]
fn metric_names_are_the_ones_the_terraform_dashboard_and_alarms_use() {
    let rust: BTreeSet<String> = metrics::ALL_NAMES.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(
        rust.len(),
        metrics::ALL_NAMES.len(),
        "a name is listed twice"
    );
    assert_eq!(terraform_metric_names(), rust);

    let main = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../infra/terraform/modules/observability/main.tf"),
    )
    .unwrap();
    assert!(
        main.contains(&format!(
            "app_metric_namespace = \"{}\"",
            metrics::NAMESPACE
        )),
        "the namespace differs"
    );
    let stages: Vec<String> = Stage::ALL
        .iter()
        .map(|s| format!("\"{}\"", s.as_str()))
        .collect();
    assert!(
        main.contains(&format!("ingest_stages = [{}]", stages.join(", "))),
        "the stages differ"
    );
}
