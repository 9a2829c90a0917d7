//! The application's metrics: one set of names, and one sink chosen at start — CloudWatch
//! Embedded Metric Format lines on standard output on Lambda (CloudWatch turns them into
//! metrics; no API calls), an in-process registry served as Prometheus text at `GET /metrics`
//! locally.
//!
//! The names below are a contract with the dashboard and alarms in
//! `infra/terraform/modules/observability` (`local.app_metric_names`); a test checks that both
//! sides name the same set.

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of every application metric.
pub const NAMESPACE: &str = "Ludex";

/// Upload files ingested (replays of an already ingested upload are not counted).
pub const INGEST_FILES: &str = "ludex_ingest_files";
/// Records that landed in the catalog.
pub const INGEST_RECORDS_ACCEPTED: &str = "ludex_ingest_records_accepted";
/// Records rejected (each one is in the file's rejects report).
pub const INGEST_RECORDS_REJECTED: &str = "ludex_ingest_records_rejected";
/// Size of the ingested upload objects, as stored (compressed when gzip).
pub const INGEST_BYTES: &str = "ludex_ingest_bytes";
/// Busy time of one ingest stage, dimension `Stage`.
pub const INGEST_STAGE_DURATION_MS: &str = "ludex_ingest_stage_duration_ms";
/// Ingests that ran again over an upload whose earlier attempt failed or was interrupted.
pub const INGEST_WRITE_RETRIES: &str = "ludex_ingest_write_retries";
/// Ingest attempts that found their upload claimed by another attempt (a duplicate delivery,
/// or another instance's round), or lost their claim after it expired.
pub const INGEST_CLAIMS_LOST: &str = "ludex_ingest_claims_lost";
/// API responses, dimensions `Route` and `StatusClass`; on Lambda also `FunctionVersion` and
/// `FunctionVersion` + `StatusClass` (what the release alarms judge a new version by).
pub const API_REQUESTS: &str = "ludex_api_requests";
/// API response time, dimension `Route`.
pub const API_LATENCY_MS: &str = "ludex_api_latency_ms";

/// Every application metric name.
pub const ALL_NAMES: [&str; 9] = [
    INGEST_FILES,
    INGEST_RECORDS_ACCEPTED,
    INGEST_RECORDS_REJECTED,
    INGEST_BYTES,
    INGEST_STAGE_DURATION_MS,
    INGEST_WRITE_RETRIES,
    INGEST_CLAIMS_LOST,
    API_REQUESTS,
    API_LATENCY_MS,
];

/// Dimension (CloudWatch) and label (Prometheus) names.
pub const DIMENSION_STAGE: &str = "Stage";
pub const DIMENSION_ROUTE: &str = "Route";
pub const DIMENSION_STATUS_CLASS: &str = "StatusClass";
/// The Lambda function version that served a request (`AWS_LAMBDA_FUNCTION_VERSION`).
pub const DIMENSION_FUNCTION_VERSION: &str = "FunctionVersion";

/// The dimension sets of `ludex_api_requests` in EMF documents: by route, and, when the
/// function version is known, by version (the release alarms' request count and 5xx count).
pub const API_REQUEST_DIMENSIONS: [&[&str]; 3] = [
    &[DIMENSION_ROUTE, DIMENSION_STATUS_CLASS],
    &[DIMENSION_FUNCTION_VERSION],
    &[DIMENSION_FUNCTION_VERSION, DIMENSION_STATUS_CLASS],
];

/// The route of requests that matched no route, so unknown paths do not make new series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The stages of an ingest, as named in the `Stage` dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the upload object (head, open, and the reads of its bytes).
    Download,
    /// Decompressing and parsing JSON into records.
    Parse,
    /// Checking each record against the game model.
    Validate,
    /// Batched upserts into the catalog.
    Write,
    /// The rejects report and the final ledger entry.
    Report,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Download,
        Stage::Parse,
        Stage::Validate,
        Stage::Write,
        Stage::Report,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::Parse => "parse",
            Stage::Validate => "validate",
            Stage::Write => "write",
            Stage::Report => "report",
        }
    }
}

/// Busy time of each ingest stage. Parsing, validation and writing overlap (one thread parses
/// and validates while another writes), so the stages add up to more than the wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageDurations([Duration; 5]);

impl StageDurations {
    pub fn get(&self, stage: Stage) -> Duration {
        self.0[stage as usize]
    }

