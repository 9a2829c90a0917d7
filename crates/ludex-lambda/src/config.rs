//! The functions' settings: environment variables only (Terraform sets them), read once at
//! init and checked before anything is opened, so a misconfigured function fails its init
//! with a message that names the variable. They are declared as the `ludex` command line's
//! are (clap, with their parsing and help), and those both share — store, bucket, read
//! access, CORS origins, the session secret — are the very same declarations
//! ([`ludex::settings`]).

use clap::Parser;
use ludex::api::session::SessionKey;
use ludex::keys::KeyRing;
use ludex::settings::{Access, Location, Reporting, from_env_vars};
use std::time::Duration;

/// A setting that is missing or not valid.
pub use ludex::settings::EnvError as ConfigError;

/// What both functions need: the store, the bucket and where uploads land in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `dynamodb://TABLE` or `postgres://USER@HOST/DATABASE`.
    pub store: String,
    /// The Secrets Manager secret holding the PostgreSQL password (RDS-managed), if any.
    pub store_password_secret: Option<String>,
    /// `s3://BUCKET`.
    pub bucket: String,
    /// The key prefix of uploads, ending with `/`.
    pub upload_prefix: String,
    /// Log format and metrics sink, as set (the defaults on Lambda: JSON and EMF).
    pub reporting: Reporting,
    /// How much history the store keeps.
    pub retention: ludex::settings::HistoryRetention,
}

/// The variables of both functions.
#[derive(Debug, Parser)]
#[command(
    name = "ludex-lambda",
    about = "Settings of both ludex Lambda functions, read from environment variables only."
)]
pub struct FunctionVars {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    reporting: Reporting,
    #[command(flatten)]
    retention: ludex::settings::HistoryRetention,
    /// The Secrets Manager secret (ARN) holding the password of a postgres:// store (RDS-managed); the store URL then carries none.
    #[arg(long, env = "LUDEX_STORE_PASSWORD_SECRET_ARN")]
    store_password_secret_arn: Option<String>,
    /// The key prefix uploads land under, such as uploads/ (ending with /, not starting with one).
    #[arg(long, env = "LUDEX_UPLOAD_PREFIX", default_value = "uploads/", value_parser = upload_prefix)]
    upload_prefix: String,
}

/// The variables of the API function, beyond [`FunctionVars`].
#[derive(Debug, Parser)]
#[command(
    name = "ludex-api-lambda",
    about = "Settings of the ludex API function, read from environment variables only."
)]
pub struct ApiVars {
    #[command(flatten)]
    access: Access,
    /// The API key file's JSON (hashes, never keys) inline; use LUDEX_API_KEYS_PARAMETER instead to revoke keys without a deployment.
    #[arg(long, env = "LUDEX_API_KEYS", hide_env_values = true, value_parser = KeyRing::from_json, conflicts_with = "api_keys_parameter")]
    api_keys: Option<KeyRing>,
    /// The SSM parameter (SecureString) holding the API key file's JSON, fetched when a key is first presented and again once older than LUDEX_API_KEYS_MAX_AGE_SECONDS.
    #[arg(long, env = "LUDEX_API_KEYS_PARAMETER")]
    api_keys_parameter: Option<String>,
    /// Seconds keys fetched from LUDEX_API_KEYS_PARAMETER are used before they are fetched again: a key revoked in the parameter stops working within this time.
    #[arg(long, env = "LUDEX_API_KEYS_MAX_AGE_SECONDS", default_value_t = DEFAULT_KEYS_MAX_AGE.as_secs(), value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "api_keys")]
    api_keys_max_age_seconds: u64,
    /// The SSM parameter (SecureString) holding the session secret, fetched when a session is first opened or read; without it or LUDEX_SESSION_SECRET, sessions live on the instance that opened them.
    #[arg(
        long,
        env = "LUDEX_SESSION_SECRET_PARAMETER",
        conflicts_with = "session_secret"
    )]
    session_secret_parameter: Option<String>,
}

fn upload_prefix(raw: &str) -> Result<String, &'static str> {
    if raw.ends_with('/') && !raw.starts_with('/') {
        Ok(raw.to_owned())
    } else {
        Err("a key prefix such as uploads/ (ending with /, not starting with one)")
    }
}

/// Where the API's key hashes come from.
#[derive(Clone, Debug)]
pub enum KeySetting {
    /// The key file's JSON in `LUDEX_API_KEYS`.
    Inline(KeyRing),
    /// An SSM parameter (SecureString) holding that JSON, fetched when a key is first presented
    /// and again once the fetched keys are older than `max_age`
    /// (`LUDEX_API_KEYS_MAX_AGE_SECONDS`, default 300).
    Parameter { name: String, max_age: Duration },
}

