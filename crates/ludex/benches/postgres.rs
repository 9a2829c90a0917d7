//! PostgreSQL ingest benchmark: a synthetic NDJSON catalog (about 400 bytes a record) into a
//! fresh database through the real `ludex ingest` binary, counting on the server what the
//! ingest cost in statements and transactions (each one a round trip).
//!
//! `scripts/with-postgres cargo bench -p ludex --bench postgres -- [RECORDS...]`
//! (default: 100000). The server's own counters are read: `pg_stat_database` always, and
//! `pg_stat_statements` when the server preloads it (scripts/with-postgres does). With
//! `LUDEX_BENCH_BASELINE=PATH` another `ludex` binary (an earlier build) ingests the same file
//! into its own fresh database first, in the same run, for a before/after.

mod common;

#[path = "../tests/fresh_postgres/mod.rs"]
mod fresh_postgres;

use fresh_postgres::FreshDatabase;
use sqlx::{Connection, PgConnection};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The batch size `ludex ingest` uses by default (LUDEX_BATCH_SIZE).
const BATCH: usize = 3000;

fn generate(path: &Path, records: u64) {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create the catalog file"));
    ludex::synthetic::write_catalog(&mut out, records, None).expect("write the catalog");
    out.flush().expect("flush the catalog");
}

fn ludex(binary: &Path, store: &str, data_dir: &Path, args: &[&str]) {
    let status = Command::new(binary)
        .arg("--store")
        .arg(store)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--batch-size")
        .arg(BATCH.to_string())
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run ludex");
    assert!(status.success(), "ludex {args:?} failed: {status}");
}

/// What the server counted for one database.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Counters {
    transactions: i64,
    rows_inserted: i64,
    /// Statements executed (pg_stat_statements), when the server tracks them.
    statements: Option<i64>,
}

async fn counters(admin: &mut PgConnection, database: &str, statements: bool) -> Counters {
    // Backends report their counters when they exit; wait until the numbers settle.
    let mut last = None;
    loop {
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *admin)
            .await
            .expect("clear the stats snapshot");
        let (transactions, rows_inserted): (i64, i64) = sqlx::query_as(
            "SELECT xact_commit + xact_rollback, tup_inserted FROM pg_stat_database
             WHERE datname = $1",
        )
        .bind(database)
        .fetch_one(&mut *admin)
        .await
        .expect("read pg_stat_database");
        let statements = if statements {
            let calls: Option<i64> = sqlx::query_scalar(
                "SELECT sum(calls)::int8 FROM pg_stat_statements s
                 JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
            )
            .bind(database)
            .fetch_one(&mut *admin)
            .await
            .expect("read pg_stat_statements");
            Some(calls.unwrap_or(0))
        } else {
            None
        };
        let now = Counters {
            transactions,
            rows_inserted,
            statements,
        };
        if last == Some(now) {
            return now;
        }
        last = Some(now);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
}

/// Whether the server preloads pg_stat_statements (the view then needs the extension).
async fn track_statements(admin: &mut PgConnection) -> bool {
    let preload: String = sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
        .fetch_one(&mut *admin)
        .await
        .expect("read shared_preload_libraries");
    preload.contains("pg_stat_statements")
        && sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut *admin)
            .await
            .is_ok()
}

#[tokio::main]
async fn main() {
    let sizes = common::record_counts(&[100_000]);
    let Some(server) = fresh_postgres::server("the PostgreSQL ingest benchmark") else {
        return;
    };
    let mut admin = PgConnection::connect(&server)
        .await
        .expect("connect to the server");
    let statements = track_statements(&mut admin).await;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut admin)
        .await
        .expect("server version");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut builds = Vec::new();
    if let Some(baseline) = std::env::var_os("LUDEX_BENCH_BASELINE") {
        builds.push(("baseline", PathBuf::from(baseline)));
    }
    builds.push(("ludex", PathBuf::from(env!("CARGO_BIN_EXE_ludex"))));
    let mut rows = Vec::new();
    for &records in &sizes {
        let file = dir.path().join(format!("catalog-{records}.ndjson"));
        generate(&file, records);
        for (build, binary) in &builds {
            let db = FreshDatabase::create(&server).await;
            let data_dir = dir.path().join(format!("data-{build}-{records}"));
            // The schema first, so that the ingest's counters are the ingest's alone.
            ludex(binary, &db.url, &data_dir, &["init"]);
            let before = counters(&mut admin, &db.name, statements).await;
            let started = Instant::now();
            ludex(
                binary,
                &db.url,
                &data_dir,
                &["ingest", file.to_str().expect("UTF-8 path")],
            );
            let seconds = started.elapsed().as_secs_f64();
            let after = counters(&mut admin, &db.name, statements).await;
            db.drop().await;
            rows.push((*build, records, seconds, before, after));
        }
    }
    println!("\nPostgreSQL {version}, batch size {BATCH}, `ludex ingest` (release build)\n");
    println!(
        "| build | records | seconds | records/s | rows inserted | transactions | statements | records per statement |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (build, records, seconds, before, after) in rows {
        let transactions = after.transactions - before.transactions;
        let statements = after.statements.zip(before.statements).map(|(a, b)| a - b);
        let per = statements.unwrap_or(transactions).max(1);
        println!(
            "| {build} | {records} | {seconds:.2} | {:.0} | {} | {transactions} | {} | {:.0} |",
            records as f64 / seconds,
            after.rows_inserted - before.rows_inserted,
            statements.map_or_else(|| "n/a".to_owned(), |s| s.to_string()),
            records as f64 / per as f64,
        );
    }
}
