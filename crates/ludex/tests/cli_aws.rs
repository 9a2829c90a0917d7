//! The `ludex` binary over the AWS backends on moto: DynamoDB as the store and S3 as the
//! bucket, set up by `ludex init` and used by `ingest`, `games` and `export`.

#![cfg(feature = "dynamodb")]

use crate::moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

struct Aws {
    endpoint: String,
    store: String,
    bucket: String,
    data: tempfile::TempDir,
}

impl Aws {
    fn ludex(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ludex"))
            .args(["--data-dir", self.data.path().to_str().unwrap()])
            .args(["--store", &self.store, "--bucket", &self.bucket])
            .args(args)
            .env("LUDEX_S3_ENDPOINT", &self.endpoint)
            .output()
            .expect("the ludex binary runs")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn aws(suite: &str) -> Option<Aws> {
    let endpoint = moto::endpoint(suite)?;
    let bucket = moto::unique_name("ludex-cli");
    moto::create_bucket(&endpoint, &bucket).await;
    Some(Aws {
        store: format!(
            "dynamodb://{}?endpoint={endpoint}",
            moto::unique_name("ludex-cli")
        ),
        bucket: format!("s3://{bucket}"),
        endpoint,
        data: tempfile::tempdir().unwrap(),
    })
}

#[tokio::test]
async fn init_ingest_list_and_export_work_on_dynamodb_and_s3() {
    let Some(aws) = aws("CLI on DynamoDB and S3").await else {
        return;
    };
    let init = aws.ludex(&["init"]);
    assert!(init.status.success(), "{init:?}");
    assert!(
        stdout(&init).contains("set up table ludex-cli-"),
        "{init:?}"
    );
    let again = aws.ludex(&["init"]);
    assert!(stdout(&again).contains("nothing to do"), "{again:?}");

    let bad = examples().join("bad-games.ndjson");
    let ingest = aws.ludex(&["ingest", bad.to_str().unwrap()]);
    assert_eq!(ingest.status.code(), Some(3), "{ingest:?}");
    assert!(
        stdout(&ingest).contains("3 accepted"),
        "valid records land: {ingest:?}"
    );
    assert!(
        stdout(&ingest).contains("line 2: rating: 11.5 is above the maximum 10"),
        "{ingest:?}"
    );
    let replay = aws.ludex(&["ingest", bad.to_str().unwrap()]);
    assert!(stdout(&replay).contains("already ingested"), "{replay:?}");

    let good = examples().join("games.ndjson");
    let ingest = aws.ludex(&["ingest", good.to_str().unwrap()]);
    assert!(ingest.status.success(), "{ingest:?}");
    let exported = stdout(&aws.ludex(&["export"]));
    let listed = aws.ludex(&["games", "list", "--limit", "100"]);
    assert!(listed.status.success(), "{listed:?}");
    let exported_ids: Vec<String> = exported
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert!(exported_ids.len() > 3, "{exported}");
    for id in &exported_ids {
        assert!(
            stdout(&listed).contains(id.trim_matches('"')),
            "{id} listed"
        );
    }
    // Searches and filters are served on DynamoDB as everywhere else.
    let found = aws.ludex(&["games", "list", "--q", "do", "--platform", "pc"]);
    assert!(found.status.success(), "{found:?}");
    assert!(stdout(&found).contains("doom-1993"), "{found:?}");
}
