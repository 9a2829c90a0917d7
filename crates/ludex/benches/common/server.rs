//! `ludex serve` as the benchmarks run it: a child process on a free loopback port, and plain
//! HTTP/1.1 requests to it.

#![allow(dead_code, reason = "each benchmark uses the part it needs")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fills DATA with `games` generated games: `BINARY generate`, then `BINARY ingest` (the
/// generated file is kept beside the database).
pub fn load_catalog(binary: &Path, data: &Path, games: u64) {
    std::fs::create_dir_all(data).expect("data dir");
    let file = data.join("catalog.ndjson");
    let ludex = || cli(binary, data);
    let ok = ludex()
        .args(["generate", "--count", &games.to_string(), "--output"])
        .arg(&file)
        .status()
        .expect("generate")
        .success()
        && ludex()
            .arg("ingest")
            .arg(&file)
            .stdout(Stdio::null())
            .status()
            .expect("ingest")
            .success();
    assert!(ok, "loading the catalog failed");
}

/// `BINARY --data-dir DATA`, ready for a command and its arguments.
pub fn cli(binary: &Path, data: &Path) -> Command {
    let mut command = Command::new(binary);
    command.arg("--data-dir").arg(data);
    command
}

/// A running `ludex serve`; killed when dropped.
pub struct Served {
    pub child: Child,
    pub address: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `BINARY --data-dir DATA serve` on a free port, with `args` after `serve`.
pub fn serve(binary: &Path, data: &Path, args: &[&str]) -> Served {
    spawn(cli(binary, data).stderr(Stdio::null()), args)
}

/// [`serve`], keeping its warnings and errors (`RUST_LOG=warn`) in the file `log`.
pub fn serve_logging_warnings(binary: &Path, data: &Path, args: &[&str], log: &Path) -> Served {
    let file = std::fs::File::create(log).expect("the server's log file");
    spawn(cli(binary, data).env("RUST_LOG", "warn").stderr(file), args)
}

/// Starts `serve` on a free port from a command that names the binary and its data.
fn spawn(command: &mut Command, args: &[&str]) -> Served {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("ludex serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address line");
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address")
        .to_owned();
    Served { child, address }
}

/// One answer: its status (0 when there was none), the whole reply, and how long it took.
pub struct Reply {
    pub status: u16,
    pub text: String,
    pub took: Duration,
}

/// `GET path` on a new connection.
pub fn get(address: &str, path: &str) -> Reply {
    let started = Instant::now();
    let mut text = String::new();
    if let Ok(mut stream) = TcpStream::connect(address) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\n\r\n"
        );
        let _ = stream.read_to_string(&mut text);
    }
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        text,
        took: started.elapsed(),
    }
}
