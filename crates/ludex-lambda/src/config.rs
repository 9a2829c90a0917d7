//! The functions' settings: environment variables only (Terraform sets them), read once at
//! init and checked before anything is opened, so a misconfigured function fails its init
//! with a message that names the variable.

use ludex::api::session::SessionKey;
use ludex::keys::KeyRing;
use std::time::Duration;

/// A setting that is missing or not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

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

/// Reads variables through `var`; empty values count as unset (Terraform writes `""` for an
/// empty list).
struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing { name, hint })
    }
}

/// A setting given inline in one variable or as the name of an SSM parameter in another.
enum Given {
    Inline(String),
    Parameter(String),
    Neither,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// `inline` or `parameter`, refusing both (neither value is echoed: they may be secret).
    fn inline_or_parameter(
        &self,
        inline: &'static str,
        parameter: &'static str,
    ) -> Result<Given, ConfigError> {
        match (self.get(inline), self.get(parameter)) {
            (Some(_), Some(_)) => Err(invalid(
                parameter,
                "…",
                format!("set either {inline} or {parameter}, not both"),
            )),
            (Some(value), None) => Ok(Given::Inline(value)),
            (None, Some(name)) => Ok(Given::Parameter(name)),
            (None, None) => Ok(Given::Neither),
        }
    }
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.into(),
    }
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
        let vars = Vars(var);
        let store = vars.required("LUDEX_STORE", STORE_HINT)?;
        let store_password_secret = vars.get("LUDEX_STORE_PASSWORD_SECRET_ARN");
        check_store(&store, store_password_secret.is_some())?;
        let bucket = vars.required("LUDEX_BUCKET", "set it to s3://BUCKET")?;
        match bucket.strip_prefix("s3://") {
            Some(name) if !name.is_empty() && !name.trim_end_matches('/').contains('/') => {}
            _ => return Err(invalid("LUDEX_BUCKET", &bucket, "use s3://BUCKET")),
        }
        let upload_prefix = vars
            .get("LUDEX_UPLOAD_PREFIX")
            .unwrap_or_else(|| "uploads/".to_owned());
        if !upload_prefix.ends_with('/') || upload_prefix.starts_with('/') {
            return Err(invalid(
                "LUDEX_UPLOAD_PREFIX",
                &upload_prefix,
                "a key prefix such as uploads/ (ending with /, not starting with one)",
            ));
        }
        Ok(Self {
            store,
            store_password_secret,
            bucket,
            upload_prefix,
        })
    }
}

/// The store URL names a store this build links.
fn check_store(url: &str, has_password_secret: bool) -> Result<(), ConfigError> {
    let name = "LUDEX_STORE";
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if url.starts_with("dynamodb://") {
        if !cfg!(feature = "dynamodb") {
            return Err(invalid(
                name,
                url,
                "this build has no DynamoDB store (cargo feature dynamodb)",
            ));
        }
        if has_password_secret {
            return Err(invalid(
                "LUDEX_STORE_PASSWORD_SECRET_ARN",
                "…",
                "a password secret goes with a postgres:// store only",
            ));
        }
        return Ok(());
    }
    if postgres {
        if !cfg!(feature = "postgres") {
            return Err(invalid(
                name,
                &ludex::store::redact(url),
                "this build has no PostgreSQL store (cargo feature postgres)",
            ));
        }
        return Ok(());
    }
    Err(invalid(name, &ludex::store::redact(url), STORE_HINT))
}

impl ApiSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(var);
        let keys = match vars.inline_or_parameter("LUDEX_API_KEYS", "LUDEX_API_KEYS_PARAMETER")? {
            // The value holds hashes only, but it is not echoed: it may be long.
            Given::Inline(_) if vars.get("LUDEX_API_KEYS_MAX_AGE_SECONDS").is_some() => {
                return Err(invalid(
                    "LUDEX_API_KEYS_MAX_AGE_SECONDS",
                    "…",
                    "it applies to keys fetched from LUDEX_API_KEYS_PARAMETER, and LUDEX_API_KEYS is set instead",
                ));
            }
            Given::Inline(json) => KeySetting::Inline(
                KeyRing::from_json(&json)
                    .map_err(|reason| invalid("LUDEX_API_KEYS", "…", reason))?,
            ),
            Given::Parameter(name) => KeySetting::Parameter {
                name,
                max_age: match vars.get("LUDEX_API_KEYS_MAX_AGE_SECONDS") {
                    None => DEFAULT_KEYS_MAX_AGE,
                    Some(value) => match value.trim().parse::<u64>() {
                        Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                        _ => {
                            return Err(invalid(
                                "LUDEX_API_KEYS_MAX_AGE_SECONDS",
                                &value,
                                "use a whole number of seconds, at least 1",
                            ));
                        }
                    },
                },
            },
            Given::Neither => {
                return Err(ConfigError::Missing {
                    name: "LUDEX_API_KEYS_PARAMETER",
                    hint: "name the SSM parameter that holds the API key hashes, or put the key file's JSON in LUDEX_API_KEYS",
                });
            }
        };
        let reads_require_key = match vars.get("LUDEX_READS_REQUIRE_KEY") {
            None => false,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(invalid(
                        "LUDEX_READS_REQUIRE_KEY",
                        &value,
                        "use true or false",
                    ));
                }
            },
        };
        let cors_origins = vars
            .get("LUDEX_CORS_ORIGINS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let sessions = match vars
            .inline_or_parameter("LUDEX_SESSION_SECRET", "LUDEX_SESSION_SECRET_PARAMETER")?
        {
            // A secret is never echoed.
            Given::Inline(secret) => SessionSetting::Inline(
                SessionKey::from_secret(&secret)
                    .map_err(|reason| invalid("LUDEX_SESSION_SECRET", "…", reason))?,
            ),
            Given::Parameter(name) => SessionSetting::Parameter(name),
            Given::Neither => SessionSetting::Random,
        };
        Ok(Self {
            keys,
            reads_require_key,
            cors_origins,
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
        assert!(
            message(&[
                ("LUDEX_STORE", "postgres://ludex:secret@db/ludex"),
                BASE[1],
                ("LUDEX_UPLOAD_PREFIX", "in")
            ])
            .contains(if cfg!(feature = "postgres") {
                "LUDEX_UPLOAD_PREFIX"
            } else {
                "postgres://ludex:***@db/ludex"
            }),
            "and never shows a password"
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
            .contains("use true or false")
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
                .contains("at least 1"),
                "{bad}"
            );
        }
        assert!(
            message(&[
                ("LUDEX_API_KEYS", &json),
                ("LUDEX_API_KEYS_MAX_AGE_SECONDS", "60")
            ])
            .contains("applies to keys fetched from LUDEX_API_KEYS_PARAMETER")
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

    fn blake3_hex(key: &str) -> String {
        blake3::hash(key.as_bytes()).to_hex().to_string()
    }
}
