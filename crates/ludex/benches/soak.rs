//! Soak: `ludex serve` (release, SQLite) under mixed traffic for ten minutes while its inbox
//! ingests 1,000,000-record files back to back.
//!
//! `cargo bench -p ludex --bench soak -- [SECONDS]` (default 600). `LUDEX_SOAK_SORTED=1` sorts
//! the listings by title, rating, release date or the default at random, instead of the
//! default order alone.
//!
//! 64 connections on loopback, each a loop of: 70% `GET /games/{id}` (any game), 20% filtered
//! listings (a platform, a genre with a minimum rating, or a year range), 10% `PATCH` with
//! `If-Match` of one of 10,000 games the ingests never touch. Each connection patches its own
//! share of those games, so it always knows their version: a 412 would be a lost or phantom
//! write, and at the end every game's version and last description must be exactly what the
//! connection's 200s said. Meanwhile the bench copies a new 1,000,000-record file (every title
//! changed, so every record is a real update) into the inbox as soon as the previous one has
//! settled. Every 30 s it prints throughput, p50/p99 per kind, non-2xx, the server's RSS and
//! the sizes of the database and its WAL; at the end, what the server logged at warn or above.

#[path = "common/rss.rs"]
mod rss;
#[path = "common/server.rs"]
mod server;

use ludex_domain::IngestStatus;
use reqwest::{Client, StatusCode, header};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records in each ingested file (and in the catalog before the load starts).
const INGESTED: u64 = 1_000_000;
/// Games only the PATCHes change.
const EDITED: usize = 10_000;
const CONNECTIONS: usize = 64;
/// Seconds between report rows.
const WINDOW: u64 = 30;
const PLATFORMS: [&str; 4] = ["PC", "PlayStation 5", "Nintendo Switch", "Mobile"];
const GENRES: [&str; 4] = ["RPG", "Action", "Puzzle", "Strategy"];
/// The listings' orders with LUDEX_SOAK_SORTED=1; the default (`-updated_at`) otherwise.
const SORTS: [&str; 4] = ["title", "-rating", "release_date", "-updated_at"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Get,
    List,
    Patch,
}

/// One answered request: when (seconds into the load), what, its status and its latency.
struct Sample {
    second: u32,
    kind: Kind,
    status: u16,
    micros: u32,
}

/// What one 10-second look at the server found.
struct Probe {
    second: u64,
    rss_kib: u64,
    db_bytes: u64,
    wal_bytes: u64,
    ingests_done: u64,
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(600);
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_ludex"));
    // reqwest's TLS needs a crypto provider even for plain HTTP clients.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data = dir.path().join("data");
    let setup = Instant::now();
    server::load_catalog(&binary, &data, INGESTED);
    let edited = data.join("edited.ndjson");
    write_edited(&edited);
    ludex(&binary, &data, &["ingest".as_ref(), edited.as_os_str()]);
    let key = ludex(
        &binary,
        &data,
        &["keys", "create", "--name", "soak"].map(OsStr::new),
    );
    println!(
        "soak: catalog of {} games ready in {:.0} s; loading for {seconds} s",
        INGESTED + EDITED as u64,
        setup.elapsed().as_secs_f64()
    );
    let log = dir.path().join("serve.log");
    let served = server::serve_logging_warnings(&binary, &data, &["--write-rate-limit", "0"], &log);
    let pid = served.child.id();
    let base = format!("http://{}", served.address);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();

