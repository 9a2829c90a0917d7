//! `ludex serve` as a real process on a random port: the inbox (a watched folder, or a listed
//! S3 bucket on moto), and a clean stop on SIGTERM.

use crate::moto;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) address: String,
}

impl Server {
    fn start(data: &Path) -> Self {
        Self::start_with(data, &[], &[])
    }

    pub(crate) fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_ludex")), data, args, env)
    }

    /// Starts the server under an open-files limit (soft and hard), as `ulimit -n` sets it.
    fn start_with_open_files(data: &Path, args: &[&str], open_files: u32) -> Self {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_ludex"));
        Self::spawn(shell, data, args, &[])
    }

    fn spawn(mut command: Command, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = command
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ludex serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self { child, address }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut stream)
    }

    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn poll(within: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "not within {within:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
    started.elapsed()
}

fn create_key(data: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .arg("--data-dir")
        .arg(data)
        .args(["keys", "create", "--name", "test"])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn files_in_the_inbox_are_ingested_at_start_and_as_they_arrive() {
    let data = tempfile::tempdir().unwrap();
    let uploads = data.path().join("bucket/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::copy(
        examples().join("bad-games.ndjson"),
        uploads.join("bad-games.ndjson"),
    )
    .unwrap();
    let server = Server::start(data.path());
    poll(Duration::from_secs(10), || {
        server.get("/games/spelunky-2").0 == 200
    });

    std::fs::copy(
        examples().join("games.ndjson"),
        uploads.join("games.ndjson"),
    )
    .unwrap();
    let took = poll(Duration::from_secs(10), || {
        server.get("/games/hades").0 == 200
    });
    assert!(
        took < Duration::from_secs(2),
        "ingested {took:?} after it appeared"
    );
    // A batch's games are readable before the upload's ledger entry is closed: wait for it.
    let mut statuses = Vec::new();
    poll(Duration::from_secs(10), || {
        let (_, body) = server.get("/ingests");
        let ledger: Value = serde_json::from_str(&body).unwrap();
        statuses = ledger["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap().to_owned())
            .collect();
        !statuses.iter().any(|s| s == "running")
    });
    assert_eq!(statuses, ["succeeded", "partially_failed"]);
    server.terminate();
}

#[test]
fn with_an_s3_bucket_uploads_are_found_by_listing_and_ingested() {
    let Some(endpoint) = moto::endpoint("serve over an S3 bucket") else {
        return;
    };
    let (_data, key, server, _) = serve_over_moto(&endpoint, "ludex-serve");
    let body = std::fs::read(examples().join("games.ndjson")).unwrap();
    let mut stream = start_upload(&server.address, &key, &body);
    stream.write_all(&body[body.len() / 2..]).unwrap();
    let (status, reply) = read_response(&mut stream);
    assert_eq!(status, 202, "{reply}");
    let accepted: Value = serde_json::from_str(&reply).unwrap();
    let ingest = format!("/ingests/{}", accepted["ingest_id"].as_str().unwrap());
    poll(Duration::from_secs(10), || {
        server.get(&ingest).1.contains("\"succeeded\"")
    });
    assert_eq!(server.get("/games/hades").0, 200);
    // A few more listings find the same file.
    std::thread::sleep(Duration::from_millis(800));
    let (_, ledger) = server.get("/ingests");
    let ledger: Value = serde_json::from_str(&ledger).unwrap();
    assert_eq!(
        ledger["items"].as_array().unwrap().len(),
        1,
        "listing again does not ingest again: {ledger}"
    );
    server.terminate();
}

/// Sends the head of an upload and half its body; the rest is up to the caller.
fn start_upload(address: &str, key: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /uploads?filename=late.ndjson HTTP/1.1\r\nHost: ludex\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..body.len() / 2]).unwrap();
    stream.flush().unwrap();
    stream
}

#[test]
fn sigterm_during_an_upload_finishes_it_then_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    let body = std::fs::read(examples().join("games.ndjson")).unwrap();
    let server = Server::start(data.path());
    let mut stream = start_upload(&server.address, &key, &body);
    std::thread::sleep(Duration::from_millis(200));
    server.terminate();
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(&body[body.len() / 2..]).unwrap();
    let (status, reply) = read_response(&mut stream);
    assert_eq!(status, 202, "{reply}");
    let exit = server.wait(Duration::from_secs(10));
    assert!(exit.success(), "{exit}");
    let stored = std::fs::read(data.path().join("bucket/uploads/late.ndjson")).unwrap();
    assert_eq!(stored, body, "the upload is stored whole");

    // The next start ingests what arrived during the stop.
    let server = Server::start(data.path());
    poll(Duration::from_secs(10), || {
        server.get("/games/hades").0 == 200
    });
}

