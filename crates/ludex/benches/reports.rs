//! The reports page over a large catalog: `GET /ui/reports` and one of its CSVs from
//! `ludex serve` (release) over 1,000,000 generated games on SQLite. The target: the page in
//! at most 20 ms. Times are taken by the client over loopback on a new connection per request,
//! so they bound the server's time from above.
//!
//! `cargo bench -p ludex --bench reports`
//!
//! `LUDEX_BENCH_GAMES=N` another catalog size. `LUDEX_BENCH_BASELINE=PATH` another `ludex`
//! binary (an earlier build) serves the same catalog in the same run, for a before/after; a
//! build from before the stored aggregates pages through the whole catalog, so it is timed
//! three times instead of fifty.

#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::time::Duration;

const GAMES: u64 = 1_000_000;
const TARGET: Duration = Duration::from_millis(20);
const LUDEX: &str = env!("CARGO_BIN_EXE_ludex");
const PAGES: [&str; 2] = ["/ui/reports", "/ui/reports/platforms.csv"];

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn measure(name: &str, binary: &Path, data: &Path, times: usize) {
    let served = server::serve(binary, data, &[]);
    let address = served.address.clone();
    println!("\n### {name}\n");
    println!("| request | status | bytes | p50 ms | slowest of {times}, ms | verdict |");
    println!("|---|---:|---:|---:|---:|---|");
    for path in PAGES {
        // The first view warms the page cache, as any view after the first finds it.
        server::get(&address, path);
        let mut took = Vec::with_capacity(times);
        let mut last = None;
        for _ in 0..times {
            let reply = server::get(&address, path);
            took.push(reply.took);
            last = Some(reply);
        }
        took.sort();
        let reply = last.expect("at least one request");
        let p50 = took[took.len() / 2];
        let verdict = match (reply.status, p50 <= TARGET) {
            (200, true) => "within 20 ms",
            (200, false) => "**over 20 ms**",
            _ => "**failed**",
        };
        println!(
            "| GET {path} | {} | {} | {} | {} | {verdict} |",
            reply.status,
            reply.text.len(),
            ms(p50),
            ms(took[took.len() - 1])
        );
    }
}

fn main() {
    let games = std::env::var("LUDEX_BENCH_GAMES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(GAMES);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let started = std::time::Instant::now();
    server::load_catalog(Path::new(LUDEX), &data, games);
    println!(
        "{games} games generated and ingested in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(baseline) = std::env::var_os("LUDEX_BENCH_BASELINE") {
        measure("baseline", Path::new(&baseline), &data, 3);
    }
    measure("ludex", Path::new(LUDEX), &data, 50);
}
