//! Several `ludex serve` over one PostgreSQL database and one S3 bucket (moto), as
//! docs/deploy.md describes: every upload is ingested once whichever instance lists it first,
//! and an instance killed in the middle of an ingest leaves it to another after its lease.

use crate::fresh_postgres::{self, FreshDatabase};
use crate::moto;
use crate::serve::{Server, moto_bucket};

use ludex::bucket::Bucket;
use ludex::store::Stores;
use ludex_domain::report::{IngestRecord, IngestStatus};
use ludex_domain::{LedgerQuery, ListQuery};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Seconds a claim lasts here: short, so that a takeover comes quickly.
const LEASE: &str = "3";

struct Cluster {
    runtime: tokio::runtime::Runtime,
    database: Option<FreshDatabase>,
    stores: Stores,
    bucket: Bucket,
    bucket_url: String,
    endpoint: String,
    database_url: String,
    instances: Vec<(tempfile::TempDir, Server)>,
}

impl Cluster {
    /// Three instances over a fresh database and bucket, or `None` (skipped loudly) without
    /// the servers.
    fn start(suite: &str) -> Option<Self> {
        let postgres = fresh_postgres::server(suite)?;
        let endpoint = moto::endpoint(suite)?;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let database = runtime.block_on(FreshDatabase::create(&postgres));
        // Migrated here once; the instances find the schema current.
        let stores = runtime.block_on(ludex::store::open(&database.url)).unwrap();
        let name = moto_bucket(&endpoint, "ludex-instances");
        let bucket = Bucket::s3(&name, Some(&endpoint)).unwrap();
        Some(Self {
            runtime,
            database_url: database.url.clone(),
            database: Some(database),
            stores,
            bucket,
            bucket_url: format!("s3://{name}"),
            endpoint,
            instances: Vec::new(),
        })
    }

    /// Starts three instances over the database and the bucket.
    fn start_instances(&mut self) {
        for _ in 0..3 {
            let data = tempfile::tempdir().unwrap();
            let server = Server::start_with(
                data.path(),
                &[
                    "--store",
                    &self.database_url,
                    "--bucket",
                    &self.bucket_url,
                    "--poll-seconds",
                    "0.2",
                    "--ingest-lease-seconds",
                    LEASE,
                ],
                &[("LUDEX_S3_ENDPOINT", &self.endpoint)],
            );
            self.instances.push((data, server));
        }
    }

    fn put(&self, files: Vec<(String, String)>) {
        self.runtime.block_on(async {
            let puts = files
                .into_iter()
                .map(|(key, body)| async move { self.bucket.put(&key, body.into()).await });
            for put in futures::future::join_all(puts).await {
                put.unwrap();
            }
        });
    }

