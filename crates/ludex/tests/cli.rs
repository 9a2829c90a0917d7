//! The `ludex` binary driven as a user would: real files, a real data directory, real processes.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn ludex(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ludex"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("the ludex binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The catalog as exported, without the server-kept fields that differ between catalogs,
/// in id order.
fn exported_content(data_dir: &Path) -> Vec<Value> {
    let output = ludex(data_dir, &["export"]);
    assert!(output.status.success(), "{output:?}");
    let mut games: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| {
            let mut game: Value = serde_json::from_str(line).unwrap();
            let object = game.as_object_mut().unwrap();
            for field in ["created_at", "updated_at", "version"] {
                object.remove(field);
            }
            game
        })
        .collect();
    games.sort_by_key(|g| g["id"].as_str().unwrap_or_default().to_owned());
    games
}

#[test]
fn bad_records_are_printed_with_line_and_reason_and_the_good_ones_land() {
    let data = tempfile::tempdir().unwrap();
    let output = ludex(
        data.path(),
        &[
            "ingest",
            examples().join("bad-games.ndjson").to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let text = stdout(&output);
    for expected in [
        "partially_failed — 3 accepted",
        "7 rejected",
        "line 2: rating: 11.5 is above the maximum 10",
        "line 3: title: is required",
        "line 4: malformed JSON at column 38",
        "line 5: release_date: 2019-02-30 does not exist",
        "line 7: platforms: expected a list of strings, found a string; price: expected a number, found a string",
        "line 8: id: mass-effect-2 appears earlier in this file, at line 1",
        "currency: \"DOLLARS\" is not an ISO 4217 currency code",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // The report is named by its ingest; the output says where it is.
    let report = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("rejects report: "))
        .expect("the output names the rejects report");
    assert!(
        report.starts_with(&format!(
            "{}/rejected/bad-games.ndjson.",
            data.path().join("bucket").display()
        )) && report.ends_with(".errors.ndjson"),
        "{report}"
    );
    let report = std::fs::read_to_string(report).expect("the rejects report is written");
    let lines: Vec<Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["errors"][0]["field"], "rating");
    for id in ["mass-effect-2", "fallout-new-vegas", "spelunky-2"] {
        let got = ludex(data.path(), &["games", "get", id]);
        assert!(got.status.success(), "{id} landed: {got:?}");
    }
    let first: Value = serde_json::from_str(&stdout(&ludex(
        data.path(),
        &["games", "get", "mass-effect-2"],
    )))
    .unwrap();
    assert_eq!(
        first["title"], "Mass Effect 2",
        "the duplicate did not overwrite"
    );
}

#[test]
fn ingesting_the_same_file_twice_changes_neither_catalog_nor_ledger() {
    let data = tempfile::tempdir().unwrap();
    let file = examples().join("games.ndjson");
    let first = ludex(data.path(), &["ingest", file.to_str().unwrap()]);
    assert!(first.status.success(), "{first:?}");
    let catalog = stdout(&ludex(data.path(), &["export"]));
    let ledger = stdout(&ludex(data.path(), &["ingests"]));
    assert_eq!(ledger.lines().count(), 1);

    let again = ludex(data.path(), &["ingest", file.to_str().unwrap()]);
    assert!(again.status.success(), "{again:?}");
    assert!(stdout(&again).contains("already ingested"), "{again:?}");
    assert_eq!(stdout(&ludex(data.path(), &["export"])), catalog);
    assert_eq!(stdout(&ludex(data.path(), &["ingests"])), ledger);
}

#[test]
fn the_same_records_in_a_new_file_land_unchanged_and_changed_records_are_updated() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(examples().join("games.ndjson")).unwrap();
    let copy = dir.path().join("copy.ndjson");
    std::fs::write(&copy, &original).unwrap();
    ludex(
        data.path(),
        &["ingest", examples().join("games.ndjson").to_str().unwrap()],
    );
    let before = stdout(&ludex(data.path(), &["export"]));

    let same = stdout(&ludex(data.path(), &["ingest", copy.to_str().unwrap()]));
    assert!(same.contains("(0 new, 0 changed, 24 unchanged)"), "{same}");
    assert_eq!(stdout(&ludex(data.path(), &["export"])), before);

    std::fs::write(
        &copy,
        original.replace(
            "\"rating\":9.3,\"price\":24.99",
            "\"rating\":9.4,\"price\":24.99",
        ),
    )
    .unwrap();
    let changed = stdout(&ludex(data.path(), &["ingest", copy.to_str().unwrap()]));
    assert!(
        changed.contains("(0 new, 1 changed, 23 unchanged)"),
        "{changed}"
    );
    let hades: Value =
        serde_json::from_str(&stdout(&ludex(data.path(), &["games", "get", "hades"]))).unwrap();
    assert_eq!(hades["rating"], 9.4);
    assert_eq!(hades["version"], 2);
}

