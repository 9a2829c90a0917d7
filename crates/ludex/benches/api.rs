//! API benchmark: `ludex serve` (release) over a catalog of 100,000 games, loaded by wrk on
//! loopback at 64 connections, against the ceiling measured in the same run: a bare axum
//! handler doing the same SQLite point lookup and returning the stored JSON. A game's history
//! is also read at 8 connections, for its latency without a queue.
//!
//! `cargo bench -p ludex --bench api -- [SECONDS]` (default 30 s per measurement; needs `wrk`)
//!
//! `LUDEX_BENCH_BASELINE=PATH` another `ludex` binary (an earlier build) serves the same catalog
//! under the same loads in the same run, for a before/after; `LUDEX_BENCH_ROUNDS=N` alternates
//! the two N times (baseline first) and prints the means.

#[path = "common/server.rs"]
mod server;

use axum::extract::Path as UrlPath;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

const GAMES: u64 = 100_000;

/// Connections of every load but one.
const CONNECTIONS: u32 = 64;

/// Connections of the history's latency load: about as many requests in flight as there are
/// cores and wrk threads, so that its percentiles are the page's own time rather than a queue.
const LIGHT: u32 = 8;

/// One build's loads in one round, and its peak memory.
struct Measured {
    get_one: Load,
    listing: Load,
    history: Load,
    /// The same at [`LIGHT`] connections: its latency without a queue.
    history_light: Load,
    peak_rss_mb: f64,
}

/// Prints one parseable line at the end of a wrk run; every script ends with it.
const RESULT: &str = r#"
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f\n", summary.requests, bad,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"#;

/// Picks a random game per request.
const LOOKUP_SCRIPT: &str = r#"
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/games/g%07d", math.random(0, 99999)))
end
"#;