    /// Every ledger entry, oldest first.
    fn ledger(&self) -> Vec<IngestRecord> {
        self.runtime.block_on(async {
            let mut entries = Vec::new();
            let mut query = LedgerQuery {
                limit: 100,
                cursor: None,
            };
            loop {
                let page = self.stores.ledger.list(&query).await.unwrap();
                entries.extend(page.items);
                match page.next_cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
            entries.reverse();
            entries
        })
    }

    /// The ledger once it has `count` entries and none is queued or running.
    fn settled_ledger(&self, count: usize, within: Duration) -> Vec<IngestRecord> {
        let deadline = Instant::now() + within;
        loop {
            let entries = self.ledger();
            if entries.len() == count && entries.iter().all(IngestRecord::is_settled) {
                return entries;
            }
            assert!(
                Instant::now() < deadline,
                "not {count} settled entries within {within:?}: {} entries {entries:#?}",
                entries.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every game's id, title and version.
    fn catalog(&self) -> BTreeMap<String, (String, u64)> {
        self.runtime.block_on(async {
            let mut games = BTreeMap::new();
            let mut query = ListQuery {
                limit: 1000,
                ..ListQuery::default()
            };
            loop {
                let page = self.stores.catalog.list(&query).await.unwrap();
                for game in page.items {
                    let content: serde_json::Value = serde_json::from_str(&game.content).unwrap();
                    let title = content["title"].as_str().unwrap().to_owned();
                    games.insert(game.id.to_string(), (title, game.version));
                }
                match page.next_cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => return games,
                }
            }
        })
    }

    fn games(&self) -> u64 {
        self.runtime
            .block_on(self.stores.catalog.counts())
            .unwrap()
            .games
    }

    /// Attempts that found an upload held by another instance, over all instances.
    fn claims_lost(&self) -> u64 {
        self.instances
            .iter()
            .map(|(_, server)| {
                let (_, text) = server.get("/metrics");
                text.lines()
                    .find_map(|l| l.strip_prefix(ludex::metrics::prometheus::INGEST_CLAIMS_LOST))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.instances.clear();
        if let Some(database) = self.database.take() {
            self.runtime.block_on(database.drop());
        }
    }
}

/// An upload of `count` games `f{file}-{n}` titled `{title} {file}-{n}`, from `first`.
fn upload(file: usize, first: usize, count: usize, title: &str) -> String {
    (first..first + count)
        .map(|n| format!("{{\"id\":\"f{file:02}-{n:03}\",\"title\":\"{title} {file}-{n}\"}}\n"))
        .collect()
}

#[test]
fn three_instances_over_one_database_and_bucket_ingest_every_upload_exactly_once() {
    let Some(mut cluster) = Cluster::start("three ludex serve over PostgreSQL and S3") else {
        return;
    };
    cluster.start_instances();
    // 50 files at once; five of them twice at the same moment (the same content).
    let mut files: Vec<_> = (0..50)
        .map(|f| {
            (
                format!("uploads/f{f:02}.ndjson"),
                upload(f, 0, 100, "First"),
            )
        })
        .collect();
    files.extend((0..5).map(|f| {
        (
            format!("uploads/f{f:02}.ndjson"),
            upload(f, 0, 100, "First"),
        )
    }));
    cluster.put(files);
    let first = cluster.settled_ledger(50, Duration::from_secs(120));
    // Then new content under one of the names: 100 changed games and 20 new ones.
    cluster.put(vec![(
        "uploads/f07.ndjson".into(),
        upload(7, 0, 120, "Second"),
    )]);
    let ledger = cluster.settled_ledger(51, Duration::from_secs(60));
    assert_eq!(
        ledger[..50],
        first[..],
        "earlier entries are left as they were"
    );

    // One entry per distinct upload, each counted as one run of its file would count it.
    let mut keys: Vec<_> = ledger.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 50);
    for entry in &ledger[..50] {
        assert_eq!(
            (
                entry.status,
                entry.accepted,
                entry.inserted,
                entry.updated,
                entry.unchanged
            ),
            (IngestStatus::Succeeded, 100, 100, 0, 0),
            "{entry:?}"
        );
        assert_eq!(entry.lease, None);
    }
    let second = &ledger[50];
    assert_eq!(
        (
            second.key.as_str(),
            second.accepted,
            second.inserted,
            second.updated
        ),
        ("uploads/f07.ndjson", 120, 20, 100)
    );

    // The catalog is what one process ingesting the files in order makes.
    let mut expected = BTreeMap::new();
    for f in 0..50 {
        let (title, count, version) = if f == 7 {
            ("Second", 120, 2)
        } else {
            ("First", 100, 1)
        };
        for n in 0..count {
            let version = if n < 100 { version } else { 1 };
            expected.insert(
                format!("f{f:02}-{n:03}"),
                (format!("{title} {f}-{n}"), version),
            );
        }
    }
    assert_eq!(cluster.catalog(), expected);
    assert_eq!(cluster.games(), 5020, "the counters agree");
    eprintln!(
        "three instances: {} ingest attempts found their upload held by another",
        cluster.claims_lost()
    );
}

#[test]
fn an_instance_killed_in_the_middle_of_an_ingest_leaves_it_to_another_after_its_lease() {
    const RECORDS: u64 = 200_000;
    let Some(mut cluster) = Cluster::start("kill -9 of an instance during an ingest") else {
        return;
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    let generated = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .args(["generate", "--count", &RECORDS.to_string(), "--output"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");
    let body = std::fs::read_to_string(file.path()).unwrap();
    // Uploaded before the instances start: a 70 MB PUT competing with their listings can
    // outlast the S3 client's timeout, and its retry stores a second copy, which moto may
    // give another ETag — then another upload, rightly ingested again.
    cluster.put(vec![("uploads/big.ndjson".into(), body)]);
    cluster.start_instances();

    // Wait for a batch to land, then kill the instance that holds the claim.
    let deadline = Instant::now() + Duration::from_secs(120);
    let holder = loop {
        let entry = cluster.ledger().pop();
        if let Some(lease) = entry.and_then(|e| e.lease)
            && cluster.games() > 0
        {
            break lease.holder;
        }
        assert!(Instant::now() < deadline, "no ingest started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid: u32 = holder.split(':').nth(1).unwrap().parse().unwrap();
    let index = cluster
        .instances
        .iter()
        .position(|(_, server)| server.child.id() == pid)
        .unwrap_or_else(|| panic!("{holder} is none of the instances"));
    let (_, mut killed) = cluster.instances.remove(index);
    killed.child.kill().unwrap(); // SIGKILL
    killed.child.wait().unwrap();
    let at_kill = cluster.games();
    assert!(at_kill < RECORDS, "the ingest ended before the kill");

    let ledger = cluster.settled_ledger(1, Duration::from_secs(600));
    let entry = &ledger[0];
    assert_eq!(
        (
            entry.status,
            entry.accepted,
            entry.rejected,
            entry.lease.clone()
        ),
        (IngestStatus::Succeeded, RECORDS, 0, None),
        "{entry:?}"
    );
    assert_eq!(entry.inserted + entry.unchanged, RECORDS);
    assert!(
        entry.unchanged >= at_kill,
        "what the killed one wrote was found in place"
    );
    assert_eq!(cluster.games(), RECORDS, "every record once");
    let listed = cluster.runtime.block_on(async {
        let mut ids = 0u64;
        let mut query = ListQuery {
            limit: 1000,
            ..ListQuery::default()
        };
        loop {
            let page = cluster.stores.catalog.list(&query).await.unwrap();
            ids += page.items.len() as u64;
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => return ids,
            }
        }
    });
    assert_eq!(listed, RECORDS);
}
