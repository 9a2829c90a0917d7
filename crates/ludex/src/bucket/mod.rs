//! The bucket port: uploads, rejects reports and covers live in an object store: a local
//! folder by default (`folder`: never follows a link), S3 or memory through the
//! `object_store` crate.

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpService, ReqwestConnector,
};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::io::AsyncWriteExt;

mod folder;
pub mod presign;

use folder::{Folder, FolderError, TempFile};
pub use presign::PresignedPut;

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("{0:?} is not a valid object key")]
    InvalidKey(String),
    #[error("no object at {0}")]
    NotFound(String),
    /// A local-folder entry that the bucket refuses to follow or read (a link, a pipe).
    #[error("{0}")]
    Refused(String),
    #[error("the bucket URL {0:?} is not supported; use a folder path or s3://BUCKET")]
    Unsupported(String),
    #[error("the store gave no ETag for {0}")]
    MissingEtag(String),
    #[error("bucket failure: {0}")]
    Store(#[from] object_store::Error),
    #[error("bucket failure: {0}")]
    Io(#[from] std::io::Error),
}

impl BucketError {
    /// Whether trying again may succeed. A missing object may still arrive (an S3 event can
    /// come before its object is readable, and the Lambda retries it); an invalid key or an
    /// entry the folder refuses (a link, a pipe) never will.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            Self::InvalidKey(_) | Self::Refused(_) | Self::Unsupported(_)
        )
    }
}

impl From<FolderError> for BucketError {
    fn from(e: FolderError) -> Self {
        match e {
            FolderError::NotFound(key) => Self::NotFound(key),
            e @ (FolderError::Symlink(_) | FolderError::NotAFile(_)) => {
                Self::Refused(e.to_string())
            }
            FolderError::Io { key, source } => Self::Io(std::io::Error::new(
                source.kind(),
                format!("{key}: {source}"),
            )),
        }
    }
}

#[derive(Clone)]
enum Backend {
    /// A local folder, walked without following links (see `folder`).
    Folder(Arc<Folder>),
    /// S3 or memory through object_store. S3's ETags are derived from the content, so they
    /// serve as fingerprints; memory objects are hashed instead.
    Store {
        store: Arc<dyn ObjectStore>,
        etag_fingerprints: bool,
        /// What presigned uploads need (S3 only).
        presigner: Option<Arc<S3Presigner>>,
    },
}

/// The address and credentials of an S3 bucket, for presigned URLs.
struct S3Presigner {
    address: presign::S3Address,
    credentials: object_store::aws::AwsCredentialProvider,
}

/// How long S3 requests are retried: the object store client's own default, three minutes,
/// well inside the ingest Lambda's timeout.
pub const RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

#[derive(Clone)]
pub struct Bucket {
    backend: Backend,
    root: Option<PathBuf>,
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
    ObjectPath::parse(key)
        .ok()
        .filter(|p| p.as_ref() == key && !key.is_empty())
        .ok_or_else(|| BucketError::InvalidKey(key.to_owned()))
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

/// Runs a folder operation on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BucketError> + Send + 'static,
) -> Result<T, BucketError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

fn hash_file(file: std::fs::File) -> Result<(u64, String), BucketError> {
    let mut hasher = blake3::Hasher::new();
    let size = std::io::copy(&mut &file, &mut hasher)?;
    Ok((size, hasher.finalize().to_hex().to_string()))
}

impl Bucket {
    /// A folder on the local disk, created if missing.
    pub fn local(root: &Path) -> Result<Self, BucketError> {
        Ok(Self {
            backend: Backend::Folder(Arc::new(Folder::open(root)?)),
            root: Some(root.to_owned()),
        })
    }

    /// An in-memory bucket, for tests.
    pub fn memory() -> Self {
        Self {
            backend: Backend::Store {
                store: Arc::new(InMemory::new()),
                etag_fingerprints: false,
                presigner: None,
            },
            root: None,
        }
    }

    /// An S3 bucket. Credentials and region come from the usual `AWS_*` environment (or the
    /// Lambda role); `endpoint` points elsewhere than AWS, such as a local S3 server.
    pub fn s3(name: &str, endpoint: Option<&str>) -> Result<Self, BucketError> {
        Self::s3_retrying_for(name, endpoint, RETRY_TIMEOUT)
    }

