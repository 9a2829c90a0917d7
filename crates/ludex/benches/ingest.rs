//! Ingest benchmark: synthetic NDJSON catalogs (about 400 bytes a record) into a fresh SQLite
//! catalog through the real `ludex ingest` binary, against the ceiling measured in the same
//! run: the same rows inserted into the same schema with no parsing or validation.
//!
//! `cargo bench -p ludex --bench ingest -- [RECORDS...]` (default: 100000 1000000)

mod common;

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

/// Peak resident memory of a running process in KiB (`VmHWM`, which starts afresh at exec,
/// unlike `getrusage`, which would count the memory this process holds when it forks).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Wall seconds and peak RSS (KiB) of `ludex ingest FILE` into a fresh data directory.
fn ingest(file: &Path, dir: &Path) -> (f64, u64) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .arg("--data-dir")
        .arg(dir.join("ingest"))
        .arg("ingest")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run ludex ingest");
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ludex") {
            break status;
        }
        peak = peak.max(peak_rss_kib(child.id()).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "ludex ingest failed: {status}");
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
        let (ingest_s, peak_kib) = ingest(&file, dir.path());
        let ceiling_s = ceiling(&file, dir.path(), batch);
        let n = records as f64;
        println!(
            "| {records} | {mb:.0} | {ceiling_s:.2} | {:.0} | {ingest_s:.2} | {:.0} | {:.2} | {:.1} |",
            n / ceiling_s,
            n / ingest_s,
            ceiling_s / ingest_s,
            peak_kib as f64 / 1024.0
        );
    }
}
