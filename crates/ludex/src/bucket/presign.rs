//! Presigned S3 uploads: a URL that lets whoever holds it `PUT` one object of one size and
//! one content type under one key until it expires, signed with AWS Signature Version 4 in
//! the query string (what `aws s3 presign` and the SDKs' presigners produce). The size and the
//! content type are signed headers, so S3 refuses a body of another length or type with
//! `403 SignatureDoesNotMatch`; after `X-Amz-Expires` it answers `403 Request has expired`.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use std::time::{Duration, SystemTime};

/// What a client sends to upload through a presigned URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedPut {
    pub url: String,
    /// The headers the signature covers (besides `Host`): send them exactly.
    pub headers: Vec<(String, String)>,
}

/// Where an S3 bucket's objects are addressed.
#[derive(Clone, Debug)]
pub struct S3Address {
    pub bucket: String,
    pub region: String,
    /// A server other than AWS (path-style URLs); `None` for AWS (virtual-hosted URLs).
    pub endpoint: Option<String>,
}

impl S3Address {
    /// The object's URL, without a query.
    pub fn object_url(&self, key: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{}/{}/{key}", endpoint.trim_end_matches('/'), self.bucket),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{key}",
                self.bucket, self.region
            ),
        }
    }
}

/// The fixed parts of one presigned `PUT`.
pub struct PutRequest<'a> {
    pub key: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub expires_in: Duration,
    pub now: SystemTime,
}

/// Signs a `PUT` of `request.key` at `address` with `credentials`.
pub fn presign_put(
    address: &S3Address,
    credentials: Credentials,
    request: &PutRequest<'_>,
) -> Result<PresignedPut, String> {
    let size = request.size.to_string();
    let headers = [
        ("content-length", size.as_str()),
        ("content-type", request.content_type),
    ];
    let url = presign(
        "PUT",
        &address.object_url(request.key),
        &headers,
        credentials,
        &address.region,
        request.expires_in,
        request.now,
    )?;
    Ok(PresignedPut {
        url,
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    })
}

/// `url` with an S3 query-string signature (SigV4) of `method` and `headers` (besides `Host`),
/// valid for `expires_in` from `now`.
fn presign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    credentials: Credentials,
    region: &str,
    expires_in: Duration,
    now: SystemTime,
) -> Result<String, String> {
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires_in);
    // S3 signs the path as sent: neither normalised nor encoded twice.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut signed = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .map_err(|e| e.to_string())?;
    instructions.apply_to_request_http1x(&mut signed);
    Ok(signed.uri().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        )
    }

    fn at_example_time() -> SystemTime {
        // 2013-05-24T00:00:00Z, the time of AWS's published examples.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    #[test]
    fn a_presigned_put_binds_key_size_type_and_expiry() {
        let address = S3Address {
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            endpoint: None,
        };
        let signed = presign_put(
            &address,
            example_credentials(),
            &PutRequest {
                key: "uploads/games.ndjson",
                size: 1234,
                content_type: "application/x-ndjson",
                expires_in: Duration::from_secs(900),
                now: at_example_time(),
            },
        )
        .unwrap();
        let url = url::Url::parse(&signed.url).unwrap();
        assert_eq!(
            url.host_str(),
            Some("examplebucket.s3.us-east-1.amazonaws.com")
        );
        assert_eq!(url.path(), "/uploads/games.ndjson");
        let query: std::collections::HashMap<_, _> = url.query_pairs().collect();
        assert_eq!(query["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            query["X-Amz-Credential"],
            "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        );
        assert_eq!(query["X-Amz-Date"], "20130524T000000Z");
        assert_eq!(query["X-Amz-Expires"], "900");
        assert_eq!(
            query["X-Amz-SignedHeaders"],
            "content-length;content-type;host"
        );
        assert_eq!(query["X-Amz-Signature"].len(), 64);
        assert_eq!(
            signed.headers,
            [
                ("content-length".to_owned(), "1234".to_owned()),
                ("content-type".to_owned(), "application/x-ndjson".to_owned())
            ]
        );
    }

    /// The signing reproduces AWS's worked example of a presigned URL (Amazon S3 API
    /// reference, "Authenticating Requests: Using Query Parameters"), so S3 computes the same
    /// signature; a PUT differs only in its method and its two extra signed headers.
    #[test]
    fn the_signing_reproduces_aws_s_published_presigned_url() {
        let url = presign(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[],
            example_credentials(),
            "us-east-1",
            Duration::from_secs(86_400),
            at_example_time(),
        )
        .unwrap();
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }
}