    pub fn add(&mut self, stage: Stage, busy: Duration) {
        self.0[stage as usize] += busy;
    }

    pub fn millis(&self, stage: Stage) -> f64 {
        self.get(stage).as_secs_f64() * 1000.0
    }
}

/// What one ingest did, as counted by the metrics.
#[derive(Clone, Debug, Default)]
pub struct IngestMetrics {
    pub accepted: u64,
    pub rejected: u64,
    pub bytes: u64,
    pub stages: StageDurations,
    /// 1 when this ingest re-ran an upload whose earlier attempt failed or was interrupted.
    pub write_retries: u64,
    /// Not metrics: context kept beside the values in EMF documents, for Logs Insights.
    pub ingest_id: String,
    pub key: String,
    pub status: String,
}

/// Where metrics go. Cheap to clone; clones share the sink.
#[derive(Clone)]
pub struct Metrics {
    sink: Arc<Sink>,
}

enum Sink {
    Off,
    Registry(Box<Registry>),
    Emf {
        out: Mutex<Box<dyn Write + Send>>,
        /// The Lambda function version this process runs, if any.
        version: Option<String>,
    },
}

impl Metrics {
    /// The sink for this environment: EMF on standard output on Lambda (or when
    /// `LUDEX_METRICS=emf`), the in-process registry otherwise.
    pub fn from_env() -> Self {
        let forced = std::env::var("LUDEX_METRICS").unwrap_or_default();
        let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
        match forced.to_ascii_lowercase().as_str() {
            "emf" => Self::emf(Box::new(std::io::stdout())),
            "prometheus" | "registry" => Self::registry(),
            "off" => Self::off(),
            _ if on_lambda => Self::emf(Box::new(std::io::stdout())),
            _ => Self::registry(),
        }
    }

    /// An in-process registry, rendered by [`Metrics::prometheus_text`].
    pub fn registry() -> Self {
        Self::with(Sink::Registry(Box::new(Registry::new())))
    }

    /// EMF documents, one JSON line each, written to `out`; API requests carry the Lambda
    /// function version this process runs (`AWS_LAMBDA_FUNCTION_VERSION`) when there is one.
    pub fn emf(out: Box<dyn Write + Send>) -> Self {
        Self::emf_of_version(out, std::env::var("AWS_LAMBDA_FUNCTION_VERSION").ok())
    }

    /// EMF documents of a given function version (`None`: not on Lambda).
    pub fn emf_of_version(out: Box<dyn Write + Send>, version: Option<String>) -> Self {
        Self::with(Sink::Emf {
            out: Mutex::new(out),
            version,
        })
    }

    /// Counts nothing (one-shot commands).
    pub fn off() -> Self {
        Self::with(Sink::Off)
    }

    fn with(sink: Sink) -> Self {
        Self {
            sink: Arc::new(sink),
        }
    }

    /// Records one finished (or failed) ingest.
    pub fn record_ingest(&self, ingest: &IngestMetrics) {
        match &*self.sink {
            Sink::Off => {}
            Sink::Registry(registry) => registry.record_ingest(ingest),
            Sink::Emf { out, .. } => {
                let documents = emf::ingest_documents(ingest, emf::now_millis());
                emit(out, &documents);
            }
        }
    }

    /// Records an ingest attempt that left its upload to another attempt.
    pub fn record_claim_lost(&self) {
        match &*self.sink {
            Sink::Off => {}
            Sink::Registry(registry) => {
                registry.claims_lost.fetch_add(1, Ordering::Relaxed);
            }
            Sink::Emf { out, .. } => {
                let document = emf::claim_lost_document(emf::now_millis());
                emit(out, std::slice::from_ref(&document));
            }
        }
    }

