//! The bucket contract, against every kind of bucket: a local folder, memory, and S3 on a real
//! local server (moto, started by `scripts/with-moto`; skipped loudly without one, a failure
//! on CI).

use crate::moto;

use bytes::Bytes;
use ludex::bucket::{Bucket, BucketError};
use std::io::Read;
use tokio::io::AsyncWriteExt;

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
    let mut writer = bucket.writer("rejected/a.ndjson.errors.ndjson").unwrap();
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
    let mut aborted = bucket.writer("rejected/never.ndjson").unwrap();
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