const LIST_SCRIPT: &str = r#"
local platforms = {"PC", "PlayStation%205", "Nintendo%20Switch", "Mobile"}
math.randomseed(7)
request = function()
  return wrk.format("GET", "/games?limit=20&platform=" .. platforms[math.random(1, #platforms)])
end
"#;

/// The game [`hundred_versions`] edits.
const HISTORY_GAME: &str = "g0000042";

/// The newest page (20 versions) of a game with 100.
const HISTORY_SCRIPT: &str = r#"
request = function()
  return wrk.format("GET", "/games/g0000042/history")
end
"#;

/// Gives [`HISTORY_GAME`] 100 versions: 99 edits through the store, as the API makes them.
fn hundred_versions(db: &Path) {
    use ludex_domain::{Author, Catalog, Game, GameId};
    let store = ludex::store::sqlite::SqliteStore::open(db).expect("the catalog");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let author = Author::key("bench");
        let id = GameId::parse(HISTORY_GAME).expect("an id");
        for edit in 1..100 {
            let mut fields = store
                .get(&id)
                .await
                .expect("a read")
                .expect("the game")
                .fields()
                .expect("its fields");
            fields
                .known
                .insert("title".into(), format!("Edited {edit}").into());
            fields.known.insert("id".into(), HISTORY_GAME.into());
            let game = Game::from_record(fields).expect("a valid game");
            store.replace(&game, None, &author).await.expect("an edit");
        }
    });
}

struct Load {
    rps: f64,
    non_2xx: u64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wrk(address: &str, script: &Path, seconds: u64, connections: u32) -> Load {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "5s",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{address}"))
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no result from wrk:\n{text}"));
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().expect("a number"))
        .collect();
    Load {
        rps: f[0] / f[2],
        non_2xx: f[1] as u64,
        p50_ms: f[3],
        p99_ms: f[4],
    }
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

thread_local! {
    static CONNECTION: RefCell<Option<rusqlite::Connection>> = const { RefCell::new(None) };
}

/// The ceiling: a point lookup on a per-thread connection, straight from the handler.
fn bare_server(db: PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/games/{id}",
                get(move |UrlPath(id): UrlPath<String>| {
                    let db = db.clone();
                    async move {
                        let content: Option<String> = CONNECTION.with(|cell| {
                            let mut slot = cell.borrow_mut();
                            let conn = slot.get_or_insert_with(|| {
                                rusqlite::Connection::open_with_flags(
                                    &db,
                                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                                )
                                .expect("open")
                            });
                            conn.prepare_cached("SELECT content FROM games WHERE id = ?1")
                                .and_then(|mut s| s.query_row([&id], |r| r.get(0)))
                                .ok()
                        });
                        match content {
                            Some(json) => {
                                ([(header::CONTENT_TYPE, "application/json")], json).into_response()
                            }
                            None => axum::http::StatusCode::NOT_FOUND.into_response(),
                        }
                    }
                }),
            );
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    address
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(30, |a| a.parse().expect("seconds"));
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    server::load_catalog(Path::new(env!("CARGO_BIN_EXE_ludex")), &data, GAMES);
    hundred_versions(&data.join("ludex.db"));
    let script = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{text}{RESULT}")).expect("script");
        path
    };
    let lookup = script("lookup.lua", LOOKUP_SCRIPT);
    let list = script("list.lua", LIST_SCRIPT);
    let history = script("history.lua", HISTORY_SCRIPT);

    let bare = bare_server(data.join("ludex.db"));
    let ceiling = wrk(&bare, &lookup, seconds, CONNECTIONS);

    // A baseline that predates history answers its load with 404s (non-2xx).
    let measure = |binary: &Path| {
        let served = server::serve(binary, &data, &[]);
        let get_one = wrk(&served.address, &lookup, seconds, CONNECTIONS);
        let listing = wrk(&served.address, &list, seconds, CONNECTIONS);
        let history_light = wrk(&served.address, &history, seconds, LIGHT);
        let history = wrk(&served.address, &history, seconds, CONNECTIONS);
        Measured {
            get_one,
            listing,
            history,
            history_light,
            peak_rss_mb: peak_rss_mb(served.child.id()),
        }
    };
    // Rounds alternate baseline and this build, so drift on a noisy machine falls on both.
    let rounds: usize = std::env::var("LUDEX_BENCH_ROUNDS")
        .ok()
        .map_or(1, |r| r.parse().expect("LUDEX_BENCH_ROUNDS"));
    let baseline_binary = std::env::var_os("LUDEX_BENCH_BASELINE");
    let mut runs: Vec<(&str, Measured)> = Vec::new();
    for _ in 0..rounds {
        if let Some(binary) = &baseline_binary {
            runs.push(("baseline", measure(Path::new(binary))));
        }
        runs.push(("ludex", measure(Path::new(env!("CARGO_BIN_EXE_ludex")))));
    }

    println!(
        "| load ({GAMES} games, {CONNECTIONS} connections, {seconds} s) | req/s | p50 ms | p99 ms | non-2xx | vs ceiling |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, l: &Load, ratio: Option<f64>| {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} | {} |",
            l.rps,
            l.p50_ms,
            l.p99_ms,
            l.non_2xx,
            ratio.map_or("—".into(), |r| format!("{r:.2}"))
        );
    };
    row("ceiling: bare axum + SQLite point lookup", &ceiling, None);
    for (name, m) in &runs {
        row(
            &format!("{name} GET /games/{{id}}"),
            &m.get_one,
            Some(m.get_one.rps / ceiling.rps),
        );
        row(
            &format!("{name} GET /games?platform=…&limit=20"),
            &m.listing,
            None,
        );
        row(
            &format!("{name} GET /games/{{id}}/history (100 versions, the newest 20)"),
            &m.history,
            None,
        );
        row(
            &format!("{name} the same history at {LIGHT} connections"),
            &m.history_light,
            None,
        );
    }
    println!();
    for name in ["ludex", "baseline"] {
        let mine: Vec<&Measured> = runs
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, r)| r)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mean = |f: &dyn Fn(&Measured) -> f64| {
            mine.iter().map(|r| f(r)).sum::<f64>() / mine.len() as f64
        };
        println!(
            "{name}: mean of {} round(s): GET /games/{{id}} {:.0} req/s, listing {:.0} req/s, history {:.0} req/s (p99 {:.2} ms; at {LIGHT} connections {:.2} ms), peak RSS {:.1} MB",
            mine.len(),
            mean(&|r| r.get_one.rps),
            mean(&|r| r.listing.rps),
            mean(&|r| r.history.rps),
            mean(&|r| r.history.p99_ms),
            mean(&|r| r.history_light.p99_ms),
            mine.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max)
        );
    }
}
