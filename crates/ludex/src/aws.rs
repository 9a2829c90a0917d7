//! Shared AWS SDK configuration: one HTTP client with rustls over ring (the SDK's default TLS
//! stack builds aws-lc, which needs cmake), credentials and region from the standard chain.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Loads the SDK configuration from the environment: `AWS_REGION`, the credential chain, and
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` to point at local servers. `endpoint`,
/// when given, overrides the endpoint for every service.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
