//! Limits under attack: what hostile inputs cost the release build.
//!
//! `cargo bench -p ludex --bench limits`
//!
//! Peak memory: `ludex ingest` and `ludex serve` (the inbox) on a gzip upload whose JSON array
//! holds one element of 300 MB (a few hundred KB on disk), and on one whose element declares
//! 4 GiB (it runs into the 4 GiB file limit). Each process's peak RSS (`VmHWM`) against its
//! RSS on a small file in the same run.

#[path = "common/rss.rs"]
mod rss;
#[path = "common/server.rs"]
mod server;

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LUDEX: &str = env!("CARGO_BIN_EXE_ludex");

fn member(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes).expect("compress");
    gz.finish().expect("compress")
}

/// A gzip file (concatenated members, as `MultiGzDecoder` reads them) holding
/// `[{"title":"Huge","notes":"aaaa…(mib MiB)"}, {"title":"Small"}]`.
fn huge_element(path: &Path, mib: u64) {
    let mut out = std::fs::File::create(path).expect("create the upload");
    out.write_all(&member(br#"[{"title":"Huge","notes":""#))
        .expect("write");
    let body = member(&vec![b'a'; 1 << 20]);
    for _ in 0..mib {
        out.write_all(&body).expect("write");
    }
    out.write_all(&member(br#""}, {"title":"Small"}]"#))
        .expect("write");
}

fn small_file(path: &Path) {
    std::fs::write(path, member(b"{\"title\":\"Small\"}\n")).expect("write");
}

/// Peak RSS (MiB) and seconds of `ludex ingest FILE`.
fn ingest(file: &Path) -> (f64, f64) {
    let data = tempfile::tempdir().expect("data dir");
    let started = Instant::now();
    let (_, peak) = rss::run_measured(
        Command::new(LUDEX)
            .arg("--data-dir")
            .arg(data.path())
            .arg("ingest")
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    (peak as f64 / 1024.0, started.elapsed().as_secs_f64())
}

/// Peak RSS (MiB) and seconds of `ludex serve` ingesting FILE from its inbox.
fn serve(file: &Path) -> (f64, f64) {
    let data = tempfile::tempdir().expect("data dir");
    let served = server::serve(Path::new(LUDEX), data.path(), &[]);
    let inbox: PathBuf = data.path().join("bucket/uploads");
    std::fs::create_dir_all(&inbox).expect("inbox");
    let started = Instant::now();
    // Written beside the inbox, then moved in whole.
    let staged = data.path().join("staged.json.gz");
    std::fs::copy(file, &staged).expect("copy");
    std::fs::rename(&staged, inbox.join("upload.json.gz")).expect("move into the inbox");
    let deadline = started + Duration::from_secs(600);
    loop {
        let ledger = server::get(&served.address, "/ingests").text;
        if ["\"succeeded\"", "\"partially_failed\"", "\"failed\""]
            .iter()
            .any(|s| ledger.contains(s))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the inbox never finished the upload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak = rss::peak_rss_kib(served.child.id()).unwrap_or(0);
    (peak as f64 / 1024.0, seconds)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("small file (baseline)", None),
        ("one 300 MB element", Some(300)),
        ("one element declaring 4 GiB", Some(4096 + 1)),
    ];
    println!("| upload | file KB | ingest peak RSS MB | ingest s | serve peak RSS MB | serve s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, mib) in cases {
        let file = dir.path().join("upload.json.gz");
        match mib {
            Some(mib) => huge_element(&file, mib),
            None => small_file(&file),
        }
        let kb = std::fs::metadata(&file).map_or(0, |m| m.len()) / 1024;
        let (ingest_mb, ingest_s) = ingest(&file);
        let (serve_mb, serve_s) = serve(&file);
        println!(
            "| {name} | {kb} | {ingest_mb:.1} | {ingest_s:.1} | {serve_mb:.1} | {serve_s:.1} |"
        );
    }
}