    /// Records one API response. `route` is the matched path template.
    pub fn record_request(&self, route: &str, status: u16, latency: Duration) {
        match &*self.sink {
            Sink::Off => {}
            Sink::Registry(registry) => registry.record_request(route, status, latency),
            Sink::Emf { out, version } => {
                let document = emf::request_document(
                    &emf::Request {
                        route,
                        status,
                        latency,
                        version: version.as_deref(),
                    },
                    emf::now_millis(),
                );
                emit(out, std::slice::from_ref(&document));
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of the registry and the process; `None`
    /// when metrics go elsewhere.
    pub fn prometheus_text(&self) -> Option<String> {
        match &*self.sink {
            Sink::Registry(registry) => Some(registry.render()),
            _ => None,
        }
    }
}

fn emit(out: &Mutex<Box<dyn Write + Send>>, documents: &[Value]) {
    let mut text = String::new();
    for document in documents {
        let _ = writeln!(text, "{document}");
    }
    // A poisoned lock only means another writer panicked mid-line; keep writing.
    let mut out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Losing a metric line must not fail the request or the ingest that produced it.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The status class of a status code: `2xx`, `4xx`, …
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// CloudWatch Embedded Metric Format documents.
pub mod emf {
    use super::*;

    pub fn now_millis() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Metrics that share their dimension sets: ([dimension keys], [(metric name, unit)]).
    type Directive<'a> = (
        &'a [&'static [&'static str]],
        &'static [(&'static str, &'static str)],
    );

    fn document(timestamp: u64, directives: &[Directive], members: Map<String, Value>) -> Value {
        let directives: Vec<Value> = directives
            .iter()
            .map(|(dimensions, metrics)| {
                json!({
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": metrics
                        .iter()
                        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}),
        );
        root.extend(members);
        Value::Object(root)
    }

    /// One ingest: a document of counters without dimensions (the alarms read them so), and
    /// one per stage with its `Stage`.
    pub fn ingest_documents(ingest: &IngestMetrics, timestamp: u64) -> Vec<Value> {
        let context = |members: &mut Map<String, Value>| {
            members.insert("ingest_id".into(), ingest.ingest_id.clone().into());
            members.insert("key".into(), ingest.key.clone().into());
            members.insert("status".into(), ingest.status.clone().into());
        };
        let mut counters = Map::new();
        counters.insert(INGEST_FILES.into(), 1.into());
        counters.insert(INGEST_RECORDS_ACCEPTED.into(), ingest.accepted.into());
        counters.insert(INGEST_RECORDS_REJECTED.into(), ingest.rejected.into());
        counters.insert(INGEST_BYTES.into(), ingest.bytes.into());
        counters.insert(INGEST_WRITE_RETRIES.into(), ingest.write_retries.into());
        context(&mut counters);
        let mut documents = vec![document(
            timestamp,
            &[(
                &[&[]],
                &[
                    (INGEST_FILES, "Count"),
                    (INGEST_RECORDS_ACCEPTED, "Count"),
                    (INGEST_RECORDS_REJECTED, "Count"),
                    (INGEST_BYTES, "Bytes"),
                    (INGEST_WRITE_RETRIES, "Count"),
                ],
            )],
            counters,
        )];
        for stage in Stage::ALL {
            let mut members = Map::new();
            members.insert(DIMENSION_STAGE.into(), stage.as_str().into());
            members.insert(
                INGEST_STAGE_DURATION_MS.into(),
                rounded(ingest.stages.millis(stage)),
            );
            context(&mut members);
            documents.push(document(
                timestamp,
                &[(
                    &[&[DIMENSION_STAGE]],
                    &[(INGEST_STAGE_DURATION_MS, "Milliseconds")],
                )],
                members,
            ));
        }
        documents
    }

    /// One ingest attempt that left its upload to another attempt.
    pub fn claim_lost_document(timestamp: u64) -> Value {
        let mut members = Map::new();
        members.insert(INGEST_CLAIMS_LOST.into(), 1.into());
        document(
            timestamp,
            &[(&[&[]], &[(INGEST_CLAIMS_LOST, "Count")])],
            members,
        )
    }

    /// One API response as the EMF document sees it.
    pub struct Request<'a> {
        /// The matched path template.
        pub route: &'a str,
        pub status: u16,
        pub latency: Duration,
        /// The Lambda function version that served it, when on Lambda.
        pub version: Option<&'a str>,
    }

    /// One API response: its count by route and status class (and by function version, with
    /// and without the status class, when the version is known), its latency by route.
    pub fn request_document(request: &Request<'_>, timestamp: u64) -> Value {
        let mut members = Map::new();
        members.insert(DIMENSION_ROUTE.into(), request.route.into());
        members.insert(
            DIMENSION_STATUS_CLASS.into(),
            status_class(request.status).into(),
        );
        members.insert(API_REQUESTS.into(), 1.into());
        members.insert(
            API_LATENCY_MS.into(),
            rounded(request.latency.as_secs_f64() * 1000.0),
        );
        let request_sets: &[&'static [&'static str]] = match request.version {
            Some(version) => {
                members.insert(DIMENSION_FUNCTION_VERSION.into(), version.into());
                &API_REQUEST_DIMENSIONS
            }
            None => &API_REQUEST_DIMENSIONS[..1],
        };
        document(
            timestamp,
            &[
                (request_sets, &[(API_REQUESTS, "Count")]),
                (&[&[DIMENSION_ROUTE]], &[(API_LATENCY_MS, "Milliseconds")]),
            ],
            members,
        )
    }

    /// Milliseconds to the microsecond: enough for latencies, short lines.
    fn rounded(ms: f64) -> Value {
        let value = (ms * 1000.0).round() / 1000.0;
        serde_json::Number::from_f64(value).map_or(Value::from(0), Value::Number)
    }
}

/// Histogram bucket bounds, in milliseconds.
const LATENCY_BUCKETS_MS: [f64; 13] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];
const STAGE_BUCKETS_MS: [f64; 9] = [
    1.0, 10.0, 100.0, 1000.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
];

/// A histogram of atomics: one counter per bucket (not cumulative; summed when rendered).
struct Histogram {
    bounds: &'static [f64],
    /// One more than `bounds`: the last counts what is above every bound.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: Duration) {
        let ms = value.as_secs_f64() * 1000.0;
        let index = self
            .bounds
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// `name_bucket`, `name_sum` and `name_count` lines; `labels` is `k="v",` or empty.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        for (bound, bucket) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1000.0;
        let bare = labels.trim_end_matches(',');
        let bare = if bare.is_empty() {
            String::new()
        } else {
            format!("{{{bare}}}")
        };
        let _ = writeln!(out, "{name}_sum{bare} {sum}");
        let _ = writeln!(out, "{name}_count{bare} {count}");
    }
}

struct RouteStats {
    /// Responses by status class, 1xx to 5xx.
    responses: [AtomicU64; 5],
    latency: Histogram,
}

struct Registry {
    started: Instant,
    started_unix: f64,
    files: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    bytes: AtomicU64,
    write_retries: AtomicU64,
    claims_lost: AtomicU64,
    stages: [Histogram; 5],
    routes: RwLock<HashMap<Box<str>, Arc<RouteStats>>>,
}

impl Registry {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            files: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            write_retries: AtomicU64::new(0),
            claims_lost: AtomicU64::new(0),
            stages: std::array::from_fn(|_| Histogram::new(&STAGE_BUCKETS_MS)),
            routes: RwLock::new(HashMap::new()),
        }
    }

    fn record_ingest(&self, ingest: &IngestMetrics) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(ingest.accepted, Ordering::Relaxed);
        self.rejected.fetch_add(ingest.rejected, Ordering::Relaxed);
        self.bytes.fetch_add(ingest.bytes, Ordering::Relaxed);
        self.write_retries
            .fetch_add(ingest.write_retries, Ordering::Relaxed);
        for stage in Stage::ALL {
            self.stages[stage as usize].observe(ingest.stages.get(stage));
        }
    }

    fn route(&self, route: &str) -> Arc<RouteStats> {
        // Routes are a fixed set: after the first request of each, only the read lock is taken.
        if let Some(stats) = self
            .routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(route)
        {
            return Arc::clone(stats);
        }
        let mut routes = self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(routes.entry(route.into()).or_insert_with(|| {
            Arc::new(RouteStats {
                responses: std::array::from_fn(|_| AtomicU64::new(0)),
                latency: Histogram::new(&LATENCY_BUCKETS_MS),
            })
        }))
    }

    fn record_request(&self, route: &str, status: u16, latency: Duration) {
        let stats = self.route(route);
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        stats.responses[class].fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(latency);
    }

    fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        };
        counter(
            &mut out,
            INGEST_FILES,
            "Upload files ingested.",
            &self.files,
        );
        counter(
            &mut out,
            INGEST_RECORDS_ACCEPTED,
            "Records that landed in the catalog.",
            &self.accepted,
        );
        counter(
            &mut out,
            INGEST_RECORDS_REJECTED,
            "Records rejected by validation.",
            &self.rejected,
        );
        counter(
            &mut out,
            INGEST_BYTES,
            "Bytes of ingested upload objects.",
            &self.bytes,
        );
        counter(
            &mut out,
            INGEST_WRITE_RETRIES,
            "Ingests that re-ran an upload after a failed or interrupted attempt.",
            &self.write_retries,
        );
        counter(
            &mut out,
            INGEST_CLAIMS_LOST,
            "Ingest attempts that left their upload to another attempt holding its claim.",
            &self.claims_lost,
        );
        let _ = writeln!(
            out,
            "# HELP {INGEST_STAGE_DURATION_MS} Busy time of each ingest stage, in milliseconds."
        );
        let _ = writeln!(out, "# TYPE {INGEST_STAGE_DURATION_MS} histogram");
        for stage in Stage::ALL {
            self.stages[stage as usize].render(
                &mut out,
                INGEST_STAGE_DURATION_MS,
                &format!("{DIMENSION_STAGE}=\"{}\",", stage.as_str()),
            );
        }

        let mut routes: Vec<(String, Arc<RouteStats>)> = self
            .routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(route, stats)| (escape_label(route), Arc::clone(stats)))
            .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(
            out,
            "# HELP {API_REQUESTS} API responses by matched route and status class."
        );
        let _ = writeln!(out, "# TYPE {API_REQUESTS} counter");
        for (route, stats) in &routes {
            for (index, count) in stats.responses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let class = index + 1;
                    let _ = writeln!(
                        out,
                        "{API_REQUESTS}{{{DIMENSION_ROUTE}=\"{route}\",{DIMENSION_STATUS_CLASS}=\"{class}xx\"}} {count}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP {API_LATENCY_MS} API response time by matched route, in milliseconds."
        );
        let _ = writeln!(out, "# TYPE {API_LATENCY_MS} histogram");
        for (route, stats) in &routes {
            stats.latency.render(
                &mut out,
                API_LATENCY_MS,
                &format!("{DIMENSION_ROUTE}=\"{route}\","),
            );
        }
        self.render_process(&mut out);
        out
    }

    fn render_process(&self, out: &mut String) {
        let mut gauge = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        gauge(
            "process_uptime_seconds",
            "gauge",
            "Seconds since the process started serving.",
            self.started.elapsed().as_secs_f64(),
        );
        gauge(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            self.started_unix,
        );
        let process = ProcessStats::read();
        if let Some(bytes) = process.resident_bytes {
            gauge(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                bytes as f64,
            );
        }
        if let Some(fds) = process.open_fds {
            gauge(
                "process_open_fds",
                "gauge",
                "Open file descriptors.",
                fds as f64,
            );
        }
        if let Some(seconds) = process.cpu_seconds {
            gauge(
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time spent, in seconds.",
                seconds,
            );
        }
    }
}

