//! The ingest pipeline over several uploads of one name: what each ledger entry points at
//! stays there.

use ludex::bucket::Bucket;
use ludex::ingest::{IngestConfig, IngestOutcome, Ingestor, Upload};
use ludex::store::Stores;
use std::time::Duration;

async fn ingest(ingestor: &Ingestor, key: &str, content: &'static str) -> IngestOutcome {
    let bucket = ingestor.bucket();
    bucket.put(key, content.into()).await.unwrap();
    let upload = Upload {
        source: bucket,
        key,
        ledger_key: key.into(),
    };
    ingestor.ingest(&upload, &()).await.unwrap()
}

#[tokio::test]
async fn every_ledger_entry_keeps_its_rejects_report_after_later_ingests_of_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ludex.db").display());
    let stores = ludex::store::open(&url).await.unwrap();
    let bucket = Bucket::local(&dir.path().join("bucket")).unwrap();
    let ingestor = Ingestor::new(stores.clone(), bucket.clone(), IngestConfig::default());
    let key = "uploads/reports.ndjson";

    let first = ingest(
        &ingestor,
        key,
        "{\"id\":\"r1\",\"title\":\"One\"}\nnot json\n",
    )
    .await;
    let clean = ingest(&ingestor, key, "{\"id\":\"r1\",\"title\":\"Two\"}\n").await;
    assert_eq!(clean.record.rejects_key, None);
    let first_report = report_of(&ingestor, &stores, &first).await;
    assert!(
        first_report.1.contains("malformed JSON"),
        "{}",
        first_report.1
    );

    let third = ingest(
        &ingestor,
        key,
        "{\"id\":\"r1\",\"title\":\"Three\"}\n{\"id\":\"r2\"}\n",
    )
    .await;
    let third_report = report_of(&ingestor, &stores, &third).await;
    assert_ne!(
        first_report.0, third_report.0,
        "each ingest has its own report"
    );
    assert!(third_report.1.contains("\"r2\""), "{}", third_report.1);
    assert_eq!(report_of(&ingestor, &stores, &first).await, first_report);
}

/// The rejects report an outcome's ledger entry names, with its text; panics if it is gone.
async fn report_of(
    ingestor: &Ingestor,
    stores: &Stores,
    outcome: &IngestOutcome,
) -> (String, String) {
    let entry = stores
        .ledger
        .get(&outcome.record.id)
        .await
        .unwrap()
        .unwrap();
    let report = entry.rejects_key.expect("the entry names its report");
    let text = ingestor
        .bucket()
        .get(&report)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{report} is gone"));
    let text = String::from_utf8_lossy(&text).into_owned();
    (report, text)
}

/// Remembers every advance an ingest reports.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<ludex::ingest::Advance>>);

impl ludex::ingest::Progress for Recorded {
    fn advanced(&self, at: &ludex::ingest::Advance) {
        self.0.lock().unwrap().push(*at);
    }
}

#[tokio::test]
async fn progress_is_told_by_bytes_of_the_file_and_records_after_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::sqlite(&dir.path().join("ludex.db")).unwrap();
    let bucket = Bucket::local(&dir.path().join("bucket")).unwrap();
    let mut file = Vec::new();
    ludex::synthetic::write_catalog(&mut file, 10_000, Some(100)).unwrap();
    let size = file.len() as u64;
    bucket.put("uploads/big.ndjson", file.into()).await.unwrap();
    let config = IngestConfig {
        batch_size: 1_000,
        ..IngestConfig::default()
    };
    let ingestor = Ingestor::new(stores, bucket.clone(), config);
    let upload = Upload {
        source: &bucket,
        key: "uploads/big.ndjson",
        ledger_key: "uploads/big.ndjson".into(),
    };
    let recorded = Recorded::default();
    let outcome = ingestor.ingest(&upload, &recorded).await.unwrap();
    let advances = recorded.0.into_inner().unwrap();
    assert!(advances.len() >= 10, "one per batch: {}", advances.len());
    assert!(advances.iter().all(|a| a.size == size && a.bytes <= size));
    assert!(
        advances
            .windows(2)
            .all(|w| w[0].bytes <= w[1].bytes && w[0].records < w[1].records),
        "{advances:?}"
    );
    assert!(
        advances[0].bytes < size,
        "the first batch comes before the end"
    );
    let last = advances.last().unwrap();
    assert_eq!((last.bytes, last.records), (size, 10_000));
    assert_eq!(last.rejected, outcome.record.rejected);
    assert_eq!(outcome.record.rejected, 100);
}

