//! Settings shared by the `ludex` command line and the Lambda functions, declared once with
//! clap: each one's flag, `LUDEX_*` variable, parsing and help. The CLI reads them from flags
//! and the environment; the functions from the environment only, through [`from_env_vars`],
//! which runs each variable through the parser its argument declares.

use crate::api::session::SessionKey;
use crate::metrics::MetricsSink;
use crate::telemetry::LogFormat;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser};
use std::ffi::OsString;

/// Where the catalog and the bucket are.
#[derive(Clone, Debug, Args)]
pub struct Location {
    /// The catalog store as a URL: sqlite://PATH, postgres://USER@HOST/DB or dynamodb://TABLE (?endpoint=URL for a local server) [default: sqlite://DATA_DIR/ludex.db]
    #[arg(long, global = true, env = "LUDEX_STORE")]
    pub store: Option<String>,
    /// The bucket for uploads, rejects reports and covers: a folder, or s3://BUCKET (LUDEX_S3_ENDPOINT or AWS_ENDPOINT_URL for a server other than AWS) [default: DATA_DIR/bucket]
    #[arg(long, global = true, env = "LUDEX_BUCKET")]
    pub bucket: Option<String>,
}

/// How much of every game's history is kept (docs/operations.md, "History retention"). Every
/// binary reads these: the DynamoDB store applies them as it files versions, `ludex serve`
/// prunes the SQL stores with them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
pub struct HistoryRetention {
    /// Keep the newest N earlier versions of each game (besides its current one) [default: all].
    #[arg(long = "history-keep-versions", global = true, env = "LUDEX_HISTORY_KEEP_VERSIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_versions: Option<u32>,
    /// Keep the earlier versions replaced in the last D days [default: all].
    #[arg(long = "history-keep-days", global = true, env = "LUDEX_HISTORY_KEEP_DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub keep_days: Option<u32>,
}

impl HistoryRetention {
    pub fn retention(&self) -> ludex_domain::Retention {
        ludex_domain::Retention {
            versions: self.keep_versions,
            days: self.keep_days,
        }
    }
}

/// How a process reports on itself: every binary reads these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
pub struct Reporting {
    /// Log lines as text or as JSON objects [default: json on Lambda, text elsewhere]
    #[arg(long, global = true, env = "LUDEX_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Where metrics go: prometheus (served at GET /metrics), emf (CloudWatch Embedded Metric Format lines on standard output) or off [default: emf on Lambda, prometheus elsewhere]
    #[arg(long, global = true, env = "LUDEX_METRICS", value_enum)]
    pub metrics: Option<MetricsSink>,
}

#[derive(Parser)]
struct ReportingVars {
    #[command(flatten)]
    reporting: Reporting,
}

impl Reporting {
    /// The reporting settings in the variables read through `var`; when one is not valid, a
    /// warning on standard error and the defaults (logging must start whatever is set; the
    /// Lambda functions then refuse the setting at init, naming it).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        match from_env_vars::<ReportingVars>(var) {
            Ok(vars) => vars.reporting,
            Err(error) => {
                eprintln!("warning: {error}; using the default");
                Self::default()
            }
        }
    }
}

/// Who may use the API, and how web UI sessions are sealed.
#[derive(Clone, Debug, Args)]
pub struct Access {
    /// Require an API key for reads too (writes always need one); also true, false, yes, no, 1 or 0.
    #[arg(
        long,
        env = "LUDEX_READS_REQUIRE_KEY",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub reads_require_key: bool,
    /// Origins allowed to call the API from a browser, comma-separated (scheme://host[:port]); none by default.
    #[arg(long, env = "LUDEX_CORS_ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub cors_origins: Vec<String>,
    /// The secret that seals web UI sessions, at least 32 bytes; instances given the same secret share their sessions. Set it in the environment rather than on a command line, which other users of the machine can see.
    #[arg(
        long,
        env = "LUDEX_SESSION_SECRET",
        hide_env_values = true,
        value_parser = Secret::given
    )]
    pub session_secret: Option<Secret>,
}

