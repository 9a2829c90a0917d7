//! The application's metrics, and one sink chosen at start: CloudWatch Embedded Metric Format
//! lines on standard output on Lambda (CloudWatch turns them into metrics; no API calls), or a
//! Prometheus registry served as text at `GET /metrics` (the `metrics` facade recording into
//! `metrics-exporter-prometheus`, with the standard `process_` metrics).
//!
//! The two name the same measurements in each one's conventions: the CloudWatch names below
//! (counts, milliseconds, capitalised dimensions) are a contract with the dashboard and alarms
//! in `infra/terraform/modules/observability` (`local.app_metric_names`), and the Prometheus
//! names in [`prometheus`] (counters ending in `_total`, durations in `_seconds`, snake_case
//! labels) with the Grafana dashboard in `infra/grafana`. Tests check both contracts.

use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of every application metric. The CloudWatch names follow.
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

/// Every application metric name in CloudWatch.
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

/// CloudWatch dimension names.
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

/// Where metrics can go (`LUDEX_METRICS`, `--metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsSink {
    /// An in-process registry served at `GET /metrics`.
    Prometheus,
    /// CloudWatch Embedded Metric Format lines on standard output.
    Emf,
    /// Nowhere.
    Off,
}

/// Where metrics go. Cheap to clone; clones share the sink.
#[derive(Clone)]
pub struct Metrics {
    sink: Arc<Sink>,
}

enum Sink {
    Off,
    Prometheus(Box<prometheus::Registry>),
    Emf {
        out: Mutex<Box<dyn Write + Send>>,
        /// The Lambda function version this process runs, if any.
        version: Option<String>,
    },
}

impl Metrics {
    /// The sink chosen (`LUDEX_METRICS`, `--metrics`; `None`: EMF on standard output on
    /// Lambda, the Prometheus registry elsewhere).
    pub fn for_sink(sink: Option<MetricsSink>) -> Self {
        let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
        match sink {
            Some(MetricsSink::Emf) => Self::emf(Box::new(std::io::stdout())),
            Some(MetricsSink::Prometheus) => Self::prometheus(),
            Some(MetricsSink::Off) => Self::off(),
            None if on_lambda => Self::emf(Box::new(std::io::stdout())),
            None => Self::prometheus(),
        }
    }

    /// An in-process Prometheus registry, rendered by [`Metrics::prometheus_text`]. A
    /// background thread drains its histograms every few seconds (the exporter keeps raw
    /// samples until then) and ends when the last clone of these metrics is dropped.
    pub fn prometheus() -> Self {
        let metrics = Self::with(Sink::Prometheus(Box::new(prometheus::Registry::new())));
        let sink = Arc::downgrade(&metrics.sink);
        let upkeep = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || prometheus::upkeep(&sink));
        if let Err(error) = upkeep {
            tracing::warn!(%error, "metrics upkeep thread not started; histograms drain when scraped");
        }
        metrics
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
            Sink::Prometheus(registry) => registry.record_ingest(ingest),
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
            Sink::Prometheus(registry) => registry.record_claim_lost(),
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
            Sink::Prometheus(registry) => registry.record_request(route, status, latency),
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
            Sink::Prometheus(registry) => Some(registry.render()),
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

/// The Prometheus names and the registry behind them.
pub mod prometheus {
    use super::{IngestMetrics, Sink, Stage, status_class};
    use metrics::{
        Counter, Histogram, Unit, counter, describe_counter, describe_histogram, histogram,
    };
    use metrics_exporter_prometheus::{
        Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
    };
    use std::collections::HashMap;
    use std::sync::{OnceLock, PoisonError, RwLock, Weak};
    use std::time::Duration;

    pub const INGEST_FILES: &str = "ludex_ingest_files_total";
    pub const INGEST_RECORDS_ACCEPTED: &str = "ludex_ingest_records_accepted_total";
    pub const INGEST_RECORDS_REJECTED: &str = "ludex_ingest_records_rejected_total";
    pub const INGEST_BYTES: &str = "ludex_ingest_bytes_total";
    pub const INGEST_WRITE_RETRIES: &str = "ludex_ingest_write_retries_total";
    pub const INGEST_CLAIMS_LOST: &str = "ludex_ingest_claims_lost_total";
    /// Histogram, label [`LABEL_STAGE`].
    pub const INGEST_STAGE_DURATION: &str = "ludex_ingest_stage_duration_seconds";
    /// Counter, labels [`LABEL_ROUTE`] and [`LABEL_STATUS_CLASS`].
    pub const API_REQUESTS: &str = "ludex_api_requests_total";
    /// Histogram, label [`LABEL_ROUTE`].
    pub const API_REQUEST_DURATION: &str = "ludex_api_request_duration_seconds";

    /// Every application metric name in Prometheus (the `process_` ones come beside them).
    pub const ALL_NAMES: [&str; 9] = [
        INGEST_FILES,
        INGEST_RECORDS_ACCEPTED,
        INGEST_RECORDS_REJECTED,
        INGEST_BYTES,
        INGEST_STAGE_DURATION,
        INGEST_WRITE_RETRIES,
        INGEST_CLAIMS_LOST,
        API_REQUESTS,
        API_REQUEST_DURATION,
    ];

    pub const LABEL_STAGE: &str = "stage";
    pub const LABEL_ROUTE: &str = "route";
    pub const LABEL_STATUS_CLASS: &str = "status_class";

