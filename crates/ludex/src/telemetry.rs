//! One place that sets up logging: readable text on a terminal, JSON lines on Lambda or when
//! asked (`LUDEX_LOG_FORMAT=json`); the level comes from `RUST_LOG`, else Lambda's
//! `AWS_LAMBDA_LOG_LEVEL`.
//!
//! Every line logged while a request or an ingest runs carries its request id and X-Ray trace
//! id. They come from a task-local [`RequestContext`] rather than from a span: an info-level
//! span per request costs about a third of the API's read throughput, a task-local next to
//! nothing.

use serde_json::{Map, Value};
use std::fmt;
use std::future::Future;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The X-Ray trace header of the current Lambda invocation, set by the Lambda runtime.
pub const TRACE_ENV: &str = "_X_AMZN_TRACE_ID";
/// The X-Ray trace header on HTTP requests (API Gateway, load balancers).
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `timestamp LEVEL spans: target: message fields`, coloured on a terminal.
    Text,
    /// One JSON object per line, fields flattened (CloudWatch Logs Insights discovers them).
    Json,
}

/// What the environment asks of the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `EnvFilter` directives, e.g. `info` or `ludex=debug,tower_http=info`.
    pub filter: String,
}

impl LogSettings {
    /// Reads `LUDEX_LOG_FORMAT` (as [`crate::settings::Reporting`] declares it), `RUST_LOG`
    /// and Lambda's variables through `var`.
    pub fn from_vars(default_level: &str, var: impl Fn(&str) -> Option<String>) -> Self {
        let on_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let format = crate::settings::Reporting::from_vars(&var)
            .log_format
            .unwrap_or(if on_lambda {
                LogFormat::Json
            } else {
                LogFormat::Text
            });
        let filter = var("RUST_LOG")
            .filter(|f| !f.trim().is_empty())
            .or_else(|| {
                var("AWS_LAMBDA_LOG_LEVEL").map(|level| match level.to_ascii_lowercase().as_str() {
                    // Lambda's levels; tracing has no FATAL.
                    "fatal" => "error".to_owned(),
                    other => other.to_owned(),
                })
            })
            .unwrap_or_else(|| default_level.to_owned());
        Self { format, filter }
    }

    pub fn from_env(default_level: &str) -> Self {
        Self::from_vars(default_level, |name| std::env::var(name).ok())
    }
}

/// Installs the global subscriber; `default_level` applies when neither `RUST_LOG` nor
/// `AWS_LAMBDA_LOG_LEVEL` is set.
pub fn init(default_level: &str) {
    install(&LogSettings::from_env(default_level), default_level);
}

/// Installs the global subscriber for `settings`; `default_level` applies when their filter
/// is not valid.
pub fn install(settings: &LogSettings, default_level: &str) {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|e| {
        eprintln!(
            "warning: ignoring the log filter {:?} ({e}); logging at {default_level}",
            settings.filter
        );
        EnvFilter::new(default_level)
    });
    // A second init (tests) keeps the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => {
            tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stderr))
        }
        LogFormat::Text => tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .fmt_fields(DefaultFields::new())
                .event_format(TextLine)
                .finish(),
        ),
    };
}

/// The JSON-lines subscriber that [`init`] installs on Lambda, writing to `writer`.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .fmt_fields(JsonFields::new())
        .event_format(JsonLine)
        .finish()
}

/// The request (or Lambda invocation) a piece of work belongs to.
#[derive(Clone, Debug)]
pub struct RequestContext {
    request_id: axum::http::HeaderValue,
    trace_header: Option<axum::http::HeaderValue>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

impl RequestContext {
    /// `trace_header` is an X-Ray header (`Root=1-…;Parent=…;Sampled=1`) or a bare trace id.
    pub fn new(request_id: &str, trace_header: Option<&str>) -> Self {
        Self {
            request_id: axum::http::HeaderValue::from_str(request_id)
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("-")),
            trace_header: trace_header.and_then(|t| axum::http::HeaderValue::from_str(t).ok()),
        }
    }

    /// From the headers of a request (values are cheap reference-counted copies).
    pub fn from_headers(
        request_id: Option<&axum::http::HeaderValue>,
        trace: Option<&axum::http::HeaderValue>,
    ) -> Self {
        Self {
            request_id: request_id
                .cloned()
                .unwrap_or_else(|| axum::http::HeaderValue::from_static("-")),
            trace_header: trace.cloned(),
        }
    }

    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }

    /// The X-Ray trace id: from the request, else from the Lambda invocation.
    pub fn trace_id(&self) -> Option<String> {
        match &self.trace_header {
            Some(header) => header.to_str().ok().map(|h| trace_id_of(h).to_owned()),
            None => env_trace_id(),
        }
    }

    /// Runs `work` with this context: every line it logs carries the ids.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CONTEXT.scope(self, work).await
    }

    /// The same for blocking code (a parser thread).
    pub fn sync_scope<R>(self, work: impl FnOnce() -> R) -> R {
        CONTEXT.sync_scope(self, work)
    }

    /// The context of the running task, if any.
    pub fn current() -> Option<Self> {
        CONTEXT.try_with(Clone::clone).ok()
    }
}