/// A slow ingest (one record per write) under a short lease, and a task that watches its
/// ledger entry until it ends. Returns the ingest's result and the leases seen.
async fn watched_slow_ingest(
    steal: bool,
) -> (
    Result<IngestOutcome, ludex::ingest::IngestError>,
    Vec<ludex_domain::Lease>,
    ludex_domain::IngestRecord,
) {
    use ludex_domain::{Claim, IngestRecord, Lease};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ludex.db").display());
    let stores = ludex::store::open(&url).await.unwrap();
    let bucket = Bucket::memory();
    let config = IngestConfig {
        batch_size: 1,
        lease: Duration::from_millis(300),
        ..IngestConfig::default()
    };
    let ingestor = Ingestor::new(stores.clone(), bucket.clone(), config);
    let key = "uploads/slow.ndjson";
    let records: String = (0..3000)
        .map(|i| format!("{{\"id\":\"slow-{i}\",\"title\":\"Slow {i}\"}}\n"))
        .collect();
    bucket.put(key, records.into()).await.unwrap();
    let watcher = {
        let stores = stores.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Lease> = Vec::new();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let page = stores
                    .ledger
                    .list(&ludex_domain::LedgerQuery {
                        limit: 1,
                        cursor: None,
                    })
                    .await
                    .unwrap();
                let Some(entry) = page.items.into_iter().next() else {
                    continue;
                };
                let Some(lease) = entry.lease.clone() else {
                    return (seen, entry);
                };
                if seen.last() != Some(&lease) {
                    seen.push(lease.clone());
                }
                if steal && seen.len() == 2 {
                    // Another worker decides the lease has expired (its clock is ahead).
                    let thief = IngestRecord {
                        lease: Some(Lease {
                            holder: "thief".into(),
                            until: "2999-01-01T00:00:00.000Z".into(),
                        }),
                        ..entry.clone()
                    };
                    let claim = stores
                        .ledger
                        .claim(&thief, "2998-01-01T00:00:00.000Z")
                        .await
                        .unwrap();
                    assert_eq!(claim, Claim::Taken);
                    seen.push(thief.lease.clone().unwrap());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let after = stores.ledger.get(&entry.id).await.unwrap().unwrap();
                    return (seen, after);
                }
            }
        })
    };
    let upload = Upload {
        source: &bucket,
        key,
        ledger_key: key.into(),
    };
    let result = ingestor.ingest(&upload, &()).await;
    let (seen, last) = watcher.await.unwrap();
    (result, seen, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_ingest_renews_its_claim_and_drops_it_when_done() {
    let (result, seen, last) = watched_slow_ingest(false).await;
    let outcome = result.unwrap();
    assert_eq!(outcome.record.accepted, 3000);
    assert!(
        seen.len() >= 3,
        "the 300 ms lease was renewed while the ingest ran: {seen:?}"
    );
    assert!(
        seen.windows(2)
            .all(|w| w[0].until < w[1].until && w[0].holder == w[1].holder)
    );
    assert_eq!(
        last, outcome.record,
        "the outcome is stored, without a lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_whose_claim_was_taken_over_stops_and_leaves_the_entry_to_the_new_holder() {
    let (result, seen, last) = watched_slow_ingest(true).await;
    let error = result.unwrap_err();
    assert!(
        matches!(&error, ludex::ingest::IngestError::LeaseLost(holder) if holder == "thief"),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(seen.last().unwrap().holder, "thief");
    assert_eq!(
        (last.status, last.lease.map(|l| l.holder)),
        (ludex_domain::IngestStatus::Running, Some("thief".into())),
        "the loser wrote neither its outcome nor its failure"
    );
}
