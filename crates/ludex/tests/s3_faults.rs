//! S3 answering 500/503 and connections cut in the middle of an upload's GET, injected by a
//! small proxy in front of moto: the object store client retries and resumes the read where it
//! broke, and after its retry timeout the ingest fails as retryable, never as a broken file.

use crate::moto;

use ludex::bucket::Bucket;
use ludex::ingest::{IngestConfig, IngestError, Ingestor, Upload};
use ludex_domain::report::IngestStatus;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the GETs of one key, in order: answer a status, or forward the
/// request and cut the connection after some bytes of the body; then forward as they are.
#[derive(Default)]
struct Plan {
    key: String,
    statuses: VecDeque<u16>,
    /// GETs still to cut, and after how many bytes of their body.
    cuts: usize,
    cut_after: usize,
    gets: usize,
}

struct FaultProxy {
    endpoint: String,
    plan: Arc<Mutex<Plan>>,
}

impl FaultProxy {
    async fn start(upstream: &str, key: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Mutex::new(Plan {
            key: key.to_owned(),
            ..Plan::default()
        }));
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let shared = Arc::clone(&plan);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), Arc::clone(&shared)));
            }
        });
        Self { endpoint, plan }
    }

    fn set(&self, statuses: &[u16], cuts: usize, cut_after: usize) {
        let mut plan = self.plan.lock().unwrap();
        plan.statuses = statuses.iter().copied().collect();
        plan.cuts = cuts;
        plan.cut_after = cut_after;
        plan.gets = 0;
    }

    fn gets(&self) -> usize {
        self.plan.lock().unwrap().gets
    }
}

enum Fault {
    Status(u16),
    Cut(usize),
}

/// Reads until the end of an HTTP head; returns the bytes read (head and what followed).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, usize)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, end + 4));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One request (moto closes every connection after its response).
async fn relay(
    mut client: TcpStream,
    upstream: String,
    plan: Arc<Mutex<Plan>>,
) -> std::io::Result<()> {
    let (mut request, head_end) = read_head(&mut client).await?;
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        let mut chunk = vec![0u8; head_end + length - request.len()];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let fault = {
        let mut plan = plan.lock().unwrap();
        let mut words = head.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if method == "GET" && path.split('?').next().unwrap_or("").ends_with(&plan.key) {
            plan.gets += 1;
            if let Some(status) = plan.statuses.pop_front() {
                Some(Fault::Status(status))
            } else if plan.cuts > 0 {
                plan.cuts -= 1;
                Some(Fault::Cut(plan.cut_after))
            } else {
                None
            }
        } else {
            None
        }
    };
    if let Some(Fault::Status(status)) = fault {
        let answer =
            format!("HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return client.write_all(answer.as_bytes()).await;
    }
    let mut up = TcpStream::connect(&upstream).await?;
    up.write_all(&request).await?;
    match fault {
        Some(Fault::Cut(after)) => {
            let (response, head_end) = read_head(&mut up).await?;
            let mut sent = response.len().min(head_end + after);
            client.write_all(&response[..sent]).await?;
            let mut chunk = [0u8; 8192];
            while sent < head_end + after {
                let n = up.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                let take = n.min(head_end + after - sent);
                client.write_all(&chunk[..take]).await?;
                sent += take;
            }
            // Dropped: the client sees the body end before its Content-Length.
            Ok(())
        }
        _ => {
            tokio::io::copy(&mut up, &mut client).await?;
            Ok(())
        }
    }
}

#[tokio::test]
async fn an_upload_read_through_s3_errors_and_cut_connections_is_resumed_or_fails_retryably() {
    let Some(endpoint) = moto::endpoint("S3 faults in the middle of an upload's read") else {
        return;
    };
    const RECORDS: usize = 20_000;
    let name = moto::unique_name("ludex-s3-faults");
    moto::create_bucket(&endpoint, &name).await;
    let key = "uploads/faulty.ndjson";
    let body: String = (0..RECORDS)
        .map(|i| format!("{{\"id\":\"s3-{i:05}\",\"title\":\"Read through faults {i}\",\"platforms\":[\"PC\"]}}\n"))
        .collect();
    assert!(body.len() > 1_000_000);
    Bucket::s3(&name, Some(&endpoint))
        .unwrap()
        .put(key, body.into())
        .await
        .unwrap();

    let proxy = FaultProxy::start(&endpoint, key).await;
    let bucket =
        Bucket::s3_retrying_for(&name, Some(&proxy.endpoint), Duration::from_secs(2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stores = ludex::store::Stores::sqlite(&dir.path().join("ludex.db")).unwrap();
    let ingestor = Ingestor::new(stores.clone(), bucket.clone(), IngestConfig::default());
    let upload = Upload {
        source: &bucket,
        key,
        ledger_key: key.into(),
    };

    // A 503 and a 500, then two connections cut in the middle of the body: retried and
    // resumed where they broke; every record once.
    proxy.set(&[503, 500], 2, 300_000);
    let outcome = ingestor.ingest(&upload, &()).await.unwrap();
    assert_eq!(
        (
            outcome.record.status,
            outcome.record.accepted,
            outcome.record.inserted
        ),
        (IngestStatus::Succeeded, RECORDS as u64, RECORDS as u64)
    );
    assert_eq!(proxy.gets(), 5, "two errors, two cut reads, one whole rest");

    // A new version whose reads never get past the head: after the read deadline the ingest
    // fails as retryable, and its entry says so.
    let changed: String = (0..RECORDS)
        .map(|i| format!("{{\"id\":\"s3-{i:05}\",\"title\":\"Changed {i}\"}}\n"))
        .collect();
    Bucket::s3(&name, Some(&endpoint))
        .unwrap()
        .put(key, changed.into())
        .await
        .unwrap();
    proxy.set(&[], usize::MAX, 0);
    let error = ingestor.ingest(&upload, &()).await.unwrap_err();
    assert!(matches!(error, IngestError::Bucket(_)), "{error}");
    assert!(error.is_transient(), "{error}");
    assert!(
        error.to_string().contains("reading the upload failed"),
        "{error}"
    );
    let entry = stores.ledger.latest(key).await.unwrap().unwrap();
    assert_eq!(
        (entry.status, entry.retryable),
        (IngestStatus::Failed, true),
        "retryable, not a broken file: {entry:?}"
    );

    // The fault heals: the same upload is ingested again, to the end, under the same entry.
    proxy.set(&[], 0, 0);
    let retried = ingestor.ingest(&upload, &()).await.unwrap();
    assert!(!retried.replayed);
    assert_eq!(retried.record.id, entry.id);
    assert_eq!(
        (
            retried.record.status,
            retried.record.accepted,
            retried.record.updated
        ),
        (IngestStatus::Succeeded, RECORDS as u64, RECORDS as u64)
    );
}