#[test]
fn a_dry_run_tells_new_changed_unchanged_and_rejected_and_writes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let games = examples().join("games.ndjson");
    ludex(data.path(), &["ingest", games.to_str().unwrap()]);
    let before = stdout(&ludex(data.path(), &["export"]));
    let ledger = stdout(&ludex(data.path(), &["ingests"]));
    let edited = std::fs::read_to_string(&games).unwrap().replace(
        "\"rating\":9.3,\"price\":24.99",
        "\"rating\":9.4,\"price\":24.99",
    ) + "{\"id\": \"brand-new\", \"title\": \"Brand New\"}\n{\"title\": \"Broken\", \"rating\": 99}\n";
    let file = dir.path().join("edited.ndjson");
    std::fs::write(&file, edited).unwrap();

    let dry = ludex(
        data.path(),
        &["ingest", "--dry-run", file.to_str().unwrap()],
    );
    let text = stdout(&dry);
    assert_eq!(
        dry.status.code(),
        Some(3),
        "rejects make it exit as the ingest would: {text}"
    );
    assert!(
        text.contains(
            "dry run, nothing written — 26 records: 1 new, 1 changed, 23 unchanged, 1 rejected"
        ),
        "{text}"
    );
    assert!(text.contains("  hades (line "), "{text}");
    assert!(text.contains("    rating: 9.3 → 9.4"), "{text}");
    assert!(
        text.contains("line 26: rating: 99 is above the maximum 10"),
        "{text}"
    );
    assert_eq!(
        stdout(&ludex(data.path(), &["export"])),
        before,
        "no game written"
    );
    assert_eq!(
        stdout(&ludex(data.path(), &["ingests"])),
        ledger,
        "no ledger entry"
    );
    assert!(
        !data.path().join("bucket/rejected").exists(),
        "no rejects report"
    );

    let json = ludex(
        data.path(),
        &["ingest", "--dry-run", "--json", file.to_str().unwrap()],
    );
    let line: Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(line["dry_run"], true);
    assert_eq!(
        line["preview"]["changes"][0]["fields"],
        json!([{"field": "rating", "from": 9.3, "to": 9.4}])
    );

    let applied = stdout(&ludex(data.path(), &["ingest", file.to_str().unwrap()]));
    assert!(
        applied.contains("(1 new, 1 changed, 23 unchanged), 1 rejected"),
        "the ingest does what the dry run said: {applied}"
    );
}