    let ingests = Arc::new(Mutex::new(Vec::<(u64, f64)>::new()));
    let ingester = {
        let (data, base, ingests) = (data.clone(), base.clone(), Arc::clone(&ingests));
        std::thread::spawn(move || ingest_rounds(&data, &base, deadline, &ingests))
    };
    let probes = {
        let (data, ingests) = (data.clone(), Arc::clone(&ingests));
        std::thread::spawn(move || probe(pid, &data, started, deadline, &ingests))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let sorts: &[&str] = if std::env::var_os("LUDEX_SOAK_SORTED").is_some_and(|v| v == "1") {
        &SORTS
    } else {
        &SORTS[3..]
    };
    println!("listings sorted by {sorts:?}");
    let (samples, patched) = runtime.block_on(load(&base, &key, sorts, started, deadline));
    let probes = probes.join().expect("the probe thread");
    let mismatches = runtime.block_on(check_patches(&base, &patched));
    let in_flight = ingester.join().expect("the ingest thread");
    drop(served);

    report(
        &samples,
        &probes,
        &ingests.lock().expect("ingests"),
        in_flight,
    );
    // What the server warned of: the reason behind any non-2xx.
    let warnings = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = warnings.lines().collect();
    println!("the server logged {} warnings or errors", lines.len());
    for line in lines.iter().take(10) {
        println!("  {line}");
    }
    let patches: usize = patched.iter().map(|p| p.successes).sum();
    println!(
        "final check: {patches} PATCHes answered 200 over {EDITED} games; {mismatches} games \
         differ from what their 200s said (target 0)"
    );
}

/// Runs the ludex CLI on DATA and returns what it printed.
fn ludex(binary: &Path, data: &Path, args: &[&OsStr]) -> String {
    let output = server::cli(binary, data)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("ludex runs");
    assert!(output.status.success(), "ludex {args:?} failed");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn edited_id(n: usize) -> String {
    format!("soak-{n:05}")
}

fn write_edited(path: &Path) {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("edited games"));
    for n in 0..EDITED {
        let id = edited_id(n);
        writeln!(
            out,
            r#"{{"id":"{id}","title":"Soak {id}","platforms":["PC"],"genres":["Puzzle"],"description":"initial"}}"#
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

/// Copies the catalog into the inbox with every title changed, one round at a time, each as
/// soon as the previous one settled; stops starting rounds at the deadline. Returns the
/// seconds the last round had run when the load ended, if one was still running.
fn ingest_rounds(
    data: &Path,
    base: &str,
    deadline: Instant,
    done: &Mutex<Vec<(u64, f64)>>,
) -> Option<f64> {
    let source = data.join("catalog.ndjson");
    let uploads = data.join("bucket").join("uploads");
    std::fs::create_dir_all(&uploads).expect("the uploads folder");
    for round in 1.. {
        let name = format!("round-{round}.ndjson");
        let staged = data.join(&name);
        retitled(&source, &staged, round);
        let began = Instant::now();
        std::fs::rename(&staged, uploads.join(&name)).expect("drop the round into the inbox");
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let reply = server::get(
                base.trim_start_matches("http://"),
                &format!("/uploads/{name}"),
            );
            let status = (reply.status == 200)
                .then(|| reply.text.split_once("\r\n\r\n"))
                .flatten()
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
                .and_then(|entry| entry["status"].as_str().and_then(IngestStatus::parse));
            if let Some(status) = status.filter(|s| s.is_finished()) {
                assert_eq!(
                    status,
                    IngestStatus::Succeeded,
                    "round {round} did not succeed: {}",
                    reply.text
                );
                done.lock()
                    .expect("ingests")
                    .push((round, began.elapsed().as_secs_f64()));
                let _ = std::fs::remove_file(uploads.join(&name));
                break;
            }
            if Instant::now() > deadline {
                return Some(began.elapsed().as_secs_f64());
            }
        }
        if Instant::now() > deadline {
            return None;
        }
    }
    None
}

/// The catalog with `R<round> ` before every title.
fn retitled(source: &Path, target: &Path, round: u64) {
    let input = BufReader::new(std::fs::File::open(source).expect("the catalog file"));
    let mut out = BufWriter::new(std::fs::File::create(target).expect("the round's file"));
    let marker = "\"title\":\"";
    let prefix = format!("{marker}R{round} ");
    for line in input.lines() {
        let line = line.expect("a line");
        writeln!(out, "{}", line.replacen(marker, &prefix, 1)).expect("write");
    }
    out.flush().expect("flush");
}

fn probe(
    pid: u32,
    data: &Path,
    started: Instant,
    deadline: Instant,
    ingests: &Mutex<Vec<(u64, f64)>>,
) -> Vec<Probe> {
    let size = |name: &str| std::fs::metadata(data.join(name)).map_or(0, |m| m.len());
    let mut probes = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(10));
        probes.push(Probe {
            second: started.elapsed().as_secs(),
            rss_kib: rss::rss_kib(pid).unwrap_or(0),
            db_bytes: size("ludex.db"),
            wal_bytes: size("ludex.db-wal"),
            ingests_done: ingests.lock().expect("ingests").len() as u64,
        });
    }
    probes
}

/// What one connection's PATCHes did to one of its games.
struct Patched {
    id: String,
    successes: usize,
    version: u64,
    description: String,
}

async fn load(
    base: &str,
    key: &str,
    sorts: &'static [&'static str],
    started: Instant,
    deadline: Instant,
) -> (Vec<Sample>, Vec<Patched>) {
    let client = Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let target = Target {
                client: &client,
                base: &base,
                key: &key,
                sorts,
            };
            connection_loop(connection, &target, started, deadline).await
        }));
    }
    let mut samples = Vec::new();
    let mut patched = Vec::new();
    for task in tasks {
        let (s, p) = task.await.expect("a connection task");
        samples.extend(s);
        patched.extend(p);
    }
    (samples, patched)
}