/// The trace id of an X-Ray header: the `Root=` part, or the whole value if it has none.
pub fn trace_id_of(header: &str) -> &str {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .unwrap_or(header)
}

fn env_trace_id() -> Option<String> {
    std::env::var(TRACE_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| trace_id_of(&v).to_owned())
}

/// The ids of the running request or invocation: request id, trace id.
fn current_ids() -> (Option<String>, Option<String>) {
    match CONTEXT.try_with(|c| (c.request_id().to_owned(), c.trace_id())) {
        Ok((request, trace)) => (Some(request), trace),
        Err(_) => (None, env_trace_id()),
    }
}

/// One JSON object per line: time, level, target, the ids, the fields of the spans in scope
/// (outermost first) and the event's own fields, all at the top level.
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut object = Map::new();
        object.insert("timestamp".into(), crate::store::now_rfc3339().into());
        object.insert("level".into(), meta.level().as_str().into());
        object.insert("target".into(), meta.target().into());
        let (request_id, trace_id) = current_ids();
        if let Some(id) = request_id {
            object.insert("request_id".into(), id.into());
        }
        if let Some(id) = trace_id {
            object.insert("trace_id".into(), id.into());
        }
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                innermost = Some(span.name());
                let extensions = span.extensions();
                // With `JsonFields`, a span's formatted fields are a JSON object.
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields)
                {
                    object.extend(fields);
                }
            }
            if let Some(name) = innermost {
                object.insert("span".into(), name.into());
            }
        }
        event.record(&mut JsonVisitor(&mut object));
        writeln!(writer, "{}", Value::Object(object))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().into(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// `timestamp LEVEL span{fields}:…: target: message fields request_id=… trace_id=…`.
struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = meta.level();
        if writer.has_ansi_escapes() {
            let colour = match *level {
                tracing::Level::ERROR => "31",
                tracing::Level::WARN => "33",
                tracing::Level::INFO => "32",
                tracing::Level::DEBUG => "34",
                tracing::Level::TRACE => "35",
            };
            write!(
                writer,
                "\x1b[2m{}\x1b[0m \x1b[{colour}m{level:>5}\x1b[0m ",
                crate::store::now_rfc3339()
            )?;
        } else {
            write!(writer, "{} {level:>5} ", crate::store::now_rfc3339())?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                write!(writer, ": ")?;
            }
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        let (request_id, trace_id) = current_ids();
        if let Some(id) = request_id {
            write!(writer, " request_id={id}")?;
        }
        if let Some(id) = trace_id {
            write!(writer, " trace_id={id}")?;
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogSettings::from_vars("warn", |name| vars.get(name).cloned())
    }

    #[test]
    fn logs_are_text_locally_and_json_on_lambda_or_when_asked() {
        assert_eq!(settings(&[]).format, LogFormat::Text);
        assert_eq!(
            settings(&[("LUDEX_LOG_FORMAT", "json")]).format,
            LogFormat::Json
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_FUNCTION_NAME", "ludex-api")]).format,
            LogFormat::Json
        );
        assert_eq!(
            settings(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "ludex-api"),
                ("LUDEX_LOG_FORMAT", "text")
            ])
            .format,
            LogFormat::Text
        );
        // A value that is not a format: a warning, and the default.
        assert_eq!(
            settings(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "ludex-api"),
                ("LUDEX_LOG_FORMAT", "xml")
            ])
            .format,
            LogFormat::Json
        );
    }

    #[test]
    fn the_level_comes_from_rust_log_then_lambda_then_the_default() {
        assert_eq!(settings(&[]).filter, "warn");
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]).filter,
            "debug"
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter,
            "error"
        );
        assert_eq!(
            settings(&[
                ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ("RUST_LOG", "ludex=trace")
            ])
            .filter,
            "ludex=trace"
        );
    }

    #[test]
    fn the_trace_id_is_the_root_of_an_xray_header() {
        assert_eq!(
            trace_id_of(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            ),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
        assert_eq!(trace_id_of("1-abc-def"), "1-abc-def");
    }
}
