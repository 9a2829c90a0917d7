//! Ingest benchmark: synthetic NDJSON catalogs (about 400 bytes a record) into a fresh SQLite
//! catalog through the real `ludex ingest` binary, against the ceiling measured in the same
//! run: the same rows inserted into the same schema with no parsing or validation.
//!
//! `cargo bench -p ludex --bench ingest -- [RECORDS...]` (default: 100000 1000000). With
//! `LUDEX_BENCH_BASELINE=PATH` another `ludex` binary (an earlier build) ingests the same files
//! in the same run, for a before/after.
//!
//! Each size is also ingested as CSV: the same records, one column a field, list fields joined
//! by `;` (the `csv` row, and its records/s as a share of NDJSON's in the same run).

mod common;
#[path = "common/rss.rs"]
mod rss;

use ludex::store::sqlite::{PreparedRows, SqliteStore};
use ludex_domain::Game;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn generate(path: &Path, records: u64) {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create the catalog file"));
    ludex::synthetic::write_catalog(&mut out, records, None).expect("write the catalog");
    out.flush().expect("flush the catalog");
}

/// The NDJSON catalog as CSV: a header of the fields, one row a record, list fields joined by
/// `;`, every cell quoted when it needs to be (RFC 4180).
fn to_csv(ndjson: &Path, csv: &Path) {
    const COLUMNS: [&str; 12] = [
        "id",
        "title",
        "platforms",
        "genres",
        "release_date",
        "developer",
        "publisher",
        "rating",
        "price",
        "currency",
        "tags",
        "description",
    ];
    let cell = |value: &serde_json::Value| -> String {
        let text = match value {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let mut out = BufWriter::new(std::fs::File::create(csv).expect("create the CSV file"));
    writeln!(out, "{}", COLUMNS.join(",")).expect("write the header");
    for line in BufReader::new(std::fs::File::open(ndjson).expect("open the catalog")).lines() {
        let record: serde_json::Value =
            serde_json::from_str(&line.expect("read a line")).expect("valid JSON");
        let cells: Vec<String> = COLUMNS.iter().map(|c| cell(&record[*c])).collect();
        writeln!(out, "{}", cells.join(",")).expect("write a row");
    }
    out.flush().expect("flush the CSV file");
}

/// Seconds to insert the file's rows, prepared in advance, into a fresh catalog.
fn ceiling(file: &Path, dir: &Path, batch: usize) -> f64 {
    let games: Vec<Game> = BufReader::new(std::fs::File::open(file).expect("open the catalog"))
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(&line.expect("read a line")).expect("valid JSON");
            Game::from_value(&value).expect("valid game")
        })
        .collect();
    let rows = PreparedRows::of(&games);
    drop(games);
    let store = SqliteStore::open(&dir.join("ceiling.db")).expect("open the ceiling store");
    let started = Instant::now();
    store.insert_prepared(&rows, batch).expect("insert");
    started.elapsed().as_secs_f64()
}

/// Wall seconds and peak RSS (KiB) of `BINARY ingest FILE` into a fresh data directory.
fn ingest(binary: &Path, file: &Path, dir: &Path) -> (f64, u64) {
    let data = tempfile::tempdir_in(dir).expect("a data directory");
    let started = Instant::now();
    let (status, peak) = rss::run_measured(
        Command::new(binary)
            .arg("--data-dir")
            .arg(data.path())
            .arg("ingest")
            .arg(file)
            .stdout(std::process::Stdio::null()),
    );
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        status.success(),
        "{} ingest failed: {status}",
        binary.display()
    );
    (seconds, peak)
}

fn main() {
    let sizes = common::record_counts(&[100_000, 1_000_000]);
    let batch = ludex::ingest::IngestConfig::default().batch_size;
    println!(
        "| records | file MB | ceiling s | ceiling rec/s | ingest s | ingest rec/s | ingest / ceiling | peak RSS MB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for records in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("catalog.ndjson");
        generate(&file, records);
        let mb = std::fs::metadata(&file).map_or(0, |m| m.len()) as f64 / 1e6;
        let (ingest_s, peak_kib) =
            ingest(Path::new(env!("CARGO_BIN_EXE_ludex")), &file, dir.path());
        // Another build of ludex (an earlier commit), timed on the same file in the same run.
        if let Some(baseline) = std::env::var_os("LUDEX_BENCH_BASELINE") {
            let (baseline_s, baseline_kib) = ingest(Path::new(&baseline), &file, dir.path());
            println!(
                "| {records} baseline | | | | {baseline_s:.2} | {:.0} | | {:.1} |",
                records as f64 / baseline_s,
                baseline_kib as f64 / 1024.0
            );
        }
        let ceiling_s = ceiling(&file, dir.path(), batch);
        let n = records as f64;
        println!(
            "| {records} | {mb:.0} | {ceiling_s:.2} | {:.0} | {ingest_s:.2} | {:.0} | {:.2} | {:.1} |",
            n / ceiling_s,
            n / ingest_s,
            ceiling_s / ingest_s,
            peak_kib as f64 / 1024.0
        );
        let csv = dir.path().join("catalog.csv");
        to_csv(&file, &csv);
        let csv_mb = std::fs::metadata(&csv).map_or(0, |m| m.len()) as f64 / 1e6;
        let (csv_s, csv_kib) = ingest(Path::new(env!("CARGO_BIN_EXE_ludex")), &csv, dir.path());
        println!(
            "| {records} csv | {csv_mb:.0} | | | {csv_s:.2} | {:.0} | {:.2} (csv / ndjson: {:.2}) | {:.1} |",
            n / csv_s,
            ceiling_s / csv_s,
            ingest_s / csv_s,
            csv_kib as f64 / 1024.0
        );
    }
}
