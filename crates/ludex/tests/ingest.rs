//! The ingest pipeline over several uploads of one name: what each ledger entry points at
//! stays there.

use ludex::bucket::Bucket;
use ludex::ingest::{IngestConfig, IngestOutcome, Ingestor, Upload};
use ludex::store::Stores;

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