    /// An S3 bucket whose requests are retried for at most `timeout`. The object store client
    /// retries requests answered 5xx or cut off, with backoff, and resumes a read whose
    /// connection broke in the middle of the body where it broke (a ranged GET on the same
    /// ETag); after `timeout` the error stands, and an ingest reports it as retryable.
    pub fn s3_retrying_for(
        name: &str,
        endpoint: Option<&str>,
        timeout: std::time::Duration,
    ) -> Result<Self, BucketError> {
        // The HTTP client's TLS uses ring, installed once per process (a second install is a
        // no-op error).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(name)
            .with_http_connector(FirstUse)
            // ludex deletes one key at a time: a plain `DELETE /key`, authorised against that
            // key like every other object call, instead of a one-key `POST /?delete`.
            .with_disable_bulk_delete(true)
            .with_retry(object_store::RetryConfig {
                retry_timeout: timeout,
                ..object_store::RetryConfig::default()
            });
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let region = builder
            .get_config_value(&object_store::aws::AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let store = builder.build()?;
        let presigner = S3Presigner {
            address: presign::S3Address {
                bucket: name.to_owned(),
                region,
                endpoint: endpoint.map(str::to_owned),
            },
            credentials: Arc::clone(store.credentials()),
        };
        Ok(Self {
            backend: Backend::Store {
                store: Arc::new(store),
                etag_fingerprints: true,
                presigner: Some(Arc::new(presigner)),
            },
            root: None,
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
        matches!(
            self.backend,
            Backend::Store {
                etag_fingerprints: true,
                ..
            }
        )
    }

    /// A URL that lets its holder `PUT` one object of `size` bytes and `content_type` at `key`
    /// until `expires_in` has passed, signed by the bucket's own credentials: `Some` for S3,
    /// `None` for a bucket that cannot sign (a folder: ludex takes such uploads itself).
    pub async fn presign_put(
        &self,
        key: &str,
        size: u64,
        content_type: &str,
        expires_in: std::time::Duration,
    ) -> Result<Option<PresignedPut>, BucketError> {
        let Backend::Store {
            presigner: Some(presigner),
            ..
        } = &self.backend
        else {
            return Ok(None);
        };
        path(key)?;
        let credential = presigner.credentials.get_credential().await?;
        let credentials = aws_credential_types::Credentials::new(
            &credential.key_id,
            &credential.secret_key,
            credential.token.clone(),
            None,
            "object_store",
        );
        let request = presign::PutRequest {
            key,
            size,
            content_type,
            expires_in,
            now: std::time::SystemTime::now(),
        };
        presign::presign_put(&presigner.address, credentials, &request)
            .map(Some)
            .map_err(|e| BucketError::Io(std::io::Error::other(format!("presigning {key}: {e}"))))
    }

    /// The folder behind a local bucket.
    pub fn local_root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<ObjectInfo, BucketError> {
        let location = path(key)?;
        let size = bytes.len() as u64;
        let fingerprint = match &self.backend {
            Backend::Folder(folder) => {
                let fingerprint = blake3::hash(&bytes).to_hex().to_string();
                let (folder, owned) = (Arc::clone(folder), key.to_owned());
                blocking(move || {
                    let mut temp = folder.create_temp(&owned)?;
                    temp.file.write_all(&bytes)?;
                    Ok(temp.commit()?)
                })
                .await?;
                fingerprint
            }
            Backend::Store {
                store,
                etag_fingerprints,
                ..
            } => {
                let hash = (!etag_fingerprints).then(|| blake3::hash(&bytes).to_hex().to_string());
                let stored = store.put(&location, PutPayload::from_bytes(bytes)).await?;
                match hash {
                    Some(hash) => hash,
                    None => etag(key, stored.e_tag)?,
                }
            }
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
        let location = path(key)?;
        let (size, fingerprint) = match &self.backend {
            Backend::Folder(folder) => {
                let (folder, owned) = (Arc::clone(folder), key.to_owned());
                blocking(move || hash_file(folder.open_file(&owned)?)).await?
            }
            Backend::Store {
                store,
                etag_fingerprints: true,
                ..
            } => {
                let meta = store.head(&location).await.map_err(|e| not_found(key, e))?;
                (meta.size, etag(key, meta.e_tag)?)
            }
            Backend::Store { store, .. } => {
                let result = store.get(&location).await.map_err(|e| not_found(key, e))?;
                let size = result.meta.size;
                let mut stream = result.into_stream();
                let mut hasher = blake3::Hasher::new();
                while let Some(chunk) = stream.next().await {
                    hasher.update(&chunk?);
                }
                (size, hasher.finalize().to_hex().to_string())
            }
        };
        Ok(ObjectInfo {
            key: key.to_owned(),
            size,
            fingerprint,
        })
    }

    /// A blocking reader over an object, for the parser thread. Call from a blocking task.
    pub async fn reader(&self, key: &str) -> Result<Box<dyn Read + Send>, BucketError> {
        match &self.backend {
            // A local file is read as it is; a remote object through its stream.
            Backend::Folder(folder) => {
                path(key)?;
                Ok(Box::new(folder.open_file(key)?))
            }
            Backend::Store { .. } => Ok(Box::new(tokio_util::io::SyncIoBridge::new(
                self.async_reader(key).await?,
            ))),
        }
    }

    /// An asynchronous reader over an object.
    async fn async_reader(
        &self,
        key: &str,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, BucketError> {
        let location = path(key)?;
        match &self.backend {
            Backend::Folder(folder) => {
                Ok(Box::new(tokio::fs::File::from_std(folder.open_file(key)?)))
            }
            Backend::Store { store, .. } => {
                let result = store.get(&location).await.map_err(|e| not_found(key, e))?;
                let stream = result
                    .into_stream()
                    .map(|chunk| chunk.map_err(std::io::Error::other));
                Ok(Box::new(tokio_util::io::StreamReader::new(stream)))
            }
        }
    }

    /// The whole object, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, BucketError> {
        self.get_up_to(key, u64::MAX).await
    }

    /// The object's first `limit` bytes and one more if it has them (so a caller can tell an
    /// object over its limit without holding more of it), or `None` if there is none.
    pub async fn get_up_to(&self, key: &str, limit: u64) -> Result<Option<Bytes>, BucketError> {
        use tokio::io::AsyncReadExt;
        let reader = match self.async_reader(key).await {
            Ok(reader) => reader,
            Err(BucketError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .await?;
        Ok(Some(bytes.into()))
    }

    /// The first `max` lines of a text object, read as a stream.
    pub async fn read_lines(&self, key: &str, max: usize) -> Result<Vec<String>, BucketError> {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(self.async_reader(key).await?).lines();
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
        let location = path(key)?;
        match &self.backend {
            Backend::Folder(folder) => Ok(folder.remove(key)?),
            Backend::Store { store, .. } => match store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Keys under a prefix, in no particular order. In a local folder, links and special
    /// files are skipped with a warning.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BucketError> {
        let prefix = path(prefix.trim_end_matches('/'))?;
        match &self.backend {
            Backend::Folder(folder) => {
                let folder = Arc::clone(folder);
                blocking(move || Ok(folder.list(prefix.as_ref())?)).await
            }
            Backend::Store { store, .. } => {
                let mut keys = Vec::new();
                let mut listing = store.list(Some(&prefix));
                while let Some(meta) = listing.next().await {
                    keys.push(meta?.location.to_string());
                }
                Ok(keys)
            }
        }
    }

    /// A streaming writer that makes the object appear whole, or not at all, on `shutdown`.
    pub async fn writer(&self, key: &str) -> Result<BucketWriter, BucketError> {
        let location = path(key)?;
        Ok(match &self.backend {
            Backend::Folder(folder) => {
                let (folder, owned) = (Arc::clone(folder), key.to_owned());
                let temp = blocking(move || Ok(folder.create_temp(&owned)?)).await?;
                let file = tokio::fs::File::from_std(temp.file.try_clone()?);
                BucketWriter::Folder { file, temp }
            }
            Backend::Store { store, .. } => BucketWriter::Store(
                object_store::buffered::BufWriter::new(Arc::clone(store), location),
            ),
        })
    }
}

/// Writes one object as a stream; it appears on [`BucketWriter::shutdown`] and never
/// half-written.
pub enum BucketWriter {
    Folder {
        file: tokio::fs::File,
        temp: TempFile,
    },
    Store(object_store::buffered::BufWriter),
}

impl BucketWriter {
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Folder { file, .. } => file.write_all(bytes).await,
            Self::Store(writer) => writer.write_all(bytes).await,
        }
    }

    /// Finishes the object and makes it visible.
    pub async fn shutdown(self) -> Result<(), BucketError> {
        match self {
            Self::Folder { mut file, temp } => {
                file.flush().await?;
                drop(file);
                blocking(move || Ok(temp.commit()?)).await
            }
            Self::Store(mut writer) => Ok(writer.shutdown().await?),
        }
    }

    /// Drops what was written; the object does not change.
    pub async fn abort(self) -> Result<(), BucketError> {
        match self {
            // Dropping the temporary file removes it.
            Self::Folder { .. } => Ok(()),
            Self::Store(mut writer) => Ok(writer.abort().await?),
        }
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
