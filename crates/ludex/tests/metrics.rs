//! Metrics as CloudWatch and Prometheus see them: EMF documents valid per the specification,
//! the Prometheus text at `/metrics`, and the names shared with the Terraform dashboard and
//! alarms.

use crate::observed::{Captured, app, examples};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ludex::metrics::{self, IngestMetrics, Metrics, Stage};
use openmetrics_parser::prometheus::parse_prometheus as parse_prometheus_text;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
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

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

/// The exposition parsed by a Prometheus text parser (a grammar of the format: a line it
/// cannot read fails the parse).
fn parse_prometheus(text: &str) -> Exposition {
    parse_prometheus_text(text).unwrap_or_else(|e| panic!("not Prometheus text ({e:?}):\n{text}"))
}

/// The value of one series: a counter or gauge's value, or a histogram's count (its buckets
/// checked to be cumulative and to end at +Inf).
fn sample(exposition: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = exposition.families.get(name)?;
    let found = family.iter_samples().find(|sample| {
        let set = sample.get_labelset().expect("bound to its family");
        set.iter().count() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
    })?;
    Some(match &found.value {
        PrometheusValue::Counter(c) => c.value.as_f64(),
        PrometheusValue::Gauge(v) | PrometheusValue::Unknown(v) => v.as_f64(),
        PrometheusValue::Histogram(h) => {
            let counts: Vec<f64> = h.buckets.iter().map(|b| b.count.as_f64()).collect();
            assert!(
                counts.windows(2).all(|w| w[0] <= w[1]),
                "not cumulative: {counts:?}"
            );
            assert_eq!(h.buckets.last().map(|b| b.upper_bound), Some(f64::INFINITY));
            let count = h.count.expect("a histogram has a _count") as f64;
            assert_eq!(counts.last(), Some(&count));
            count
        }
        PrometheusValue::Summary(_) => panic!("{name} is a summary, not a histogram"),
    })
}

/// A histogram's `_sum`.
fn histogram_sum(exposition: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(exposition, name, labels)?;
    exposition.families[name].iter_samples().find_map(|s| {
        let set = s.get_labelset().ok()?;
        let matches = labels
            .iter()
            .all(|(k, v)| set.get_label_value(k) == Some(*v));
        match &s.value {
            PrometheusValue::Histogram(h) if matches => h.sum.as_ref().map(|n| n.as_f64()),
            _ => None,
        }
    })
}

#[tokio::test]
async fn metrics_serves_prometheus_text_that_counts_ingests_requests_and_the_process() {
    use ludex::metrics::prometheus::{self as names, LABEL_ROUTE, LABEL_STAGE, LABEL_STATUS_CLASS};
    let app = app(Metrics::prometheus());
    let (status, headers, before) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; version=0.0.4");
    let scrape = parse_prometheus(&before);
    assert_eq!(sample(&scrape, names::INGEST_FILES, &[]), Some(0.0));

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
    let scrape = parse_prometheus(&after);
    // The conventions: counters end in _total, durations are histograms in seconds, sizes
    // in bytes; every name is exposed with its type and help.
    for name in names::ALL_NAMES {
        let family = scrape
            .families
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not exposed:\n{after}"));
        let expected = if name.ends_with("_total") {
            PrometheusType::Counter
        } else {
            assert!(name.ends_with("_seconds"), "{name}");
            PrometheusType::Histogram
        };
        assert_eq!(family.family_type, expected, "{name}");
        assert!(!family.help.is_empty(), "{name} has no # HELP");
    }
    for (name, family) in &scrape.families {
        assert!(!name.ends_with("_ms"), "milliseconds: {name}");
        assert_eq!(
            family.family_type == PrometheusType::Counter,
            name.ends_with("_total"),
            "{name} is a {}",
            family.family_type
        );
    }

    assert_eq!(sample(&scrape, names::INGEST_FILES, &[]), Some(1.0));
    assert_eq!(
        sample(&scrape, names::INGEST_RECORDS_ACCEPTED, &[]),
        Some(3.0)
    );
    assert_eq!(
        sample(&scrape, names::INGEST_RECORDS_REJECTED, &[]),
        Some(7.0)
    );
    assert_eq!(
        sample(&scrape, names::INGEST_BYTES, &[]),
        Some(bad.len() as f64)
    );
    assert_eq!(sample(&scrape, names::INGEST_WRITE_RETRIES, &[]), Some(0.0));
    assert_eq!(sample(&scrape, names::INGEST_CLAIMS_LOST, &[]), Some(0.0));
    for stage in Stage::ALL {
        let stage = stage.as_str();
        assert_eq!(
            sample(
                &scrape,
                names::INGEST_STAGE_DURATION,
                &[(LABEL_STAGE, stage)]
            ),
            Some(1.0),
            "{stage}"
        );
    }
    let requests = |route: &str, class: &str| {
        sample(
            &scrape,
            names::API_REQUESTS,
            &[(LABEL_ROUTE, route), (LABEL_STATUS_CLASS, class)],
        )
    };
    assert_eq!(requests("/healthz", "2xx"), Some(3.0));
    assert_eq!(requests("/games/{id}", "4xx"), Some(1.0));
    assert_eq!(requests("unmatched", "4xx"), Some(1.0));
    // The first /metrics request was counted when it finished.
    assert_eq!(requests("/metrics", "2xx"), Some(1.0));
    assert_eq!(
        sample(
            &scrape,
            names::API_REQUEST_DURATION,
            &[(LABEL_ROUTE, "/healthz")]
        ),
        Some(3.0)
    );
    let sum = histogram_sum(
        &scrape,
        names::API_REQUEST_DURATION,
        &[(LABEL_ROUTE, "/healthz")],
    );
    assert!(sum.is_some_and(|s| s > 0.0 && s < 10.0), "seconds: {sum:?}");

    if cfg!(target_os = "linux") {
        for name in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "process_threads",
        ] {
            assert!(
                sample(&scrape, name, &[]).is_some_and(|v| v > 0.0),
                "{name}:\n{after}"
            );
        }
        assert!(sample(&scrape, "process_cpu_seconds_total", &[]).is_some_and(|v| v >= 0.0));
    }
}

