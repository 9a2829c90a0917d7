//! DynamoDB ingest benchmark: a synthetic NDJSON catalog (about 400 bytes a record) through
//! the real ingest pipeline into a fresh table on moto, counting every request the store
//! sends by operation. Nothing is throttled on moto, so `BatchWriteItem` must be exactly
//! ceil(n / 25); the run fails otherwise.
//!
//! `scripts/with-moto cargo bench -p ludex --bench dynamodb -- [RECORDS...]`
//! (default: 100000). moto is a Python server: the time measures it more than the store.

mod common;

#[allow(
    dead_code,
    reason = "the benchmark counts requests and injects no faults"
)]
#[path = "../tests/dynamo_requests/mod.rs"]
mod dynamo_requests;
#[path = "../tests/moto/mod.rs"]
mod moto;

use bytes::Bytes;
use dynamo_requests::Requests;
use ludex::bucket::Bucket;
use ludex::ingest::{IngestConfig, Ingestor, Upload};
use ludex::store::Stores;
use ludex::store::dynamodb::DynamoStore;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let sizes = common::record_counts(&[100_000]);
    let Some(endpoint) = moto::endpoint("the DynamoDB ingest benchmark") else {
        return;
    };
    println!(
        "| records | seconds | records/s | BatchWriteItem | ceil(n/25) | BatchGetItem | other requests |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for records in sizes {
        let mut file = Vec::new();
        ludex::synthetic::write_catalog(&mut file, records, None).expect("write the catalog");
        let bucket = Bucket::memory();
        bucket
            .put("uploads/catalog.ndjson", Bytes::from(file))
            .await
            .expect("put the upload");
        let table = moto::unique_name("ludex-bench");
        ludex::store::init(&format!("dynamodb://{table}?endpoint={endpoint}"))
            .await
            .expect("create the table");
        let requests = Requests::default();
        let store = DynamoStore::new(requests.client(&endpoint).await, table);
        let ingestor = Ingestor::new(Stores::of(store), bucket.clone(), IngestConfig::default());
        let upload = Upload {
            source: &bucket,
            key: "uploads/catalog.ndjson",
            ledger_key: "uploads/catalog.ndjson".into(),
        };
        let started = Instant::now();
        let outcome = ingestor.ingest(&upload, &()).await.expect("ingest");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(outcome.record.accepted, records, "{:?}", outcome.record);
        let writes = requests.count("BatchWriteItem");
        let expected = records.div_ceil(25) as usize;
        let others: Vec<String> = requests
            .all()
            .into_iter()
            .filter(|(op, _)| op != "BatchWriteItem" && op != "BatchGetItem")
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        println!(
            "| {records} | {seconds:.1} | {:.0} | {writes} | {expected} | {} | {} |",
            records as f64 / seconds,
            requests.count("BatchGetItem"),
            others.join(", ")
        );
        assert_eq!(
            writes, expected,
            "BatchWriteItem calls for {records} records"
        );
    }
}
