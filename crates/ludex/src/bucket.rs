//! The bucket port: uploads, rejects reports and covers live in an object store (a local
//! folder by default). Built on the `object_store` crate, which also speaks S3.

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpService, ReqwestConnector,
};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("{0:?} is not a valid object key")]
    InvalidKey(String),
    #[error("no object at {0}")]
    NotFound(String),
    #[error("the bucket URL {0:?} is not supported; use a folder path or s3://BUCKET")]
    Unsupported(String),
    #[error("the store gave no ETag for {0}")]
    MissingEtag(String),
    #[error("bucket failure: {0}")]
    Store(#[from] object_store::Error),
    #[error("bucket failure: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    root: Option<PathBuf>,
    /// S3's ETags are derived from the content, so they serve as fingerprints; local files
    /// and memory objects are hashed instead.
    etag_fingerprints: bool,
}

/// An object's identity for the ledger: a fingerprint of its content (the S3 ETag, or a
/// BLAKE3 hash elsewhere), so touching a file without changing it is not a new upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub fingerprint: String,
}

fn path(key: &str) -> Result<ObjectPath, BucketError> {
    ObjectPath::parse(key).map_err(|_| BucketError::InvalidKey(key.to_owned()))
}

/// An ETag without its quotes, as a fingerprint.
fn etag(key: &str, etag: Option<String>) -> Result<String, BucketError> {
    etag.map(|t| t.trim_matches('"').to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| BucketError::MissingEtag(key.to_owned()))
}

fn not_found(key: &str, e: object_store::Error) -> BucketError {
    match e {
        object_store::Error::NotFound { .. } => BucketError::NotFound(key.to_owned()),
        other => BucketError::Store(other),
    }
}

impl Bucket {
    /// A folder on the local disk, created if missing.
    pub fn local(root: &Path) -> Result<Self, BucketError> {
        std::fs::create_dir_all(root)?;
        let store = LocalFileSystem::new_with_prefix(root)?;
        Ok(Self {
            store: Arc::new(store),
            root: Some(root.to_owned()),
            etag_fingerprints: false,
        })
    }

