//! Faults injected against real servers: a PostgreSQL server taken down and brought back
//! under `ludex serve` while it takes API writes and ingests a file.

use crate::fresh_postgres;
use crate::serve::Server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A PostgreSQL cluster of this test's own (started with `scripts/with-postgres`), so that
/// taking it down disturbs no other test.
struct OwnPostgres {
    script: Child,
    url: String,
    ctl: String,
}

impl OwnPostgres {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/with-postgres");
        let mut script = Command::new(script)
            .args([
                "sh",
                "-c",
                r#"echo "$LUDEX_TEST_POSTGRES_URL"; echo "$LUDEX_TEST_POSTGRES_CTL"; exec sleep 3600"#,
            ])
            // A cluster of its own even when the tests run against a given server.
            .env_remove("LUDEX_TEST_POSTGRES_URL")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();
        let url = lines.next().unwrap().unwrap();
        let ctl = lines.next().unwrap().unwrap();
        assert!(
            url.starts_with("postgres://") && !ctl.is_empty(),
            "{url} {ctl}"
        );
        Self { script, url, ctl }
    }

    fn ctl(&self, action: &str) {
        let status = Command::new(&self.ctl).arg(action).status().unwrap();
        assert!(status.success(), "{action}: {status}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // The whole group: the script's trap stops and removes the cluster.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.script.id())])
            .status();
        let _ = self.script.wait();
    }
}

/// The status, `Retry-After` and body of a raw request's response; `None` when refused.
fn send(address: &str, request: &str) -> Option<(u16, Option<String>, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let retry_after = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after: ")
            .map(str::to_owned)
    });
    Some((status, retry_after, body.to_owned()))
}

#[test]
fn a_database_restart_is_answered_503_with_retry_after_and_the_ingest_completes_after_it() {
    if fresh_postgres::server("PostgreSQL restarts under ludex serve").is_none() {
        return;
    }
    let postgres = OwnPostgres::start();
    let data = tempfile::tempdir().unwrap();
    let keys = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["keys", "create", "--name", "faults"])
        .output()
        .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    let key = String::from_utf8(keys.stdout).unwrap().trim().to_owned();
    let server = Server::start_with(
        data.path(),
        &[
            "--store",
            &postgres.url,
            "--ingest-lease-seconds",
            "2",
            "--write-rate-limit",
            "0",
        ],
        &[],
    );

    // A file big enough to be in the middle of its ingest when the database goes away.
    const RECORDS: u64 = 100_000;
    let staged = data.path().join("big.ndjson");
    let generated = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .args(["generate", "--count", &RECORDS.to_string(), "--output"])
        .arg(&staged)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");

    // Writers create games the whole time and keep what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (address, key, stop) = (server.address.clone(), key.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("w{t}-{n}");
                    let body = format!(r#"{{"id": "{id}", "title": "Written {t} {n}"}}"#);
                    let request = format!(
                        "POST /games HTTP/1.1\r\nHost: ludex\r\nAuthorization: Bearer {key}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let reply = send(&address, &request).expect("the server stays up");
                    if reply.0 == 201 {
                        n += 1;
                    }
                    seen.push((id, reply));
                    std::thread::sleep(Duration::from_millis(5));
                }
                seen
            })
        })
        .collect();

    std::fs::rename(&staged, data.path().join("bucket/uploads/big.ndjson")).unwrap();
    // The catalog's game count, read beside the server (`None` while the database is down).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stores = runtime.block_on(ludex::store::open(&postgres.url)).unwrap();
    let games = || -> Option<u64> {
        runtime
            .block_on(stores.catalog.counts())
            .ok()
            .map(|c| c.games)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while games().unwrap_or(0) < 5_000 {
        assert!(Instant::now() < deadline, "the ingest never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    postgres.ctl("stop");
    std::thread::sleep(Duration::from_secs(3));
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 503, "{body}");
    postgres.ctl("start");

    // The writes go on once the pool has reconnected, and the ingest is run again to the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = server.get("/ingests?limit=10");
        let ledger: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if ledger["items"][0]["status"] == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ingest was not completed: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let replies: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();

    let (_, body) = server.get("/ingests?limit=10");
    let ledger: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = ledger["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "one entry for the file: {ledger}");
    assert_eq!(entries[0]["accepted"], RECORDS, "{ledger}");

    let unavailable: Vec<_> = replies.iter().filter(|(_, r)| r.0 == 503).collect();
    assert!(!unavailable.is_empty(), "no write met the restart");
    for (id, (status, retry_after, body)) in &replies {
        assert!(
            matches!(status, 201 | 503),
            "{id}: {status} {body} (never a 500 with the driver's message)"
        );
        if *status == 503 {
            assert_eq!(retry_after.as_deref(), Some("2"), "{id}: {body}");
            assert!(body.contains("/problems/unavailable"), "{body}");
            assert!(!body.to_lowercase().contains("connection"), "{body}");
        }
    }
    assert_eq!(replies.last().unwrap().1.0, 201, "writes resumed");
    let acknowledged: Vec<_> = replies.iter().filter(|(_, r)| r.0 == 201).collect();
    for (id, _) in &acknowledged {
        assert_eq!(server.get(&format!("/games/{id}")).0, 200, "{id} was lost");
    }
    assert_eq!(
        games(),
        Some(RECORDS + acknowledged.len() as u64),
        "every record once"
    );
    server.terminate();
}