#[test]
fn an_upload_cut_off_by_the_client_leaves_nothing_half_written() {
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    let body = std::fs::read(examples().join("games.ndjson")).unwrap();
    let server = Server::start(data.path());
    let stream = start_upload(&server.address, &key, &body);
    std::thread::sleep(Duration::from_millis(200));
    drop(stream);
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    assert!(server.wait(Duration::from_secs(10)).success());
    let left: Vec<String> = std::fs::read_dir(data.path().join("bucket/uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let ledger = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .arg("--data-dir")
        .arg(data.path())
        .arg("ingests")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ledger.stdout),
        "",
        "no ledger entry either"
    );
}

/// The ledger of a running server once no ingest is running, oldest first.
fn settled_ledger(server: &Server) -> Vec<Value> {
    let mut entries = Vec::new();
    poll(Duration::from_secs(10), || {
        let (_, body) = server.get("/ingests?limit=100");
        let ledger: Value = serde_json::from_str(&body).unwrap();
        entries = ledger["items"].as_array().unwrap().clone();
        entries.iter().all(|e| e["status"] != "running")
    });
    entries.reverse();
    entries
}

#[test]
fn a_file_written_in_two_parts_is_ingested_once_whole() {
    let data = tempfile::tempdir().unwrap();
    let uploads = data.path().join("bucket/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let server = Server::start(data.path());
    // The watcher is up once a first file is ingested (a file being written while the server
    // starts is only checked for a quiet period: docs/limits.md).
    std::fs::write(uploads.join("first.ndjson"), "{\"title\":\"First\"}\n").unwrap();
    poll(Duration::from_secs(10), || {
        server.get("/games/first").0 == 200
    });
    let body = std::fs::read(examples().join("games.ndjson")).unwrap();
    let half = body.len() / 2;

    let mut file = std::fs::File::create(uploads.join("slow.ndjson")).unwrap();
    file.write_all(&body[..half]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    file.write_all(&body[half..]).unwrap();
    drop(file);
    poll(Duration::from_secs(10), || {
        server.get("/games/hades").0 == 200
    });
    std::thread::sleep(Duration::from_secs(1));

    let entries: Vec<Value> = settled_ledger(&server)
        .into_iter()
        .filter(|e| e["key"] == "uploads/slow.ndjson")
        .collect();
    let statuses: Vec<_> = entries.iter().map(|e| e["status"].clone()).collect();
    assert_eq!(statuses, ["succeeded"], "{entries:?}");
    assert_eq!(entries[0]["size"], body.len());
    server.terminate();
}

#[test]
fn dot_files_are_not_ingested_until_renamed() {
    let data = tempfile::tempdir().unwrap();
    let uploads = data.path().join("bucket/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let server = Server::start(data.path());

    for name in [".games.ndjson", "games.ndjson.part", "games.ndjson.tmp"] {
        std::fs::copy(examples().join("games.ndjson"), uploads.join(name)).unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(settled_ledger(&server), Vec::<Value>::new());

    std::fs::rename(uploads.join(".games.ndjson"), uploads.join("games.ndjson")).unwrap();
    poll(Duration::from_secs(10), || {
        server.get("/games/hades").0 == 200
    });
    let entries = settled_ledger(&server);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["key"], "uploads/games.ndjson");
    server.terminate();
}

#[test]
fn content_that_comes_back_to_an_inbox_file_is_ingested_again() {
    let data = tempfile::tempdir().unwrap();
    let uploads = data.path().join("bucket/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let server = Server::start(data.path());
    let file = uploads.join("comeback.ndjson");
    let upload = |title: &str, entries: usize| {
        std::fs::write(
            &file,
            format!("{{\"id\":\"comeback\",\"title\":\"{title}\"}}\n"),
        )
        .unwrap();
        poll(Duration::from_secs(10), || {
            let (status, body) = server.get("/games/comeback");
            status == 200 && body.contains(&format!("\"title\":\"{title}\""))
        });
        assert_eq!(settled_ledger(&server).len(), entries);
    };
    upload("A", 1);
    upload("B", 2);
    upload("A", 3);
    server.terminate();
}

/// Writes a request head one byte at a time, `every` apart, until the server closes the
/// connection; returns how long it stayed open.
fn slow_client(address: String, every: Duration) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let Ok(mut stream) = TcpStream::connect(&address) else {
            return started.elapsed();
        };
        let head = b"GET /games HTTP/1.1\r\nHost: ludex\r\nX-Slow: ";
        let mut bytes = head.iter().chain(std::iter::repeat(&b'a'));
        while started.elapsed() < Duration::from_secs(30) {
            let byte = bytes.next().copied().unwrap_or(b'a');
            if stream.write_all(&[byte]).is_err() {
                break;
            }
            std::thread::sleep(every);
        }
        started.elapsed()
    })
}

/// Sends one request on a keep-alive connection, reads its response, and says nothing more:
/// returns the connection for the caller to watch.
fn idle_client(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: ludex\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        // A server too busy to answer still has the connection held open: that is the point.
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    stream
}

/// How long until the server closes a connection it holds (reads return end of file).
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
}