#[test]
fn a_csv_file_is_ingested_with_a_mapping_and_its_rejects_name_line_and_column() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spreadsheet.csv");
    std::fs::write(
        &file,
        "\u{feff}Game,Systems,Release Date,Score\nHades,PC;Nintendo Switch,2020-09-17,9.3\nCeleste,PC,2018-01-25,11\n",
    )
    .unwrap();
    let without = ludex(data.path(), &["ingest", file.to_str().unwrap()]);
    assert_eq!(
        without.status.code(),
        Some(4),
        "no title column: the file fails"
    );
    assert!(
        String::from_utf8_lossy(&without.stdout).contains("Game"),
        "the error lists the columns: {}",
        stdout(&without)
    );
    let mapped = ludex(
        data.path(),
        &[
            "ingest",
            "--map",
            "Game=title,Systems=platforms,Score=rating",
            file.to_str().unwrap(),
        ],
    );
    let text = stdout(&mapped);
    assert_eq!(mapped.status.code(), Some(3), "{text}");
    assert!(
        text.contains("1 accepted (1 new, 0 changed, 0 unchanged), 1 rejected"),
        "{text}"
    );
    assert!(
        text.contains("line 3: column 4 (\"Score\") rating: 11 is above the maximum 10"),
        "{text}"
    );
    let hades: Value = serde_json::from_str(&stdout(&ludex(
        data.path(),
        &["games", "get", "hades-2020"],
    )))
    .unwrap();
    assert_eq!(hades["platforms"], json!(["PC", "Nintendo Switch"]));
    assert_eq!(hades["release_date"], "2020-09-17");
    let bad = ludex(
        data.path(),
        &["ingest", "--map", "Game=titel", file.to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(2), "a bad mapping is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--map"));
}

#[test]
fn a_merging_import_changes_only_the_fields_its_records_have() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    ludex(
        data.path(),
        &["ingest", examples().join("games.ndjson").to_str().unwrap()],
    );
    let before: Value =
        serde_json::from_str(&stdout(&ludex(data.path(), &["games", "get", "hades"]))).unwrap();
    let file = dir.path().join("ratings.csv");
    std::fs::write(&file, "id,rating,Studio Notes\nhades,9.9,\n").unwrap();

    let replaced = ludex(
        data.path(),
        &["ingest", "--dry-run", file.to_str().unwrap()],
    );
    assert!(
        stdout(&replaced).contains("title: is required"),
        "replacing needs the whole game: {}",
        stdout(&replaced)
    );
    let dry = stdout(&ludex(
        data.path(),
        &["ingest", "--dry-run", "--merge", file.to_str().unwrap()],
    ));
    assert!(dry.contains("1 changed, 0 unchanged, 0 rejected"), "{dry}");
    assert!(dry.contains("    rating: 9.3 → 9.9"), "{dry}");
    assert!(
        !dry.contains("platforms:"),
        "only what the record has changes: {dry}"
    );

    let merged = ludex(
        data.path(),
        &["ingest", "--merge", "--json", file.to_str().unwrap()],
    );
    assert_eq!(merged.status.code(), Some(0), "{}", stdout(&merged));
    let outcome: Value = serde_json::from_str(stdout(&merged).trim()).unwrap();
    assert_eq!(
        outcome["ingest"]["merge"], true,
        "the ledger says how it was applied"
    );
    let after: Value =
        serde_json::from_str(&stdout(&ludex(data.path(), &["games", "get", "hades"]))).unwrap();
    assert_eq!(after["rating"], 9.9);
    for field in ["title", "platforms", "genres", "developer", "tags"] {
        assert_eq!(after[field], before[field], "{field} kept");
    }
    assert!(
        after.get("Studio Notes").is_none(),
        "an empty cell sets nothing"
    );
}