/// How long keys fetched from the parameter are used before they are fetched again: a key
/// revoked in the parameter stops working within this time.
pub const DEFAULT_KEYS_MAX_AGE: Duration = Duration::from_secs(300);

/// Where the key that seals web UI sessions comes from.
#[derive(Clone, Debug)]
pub enum SessionSetting {
    /// `LUDEX_SESSION_SECRET`: the secret itself.
    Inline(SessionKey),
    /// `LUDEX_SESSION_SECRET_PARAMETER`: an SSM parameter (SecureString) holding the secret,
    /// fetched when a session is first opened or read.
    Parameter(String),
    /// Neither: a random key per instance, so a session lives on the instance that opened it
    /// (logged as a warning; Terraform sets the parameter).
    Random,
}

/// What the API function needs beyond [`Config`].
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub keys: KeySetting,
    pub reads_require_key: bool,
    pub cors_origins: Vec<String>,
    pub sessions: SessionSetting,
}

const STORE_HINT: &str = "set it to dynamodb://TABLE or postgres://USER@HOST/DATABASE";

impl Config {
    /// The bucket's name, from `s3://BUCKET`.
    pub fn bucket_name(&self) -> &str {
        self.bucket
            .trim_start_matches("s3://")
            .trim_end_matches('/')
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars: FunctionVars = from_env_vars(var)?;
        let store = vars
            .location
            .store
            .ok_or_else(|| ConfigError::missing("LUDEX_STORE", STORE_HINT))?;
        let store_password_secret = vars.store_password_secret_arn;
        check_store(&store, store_password_secret.is_some())?;
        let bucket = vars
            .location
            .bucket
            .ok_or_else(|| ConfigError::missing("LUDEX_BUCKET", "set it to s3://BUCKET"))?;
        match bucket.strip_prefix("s3://") {
            Some(name) if !name.is_empty() && !name.trim_end_matches('/').contains('/') => {}
            _ => {
                return Err(ConfigError::invalid(
                    "LUDEX_BUCKET",
                    &bucket,
                    "use s3://BUCKET",
                ));
            }
        }
        Ok(Self {
            store,
            store_password_secret,
            bucket,
            upload_prefix: vars.upload_prefix,
            reporting: vars.reporting,
            retention: vars.retention,
        })
    }
}

/// The store URL names a store this build links.
fn check_store(url: &str, has_password_secret: bool) -> Result<(), ConfigError> {
    let name = "LUDEX_STORE";
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if url.starts_with("dynamodb://") {
        if !cfg!(feature = "dynamodb") {
            return Err(ConfigError::invalid(
                name,
                url,
                "this build has no DynamoDB store (cargo feature dynamodb)",
            ));
        }
        if has_password_secret {
            return Err(ConfigError::invalid(
                "LUDEX_STORE_PASSWORD_SECRET_ARN",
                "…",
                "a password secret goes with a postgres:// store only",
            ));
        }
        return Ok(());
    }
    if postgres {
        if !cfg!(feature = "postgres") {
            return Err(ConfigError::invalid(
                name,
                &ludex::store::redact(url),
                "this build has no PostgreSQL store (cargo feature postgres)",
            ));
        }
        return Ok(());
    }
    Err(ConfigError::invalid(
        name,
        &ludex::store::redact(url),
        STORE_HINT,
    ))
}