/// Every PromQL query of the Grafana dashboard (panel targets and template variables).
fn grafana_queries() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/grafana/ludex.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            queries.push(query.to_owned());
        }
    }
    assert!(queries.len() > 10, "{queries:?}");
    queries
}

#[tokio::test]
async fn the_grafana_dashboard_reads_only_metrics_and_labels_that_metrics_serves() {
    let app = app(Metrics::prometheus());
    let games = std::fs::read(examples().join("bad-games.ndjson")).unwrap();
    app.ingest("uploads/bad.ndjson", &games, app.state.metrics.clone())
        .await;
    app.send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    let (_, _, text) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let scrape = parse_prometheus(&text);
    // Labels Prometheus adds to every series, and the buckets' bound.
    let mut labels: BTreeSet<String> = ["instance", "job", "le"].map(String::from).into();
    for family in scrape.families.values() {
        labels.extend(family.get_label_names().iter().cloned());
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut read = BTreeSet::new();
    for query in grafana_queries() {
        for token in query.split(|c: char| !word(c)) {
            if !(token.starts_with("ludex_") || token.starts_with("process_")) {
                continue;
            }
            let family = token.strip_suffix("_bucket").unwrap_or(token);
            assert!(
                scrape.families.contains_key(family),
                "the dashboard reads {token}, which /metrics does not serve: {query}"
            );
            read.insert(family.to_owned());
        }
        // Label names: in `by (…)` groups and before the matchers of `{…}` selectors.
        let mut names = Vec::new();
        for (start, _) in query.match_indices("by (") {
            let group = &query[start + 4..];
            names.extend(group[..group.find(')').unwrap()].split(',').map(str::trim));
        }
        for (start, _) in query.match_indices('{') {
            let selector = &query[start + 1..];
            for matcher in selector[..selector.find('}').unwrap()].split(',') {
                names.push(matcher.split(['=', '!']).next().unwrap().trim());
            }
        }
        for name in names.into_iter().filter(|n| !n.is_empty()) {
            assert!(
                labels.contains(name),
                "no series has the label {name}: {query}"
            );
        }
    }
    // Every application metric is on the dashboard.
    for name in ludex::metrics::prometheus::ALL_NAMES {
        assert!(read.contains(name), "{name} is on no panel");
    }
}

#[tokio::test]
async fn the_metrics_endpoint_is_in_the_openapi_document() {
    let app = app(Metrics::prometheus());
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