    /// Histogram bucket bounds, in seconds.
    const REQUEST_BUCKETS: [f64; 13] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    const STAGE_BUCKETS: [f64; 9] = [0.001, 0.01, 0.1, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];

    /// How often the upkeep thread drains histogram samples into their buckets.
    const UPKEEP_EVERY: Duration = Duration::from_secs(5);

    /// One recorder of its own (not the process-wide one), so that every [`super::Metrics`]
    /// counts apart: the facade's macros record into it through `with_local_recorder`.
    pub(super) struct Registry {
        recorder: PrometheusRecorder,
        handle: PrometheusHandle,
        process: metrics_process::Collector,
        /// The handles of each route's series, registered at its first request: a request
        /// then costs a map lookup and two atomic updates, not building and hashing two keys.
        routes: RwLock<HashMap<Box<str>, RouteSeries>>,
    }

    struct RouteSeries {
        /// By status class, 1xx to 5xx; registered at the first response of the class.
        requests: [OnceLock<Counter>; 5],
        duration: Histogram,
    }

    impl Registry {
        pub(super) fn new() -> Self {
            let builder = [
                (API_REQUEST_DURATION, &REQUEST_BUCKETS[..]),
                (INGEST_STAGE_DURATION, &STAGE_BUCKETS[..]),
            ]
            .into_iter()
            .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
                builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            });
            // The only error is an empty bucket list, and both lists are constants.
            let recorder = builder
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let registry = Self {
                handle: recorder.handle(),
                recorder,
                process: metrics_process::Collector::default(),
                routes: RwLock::new(HashMap::new()),
            };
            registry.with(|| {
                let counters = [
                    (INGEST_FILES, Unit::Count, "Upload files ingested."),
                    (INGEST_RECORDS_ACCEPTED, Unit::Count, "Records that landed in the catalog."),
                    (INGEST_RECORDS_REJECTED, Unit::Count, "Records rejected by validation."),
                    (INGEST_BYTES, Unit::Bytes, "Bytes of ingested upload objects, as stored."),
                    (
                        INGEST_WRITE_RETRIES,
                        Unit::Count,
                        "Ingests that re-ran an upload after a failed or interrupted attempt.",
                    ),
                    (
                        INGEST_CLAIMS_LOST,
                        Unit::Count,
                        "Ingest attempts that left their upload to another attempt holding its claim.",
                    ),
                ];
                for (name, unit, help) in counters {
                    describe_counter!(name, unit, help);
                    // Exposed at 0 from the start, so a rate over the first ingest is right.
                    counter!(name).increment(0);
                }
                describe_histogram!(
                    INGEST_STAGE_DURATION,
                    Unit::Seconds,
                    "Busy time of each ingest stage."
                );
                describe_counter!(
                    API_REQUESTS,
                    Unit::Count,
                    "API responses by matched route and status class."
                );
                describe_histogram!(
                    API_REQUEST_DURATION,
                    Unit::Seconds,
                    "API response time by matched route."
                );
                registry.process.describe();
            });
            registry
        }

        /// Runs `record` with this registry as the facade's recorder.
        fn with<T>(&self, record: impl FnOnce() -> T) -> T {
            metrics::with_local_recorder(&self.recorder, record)
        }

        pub(super) fn record_ingest(&self, ingest: &IngestMetrics) {
            self.with(|| {
                counter!(INGEST_FILES).increment(1);
                counter!(INGEST_RECORDS_ACCEPTED).increment(ingest.accepted);
                counter!(INGEST_RECORDS_REJECTED).increment(ingest.rejected);
                counter!(INGEST_BYTES).increment(ingest.bytes);
                counter!(INGEST_WRITE_RETRIES).increment(ingest.write_retries);
                for stage in Stage::ALL {
                    histogram!(INGEST_STAGE_DURATION, LABEL_STAGE => stage.as_str())
                        .record(ingest.stages.get(stage).as_secs_f64());
                }
            });
        }

        pub(super) fn record_claim_lost(&self) {
            self.with(|| counter!(INGEST_CLAIMS_LOST).increment(1));
        }

        pub(super) fn record_request(&self, route: &str, status: u16, latency: Duration) {
            let record = |series: &RouteSeries| {
                let class = usize::from((status / 100).clamp(1, 5) - 1);
                series.requests[class]
                    .get_or_init(|| {
                        self.with(|| {
                            counter!(
                                API_REQUESTS,
                                LABEL_ROUTE => route.to_owned(),
                                LABEL_STATUS_CLASS => status_class(status)
                            )
                        })
                    })
                    .increment(1);
                series.duration.record(latency.as_secs_f64());
            };
            // Routes are a fixed set: after the first request of each, only the read lock.
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = routes.get(route) {
                return record(series);
            }
            drop(routes);
            let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
            let series = routes.entry(route.into()).or_insert_with(|| RouteSeries {
                requests: Default::default(),
                duration: self
                    .with(|| histogram!(API_REQUEST_DURATION, LABEL_ROUTE => route.to_owned())),
            });
            record(series);
        }

        /// The text exposition, with the process measured now.
        pub(super) fn render(&self) -> String {
            self.with(|| self.process.collect());
            self.handle.render()
        }
    }

    /// Drains histogram samples every [`UPKEEP_EVERY`] while the metrics live.
    pub(super) fn upkeep(sink: &Weak<Sink>) {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            let Some(sink) = sink.upgrade() else { return };
            if let Sink::Prometheus(registry) = &*sink {
                registry.handle.run_upkeep();
            }
        }
    }
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
}
