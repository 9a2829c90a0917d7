//! DynamoDB ingest benchmark: a synthetic NDJSON catalog (about 400 bytes a record) through
//! the real ingest pipeline into a fresh table on moto, counting every request the store
//! sends by operation. Each game writes its item and one index item per word prefix and label
//! (docs/dynamodb.md); the table prints them and their write units per game. Nothing is
//! throttled on moto, so `BatchWriteItem` must be exactly, per ingest batch,
//! ceil(index items / 25) + ceil(games / 25); the run fails otherwise.
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
use ludex::store::dynamodb::{DynamoStore, WriteCost, history_cost, write_cost};
use ludex_domain::Game;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let sizes = common::record_counts(&[100_000]);
    let Some(endpoint) = moto::endpoint("the DynamoDB ingest benchmark") else {
        return;
    };
    println!(
        "| records | seconds | records/s | items/game | write units/game | BatchWriteItem | expected | BatchGetItem | other requests |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for records in sizes {
        let mut file = Vec::new();
        ludex::synthetic::write_catalog(&mut file, records, None).expect("write the catalog");
        let games: Vec<Game> = std::str::from_utf8(&file)
            .expect("the catalog is text")
            .lines()
            .map(|line| {
                Game::from_value(&serde_json::from_str(line).expect("JSON")).expect("a game")
            })
            .collect();
        let costs: Vec<WriteCost> = games.iter().map(write_cost).collect();
        let items: usize = costs.iter().map(|c| c.items).sum();
        let units: u64 = costs.iter().map(|c| c.write_units).sum();
        // The ingest hands the store batches of `batch_size` games; each writes its index items,
        // then the games' items.
        let expected: usize = costs
            .chunks(IngestConfig::default().batch_size)
            .map(|batch| {
                let index: usize = batch.iter().map(|c| c.items - 1).sum();
                index.div_ceil(25) + batch.len().div_ceil(25)
            })
            .sum();
        let bucket = Bucket::memory();
        bucket
            .put("uploads/catalog.ndjson", Bytes::from(file))
            .await
            .expect("put the upload");
        let table = moto::unique_name("ludex-bench");
        ludex::store::init(
            &format!("dynamodb://{table}?endpoint={endpoint}"),
            Default::default(),
        )
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
        let others: Vec<String> = requests
            .all()
            .into_iter()
            .filter(|(op, _)| op != "BatchWriteItem" && op != "BatchGetItem")
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        println!(
            "| {records} | {seconds:.1} | {:.0} | {:.1} | {:.1} | {writes} | {expected} | {} | {} |",
            records as f64 / seconds,
            items as f64 / records as f64,
            units as f64 / records as f64,
            requests.count("BatchGetItem"),
            others.join(", ")
        );
        assert_eq!(
            writes, expected,
            "BatchWriteItem calls for {records} records"
        );
        // An update of each game writes its item and index items again, deletes the old index
        // items, and files the version it replaces: what history adds.
        let filed: u64 = games.iter().map(history_cost).sum();
        println!(
            "history: an update files one item of {:.2} write units a game (the update itself \
             about {:.0}: the new items, and the old index items deleted)",
            filed as f64 / records as f64,
            (2 * units - records) as f64 / records as f64
        );
    }
}
