//! Query cost: the worst listings an anonymous visitor can send to `ludex serve` (release) over
//! a catalog of 200,000 games. Each is timed alone (the slowest of three), then a few of the
//! most expensive accepted ones run in a loop from four clients while point reads and a
//! one-game listing are timed beside them. The target: every query is answered within 200 ms
//! or refused (a 4xx), and point reads and small listings stay fast under the load.
//!
//! `cargo bench -p ludex --bench queries`
//!
//! `LUDEX_BENCH_BASELINE=PATH` another `ludex` binary (an earlier build) answers the same
//! queries over the same catalog in the same run, for a before/after.

#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const GAMES: u64 = 200_000;
const BUDGET: Duration = Duration::from_millis(200);
const LUDEX: &str = env!("CARGO_BIN_EXE_ludex");

/// The worst queries: the attack, every bound at its edge, filters that match
/// nothing (a full scan where no index helps), sorts without an index, and combinations.
fn worst_queries() -> Vec<(&'static str, String)> {
    let repeated = vec!["kingdom"; 3000].join("+");
    let many = (0..200)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join("+");
    let long_word = "k".repeat(4000);
    vec![
        ("3,000 repeated words", format!("/games?q={repeated}")),
        ("200 distinct words", format!("/games?q={many}")),
        (
            "9 words in many titles",
            "/games?q=silent+crimson+eternal+lost+iron+hidden+broken+golden+kingdom".to_owned(),
        ),
        (
            "8 words in many titles, by title",
            "/games?q=silent+crimson+eternal+lost+iron+hidden+broken+golden&sort=title"
                .to_owned(),
        ),
        (
            "one repeated word, 25 times",
            format!("/games?q={}", vec!["kingdom"; 25].join("+")),
        ),
        ("one 4,000-letter word", format!("/games?q={long_word}")),
        (
            "8 one-character prefixes",
            "/games?q=1+2+3+4+5+6+7+8".to_owned(),
        ),
        (
            "8 one-character prefixes, by title",
            "/games?q=1+2+3+4+5+6+7+8&sort=title".to_owned(),
        ),
        ("one digit, by title", "/games?q=1&sort=title".to_owned()),
        (
            "one letter, by rating, 100",
            "/games?q=s&sort=-rating&limit=100".to_owned(),
        ),
        (
            "a word in every title, by title, 100",
            "/games?q=kingdom+1&sort=title&limit=100".to_owned(),
        ),
        (
            "no such word",
            "/games?q=zzzzzzzz&sort=release_date".to_owned(),
        ),
        ("no such platform", "/games?platform=Amiga".to_owned()),
        (
            "no such platform, by title",
            "/games?platform=Amiga&sort=title".to_owned(),
        ),
        (
            "a 10,000-character platform",
            format!("/games?platform={}", "p".repeat(10_000)),
        ),
        (
            "no such genre, by rating",
            "/games?genre=Opera&sort=-rating".to_owned(),
        ),
        (
            "years matching nothing, by title",
            "/games?year_from=2100&sort=title".to_owned(),
        ),
        (
            "rating 10 only, by release date",
            "/games?min_rating=10&sort=-release_date".to_owned(),
        ),
        (
            "every filter, by title, 100",
            "/games?platform=PC&genre=RPG&year_from=1990&year_to=2020&min_rating=5&q=s&sort=title&limit=100"
                .to_owned(),
        ),
        (
            "by title, 100",
            "/games?sort=title&limit=100".to_owned(),
        ),
        (
            "by rating descending, 100",
            "/games?sort=-rating&limit=100".to_owned(),
        ),
        (
            "a 64 KiB forged cursor",
            format!("/games?cursor={}", "A".repeat(65_536)),
        ),
    ]
}

/// The accepted queries that cost the most, sent in a loop by the load clients.
const LOAD: [&str; 4] = [
    "/games?q=1+2+3+4+5+6+7+8&sort=title",
    "/games?platform=Amiga&sort=title",
    "/games?q=s&sort=-rating&limit=100",
    "/games?sort=title&limit=100",
];

fn verdict(status: u16, took: Duration) -> &'static str {
    match status {
        200 if took <= BUDGET => "answered in budget",
        200 => "**too slow**",
        400..=499 => "refused",
        _ => "**failed**",
    }
}

/// Latencies of `path` sent `times` times in a row: (median, slowest), and the last status.
fn sample(address: &str, path: &str, times: usize) -> (Duration, Duration, u16) {
    let mut took: Vec<Duration> = Vec::with_capacity(times);
    let mut status = 0;
    for _ in 0..times {
        let reply = server::get(address, path);
        status = reply.status;
        took.push(reply.took);
    }
    took.sort();
    (took[took.len() / 2], took[took.len() - 1], status)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn measure(name: &str, binary: &Path, data: &Path) {
    let served = server::serve(binary, data, &[]);
    let address = served.address.clone();
    server::get(&address, "/games?limit=1");
    println!("\n### {name}\n");
    println!("| query | status | slowest of 3, ms | verdict |");
    println!("|---|---:|---:|---|");
    for (what, path) in worst_queries() {
        let (_, slowest, status) = sample(&address, &path, 3);
        println!(
            "| {what} | {status} | {} | {} |",
            ms(slowest),
            verdict(status, slowest)
        );
    }

    // Four clients send the costly queries in a loop; point reads and a small listing are
    // timed meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (address, stop) = (address.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut answered = [0_u32; 600];
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let reply = server::get(&address, LOAD[(i + n) % LOAD.len()]);
                    answered[reply.status.min(599) as usize] += 1;
                    n += 1;
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (one_p50, one_max, one_status) = sample(&address, "/games?limit=1", 40);
    let (get_p50, get_max, get_status) = sample(&address, "/games/g0123456", 40);
    let window = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut statuses = [0_u32; 600];
    for client in clients {
        for (status, count) in client.join().expect("a load client").iter().enumerate() {
            statuses[status] += count;
        }
    }
    let loads: Vec<String> = statuses
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(s, c)| format!("{c} × {s}"))
        .collect();
    println!(
        "\nUnder load ({} costly queries from 4 clients in {:.1} s: {}):\n",
        statuses.iter().sum::<u32>(),
        window.as_secs_f64(),
        loads.join(", ")
    );
    println!("| request | status | p50 ms | slowest of 40, ms |");
    println!("|---|---:|---:|---:|");
    println!(
        "| GET /games?limit=1 | {one_status} | {} | {} |",
        ms(one_p50),
        ms(one_max)
    );
    println!(
        "| GET /games/{{id}} | {get_status} | {} | {} |",
        ms(get_p50),
        ms(get_max)
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    server::load_catalog(Path::new(LUDEX), &data, GAMES);
    if let Some(baseline) = std::env::var_os("LUDEX_BENCH_BASELINE") {
        measure("baseline", Path::new(&baseline), &data);
    }
    measure("ludex", Path::new(LUDEX), &data);
}
