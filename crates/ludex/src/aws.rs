//! Shared AWS SDK configuration: one HTTP client with rustls over ring (the SDK's default TLS
//! stack builds aws-lc, which needs cmake), credentials and region from the standard chain.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::OnceLock;

/// Loads the SDK configuration from the environment: `AWS_REGION`, the credential chain, and
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` to point at local servers. `endpoint`,
/// when given, overrides the endpoint for every service. Makes no request and reads no
/// certificates: the HTTP client is built by the first request.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(FirstUse::default());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The HTTPS client, built when a request first needs it. Building it loads the system's
/// root certificates (hundreds of files): a Lambda function's cold start should not wait for
/// that when its first request may not even call AWS (the API's `/healthz`), and a function
/// that does call AWS pays it once, on its first request instead of its init.
#[derive(Debug, Default)]
struct FirstUse(OnceLock<SharedHttpClient>);

impl HttpClient for FirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0
            .get_or_init(|| {
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build_https()
            })
            .http_connector(settings, components)
    }
}