/// What `/proc/self` says about this process (Linux); `None` elsewhere.
struct ProcessStats {
    resident_bytes: Option<u64>,
    open_fds: Option<u64>,
    cpu_seconds: Option<f64>,
}

impl ProcessStats {
    fn read() -> Self {
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        // Fields 14 and 15 (utime, stime) in clock ticks; the kernel reports them in USER_HZ,
        // which is 100 on every Linux architecture ludex runs on. The command name (field 2)
        // may hold spaces, so count from its closing parenthesis.
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let after_name = &stat[stat.rfind(')')? + 1..];
                let fields: Vec<&str> = after_name.split_whitespace().collect();
                let utime: u64 = fields.get(11)?.parse().ok()?;
                let stime: u64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) as f64 / 100.0)
            });
        Self {
            resident_bytes,
            open_fds,
            cpu_seconds,
        }
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_group_by_hundreds() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }

    #[test]
    fn histogram_buckets_are_cumulative_when_rendered() {
        let histogram = Histogram::new(&[1.0, 10.0]);
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(5));
        histogram.observe(Duration::from_millis(50));
        let mut out = String::new();
        histogram.render(&mut out, "h", "");
        assert_eq!(
            out,
            "h_bucket{le=\"1\"} 1\nh_bucket{le=\"10\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 55.5\nh_count 3\n"
        );
    }

    #[test]
    fn the_process_is_measured_from_proc_on_linux() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let stats = ProcessStats::read();
        assert!(stats.resident_bytes.is_some_and(|b| b > 0));
        assert!(stats.open_fds.is_some_and(|n| n > 0));
        assert!(stats.cpu_seconds.is_some());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