#[test]
fn export_then_ingest_into_an_empty_catalog_gives_the_same_games() {
    let source = tempfile::tempdir().unwrap();
    for file in ["games.ndjson", "games.json"] {
        let out = ludex(
            source.path(),
            &["ingest", examples().join(file).to_str().unwrap()],
        );
        assert!(out.status.success(), "{out:?}");
    }
    let expected = exported_content(source.path());
    assert_eq!(expected.len(), 28);
    for format in ["ndjson", "json"] {
        let target = tempfile::tempdir().unwrap();
        let file = target.path().join(format!("export.{format}"));
        let out = ludex(
            source.path(),
            &[
                "export",
                "--format",
                format,
                "--output",
                file.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let out = ludex(target.path(), &["ingest", file.to_str().unwrap()]);
        assert!(out.status.success(), "{format}: {out:?}");
        assert_eq!(exported_content(target.path()), expected, "{format}");
    }
}

#[test]
fn a_truncated_array_fails_as_a_whole_naming_the_byte_offset() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("truncated.json");
    std::fs::write(&file, br#"[{"title":"Complete"},{"title":"Cut off"#).unwrap();
    let output = ludex(data.path(), &["ingest", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(4));
    let text = stdout(&output);
    assert!(text.contains("truncated.json: failed"), "{text}");
    assert!(text.contains("error: byte 39: invalid JSON"), "{text}");
    assert!(text.contains("truncated"), "{text}");
    let ledger = stdout(&ludex(data.path(), &["ingests"]));
    assert!(ledger.contains("failed"), "{ledger}");
}

#[test]
fn gzip_uploads_and_a_byte_order_mark_are_understood() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("games.ndjson.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(b"\xEF\xBB\xBF{\"title\":\"Zipped\"}\n{\"title\":\"Also zipped\"}\n")
        .unwrap();
    std::fs::write(&file, gz.finish().unwrap()).unwrap();
    let output = ludex(data.path(), &["ingest", file.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains("2 accepted"));
    assert!(
        ludex(data.path(), &["games", "get", "zipped"])
            .status
            .success()
    );
}

fn count_games(db: &Path) -> Option<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.busy_timeout(Duration::from_secs(1)).ok()?;
    conn.query_row("SELECT count(*) FROM games", [], |r| r.get(0))
        .ok()
}

#[test]
fn killing_an_ingest_midway_and_rerunning_leaves_every_record_exactly_once() {
    const RECORDS: i64 = 100_000;
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("big.ndjson");
    let generated = ludex(
        data.path(),
        &[
            "generate",
            "--count",
            &RECORDS.to_string(),
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(generated.status.success());

    let mut child = Command::new(env!("CARGO_BIN_EXE_ludex"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--batch-size", "100", "--ingest-lease-seconds", "2"])
        .args(["ingest", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = data.path().join("ludex.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let landed = loop {
        if let Some(n) = count_games(&db).filter(|&n| n > 0) {
            break n;
        }
        assert!(Instant::now() < deadline, "the ingest never wrote a batch");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let after_kill = count_games(&db).unwrap();
    assert!(
        after_kill < RECORDS,
        "the ingest finished before it was killed ({landed} seen)"
    );
    let ledger = stdout(&ludex(data.path(), &["ingests"]));
    assert!(ledger.contains("running"), "{ledger}");
    assert!(!ledger.contains("succeeded"), "{ledger}");

    // The killed attempt's claim holds for its lease (2 s here): the rerun waits it out, then
    // takes the upload over.
    let rerun = ludex(data.path(), &["ingest", file.to_str().unwrap()]);
    assert!(rerun.status.success(), "{rerun:?}");
    assert!(
        String::from_utf8_lossy(&rerun.stderr).contains("waiting until it ends"),
        "{rerun:?}"
    );
    assert!(
        stdout(&rerun).contains(&format!("succeeded — {RECORDS} accepted")),
        "{}",
        stdout(&rerun)
    );
    assert_eq!(count_games(&db), Some(RECORDS));
    let ledger = stdout(&ludex(data.path(), &["ingests"]));
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    assert!(ledger.contains("succeeded"), "{ledger}");
    let first: Value =
        serde_json::from_str(&stdout(&ludex(data.path(), &["games", "get", "g0000000"]))).unwrap();
    assert_eq!(
        first["version"], 1,
        "records written before the kill are not counted as changed by the rerun"
    );
}

/// The peak resident memory of a running process, in bytes (`VmHWM`).
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Writes `head`, then `size` bytes of `a`, then `tail`, without holding them in memory.
pub fn write_huge(path: &Path, head: &[u8], size: usize, tail: &[u8]) {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(head).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..size / chunk.len() {
        file.write_all(&chunk).unwrap();
    }
    file.write_all(tail).unwrap();
    file.flush().unwrap();
}

/// Memory a huge record may not push the process past.
pub const MEMORY_CEILING: u64 = 100 * 1024 * 1024;

#[test]
fn a_huge_array_element_or_object_is_rejected_in_flat_memory() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let array = dir.path().join("huge-element.json");
    write_huge(
        &array,
        br#"[{"title":"Huge","notes":""#,
        160 << 20,
        br#""}, {"title":"Small after huge"}]"#,
    );
    let object = dir.path().join("huge-object.json");
    write_huge(
        &object,
        b"{\n  \"title\": \"Huge object\",\n  \"notes\": \"",
        160 << 20,
        b"\"\n}\n",
    );
    for (file, landed) in [(&array, Some("small-after-huge")), (&object, None)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ludex"))
            .arg("--data-dir")
            .arg(data.path())
            .args(["ingest", file.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut peak = 0;
        while child.try_wait().unwrap().is_none() {
            peak = peak.max(peak_rss(child.id()).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(5));
        }
        let output = child.wait_with_output().unwrap();
        let text = stdout(&output);
        assert!(
            peak < MEMORY_CEILING,
            "{}: peak RSS {} MiB",
            file.display(),
            peak >> 20
        );
        assert!(
            text.contains("the record is longer than the limit of 1048576 bytes"),
            "{text}"
        );
        if let Some(id) = landed {
            assert!(ludex(data.path(), &["games", "get", id]).status.success());
        }
    }
}

#[test]
fn numbers_in_unknown_fields_are_kept_exactly_as_given() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("numbers.ndjson");
    let given = r#"{"id":"n1","title":"Numbers","big":18446744073709551616,"neg":-0,"exp":1E2,"nested":{"x":1.50,"y":[1e-7, 0.1]}}"#;
    std::fs::write(&file, format!("{given}\n")).unwrap();
    let output = ludex(data.path(), &["ingest", file.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let got = stdout(&ludex(data.path(), &["games", "get", "n1"]));
    for kept in [
        r#""big":18446744073709551616"#,
        r#""neg":-0"#,
        r#""exp":1E2"#,
        r#""nested":{"x":1.50,"y":[1e-7,0.1]}"#,
    ] {
        assert!(got.contains(kept), "{kept} not in {got}");
    }
}

/// Scripts can tell every outcome apart by the exit code alone (`ludex --help` lists them).
#[test]
fn exit_codes_tell_success_rejects_a_failed_file_usage_and_an_unavailable_store_apart() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let code = |args: &[&str]| ludex(data.path(), args).status.code();
    let good = examples().join("games.ndjson");
    let bad = examples().join("bad-games.ndjson");
    let not_json = dir.path().join("notes.json");
    std::fs::write(&not_json, b"these are notes, not games").unwrap();

    assert_eq!(code(&["ingest", good.to_str().unwrap()]), Some(0));
    assert_eq!(code(&["ingest", bad.to_str().unwrap()]), Some(3), "rejects");
    assert_eq!(
        code(&["ingest", not_json.to_str().unwrap()]),
        Some(4),
        "a file that fails as a whole"
    );
    assert_eq!(
        code(&["ingest", bad.to_str().unwrap(), not_json.to_str().unwrap()]),
        Some(4),
        "the worst outcome of several files"
    );
    assert_eq!(code(&["ingest", "--no-such-option"]), Some(2), "usage");
    assert_eq!(
        code(&["games", "list", "--limit", "nine"]),
        Some(2),
        "usage"
    );
    // Nothing listens on port 1: the store is unavailable, and trying again later may work.
    let started = Instant::now();
    assert_eq!(
        code(&[
            "--store",
            "postgres://ludex@127.0.0.1:1/ludex",
            "ingest",
            good.to_str().unwrap()
        ]),
        Some(75),
        "unavailable"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    let help = stdout(&ludex(data.path(), &["--help"]));
    for listed in ["0 ", "1 ", "2 ", "3 ", "4 ", "75 "] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(listed)),
            "exit code {listed}is listed in --help:\n{help}"
        );
    }
}

/// Keys created at the same moment by separate processes are all kept: the key file is
/// changed under a lock and replaced whole.
#[test]
fn keys_created_at_the_same_moment_are_all_kept() {
    let data = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let children: Vec<_> = (0..8)
            .map(|i| {
                Command::new(env!("CARGO_BIN_EXE_ludex"))
                    .arg("--data-dir")
                    .arg(data.path())
                    .args(["keys", "create", "--name", &format!("k{round}-{i}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{output:?}");
        }
    }
    let listed = stdout(&ludex(data.path(), &["keys", "list"]));
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names.len(), 24, "every key is kept:\n{listed}");
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    let data = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef ludex"),
        ("fish", "complete -c ludex"),
    ] {
        let output = ludex(data.path(), &["completions", shell]);
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        // The sorts a listing takes are completed from the domain's list.
        assert!(script.contains("-release_date"), "{shell} completes --sort");
    }
    let page = stdout(&ludex(data.path(), &["man"]));
    assert!(page.contains("\n.TH ludex 1 "), "{page}");
    for command in ["serve", "ingest", "completions", "man"] {
        assert!(page.contains(command), "the man page names {command}");
    }
}

#[test]
fn bad_values_are_usage_errors_that_name_the_option_and_the_range() {
    let data = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (&["games", "list", "--limit", "0"][..], "1..=100"),
        (&["games", "list", "--limit", "101"][..], "1..=100"),
        (&["games", "list", "--sort", "price"][..], "possible values"),
        (&["games", "list", "--year-from", "1900"][..], "1950..=2100"),
        (
            &["games", "list", "--min-rating", "11"][..],
            "above the maximum 10",
        ),
        (&["ingests", "--limit", "0"][..], "1..=1000"),
        (&["completions", "tcsh"][..], "possible values"),
        (
            &["--log-format", "xml", "games", "list"][..],
            "possible values",
        ),
        (
            &["games", "list", "--metrics", "statsd"][..],
            "possible values",
        ),
    ] {
        let output = ludex(data.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
}

#[test]
fn ingest_reports_as_json_or_one_quiet_line_and_draws_no_bar_off_a_terminal() {
    let data = tempfile::tempdir().unwrap();
    let bad = examples().join("bad-games.ndjson");
    let bad = bad.to_str().unwrap();

    let json = ludex(data.path(), &["ingest", "--json", bad]);
    assert_eq!(json.status.code(), Some(3), "rejects, as without --json");
    let lines: Vec<Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let report = &lines[0];
    assert_eq!(report["file"], bad);
    assert_eq!(report["replayed"], false);
    assert_eq!(report["ingest"]["status"], "partially_failed");
    let rejected = report["ingest"]["rejected"].as_u64().unwrap();
    assert!(rejected > 0);
    let rejects = report["rejects"].as_array().unwrap();
    assert_eq!(rejects.len() as u64, rejected);
    assert!(
        rejects
            .iter()
            .all(|r| r["line"].is_u64() && r["errors"][0]["reason"].is_string())
    );

    let replay = ludex(data.path(), &["ingest", "--json", bad]);
    let replay: Value = serde_json::from_str(stdout(&replay).trim()).unwrap();
    assert_eq!(replay["replayed"], true);

    let fresh = tempfile::tempdir().unwrap();
    let quiet = ludex(fresh.path(), &["ingest", "--quiet", bad]);
    assert_eq!(quiet.status.code(), Some(3));
    let out = stdout(&quiet);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("partially_failed"), "{out}");
    for output in [&json, &quiet] {
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
    }
    assert_eq!(
        ludex(fresh.path(), &["ingest", "--quiet", "--json", bad])
            .status
            .code(),
        Some(2)
    );
}

/// `ludex ingest` with its standard streams on a pseudo-terminal (util-linux's `script`, in
/// every Debian): the bar shows bytes read of the file's size, the rate, the time left and
/// the records and rejects so far, and is cleared before the summary.
#[test]
fn on_a_terminal_ingest_draws_a_progress_bar_by_bytes_with_records_and_rejects() {
    if Command::new("script").arg("--version").output().is_err() {
        crate::moto::skip::skipped(
            "progress bar",
            "util-linux's `script` is not installed, so there is no terminal to draw on",
            "Install bsdutils (`apt-get install bsdutils`).",
        );
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let bad = examples().join("bad-games.ndjson");
    let command = format!(
        "'{}' --data-dir '{}' ingest '{}'",
        env!("CARGO_BIN_EXE_ludex"),
        data.path().display(),
        bad.display()
    );
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let screen = stdout(&output);
    let size = std::fs::metadata(&bad).unwrap().len();
    let total = format!("{:.2} KiB", size as f64 / 1024.0);
    let last_frame = screen
        .split('\r')
        .rfind(|frame| frame.contains("bad-games.ndjson ["))
        .unwrap_or_else(|| panic!("no bar drawn: {screen:?}"));
    assert!(
        last_frame.contains(&format!("{total}/{total}")),
        "{last_frame:?}"
    );
    assert!(
        last_frame.contains("/s, ") && last_frame.contains(" left)"),
        "{last_frame:?}"
    );
    assert!(
        last_frame.contains("10 records, 7 rejected"),
        "{last_frame:?}"
    );
    let summary = screen
        .find("partially_failed")
        .expect("the summary is printed");
    let cleared = screen.rfind("\u{1b}[2K").expect("the bar is cleared");
    assert!(cleared < summary, "{screen:?}");
}

/// Runs `ludex ingest` on a data directory that is a 12 MB tmpfs (in a mount namespace of its
/// own, so that no privilege is needed where user namespaces are allowed), copies the
/// database out after the failure, gives the file system room, and ingests again.
#[test]
fn a_full_disk_fails_the_ingest_clearly_leaves_the_database_whole_and_a_rerun_completes() {
    const RECORDS: i64 = 60_000;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("games.ndjson");
    let generated = ludex(
        work.path(),
        &[
            "generate",
            "--count",
            &RECORDS.to_string(),
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(generated.status.success(), "{generated:?}");
    let (data, copy) = (work.path().join("data"), work.path().join("copy"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&copy).unwrap();
    let script = r#"
        set -u
        ludex=$1 data=$2 file=$3 copy=$4
        mount -t tmpfs -o size=12m tmpfs "$data" || exit 90
        "$ludex" --data-dir "$data" --ingest-lease-seconds 1 ingest "$file" >"$copy/first.out" 2>&1
        echo "$?" >"$copy/first.code"
        cp "$data"/ludex.db* "$copy"/
        mount -o remount,size=512m "$data"
        sleep 1.5
        "$ludex" --data-dir "$data" ingest "$file" >"$copy/second.out" 2>&1
        echo "$?" >"$copy/second.code"
        "$ludex" --data-dir "$data" ingests >"$copy/ingests.out" 2>&1
        "$ludex" --data-dir "$data" export | wc -l >"$copy/exported"
    "#;
    let run = Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_ludex"))
        .args([&data, &file, &copy])
        .output();
    let run = match run {
        Ok(run) if run.status.code() != Some(90) && run.status.code() != Some(1) => run,
        other => {
            eprintln!(
                "SKIPPED a_full_disk_…: cannot mount a tmpfs in a user and mount namespace here \
                 ({other:?}); the full-disk test needs `unshare --map-root-user --mount`"
            );
            return;
        }
    };
    assert!(run.status.success(), "{run:?}");
    let read = |name: &str| std::fs::read_to_string(copy.join(name)).unwrap();
    let first = read("first.out");
    assert_eq!(read("first.code").trim(), "1", "{first}");
    assert!(
        first.contains("the disk holding the database is full"),
        "a clear message: {first}"
    );
    assert!(!first.contains("panicked"), "{first}");

    // The database as the failure left it: whole, and the games it holds are whole batches.
    let db = rusqlite::Connection::open(copy.join("ludex.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let landed = count_games(&copy.join("ludex.db")).unwrap();
    assert!(landed < RECORDS, "the disk was not full: {landed}");

    let second = read("second.out");
    assert_eq!(read("second.code").trim(), "0", "{second}");
    assert!(
        second.contains(&format!("succeeded — {RECORDS} accepted")),
        "{second}"
    );
    assert_eq!(read("exported").trim(), RECORDS.to_string());
    let ingests = read("ingests.out");
    assert_eq!(ingests.lines().count(), 1, "one ledger entry: {ingests}");
}

/// The ledger entry `ingest --json` printed for its one file.
fn ingested_id(output: &Output) -> String {
    let line: Value = serde_json::from_str(stdout(output).lines().next().unwrap()).unwrap();
    line["ingest"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn an_ingest_is_reverted_from_the_command_line_and_its_revert_too() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = examples().join("games.ndjson");
    assert!(
        ludex(data.path(), &["ingest", first.to_str().unwrap()])
            .status
            .success()
    );
    let before = exported_content(data.path());
    // An upload that changes two games and adds one.
    let text = std::fs::read_to_string(&first).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .take(2)
        .map(|l| l.replace("\"title\":\"", "\"title\":\"Changed "))
        .collect();
    lines.push(json!({"id": "brand-new", "title": "Brand New"}).to_string());
    let second = dir.path().join("changes.ndjson");
    std::fs::write(&second, lines.join("\n")).unwrap();
    let ingest = ludex(data.path(), &["ingest", "--json", second.to_str().unwrap()]);
    assert!(ingest.status.success(), "{ingest:?}");
    let id = ingested_id(&ingest);
    let after = exported_content(data.path());
    assert_ne!(after, before);

    let dry = ludex(data.path(), &["ingests", "revert", "--dry-run", &id]);
    assert!(dry.status.success(), "{dry:?}");
    assert!(stdout(&dry).contains("would revert ingest"), "{dry:?}");
    assert!(
        stdout(&dry).contains("1 deleted, 2 put back, 0 brought back, 0 conflicts"),
        "{dry:?}"
    );
    assert_eq!(
        exported_content(data.path()),
        after,
        "a dry run writes nothing"
    );

    let revert = ludex(data.path(), &["ingests", "revert", &id]);
    assert!(revert.status.success(), "{revert:?}");
    assert!(
        stdout(&revert).contains("1 deleted, 2 put back"),
        "{revert:?}"
    );
    assert_eq!(exported_content(data.path()), before);
    let revert_id = stdout(&revert).split(':').next().unwrap().to_owned();
    let ledger = stdout(&ludex(data.path(), &["ingests"]));
    assert!(
        ledger.lines().next().unwrap().starts_with(&revert_id),
        "{ledger}"
    );

    let again = ludex(data.path(), &["ingests", "revert", &id]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("reverted already"),
        "{again:?}"
    );

    let reapply = ludex(data.path(), &["ingests", "revert", &revert_id]);
    assert!(reapply.status.success(), "{reapply:?}");
    assert!(
        stdout(&reapply).contains("0 deleted, 2 put back, 1 brought back"),
        "{reapply:?}"
    );
    assert_eq!(
        exported_content(data.path()),
        after,
        "reverting the revert applies the upload again"
    );

    // A game changed since: a conflict, left as it is, and exit code 3.
    let third = dir.path().join("third.ndjson");
    std::fs::write(
        &third,
        json!({"id": "hades", "title": "Hades III"}).to_string(),
    )
    .unwrap();
    let ingest = ludex(data.path(), &["ingest", "--json", third.to_str().unwrap()]);
    let third_id = ingested_id(&ingest);
    let fourth = dir.path().join("fourth.ndjson");
    std::fs::write(
        &fourth,
        json!({"id": "hades", "title": "Hades IV"}).to_string(),
    )
    .unwrap();
    assert!(
        ludex(data.path(), &["ingest", fourth.to_str().unwrap()])
            .status
            .success()
    );
    let conflicted = ludex(data.path(), &["ingests", "revert", &third_id]);
    assert_eq!(conflicted.status.code(), Some(3), "{conflicted:?}");
    assert!(
        stdout(&conflicted).contains("conflict: hades (version"),
        "{conflicted:?}"
    );
    assert!(
        stdout(&conflicted).contains("changed since the upload"),
        "{conflicted:?}"
    );
}
