//! The AWS services the functions call besides the store and the bucket: SSM for the API key
//! hashes and, with PostgreSQL, Secrets Manager for the store's password. Clients are built from
//! `ludex::aws::sdk_config`: ring for TLS (no aws-lc), `AWS_ENDPOINT_URL` honoured.

use ludex::keys::KeySource;
use tokio::sync::OnceCell;

/// A SecureString SSM parameter: the API key hashes (the key file's JSON) or the session
/// secret. The client is built when the parameter is first fetched, not at init.
#[derive(Debug)]
pub struct SsmParameter {
    name: String,
    client: OnceCell<aws_sdk_ssm::Client>,
}

impl SsmParameter {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            client: OnceCell::new(),
        }
    }
}

#[async_trait::async_trait]
impl KeySource for SsmParameter {
    async fn fetch(&self) -> Result<String, String> {
        let client = self
            .client
            .get_or_init(|| async { aws_sdk_ssm::Client::new(&ludex::aws::sdk_config(None).await) })
            .await;
        let output = client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| aws_sdk_ssm::error::DisplayErrorContext(e).to_string())?;
        output
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(|| "the parameter has no value".to_owned())
    }

    fn describe(&self) -> String {
        format!("the SSM parameter {}", self.name)
    }
}

/// The password in an RDS-managed secret (`{"username": …, "password": …}`).
#[cfg(feature = "postgres")]
pub async fn store_password(secret: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    #[derive(serde::Deserialize)]
    struct RdsSecret {
        password: String,
    }
    let client = aws_sdk_secretsmanager::Client::new(&ludex::aws::sdk_config(None).await);
    let output = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))
        .with_context(|| format!("cannot read the store password secret {secret}"))?;
    let text = output
        .secret_string()
        .with_context(|| format!("the secret {secret} has no string value"))?;
    let parsed: RdsSecret = serde_json::from_str(text)
        .map_err(|_| anyhow::anyhow!("the secret {secret} is not JSON with a password field"))?;
    Ok(parsed.password)
}

/// The store password as an RDS-managed secret holds it now: read at cold start, and again
/// whenever PostgreSQL refuses the one in use (RDS rotates it every 7 days).
#[cfg(feature = "postgres")]
pub struct SecretPassword {
    pub secret: String,
}

#[cfg(feature = "postgres")]
#[async_trait::async_trait]
impl ludex::store::postgres::PasswordSource for SecretPassword {
    async fn password(&self) -> Result<String, String> {
        store_password(&self.secret)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}