/// Where and how one connection sends its requests.
#[derive(Clone, Copy)]
struct Target<'t> {
    client: &'t Client,
    base: &'t str,
    key: &'t str,
    sorts: &'static [&'static str],
}

async fn connection_loop(
    connection: usize,
    target: &Target<'_>,
    started: Instant,
    deadline: Instant,
) -> (Vec<Sample>, Vec<Patched>) {
    let mut rng = fastrand::Rng::with_seed(connection as u64);
    // This connection's games: every CONNECTIONS-th edited game, all at version 1.
    let mut mine: Vec<Patched> = (connection..EDITED)
        .step_by(CONNECTIONS)
        .map(|n| Patched {
            id: edited_id(n),
            successes: 0,
            version: 1,
            description: "initial".into(),
        })
        .collect();
    let Target {
        client,
        base,
        key,
        sorts,
    } = *target;
    let mut samples = Vec::new();
    let mut sent = 0u64;
    while Instant::now() < deadline {
        let roll = rng.u32(0..100);
        let began = Instant::now();
        let (kind, status) = if roll < 70 {
            let id = if rng.bool() {
                format!("g{:07}", rng.u64(0..INGESTED))
            } else {
                edited_id(rng.usize(0..EDITED))
            };
            (
                Kind::Get,
                status_of(client.get(format!("{base}/games/{id}")).send().await),
            )
        } else if roll < 90 {
            let sort = sorts[rng.usize(0..sorts.len())];
            let filter = match rng.u32(0..3) {
                0 => format!("platform={}", PLATFORMS[rng.usize(0..PLATFORMS.len())]),
                1 => format!(
                    "genre={}&min_rating={}",
                    GENRES[rng.usize(0..GENRES.len())],
                    rng.u32(0..9)
                ),
                _ => {
                    let from = rng.u32(1990..2024);
                    format!("year_from={from}&year_to={}", from + 2)
                }
            };
            let url = format!("{base}/games?limit=20&sort={sort}&{filter}");
            (Kind::List, status_of(client.get(url).send().await))
        } else {
            let game = rng.usize(0..mine.len());
            let edited = &mut mine[game];
            sent += 1;
            let description = format!("connection {connection} edit {sent}");
            let reply = client
                .patch(format!("{base}/games/{}", edited.id))
                .bearer_auth(key)
                .header(header::IF_MATCH, format!("\"{}\"", edited.version))
                .header(header::CONTENT_TYPE, "application/merge-patch+json")
                .body(format!(r#"{{"description":"{description}"}}"#))
                .send()
                .await;
            let status = match reply {
                Ok(reply) => {
                    let status = reply.status();
                    if status == StatusCode::OK {
                        edited.successes += 1;
                        edited.version = etag_version(&reply).unwrap_or(0);
                        edited.description = description;
                    }
                    // The body is read so the connection goes back to the pool.
                    let _ = reply.bytes().await;
                    status.as_u16()
                }
                Err(_) => 0,
            };
            (Kind::Patch, status)
        };
        samples.push(Sample {
            second: u32::try_from(began.duration_since(started).as_secs()).unwrap_or(u32::MAX),
            kind,
            status,
            micros: u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX),
        });
    }
    (samples, mine)
}

fn status_of(reply: reqwest::Result<reqwest::Response>) -> u16 {
    reply.map_or(0, |r| r.status().as_u16())
}

fn etag_version(reply: &reqwest::Response) -> Option<u64> {
    reply
        .headers()
        .get(header::ETAG)?
        .to_str()
        .ok()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// Games whose stored version or description is not what their last 200 said.
async fn check_patches(base: &str, patched: &[Patched]) -> usize {
    let client = Client::new();
    let mut mismatches = 0;
    for game in patched {
        let reply = client
            .get(format!("{base}/games/{}", game.id))
            .send()
            .await
            .expect("the final read");
        let version = etag_version(&reply);
        let body: serde_json::Value = reply.json().await.expect("a game");
        let expected_version = 1 + game.successes as u64;
        let told = game.successes == 0 || game.version == expected_version;
        if version != Some(expected_version)
            || !told
            || body["description"] != game.description.as_str()
        {
            mismatches += 1;
            if mismatches <= 5 {
                println!(
                    "mismatch: {} is at {version:?} with {}, expected {expected_version} with {:?}",
                    game.id, body["description"], game.description
                );
            }
        }
    }
    mismatches
}

/// The latencies of one kind of request, sorted.
fn latencies<'s>(samples: impl Iterator<Item = &'s Sample>, kind: Kind) -> Vec<u32> {
    let mut micros: Vec<u32> = samples
        .filter(|s| s.kind == kind)
        .map(|s| s.micros)
        .collect();
    micros.sort_unstable();
    micros
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[rank]) / 1000.0
}

