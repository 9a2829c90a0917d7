//! `ludex upload`: sends files to a ludex API the way the web UI does, straight to the bucket
//! through a URL from `POST /uploads/presign`, then follows each file's ingest. The same
//! command works against `ludex serve` (the URL is the server's own) and behind API Gateway
//! on Lambda (an S3 presigned URL, so no request body limit applies).

use anyhow::{Context, Result, bail};
use ludex_domain::report::{IngestRecord, IngestStatus};
use reqwest::{Client, StatusCode, Url, header};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `POST /uploads/presign` answers.
#[derive(Debug, Deserialize)]
struct DirectUpload {
    url: String,
    headers: BTreeMap<String, String>,
    key: String,
}

/// What `PUT /uploads/direct` answers (ludex's own URLs; S3 answers with an ETag only).
#[derive(Debug, Deserialize)]
struct Accepted {
    ingest_id: String,
}

/// How one file is followed after it was sent.
enum Follow {
    /// `GET /ingests/{id}`.
    Ingest(String),
    /// `GET /uploads/{name}` until the entry holds this ETag (the bucket's fingerprint).
    Upload { name: String, etag: String },
}

pub struct Uploader {
    client: Client,
    api: Url,
    key: String,
    /// How long to wait for each ingest to finish; zero: do not wait.
    wait: Duration,
}

/// The problem+json detail of a failed answer, or its status.
async fn failure(what: &str, response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or(body);
    anyhow::anyhow!("{what}: {status}: {detail}")
}

impl Uploader {
    pub fn new(api: &str, key: String, wait: Duration) -> Result<Self> {
        // reqwest's TLS uses ring, installed once per process (a second install is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut api = Url::parse(api).with_context(|| format!("the API address {api:?}"))?;
        if !api.path().ends_with('/') {
            api.set_path(&format!("{}/", api.path()));
        }
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("the HTTP client")?;
        Ok(Self {
            client,
            api,
            key,
            wait,
        })
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        self.api
            .join(path)
            .with_context(|| format!("{path} on {}", self.api))
    }

    /// Sends one file; returns its ingest's ledger entry, or `None` when not waiting.
    pub async fn upload(&self, file: &Path) -> Result<Option<IngestRecord>> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{} is not a file", file.display()))?;
        let opened = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot open {}", file.display()))?;
        let size = opened.metadata().await?.len();
        let mut presign = self.endpoint("uploads/presign")?;
        presign
            .query_pairs_mut()
            .append_pair("filename", &name)
            .append_pair("size", &size.to_string());
        let response = self
            .client
            .post(presign)
            .bearer_auth(&self.key)
            .send()
            .await
            .context("asking for an upload URL")?;
        if !response.status().is_success() {
            return Err(failure("asking for an upload URL", response).await);
        }
        let direct: DirectUpload = response.json().await.context("the upload URL")?;
        let target = self.api.join(&direct.url).context("the upload URL")?;
        let mut put = self.client.put(target).body(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::new(opened),
        ));
        for (name, value) in &direct.headers {
            put = put.header(name, value);
        }
        let response = put.send().await.context("sending the file")?;
        if !response.status().is_success() {
            return Err(failure(&format!("sending {} to the bucket", direct.key), response).await);
        }
        let follow = if response.status() == StatusCode::ACCEPTED {
            let accepted: Accepted = response.json().await.context("the upload's answer")?;
            Follow::Ingest(accepted.ingest_id)
        } else {
            let etag = response
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(|t| t.trim_matches('"').to_owned())
                .context("the bucket answered without an ETag")?;
            Follow::Upload { name, etag }
        };
        if self.wait.is_zero() {
            return Ok(None);
        }
        self.follow(&follow).await.map(Some)
    }

    /// Polls the ingest until it has finished, or the wait is over.
    async fn follow(&self, follow: &Follow) -> Result<IngestRecord> {
        let url = match follow {
            Follow::Ingest(id) => self.endpoint(&format!("ingests/{id}"))?,
            Follow::Upload { name, .. } => self.endpoint(&format!("uploads/{name}"))?,
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let response = self
                .client
                .get(url.clone())
                .bearer_auth(&self.key)
                .send()
                .await
                .context("following the ingest")?;
            match response.status() {
                // Not picked up yet (S3 events take a moment).
                StatusCode::NOT_FOUND if matches!(follow, Follow::Upload { .. }) => {}
                status if status.is_success() => {
                    let record: IngestRecord = response.json().await.context("the ingest")?;
                    let ours = match follow {
                        Follow::Upload { etag, .. } => record.fingerprint == *etag,
                        Follow::Ingest(_) => true,
                    };
                    if ours && record.status.is_finished() {
                        return Ok(record);
                    }
                }
                _ => return Err(failure("following the ingest", response).await),
            }
            if started.elapsed() > self.wait {
                bail!(
                    "the ingest did not finish within {} s; follow it at {url}",
                    self.wait.as_secs()
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// Sends each file and prints its outcome; the exit code is the worst (see `cli::exit`).
pub async fn upload_files(uploader: &Uploader, files: &[PathBuf]) -> Result<u8> {
    use crate::cli::exit;
    let mut worst = 0;
    for file in files {
        let name = file.display();
        match uploader.upload(file).await? {
            None => println!("{name}: sent; its ingest runs in the background"),
            Some(r) => {
                println!(
                    "{name}: {} — {} accepted ({} new, {} changed, {} unchanged), {} rejected (ingest {})",
                    r.status, r.accepted, r.inserted, r.updated, r.unchanged, r.rejected, r.id
                );
                if let Some(error) = &r.error {
                    println!("  error: {error}");
                }
                worst = worst.max(match r.status {
                    IngestStatus::Failed => exit::FILE_FAILED,
                    IngestStatus::PartiallyFailed => exit::REJECTED,
                    _ => 0,
                });
            }
        }
    }
    Ok(worst)
}