    /// An in-memory bucket, for tests.
    pub fn memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            root: None,
            etag_fingerprints: false,
        }
    }

    /// An S3 bucket. Credentials and region come from the usual `AWS_*` environment (or the
    /// Lambda role); `endpoint` points elsewhere than AWS, such as a local S3 server.
    pub fn s3(name: &str, endpoint: Option<&str>) -> Result<Self, BucketError> {
        // The HTTP client's TLS uses ring, installed once per process (a second install is a
        // no-op error).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(name)
            .with_http_connector(FirstUse);
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        Ok(Self {
            store: Arc::new(builder.build()?),
            root: None,
            etag_fingerprints: true,
        })
    }

    /// Opens the bucket a URL names: `s3://BUCKET` (with `LUDEX_S3_ENDPOINT` or
    /// `AWS_ENDPOINT_URL` for a server other than AWS), or a folder path (optionally
    /// `file://PATH`).
    pub fn open(url: &str) -> Result<Self, BucketError> {
        if let Some(name) = url.strip_prefix("s3://") {
            let name = name.trim_end_matches('/');
            if name.is_empty() || name.contains('/') {
                return Err(BucketError::Unsupported(url.to_owned()));
            }
            let endpoint = std::env::var("LUDEX_S3_ENDPOINT")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok();
            return Self::s3(name, endpoint.as_deref());
        }
        if url.contains("://") && !url.starts_with("file://") {
            return Err(BucketError::Unsupported(url.to_owned()));
        }
        Self::local(Path::new(url.trim_start_matches("file://")))
    }

    /// Whether fingerprints are the store's ETags (then a HEAD gives them without a read).
    pub fn fingerprints_are_etags(&self) -> bool {
        self.etag_fingerprints
    }

    /// The folder behind a local bucket.
    pub fn local_root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<ObjectInfo, BucketError> {
        let size = bytes.len() as u64;
        let hash = (!self.etag_fingerprints).then(|| blake3::hash(&bytes).to_hex().to_string());
        let stored = self
            .store
            .put(&path(key)?, PutPayload::from_bytes(bytes))
            .await?;
        let fingerprint = match hash {
            Some(hash) => hash,
            None => etag(key, stored.e_tag)?,
        };
        Ok(ObjectInfo {
            key: key.to_owned(),
            size,
            fingerprint,
        })
    }

    /// Size and content fingerprint of an object: its ETag from a HEAD on S3, a BLAKE3 hash of
    /// its bytes elsewhere.
    pub async fn info(&self, key: &str) -> Result<ObjectInfo, BucketError> {
        if self.etag_fingerprints {
            let meta = self
                .store
                .head(&path(key)?)
                .await
                .map_err(|e| not_found(key, e))?;
            return Ok(ObjectInfo {
                key: key.to_owned(),
                size: meta.size,
                fingerprint: etag(key, meta.e_tag)?,
            });
        }
        let result = self
            .store
            .get(&path(key)?)
            .await
            .map_err(|e| not_found(key, e))?;
        let size = result.meta.size;
        let hash = match result.payload {
            GetResultPayload::File(file, _) => tokio::task::spawn_blocking(move || {
                let mut hasher = blake3::Hasher::new();
                hasher.update_reader(file)?;
                Ok::<_, std::io::Error>(hasher.finalize())
            })
            .await
            .map_err(std::io::Error::other)??,
            GetResultPayload::Stream(mut stream) => {
                let mut hasher = blake3::Hasher::new();
                while let Some(chunk) = stream.next().await {
                    hasher.update(&chunk?);
                }
                hasher.finalize()
            }
        };
        Ok(ObjectInfo {
            key: key.to_owned(),
            size,
            fingerprint: hash.to_hex().to_string(),
        })
    }

    /// A blocking reader over an object, for the parser thread. Call from a blocking task.
    pub async fn reader(&self, key: &str) -> Result<Box<dyn Read + Send>, BucketError> {
        let result = self
            .store
            .get(&path(key)?)
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(match result.payload {
            GetResultPayload::File(file, _) => Box::new(file),
            GetResultPayload::Stream(stream) => {
                let stream = stream.map(|chunk| chunk.map_err(std::io::Error::other));
                let reader = tokio_util::io::StreamReader::new(stream);
                Box::new(tokio_util::io::SyncIoBridge::new(reader))
            }
        })
    }

    /// The whole object, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, BucketError> {
        match self.store.get(&path(key)?).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The first `max` lines of a text object, read as a stream.
    pub async fn read_lines(&self, key: &str, max: usize) -> Result<Vec<String>, BucketError> {
        use tokio::io::AsyncBufReadExt;
        let result = self
            .store
            .get(&path(key)?)
            .await
            .map_err(|e| not_found(key, e))?;
        let stream = result
            .into_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other));
        let mut lines =
            tokio::io::BufReader::new(tokio_util::io::StreamReader::new(stream)).lines();
        let mut out = Vec::new();
        while out.len() < max {
            match lines.next_line().await? {
                Some(line) => out.push(line),
                None => break,
            }
        }
        Ok(out)
    }

    /// Deletes an object; deleting what is not there is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        match self.store.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys under a prefix, in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BucketError> {
        let prefix = path(prefix.trim_end_matches('/'))?;
        let mut keys = Vec::new();
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            keys.push(meta?.location.to_string());
        }
        Ok(keys)
    }

    /// A streaming writer that makes the object appear whole, or not at all, on `shutdown`.
    pub fn writer(&self, key: &str) -> Result<object_store::buffered::BufWriter, BucketError> {
        Ok(object_store::buffered::BufWriter::new(
            Arc::clone(&self.store),
            path(key)?,
        ))
    }
}

/// Connects object_store's reqwest clients when they first send a request. Building one loads
/// the system's root certificates (hundreds of files), which a Lambda function's cold start
/// should not wait for: its first request may not touch the bucket at all.
#[derive(Debug)]
struct FirstUse;

impl HttpConnector for FirstUse {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(FirstUseClient {
            options: options.clone(),
            client: OnceLock::new(),
        }))
    }
}

#[derive(Debug)]
struct FirstUseClient {
    options: ClientOptions,
    client: OnceLock<HttpClient>,
}

#[async_trait::async_trait]
impl HttpService for FirstUseClient {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let client = match self.client.get() {
            Some(client) => client,
            None => {
                let client = ReqwestConnector::default()
                    .connect(&self.options)
                    .map_err(|e| HttpError::new(HttpErrorKind::Connect, e))?;
                self.client.get_or_init(|| client)
            }
        };
        client.execute(request).await
    }
}