fn report(samples: &[Sample], probes: &[Probe], ingests: &[(u64, f64)], in_flight: Option<f64>) {
    let end = samples.iter().map(|s| s.second).max().unwrap_or(0);
    println!();
    println!(
        "| window (s) | GET/s | p50 / p99 ms | lists/s | p50 / p99 ms | PATCH/s | p50 / p99 ms | non-2xx | RSS MiB | db MiB | WAL MiB | ingests done |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut from = 0;
    while from <= end {
        let to = from + WINDOW as u32;
        let window: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.second >= from && s.second < to)
            .collect();
        let span = f64::from(to.min(end + 1) - from).max(1.0);
        let mut cells = Vec::new();
        for kind in [Kind::Get, Kind::List, Kind::Patch] {
            let micros = latencies(window.iter().copied(), kind);
            cells.push(format!(
                "{:.0} | {:.1} / {:.1}",
                micros.len() as f64 / span,
                percentile(&micros, 0.5),
                percentile(&micros, 0.99)
            ));
        }
        let bad = window
            .iter()
            .filter(|s| !(200..300).contains(&s.status))
            .count();
        let probe = probes.iter().rfind(|p| p.second <= u64::from(to));
        let (rss, db, wal, done) = probe.map_or((0.0, 0.0, 0.0, 0), |p| {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            (
                p.rss_kib as f64 / 1024.0,
                mib(p.db_bytes),
                mib(p.wal_bytes),
                p.ingests_done,
            )
        });
        println!(
            "| {from}–{to} | {} | {bad} | {rss:.0} | {db:.0} | {wal:.0} | {done} |",
            cells.join(" | ")
        );
        from = to;
    }
    let mut totals: BTreeMap<(Kind, u16), usize> = BTreeMap::new();
    for s in samples {
        *totals.entry((s.kind, s.status)).or_default() += 1;
    }
    println!();
    println!("whole run, by kind and status:");
    for kind in [Kind::Get, Kind::List, Kind::Patch] {
        let micros = latencies(samples.iter(), kind);
        let statuses: Vec<String> = totals
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, status), n)| format!("{status}: {n}"))
            .collect();
        println!(
            "  {kind:?}: {} requests, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms; {}",
            micros.len(),
            micros.len() as f64 / f64::from(end + 1),
            percentile(&micros, 0.5),
            percentile(&micros, 0.99),
            statuses.join(", ")
        );
    }
    let rounds: Vec<String> = ingests
        .iter()
        .map(|(round, secs)| {
            format!(
                "round {round}: {secs:.0} s ({:.0} records/s)",
                INGESTED as f64 / secs
            )
        })
        .collect();
    println!("ingests of {INGESTED} records: {}", rounds.join("; "));
    if let Some(secs) = in_flight {
        println!("  and one still running after {secs:.0} s when the load ended");
    }
}
