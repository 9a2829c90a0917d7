//! Ingest benchmark: synthetic NDJSON catalogs (about 400 bytes a record) into a fresh SQLite
//! catalog through the real `ludex ingest` binary, against the ceiling measured in the same
//! run: the same rows inserted into the same schema with no parsing or validation.
//!
//! `cargo bench -p ludex --bench ingest -- [RECORDS...]` (default: 100000 1000000). Each file
//! is ingested `LUDEX_BENCH_ROUNDS` times (3 by default), the files taking turns, and the
//! fastest run of each is shown: one run moves by 10% or more on a shared machine. With
//! `LUDEX_BENCH_BASELINE=PATH` another `ludex` binary (an earlier build) ingests the same files
//! in the same rounds, for a before/after.
//!
//! Each size is also ingested as CSV: the same records, one column a field, list fields joined
//! by `;` (the `csv` row, and its records/s as a share of NDJSON's in the same run). After the
//! NDJSON ingest the same games come again with every title changed, into the same catalog
//! (the `changed` row: every record an update, each filing the version it replaces in the
//! history; its time as a multiple of the first ingest's).

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

/// The NDJSON catalog with every record changed (its title), as a second upload of the same
/// games that replaces each one.
fn changed(ndjson: &Path, out: &Path) {
    let input = BufReader::new(std::fs::File::open(ndjson).expect("open the catalog"));
    let mut out = BufWriter::new(std::fs::File::create(out).expect("create the changed catalog"));
    for line in input.lines() {
        let line = line.expect("read the catalog");
        writeln!(
            out,
            "{}",
            line.replacen("\"title\":\"", "\"title\":\"Revised ", 1)
        )
        .expect("write the changed catalog");
    }
    out.flush().expect("flush the changed catalog");
}

/// Wall seconds and peak RSS (KiB) of `BINARY ingest FILE` into a fresh data directory.
fn ingest(binary: &Path, file: &Path, dir: &Path) -> (f64, u64) {
    let data = tempfile::tempdir_in(dir).expect("a data directory");
    ingest_in(binary, file, data.path())
}

/// A first ingest into a fresh data directory, then `changes` ingested into the same one: the
/// two runs' seconds and peak RSS.
fn ingest_twice(binary: &Path, file: &Path, changes: &Path, dir: &Path) -> [(f64, u64); 2] {
    let data = tempfile::tempdir_in(dir).expect("a data directory");
    [
        ingest_in(binary, file, data.path()),
        ingest_in(binary, changes, data.path()),
    ]
}

/// Wall seconds and peak RSS (KiB) of `BINARY ingest FILE` into the data directory `data`.
fn ingest_in(binary: &Path, file: &Path, data: &Path) -> (f64, u64) {
    // The run before may have left hundreds of megabytes for the kernel to write back: written
    // first, outside the time, so that no run pays for the one before it.
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    assert!(synced, "sync failed");
    let started = Instant::now();
    let (status, peak) = rss::run_measured(
        Command::new(binary)
            .arg("--data-dir")
            .arg(data)
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

/// The fastest of `runs` ingests: (seconds, peak RSS KiB).
fn best(runs: &[(f64, u64)]) -> (f64, u64) {
    runs.iter()
        .copied()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("at least one round")
}

fn main() {
    let sizes = common::record_counts(&[100_000, 1_000_000]);
    let rounds: usize = std::env::var("LUDEX_BENCH_ROUNDS")
        .ok()
        .map_or(3, |r| r.parse().expect("LUDEX_BENCH_ROUNDS is a number"));
    let batch = ludex::ingest::IngestConfig::default().batch_size;
    let ludex = Path::new(env!("CARGO_BIN_EXE_ludex"));
    // Another build of ludex (an earlier commit), timed on the same files in the same rounds.
    let baseline = std::env::var_os("LUDEX_BENCH_BASELINE");
    println!(
        "| records | file MB | ceiling s | ceiling rec/s | ingest s | ingest rec/s | ingest / ceiling | peak RSS MB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for records in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("catalog.ndjson");
        generate(&file, records);
        let csv = dir.path().join("catalog.csv");
        to_csv(&file, &csv);
        let changes = dir.path().join("changed.ndjson");
        changed(&file, &changes);
        let size = |file: &Path| std::fs::metadata(file).map_or(0, |m| m.len()) as f64 / 1e6;
        // Each round ingests every file once, in turn, so that the machine's drift falls on all.
        // NDJSON, CSV, each again by the baseline, and the changed file after NDJSON's.
        let mut runs: [Vec<(f64, u64)>; 6] = Default::default();
        for _ in 0..rounds {
            let [first, again] = ingest_twice(ludex, &file, &changes, dir.path());
            runs[0].push(first);
            runs[4].push(again);
            runs[1].push(ingest(ludex, &csv, dir.path()));
            if let Some(baseline) = &baseline {
                let [first, again] = ingest_twice(Path::new(baseline), &file, &changes, dir.path());
                runs[2].push(first);
                runs[5].push(again);
                runs[3].push(ingest(Path::new(baseline), &csv, dir.path()));
            }
        }
        let ceiling_s = ceiling(&file, dir.path(), batch);
        let n = records as f64;
        let row = |label: &str, mb: Option<f64>, (seconds, kib): (f64, u64), share: String| {
            let mb = mb.map(|mb| format!("{mb:.0}")).unwrap_or_default();
            println!(
                "| {records}{label} | {mb} | | | {seconds:.2} | {:.0} | {share} | {:.1} |",
                n / seconds,
                kib as f64 / 1024.0
            );
        };
        let (ingest_s, peak_kib) = best(&runs[0]);
        println!(
            "| {records} | {:.0} | {ceiling_s:.2} | {:.0} | {ingest_s:.2} | {:.0} | {:.2} | {:.1} |",
            size(&file),
            n / ceiling_s,
            n / ingest_s,
            ceiling_s / ingest_s,
            peak_kib as f64 / 1024.0
        );
        let csv_run = best(&runs[1]);
        let share = format!(
            "{:.2} (csv / ndjson: {:.2})",
            ceiling_s / csv_run.0,
            ingest_s / csv_run.0
        );
        row(" csv", Some(size(&csv)), csv_run, share);
        let again = best(&runs[4]);
        let share = format!("(changed / first: {:.2})", again.0 / ingest_s);
        row(" changed", Some(size(&changes)), again, share);
        if baseline.is_some() {
            let ndjson = best(&runs[2]);
            row(" baseline", None, ndjson, String::new());
            let csv_run = best(&runs[3]);
            let share = format!("(csv / ndjson: {:.2})", ndjson.0 / csv_run.0);
            row(" csv baseline", None, csv_run, share);
            let again = best(&runs[5]);
            let share = format!("(changed / first: {:.2})", again.0 / ndjson.0);
            row(" changed baseline", None, again, share);
        }
    }
}