#[test]
fn slow_headers_and_idle_connections_are_closed_after_their_timeouts() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        data.path(),
        &["--header-timeout", "1", "--idle-timeout", "3"],
        &[],
    );
    let slow = slow_client(server.address.clone(), Duration::from_millis(200));
    let mut idle = idle_client(&server.address);
    let mut silent = TcpStream::connect(&server.address).unwrap();
    let held = slow.join().unwrap();
    assert!(
        held >= Duration::from_millis(800) && held < Duration::from_secs(3),
        "a head sent one byte at a time was cut off after {held:?}"
    );
    let silent_for = closed_within(&mut silent, Duration::from_secs(5));
    assert!(
        silent_for < Duration::from_secs(3),
        "a connection that sends nothing waits for a head: closed after {silent_for:?}"
    );
    let idle_for = closed_within(&mut idle, Duration::from_secs(8));
    assert!(
        idle_for >= Duration::from_millis(1500) && idle_for < Duration::from_secs(5),
        "a kept-alive connection is closed by the idle timeout, not the header one: {idle_for:?}"
    );
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn slow_and_idle_clients_cannot_starve_requests_under_a_low_open_files_limit() {
    let data = tempfile::tempdir().unwrap();
    // Timeouts far longer than the test: only the connection budget can keep requests going.
    let server = Server::start_with_open_files(
        data.path(),
        &["--header-timeout", "60", "--idle-timeout", "60"],
        128,
    );
    // More clients than the server has file handles for.
    let slow: Vec<_> = (0..60)
        .map(|_| slow_client(server.address.clone(), Duration::from_millis(300)))
        .collect();
    let idle: Vec<_> = (0..60)
        .filter_map(|_| std::panic::catch_unwind(|| idle_client(&server.address)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < Duration::from_secs(4) {
        let mut stream = TcpStream::connect(&server.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET /games?limit=1 HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw);
        answers.push(raw.lines().next().unwrap_or("no answer").to_owned());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answers.len() >= 10, "{answers:?}");
    assert!(
        answers.iter().all(|a| a.starts_with("HTTP/1.1 200")),
        "every ordinary request is answered: {answers:?}"
    );
    drop(idle);
    drop(server);
    for client in slow {
        client.join().unwrap();
    }
}

#[test]
fn an_upload_body_that_stalls_fails_after_the_body_timeout_and_stores_nothing() {
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    let body = std::fs::read(examples().join("games.ndjson")).unwrap();
    let server = Server::start_with(data.path(), &["--body-timeout", "1"], &[]);
    let mut stream = start_upload(&server.address, &key, &body);
    let started = Instant::now();
    let (status, reply) = read_response(&mut stream);
    assert_eq!(status, 408, "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!data.path().join("bucket/uploads/late.ndjson").exists());

    // The same through a form.
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let part = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.ndjson\"\r\n\
                Content-Type: application/x-ndjson\r\n\r\n";
    write!(
        stream,
        "POST /uploads HTTP/1.1\r\nHost: ludex\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{part}",
        part.len() + body.len() + 8
    )
    .unwrap();
    stream.write_all(&body[..body.len() / 2]).unwrap();
    let (status, reply) = read_response(&mut stream);
    assert_eq!(status, 408, "{reply}");
    assert!(!data.path().join("bucket/uploads/form.ndjson").exists());
}

/// The whole raw response to a raw request.
fn exchange(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    raw
}

/// `name=value` of a cookie a raw response sets.
fn set_cookie(raw: &str, name: &str) -> String {
    raw.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {raw}"))
        .to_owned()
}

/// Signs in through the web UI's form; returns the session cookie and the CSRF token.
fn sign_in(server: &Server, key: &str) -> (String, String) {
    let page = exchange(
        &server.address,
        "GET /ui/sign-in HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\n\r\n",
    );
    let marker = "name=\"sign_in_token\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let token = page[start..].split('"').next().unwrap();
    let form = format!("key={key}&next=%2F&sign_in_token={token}");
    let signed_in = exchange(
        &server.address,
        &format!(
            "POST /ui/sign-in HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\nCookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            set_cookie(&page, "ludex_sign_in"),
            form.len()
        ),
    );
    let cookie = set_cookie(&signed_in, "ludex_session");
    let home = signed_in_page(server, &cookie);
    let marker = "<meta name=\"csrf-token\" content=\"";
    let start = home.find(marker).expect("signed in") + marker.len();
    (cookie, home[start..].split('"').next().unwrap().to_owned())
}

fn signed_in_page(server: &Server, cookie: &str) -> String {
    exchange(
        &server.address,
        &format!("GET / HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"),
    )
}

#[test]
fn a_web_ui_session_survives_a_restart_and_works_on_a_second_process() {
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    let first = Server::start(data.path());
    let (cookie, csrf) = sign_in(&first, &key);
    // A second process over the same data folder (and so the same session secret).
    let second = Server::start(data.path());
    let body = r#"{"id":"from-second","title":"From the second process"}"#;
    let created = exchange(
        &second.address,
        &format!(
            "POST /games HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    drop(second);
    first.terminate();
    assert!(first.wait(Duration::from_secs(10)).success());
    let restarted = Server::start(data.path());
    assert!(
        signed_in_page(&restarted, &cookie).contains("Sign out"),
        "still signed in after the restart"
    );
    // The secret is kept in the data folder, readable by its owner only.
    let secret = std::fs::metadata(data.path().join("session-secret")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&secret.permissions()) & 0o777,
        0o600
    );
}

#[test]
fn a_200_mb_upload_sent_at_5_mb_a_second_outlasts_the_request_timeout_and_is_stored_whole() {
    // 40 seconds of upload: longer than the 30 s whole-request timeout every other request
    // has. An upload is bounded by the body timeout (between chunks) and its size instead.
    const MIB: usize = 1024 * 1024;
    const SIZE: usize = 200 * MIB;
    const CHUNK: usize = 256 * 1024; // every 50 ms: 5 MiB/s
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    let server = Server::start(data.path());
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "POST /uploads?filename=big.ndjson HTTP/1.1\r\nHost: ludex\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Records of 32 bytes each, numbered, so the file is a real catalog.
    let mut line = 0u64;
    let started = Instant::now();
    for chunk in 0..SIZE / CHUNK {
        let mut body = Vec::with_capacity(CHUNK);
        while body.len() < CHUNK {
            body.extend_from_slice(format!("{{\"title\":\"Game {line:010}\"}}    \n").as_bytes());
            line += 1;
        }
        stream.write_all(&body).unwrap();
        let due = started + Duration::from_millis(50 * (chunk as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let (status, reply) = read_response(&mut stream);
    let took = started.elapsed();
    assert_eq!(status, 202, "{reply}");
    assert!(took > Duration::from_secs(35), "the upload took {took:?}");
    let accepted: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(accepted["size"], SIZE, "{reply}");
    let stored = std::fs::metadata(data.path().join("bucket/uploads/big.ndjson")).unwrap();
    assert_eq!(stored.len() as usize, SIZE);
}

#[test]
fn sign_in_attempts_over_the_limit_from_one_address_are_answered_429() {
    let data = tempfile::tempdir().unwrap();
    create_key(data.path());
    let server = Server::start_with(data.path(), &["--sign-in-rate-limit", "2"], &[]);
    let attempt = || {
        let form = "key=wrong&next=%2F&sign_in_token=x";
        exchange(
            &server.address,
            &format!(
                "POST /ui/sign-in HTTP/1.1\r\nHost: ludex\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
                form.len()
            ),
        )
    };
    // Two attempts get an answer (a refused form), the third from this address is limited.
    for _ in 0..2 {
        assert!(attempt().starts_with("HTTP/1.1 403"));
    }
    let limited = attempt();
    assert!(limited.starts_with("HTTP/1.1 429"), "{limited}");
    assert!(
        limited.to_ascii_lowercase().contains("retry-after: "),
        "{limited}"
    );
    assert!(limited.contains("/problems/too-many-requests"), "{limited}");
}

/// `ludex upload FILE --api ADDRESS` with a write key.
fn ludex_upload(address: &str, key: &str, file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ludex"))
        .args([
            "upload",
            "--api",
            &format!("http://{address}"),
            "--wait",
            "30",
        ])
        .arg(file)
        .env("LUDEX_API_KEY", key)
        .output()
        .unwrap()
}

/// Creates a moto bucket with the unsigned CreateBucket of the S3 REST API.
pub(crate) fn moto_bucket(endpoint: &str, prefix: &str) -> String {
    let bucket = moto::unique_name(prefix);
    let mut stream = TcpStream::connect(endpoint.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    assert_eq!(read_response(&mut stream).0, 200);
    bucket
}

/// `ludex serve` over a fresh moto bucket named after `prefix`, listing it every 0.2 s; the
/// data directory, a write key, the server and the bucket's name.
fn serve_over_moto(endpoint: &str, prefix: &str) -> (tempfile::TempDir, String, Server, String) {
    let bucket = moto_bucket(endpoint, prefix);
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    let server = Server::start_with(
        data.path(),
        &[
            "--bucket",
            &format!("s3://{bucket}"),
            "--poll-seconds",
            "0.2",
        ],
        &[("LUDEX_S3_ENDPOINT", endpoint)],
    );
    (data, key, server, bucket)
}

/// Uploads the examples with `ludex upload` and checks what landed: the good file whole, the
/// bad one with its rejects (exit code 3), one ledger entry each under `uploads/`.
fn upload_the_examples(server: &Server, key: &str) {
    let good = ludex_upload(&server.address, key, &examples().join("games.ndjson"));
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert_eq!(server.get("/games/hades").0, 200);
    let bad = ludex_upload(&server.address, key, &examples().join("bad-games.ndjson"));
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("partially_failed"), "{stdout}");
    let (_, ledger) = server.get("/ingests");
    let ledger: Value = serde_json::from_str(&ledger).unwrap();
    let mut keys: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["uploads/bad-games.ndjson", "uploads/games.ndjson"]);
    // A wrong key is told apart from a failed file.
    let refused = ludex_upload(&server.address, "nope", &examples().join("games.ndjson"));
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
}

#[test]
fn ludex_upload_sends_files_through_the_server_s_own_direct_urls() {
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    let server = Server::start(data.path());
    upload_the_examples(&server, &key);
    server.terminate();
}

#[test]
fn ludex_upload_sends_files_through_s3_presigned_urls() {
    let Some(endpoint) = moto::endpoint("direct uploads to an S3 bucket") else {
        return;
    };
    let (_data, key, server, bucket) = serve_over_moto(&endpoint, "ludex-direct");
    // The URL is moto's, signed for the object's key, size and type.
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "POST /uploads/presign?filename=games.ndjson&size=10 HTTP/1.1\r\nHost: ludex\r\n\
         Authorization: Bearer {key}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (status, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{body}");
    let grant: Value = serde_json::from_str(&body).unwrap();
    let url = grant["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{endpoint}/{bucket}/uploads/games.ndjson?")),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "{url}"
    );
    upload_the_examples(&server, &key);
    server.terminate();
}

/// `ludex --data-dir DATA ARGS…`.
fn ludex_in(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ludex"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_backup_taken_while_games_are_written_is_consistent_and_restores() {
    let data = tempfile::tempdir().unwrap();
    let catalog = data.path().join("catalog.ndjson");
    let path = catalog.to_str().unwrap();
    assert!(
        ludex_in(
            data.path(),
            &["generate", "--count", "20000", "--output", path]
        )
        .status
        .success()
    );
    assert!(ludex_in(data.path(), &["ingest", path]).status.success());
    let key = create_key(data.path());
    let server = Server::start(data.path());

    // A writer creates games one after another for as long as the backups run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (address, key, stop) = (server.address.clone(), key.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut created = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = format!(
                    "{{\"id\": \"during-{created}\", \"title\": \"During {created}\", \"platforms\": [\"PC\"], \"rating\": 7}}"
                );
                let reply = exchange(
                    &address,
                    &format!(
                        "POST /games HTTP/1.1\r\nHost: ludex\r\nAuthorization: Bearer {key}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                );
                assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
                created += 1;
            }
            created
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let backups = tempfile::tempdir().unwrap();
    let mut snapshots = Vec::new();
    for i in 0..3 {
        let file = backups.path().join(format!("ludex-{i}.db"));
        let out = ludex_in(data.path(), &["backup", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        snapshots.push(file);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let created = writer.join().unwrap();
    assert!(created > 0);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut sizes = Vec::new();
    for file in &snapshots {
        // Each snapshot is one moment: its aggregates are exactly its games' (they are
        // written in the same transactions), and its ledger is whole.
        let stores = runtime
            .block_on(ludex::store::open(&format!("sqlite://{}", file.display())))
            .unwrap();
        let mut games = Vec::new();
        let mut query = ludex_domain::ListQuery {
            limit: 100,
            ..Default::default()
        };
        loop {
            let page = runtime.block_on(stores.catalog.list(&query)).unwrap();
            games.extend(page.items.iter().map(|g| g.game().unwrap()));
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        let counts = runtime.block_on(stores.catalog.counts()).unwrap();
        assert_eq!(counts, ludex_domain::CatalogCounts::of_games(&games));
        assert!(games.len() >= 20_000 && games.len() <= 20_000 + created as usize);
        sizes.push(games.len());
    }
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    server.terminate();

    // A backup is never overwritten, a file that is not a ludex database is refused and the
    // store left as it was, and another store is pointed to its own backups.
    let again = ludex_in(data.path(), &["backup", snapshots[0].to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    let elsewhere = tempfile::tempdir().unwrap();
    let not_ludex = ludex_in(
        elsewhere.path(),
        &["restore", examples().join("games.json").to_str().unwrap()],
    );
    assert_eq!(not_ludex.status.code(), Some(1));
    let postgres = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .args([
            "--store",
            "postgres://nobody@127.0.0.1:1/none",
            "backup",
            "x.db",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&postgres.stderr).contains("docs/operations.md"));

    // The last snapshot restores into another data directory, games and ledger.
    let out = ludex_in(
        elsewhere.path(),
        &["restore", snapshots[2].to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = Server::start(elsewhere.path());
    let (_, page) = restored.get("/ingests");
    assert!(page.contains("catalog.ndjson"), "{page}");
    let last = format!("/games/during-{}", sizes[2] - 20_001);
    assert_eq!(restored.get(&last).0, 200, "{last}");
    restored.terminate();
}

/// The raw response to a raw request, or `None` when the server is gone.
fn try_exchange(address: &str, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    Some(raw)
}

#[test]
fn every_write_acknowledged_before_a_kill_9_is_in_the_catalog_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let key = create_key(data.path());
    // Unlimited writes: the burst is the point, not the rate limit.
    let server = Server::start_with(data.path(), &["--write-rate-limit", "0"], &[]);
    let request = move |method: &str, path: &str, headers: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: ludex\r\nAuthorization: Bearer {key}\r\n{headers}\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let created = exchange(
        &server.address,
        &request(
            "POST",
            "/games",
            "",
            r#"{"id": "edited", "title": "Edited 0"}"#,
        ),
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");

    // Four writers create games and one edits a game with If-Match, until the kill; each
    // keeps what was acknowledged.
    let creators: Vec<_> = (0..4)
        .map(|t| {
            let (address, request) = (server.address.clone(), request.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for n in 0.. {
                    let id = format!("w{t}-{n}");
                    let body = format!(r#"{{"id": "{id}", "title": "Written {t} {n}"}}"#);
                    match try_exchange(&address, &request("POST", "/games", "", &body)) {
                        Some(reply) if reply.starts_with("HTTP/1.1 201") => acknowledged.push(id),
                        Some(reply) if reply.is_empty() => break,
                        Some(reply) => panic!("{reply}"),
                        None => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    let editor = {
        let (address, request) = (server.address.clone(), request.clone());
        std::thread::spawn(move || {
            let mut acknowledged = (1u64, "Edited 0".to_owned());
            loop {
                let title = format!("Edited {}", acknowledged.0);
                let reply = try_exchange(
                    &address,
                    &request(
                        "PATCH",
                        "/games/edited",
                        &format!("If-Match: \"{}\"\r\n", acknowledged.0),
                        &format!(r#"{{"title": "{title}"}}"#),
                    ),
                );
                match reply {
                    Some(reply) if reply.starts_with("HTTP/1.1 200") => {
                        acknowledged = (acknowledged.0 + 1, title);
                    }
                    Some(reply) if reply.is_empty() => return acknowledged,
                    Some(reply) => panic!("{reply}"),
                    None => return acknowledged,
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL: no chance to flush or close anything
    server.child.wait().unwrap();
    let acknowledged: Vec<String> = creators
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let (version, title) = editor.join().unwrap();
    assert!(
        acknowledged.len() > 20,
        "only {} writes",
        acknowledged.len()
    );
    assert!(version > 2, "only {version} edits");

    let restarted = Server::start(data.path());
    for id in &acknowledged {
        assert_eq!(
            restarted.get(&format!("/games/{id}")).0,
            200,
            "{id} was lost"
        );
    }
    let (status, body) = restarted.get("/games/edited");
    assert_eq!(status, 200);
    let game: Value = serde_json::from_str(&body).unwrap();
    let stored = game["version"].as_u64().unwrap();
    // The edit in flight at the kill may have landed unacknowledged; none acknowledged is lost.
    assert!(
        stored == version || stored == version + 1,
        "{stored} vs {version}"
    );
    if stored == version {
        assert_eq!(game["title"], title.as_str());
    }
    restarted.terminate();
}

#[test]
fn empty_variables_count_as_unset_and_set_ones_are_parsed_as_their_options() {
    let data = tempfile::tempdir().unwrap();
    let empty = [
        "LUDEX_STORE",
        "LUDEX_BUCKET",
        "LUDEX_READS_REQUIRE_KEY",
        "LUDEX_CORS_ORIGINS",
        "LUDEX_SESSION_SECRET",
    ]
    .map(|name| (name, ""));
    let server = Server::start_with(data.path(), &[], &empty);
    assert_eq!(server.get("/games").0, 200, "reads stay public");
    drop(server);

    for yes in ["true", "yes", "1"] {
        let server = Server::start_with(data.path(), &[], &[("LUDEX_READS_REQUIRE_KEY", yes)]);
        assert_eq!(server.get("/games").0, 401, "LUDEX_READS_REQUIRE_KEY={yes}");
    }

    // Values clap refuses are usage errors (2); the session secret is checked after parsing
    // (1, bad settings), so that no message repeats it.
    for (name, value, code, expected) in [
        ("LUDEX_READS_REQUIRE_KEY", "maybe", 2, "--reads-require-key"),
        (
            "LUDEX_CORS_ORIGINS",
            "games.example",
            2,
            "starts with https://",
        ),
        (
            "LUDEX_SESSION_SECRET",
            "tooshort-secret",
            1,
            "at least 32 bytes",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ludex"))
            .arg("--data-dir")
            .arg(data.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(code),
            "{name}={value}: {output:?}"
        );
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(expected), "{name}={value}: {message}");
        if name == "LUDEX_SESSION_SECRET" {
            assert!(
                !message.contains(value),
                "a secret is never echoed: {message}"
            );
        }
    }
}

/// `serve --history-keep-versions` prunes the history it finds as it starts (and every ten
/// minutes after).
#[test]
fn serve_prunes_the_history_to_the_versions_it_keeps() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    for title in ["One", "Two", "Three", "Four"] {
        let file = files.path().join(format!("{title}.ndjson"));
        std::fs::write(
            &file,
            format!("{{\"id\":\"kept\",\"title\":\"{title}\"}}\n"),
        )
        .unwrap();
        let status = Command::new(env!("CARGO_BIN_EXE_ludex"))
            .arg("--data-dir")
            .arg(data.path())
            .arg("ingest")
            .arg(&file)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let versions = |server: &Server| -> Vec<u64> {
        let (status, body) = server.get("/games/kept/history");
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    let all = Server::start(data.path());
    assert_eq!(
        versions(&all),
        [4, 3, 2, 1],
        "everything is kept by default"
    );
    drop(all);
    let pruning = Server::start_with(data.path(), &[], &[("LUDEX_HISTORY_KEEP_VERSIONS", "1")]);
    poll(Duration::from_secs(10), || versions(&pruning) == [4, 3]);
}
