//! The bucket contract, against every kind of bucket: a local folder, memory, and S3 on a real
//! local server (moto, started by `scripts/with-moto`; skipped loudly without one, a failure
//! on CI).

use crate::moto;

use bytes::Bytes;
use ludex::bucket::{Bucket, BucketError};
use std::io::Read;

async fn keeps_the_bucket_contract(bucket: &Bucket) {
    let first = bucket
        .put(
            "uploads/a.ndjson",
            Bytes::from_static(b"{\"title\":\"A\"}\n"),
        )
        .await
        .unwrap();
    assert_eq!(first.size, 14);
    let info = bucket.info("uploads/a.ndjson").await.unwrap();
    assert_eq!(info, first, "put and info agree on the fingerprint");
    bucket
        .put(
            "uploads/a.ndjson",
            Bytes::from_static(b"{\"title\":\"A\"}\n"),
        )
        .await
        .unwrap();
    assert_eq!(
        bucket.info("uploads/a.ndjson").await.unwrap().fingerprint,
        first.fingerprint,
        "the same content keeps its fingerprint"
    );
    let changed = bucket
        .put(
            "uploads/a.ndjson",
            Bytes::from_static(b"{\"title\":\"B\"}\n"),
        )
        .await
        .unwrap();
    assert_ne!(changed.fingerprint, first.fingerprint);

    let content = bucket.get("uploads/a.ndjson").await.unwrap().unwrap();
    assert_eq!(&content[..], b"{\"title\":\"B\"}\n");
    assert_eq!(bucket.get("uploads/none.json").await.unwrap(), None);
    assert!(matches!(
        bucket.info("uploads/none.json").await,
        Err(BucketError::NotFound(_))
    ));

    // Streamed writes appear whole on shutdown, and not at all when aborted.
    let mut writer = bucket
        .writer("rejected/a.ndjson.errors.ndjson")
        .await
        .unwrap();
    for i in 0..3 {
        writer
            .write_all(format!("{{\"line\":{i}}}\n").as_bytes())
            .await
            .unwrap();
    }
    writer.shutdown().await.unwrap();
    let lines = bucket
        .read_lines("rejected/a.ndjson.errors.ndjson", 2)
        .await
        .unwrap();
    assert_eq!(lines, ["{\"line\":0}", "{\"line\":1}"]);
    let mut aborted = bucket.writer("rejected/never.ndjson").await.unwrap();
    aborted.write_all(b"half").await.unwrap();
    aborted.abort().await.unwrap();
    assert_eq!(bucket.get("rejected/never.ndjson").await.unwrap(), None);

    // The parser reads through a blocking reader.
    let reader = bucket.reader("uploads/a.ndjson").await.unwrap();
    let text = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let mut reader = reader;
        reader.read_to_string(&mut text).map(|_| text)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(text, "{\"title\":\"B\"}\n");

    let mut keys = bucket.list("uploads").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["uploads/a.ndjson"]);
    bucket.delete("uploads/a.ndjson").await.unwrap();
    bucket.delete("uploads/a.ndjson").await.unwrap();
    assert!(bucket.list("uploads").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_local_folder_keeps_the_bucket_contract() {
    let dir = tempfile::tempdir().unwrap();
    keeps_the_bucket_contract(&Bucket::local(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn memory_keeps_the_bucket_contract() {
    keeps_the_bucket_contract(&Bucket::memory()).await;
}

#[tokio::test]
async fn s3_keeps_the_bucket_contract() {
    let Some(endpoint) = moto::endpoint("S3 bucket conformance") else {
        return;
    };
    let name = moto::unique_name("ludex-test");
    let bucket = Bucket::s3(&name, Some(&endpoint)).unwrap_or_else(|e| panic!("{e}"));
    moto::create_bucket(&endpoint, &name).await;
    assert!(bucket.fingerprints_are_etags());
    keeps_the_bucket_contract(&bucket).await;
}

/// Whether an operation was refused because its path is or passes through a link.
fn refused<T: std::fmt::Debug>(result: Result<T, BucketError>) -> bool {
    matches!(&result, Err(e) if e.to_string().contains("symbolic link"))
}

#[tokio::test]
async fn a_local_folder_never_follows_a_link_for_any_operation() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.ndjson");
    std::fs::write(&secret, "{\"title\":\"Secret\"}\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::local(dir.path()).unwrap();
    bucket
        .put(
            "uploads/ok.ndjson",
            Bytes::from_static(b"{\"title\":\"A\"}\n"),
        )
        .await
        .unwrap();
    let uploads = dir.path().join("uploads");
    std::os::unix::fs::symlink(&secret, uploads.join("file-link.ndjson")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", uploads.join("passwd.json")).unwrap();
    std::os::unix::fs::symlink(outside.path(), uploads.join("dir-link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("covers")).unwrap();

    let mut keys = bucket.list("uploads").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["uploads/ok.ndjson"], "links are not listed");

    for key in [
        "uploads/file-link.ndjson",
        "uploads/passwd.json",
        "uploads/dir-link/secret.ndjson",
        "covers/secret.ndjson",
    ] {
        assert!(refused(bucket.info(key).await), "info {key}");
        assert!(refused(bucket.get(key).await), "get {key}");
        assert!(
            refused(bucket.reader(key).await.map(|_| ())),
            "reader {key}"
        );
        assert!(refused(bucket.read_lines(key, 1).await), "read_lines {key}");
    }
    // Writes through a linked folder never land outside the root.
    assert!(refused(
        bucket.put("covers/new.png", Bytes::from_static(b"x")).await
    ));
    assert!(refused(
        bucket
            .put("uploads/dir-link/new.ndjson", Bytes::from_static(b"x"))
            .await
    ));
    assert!(!outside.path().join("new.png").exists());
    assert!(!outside.path().join("new.ndjson").exists());
    // Deleting through a linked folder leaves the target alone; deleting a link removes
    // the link only.
    let _ = bucket.delete("uploads/dir-link/secret.ndjson").await;
    let _ = bucket.delete("covers/secret.ndjson").await;
    bucket.delete("uploads/file-link.ndjson").await.unwrap();
    assert!(secret.exists(), "the file outside the bucket is untouched");
    assert!(!uploads.join("file-link.ndjson").exists());
}

#[tokio::test]
async fn a_named_pipe_in_the_folder_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::local(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path().join("uploads")).unwrap();
    let fifo = dir.path().join("uploads/pipe.ndjson");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let info = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        bucket.info("uploads/pipe.ndjson"),
    )
    .await
    .expect("opening a pipe does not block");
    assert!(
        matches!(&info, Err(e) if e.to_string().contains("not a regular file")),
        "{info:?}"
    );
    assert!(bucket.list("uploads").await.unwrap().is_empty());
}