impl Access {
    /// The key of the session secret given, if one was: checked here rather than by clap,
    /// whose messages repeat the value they refuse.
    pub fn session_key(&self) -> Result<Option<SessionKey>, EnvError> {
        self.session_secret
            .as_ref()
            .map(|secret| {
                SessionKey::from_secret(&secret.0)
                    .map_err(|reason| EnvError::invalid("LUDEX_SESSION_SECRET", "…", reason))
            })
            .transpose()
    }
}

/// A secret given in a setting. Nothing shows it: `Debug` prints `…`, and it is checked where
/// it is used, by code whose errors leave it out.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    fn given(raw: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(raw.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// One origin of `--cors-origins`: `scheme://host[:port]`, as browsers send it.
fn origin(raw: &str) -> Result<String, String> {
    let origin = raw.trim().trim_end_matches('/');
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("an origin starts with https:// or http://, such as https://games.example")?;
    let valid = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
    if host.is_empty() || !host.chars().all(valid) {
        return Err(format!(
            "an origin is scheme://host[:port] with no path, such as https://games.example, not {origin:?}"
        ));
    }
    Ok(origin.to_owned())
}

/// `command` with the variables that are set but empty taken off their arguments (clap would
/// parse `""` as a value), in every subcommand.
pub fn without_empty_variables(command: clap::Command) -> clap::Command {
    let empty = |name: &std::ffi::OsStr| std::env::var_os(name).is_some_and(|v| v.is_empty());
    let mut command = command.mut_args(|arg| match arg.get_env() {
        Some(name) if empty(name) => arg.env(None::<&'static str>),
        _ => arg,
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, without_empty_variables);
    }
    command
}

/// A setting that is missing or not valid, named by its variable.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{name} is not set: {hint}")]
    Missing { name: String, hint: String },
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: String,
        /// `…` in place of a value that is secret (`hide_env_values`) or long.
        value: String,
        reason: String,
    },
}

impl EnvError {
    pub fn missing(name: &str, hint: &str) -> Self {
        Self::Missing {
            name: name.to_owned(),
            hint: hint.to_owned(),
        }
    }

    pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A variable that was set, and the argument it feeds.
struct Given {
    long: String,
    name: String,
    /// What an error may show of the value.
    shown: String,
}

/// Parses `T` from environment variables only, read through `var` (the process environment,
/// or a test's map). Empty values count as unset (Terraform writes `""` for an empty list).
/// Each variable set becomes its argument's `--long=value`, so clap applies the declared
/// parser, range, default, conflicts and requirements exactly as on a command line; an error
/// names the variable and never shows a value declared `hide_env_values`.
pub fn from_env_vars<T: Parser>(var: impl Fn(&str) -> Option<String>) -> Result<T, EnvError> {
    let command = T::command();
    let mut argv = vec![OsString::from(command.get_name())];
    let mut given = Vec::new();
    for arg in command.get_arguments() {
        let (Some(name), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let Some(value) = var(&name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        argv.push(format!("--{long}={value}").into());
        let shown = if arg.is_hide_env_values_set() {
            "…".to_owned()
        } else {
            value
        };
        given.push(Given {
            long: long.to_owned(),
            name,
            shown,
        });
    }
    // Only the variables read through `var` count, not the process environment clap would read.
    let command = command.mut_args(|arg| arg.env(None::<&'static str>));
    let matches = command
        .try_get_matches_from(argv)
        .map_err(|error| env_error(&error, &given))?;
    T::from_arg_matches(&matches).map_err(|error| env_error(&error, &given))
}

/// The variable behind an argument as clap shows it (`--upload-prefix <UPLOAD_PREFIX>`,
/// `--flag[=<FLAG>]`).
fn variable<'a>(given: &'a [Given], shown: &str) -> Option<&'a Given> {
    let long = shown.strip_prefix("--")?;
    let end = long
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(long.len());
    given.iter().find(|g| g.long == long[..end])
}

fn env_error(error: &clap::Error, given: &[Given]) -> EnvError {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        Some(ContextValue::Strings(texts)) => texts.first().cloned(),
        _ => None,
    };
    let culprit = context(ContextKind::InvalidArg).and_then(|shown| variable(given, &shown));
    let Some(culprit) = culprit else {
        // Not about one variable (clap's own message, first line, without usage).
        let message = error.to_string();
        let first = message.lines().next().unwrap_or_default();
        return EnvError::invalid("the environment", "…", first.trim_start_matches("error: "));
    };
    let reason = match error.kind() {
        ErrorKind::ArgumentConflict => {
            let other = context(ContextKind::PriorArg)
                .and_then(|shown| variable(given, &shown))
                .map_or_else(|| "another setting".to_owned(), |g| g.name.clone());
            format!("set either {} or {other}, not both", culprit.name)
        }
        ErrorKind::ValueValidation => {
            use std::error::Error as _;
            error
                .source()
                .map_or_else(|| error.kind().to_string(), |source| source.to_string())
        }
        ErrorKind::InvalidValue => match error.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("use one of {}", valid.join(", ")),
            _ => error.kind().to_string(),
        },
        kind => kind.to_string(),
    };
    EnvError::invalid(&culprit.name, &culprit.shown, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Parser)]
    struct Both {
        #[command(flatten)]
        location: Location,
        #[command(flatten)]
        access: Access,
        /// A number in a range.
        #[arg(long, env = "LUDEX_TEST_COUNT", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
        count: u32,
        /// One or the other.
        #[arg(long, env = "LUDEX_TEST_OTHER", conflicts_with = "store")]
        other: Option<String>,
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Both, EnvError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        from_env_vars(|name| map.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn variables_go_through_their_arguments_parsers() {
        let both = parse(&[
            ("LUDEX_STORE", "dynamodb://t"),
            ("LUDEX_BUCKET", ""),
            ("LUDEX_READS_REQUIRE_KEY", "yes"),
            (
                "LUDEX_CORS_ORIGINS",
                "https://a.example, http://b.example:8080/",
            ),
            ("LUDEX_TEST_COUNT", "7"),
        ])
        .unwrap();
        assert_eq!(both.location.store.as_deref(), Some("dynamodb://t"));
        assert_eq!(both.location.bucket, None, "empty counts as unset");
        assert!(both.access.reads_require_key);
        assert_eq!(
            both.access.cors_origins,
            ["https://a.example", "http://b.example:8080"]
        );
        assert_eq!(both.count, 7);

        let defaults = parse(&[]).unwrap();
        assert!(!defaults.access.reads_require_key);
        assert!(defaults.access.cors_origins.is_empty());
        assert!(defaults.access.session_secret.is_none());
        assert_eq!(defaults.count, 3);
        for off in ["false", "no", "0", "off"] {
            assert!(
                !parse(&[("LUDEX_READS_REQUIRE_KEY", off)])
                    .unwrap()
                    .access
                    .reads_require_key
            );
        }
    }

    #[test]
    fn errors_name_the_variable_and_hide_secrets() {
        let message = |pairs: &[(&str, &str)]| parse(pairs).unwrap_err().to_string();
        let range = message(&[("LUDEX_TEST_COUNT", "12")]);
        assert!(
            range.starts_with("LUDEX_TEST_COUNT=\"12\" is not valid: 12 is not in 1..=9"),
            "{range}"
        );
        let flag = message(&[("LUDEX_READS_REQUIRE_KEY", "yes please")]);
        assert!(
            flag.starts_with("LUDEX_READS_REQUIRE_KEY=\"yes please\" is not valid"),
            "{flag}"
        );
        let origin = message(&[("LUDEX_CORS_ORIGINS", "https://a.example,games.example")]);
        assert!(
            origin.contains("starts with https:// or http://"),
            "{origin}"
        );
        let path = message(&[("LUDEX_CORS_ORIGINS", "https://a.example/app")]);
        assert!(path.contains("no path"), "{path}");
        let secret = "short secret";
        let access = parse(&[("LUDEX_SESSION_SECRET", secret)]).unwrap().access;
        assert!(!format!("{access:?}").contains(secret));
        let short = access.session_key().unwrap_err().to_string();
        assert!(
            short.starts_with("LUDEX_SESSION_SECRET=\"…\" is not valid")
                && short.contains("32 bytes"),
            "{short}"
        );
        assert!(!short.contains(secret));
        let both = message(&[("LUDEX_STORE", "dynamodb://t"), ("LUDEX_TEST_OTHER", "x")]);
        assert!(
            both.contains("set either LUDEX_") && both.contains("not both"),
            "{both}"
        );
        assert!(
            both.contains("LUDEX_STORE") && both.contains("LUDEX_TEST_OTHER"),
            "{both}"
        );
    }
}