impl ApiSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars: ApiVars = from_env_vars(var)?;
        let keys = match (vars.api_keys, vars.api_keys_parameter) {
            (Some(ring), _) => KeySetting::Inline(ring),
            (None, Some(name)) => KeySetting::Parameter {
                name,
                max_age: Duration::from_secs(vars.api_keys_max_age_seconds),
            },
            (None, None) => {
                return Err(ConfigError::missing(
                    "LUDEX_API_KEYS_PARAMETER",
                    "name the SSM parameter that holds the API key hashes, or put the key file's JSON in LUDEX_API_KEYS",
                ));
            }
        };
        let sessions = match (vars.access.session_key()?, vars.session_secret_parameter) {
            (Some(key), _) => SessionSetting::Inline(key),
            (None, Some(name)) => SessionSetting::Parameter(name),
            (None, None) => SessionSetting::Random,
        };
        Ok(Self {
            keys,
            reads_require_key: vars.access.reads_require_key,
            cors_origins: vars.access.cors_origins,
            sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// A store this build links.
    const STORE: &str = if cfg!(feature = "dynamodb") {
        "dynamodb://ludex-dev-catalog"
    } else {
        "postgres://ludex@db.example/ludex"
    };

    const BASE: [(&str, &str); 2] = [
        ("LUDEX_STORE", STORE),
        ("LUDEX_BUCKET", "s3://ludex-dev-catalog"),
    ];

    #[test]
    fn the_terraform_environment_is_a_valid_config() {
        let config = Config::from_vars(vars(&[
            BASE[0],
            BASE[1],
            ("LUDEX_UPLOAD_PREFIX", "uploads/"),
            ("LUDEX_LOG_FORMAT", "json"),
        ]));
        assert_eq!(
            config.unwrap(),
            Config {
                store: STORE.into(),
                store_password_secret: None,
                bucket: "s3://ludex-dev-catalog".into(),
                upload_prefix: "uploads/".into(),
                reporting: Reporting {
                    log_format: Some(ludex::telemetry::LogFormat::Json),
                    metrics: None,
                },
                retention: Default::default(),
            }
        );
    }

    #[test]
    fn missing_and_malformed_settings_name_the_variable() {
        let message =
            |pairs: &[(&str, &str)]| Config::from_vars(vars(pairs)).unwrap_err().to_string();
        assert_eq!(
            message(&[BASE[1]]),
            "LUDEX_STORE is not set: set it to dynamodb://TABLE or postgres://USER@HOST/DATABASE"
        );
        assert_eq!(
            message(&[BASE[0], ("LUDEX_BUCKET", "")]),
            "LUDEX_BUCKET is not set: set it to s3://BUCKET"
        );
        assert!(
            message(&[BASE[0], ("LUDEX_BUCKET", "my-bucket")])
                .starts_with("LUDEX_BUCKET=\"my-bucket\" is not valid")
        );
        assert!(
            message(&[("LUDEX_STORE", "sqlite://x.db"), BASE[1]])
                .starts_with("LUDEX_STORE=\"sqlite://x.db\" is not valid")
        );
        let prefix = message(&[
            ("LUDEX_STORE", "postgres://ludex:secret@db/ludex"),
            BASE[1],
            ("LUDEX_UPLOAD_PREFIX", "in"),
        ]);
        assert!(
            prefix.starts_with("LUDEX_UPLOAD_PREFIX=\"in\" is not valid: a key prefix"),
            "{prefix}"
        );
        let store = message(&[("LUDEX_STORE", "mysql://ludex:secret@db/ludex"), BASE[1]]);
        assert!(
            store.starts_with("LUDEX_STORE=\"mysql://ludex:***@db/ludex\" is not valid"),
            "never shows a password: {store}"
        );
    }

    #[test]
    fn api_keys_come_inline_or_from_a_parameter_not_both() {
        let key = "ludex_k";
        let json = format!(
            r#"[{{"name":"ci","scope":"write","hash":"blake3:{}","created_at":"x","revoked":false}}]"#,
            blake3_hex(key)
        );
        let settings = ApiSettings::from_vars(vars(&[
            ("LUDEX_API_KEYS", &json),
            ("LUDEX_READS_REQUIRE_KEY", "true"),
            ("LUDEX_CORS_ORIGINS", "https://a.example, https://b.example"),
        ]))
        .unwrap();
        assert!(matches!(&settings.keys, KeySetting::Inline(ring) if ring.check(key).is_some()));
        assert!(settings.reads_require_key);
        assert_eq!(
            settings.cors_origins,
            ["https://a.example", "https://b.example"]
        );

        let settings = ApiSettings::from_vars(vars(&[
            ("LUDEX_API_KEYS_PARAMETER", "/ludex/dev/api-keys"),
            ("LUDEX_READS_REQUIRE_KEY", "false"),
            ("LUDEX_CORS_ORIGINS", ""),
        ]))
        .unwrap();
        assert!(
            matches!(&settings.keys, KeySetting::Parameter { name, max_age }
            if name == "/ludex/dev/api-keys" && *max_age == DEFAULT_KEYS_MAX_AGE)
        );
        assert!(!settings.reads_require_key);
        assert!(settings.cors_origins.is_empty());

        let message =
            |pairs: &[(&str, &str)]| ApiSettings::from_vars(vars(pairs)).unwrap_err().to_string();
        assert!(message(&[]).starts_with("LUDEX_API_KEYS_PARAMETER is not set"));
        assert!(
            message(&[
                ("LUDEX_API_KEYS", &json),
                ("LUDEX_API_KEYS_PARAMETER", "/p")
            ])
            .contains("not both")
        );
        assert!(
            message(&[("LUDEX_API_KEYS", "[{}]")]).starts_with("LUDEX_API_KEYS=\"…\" is not valid")
        );
        assert!(
            message(&[
                ("LUDEX_API_KEYS_PARAMETER", "/p"),
                ("LUDEX_READS_REQUIRE_KEY", "yes please")
            ])
            .starts_with("LUDEX_READS_REQUIRE_KEY=\"yes please\" is not valid")
        );

        let settings = ApiSettings::from_vars(vars(&[
            ("LUDEX_API_KEYS_PARAMETER", "/p"),
            ("LUDEX_API_KEYS_MAX_AGE_SECONDS", "60"),
        ]))
        .unwrap();
        assert!(
            matches!(&settings.keys, KeySetting::Parameter { max_age, .. }
            if *max_age == Duration::from_secs(60))
        );
        for bad in ["0", "-5", "5m"] {
            assert!(
                message(&[
                    ("LUDEX_API_KEYS_PARAMETER", "/p"),
                    ("LUDEX_API_KEYS_MAX_AGE_SECONDS", bad)
                ])
                .starts_with("LUDEX_API_KEYS_MAX_AGE_SECONDS="),
                "{bad}"
            );
        }
        let inline_max_age = message(&[
            ("LUDEX_API_KEYS", &json),
            ("LUDEX_API_KEYS_MAX_AGE_SECONDS", "60"),
        ]);
        assert!(
            inline_max_age.contains("LUDEX_API_KEYS_MAX_AGE_SECONDS")
                && inline_max_age.contains("not both"),
            "{inline_max_age}"
        );
    }

    #[test]
    fn the_session_secret_comes_inline_or_from_a_parameter_not_both() {
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![("LUDEX_API_KEYS_PARAMETER", "/p")];
            all.extend_from_slice(pairs);
            ApiSettings::from_vars(vars(&all))
        };
        let secret = "a secret of at least thirty-two bytes";
        assert!(matches!(
            with(&[("LUDEX_SESSION_SECRET_PARAMETER", "/ludex/dev/session-secret")])
                .unwrap()
                .sessions,
            SessionSetting::Parameter(name) if name == "/ludex/dev/session-secret"
        ));
        assert!(matches!(
            with(&[("LUDEX_SESSION_SECRET", secret)]).unwrap().sessions,
            SessionSetting::Inline(_)
        ));
        assert!(matches!(
            with(&[]).unwrap().sessions,
            SessionSetting::Random
        ));
        let both = with(&[
            ("LUDEX_SESSION_SECRET", secret),
            ("LUDEX_SESSION_SECRET_PARAMETER", "/p2"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            both.contains("not both") && !both.contains(secret),
            "{both}"
        );
        let short = with(&[("LUDEX_SESSION_SECRET", "short")])
            .unwrap_err()
            .to_string();
        assert!(
            short.starts_with("LUDEX_SESSION_SECRET=\"…\" is not valid")
                && short.contains("32 bytes"),
            "{short}"
        );
    }

    /// The variables the functions declare.
    fn declared() -> Vec<String> {
        use clap::CommandFactory;
        [FunctionVars::command(), ApiVars::command()]
            .iter()
            .flat_map(|command| command.get_arguments())
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_variable_is_declared_with_help_documented_and_the_one_terraform_sets() {
        use clap::CommandFactory;
        for command in [FunctionVars::command(), ApiVars::command()] {
            command.clone().debug_assert();
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                assert!(
                    builtin || arg.get_env().is_some(),
                    "{} has no variable",
                    arg.get_id()
                );
                assert!(
                    builtin || arg.get_help().is_some(),
                    "{} has no help",
                    arg.get_id()
                );
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let deploy = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
        for name in declared() {
            assert!(
                deploy.contains(&format!("| `{name}` |")),
                "docs/deploy.md does not list {name}"
            );
        }
        // Read by the library for every binary, not by these definitions.
        let process_wide = ["LUDEX_S3_ENDPOINT"];
        let mut set = 0;
        for module in ["ingest_function", "api_function"] {
            let main = std::fs::read_to_string(
                root.join(format!("infra/terraform/modules/{module}/main.tf")),
            )
            .unwrap();
            for line in main.lines().map(str::trim) {
                let Some((name, _)) = line.split_once('=') else {
                    continue;
                };
                let name = name.trim();
                if name.starts_with("LUDEX_") {
                    set += 1;
                    assert!(
                        declared().iter().any(|d| d == name) || process_wide.contains(&name),
                        "{module} sets {name}, which the functions do not read"
                    );
                }
            }
        }
        assert!(set >= 10, "found {set} variables in the Terraform modules");
    }

    fn blake3_hex(key: &str) -> String {
        blake3::hash(key.as_bytes()).to_hex().to_string()
    }
}
