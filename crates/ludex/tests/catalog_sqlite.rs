//! The catalog conformance suite against the embedded SQLite store.

use crate::conformance;

#[tokio::test]
async fn sqlite_keeps_the_catalog_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ludex.db").display());
    let stores = ludex::store::open(&url).await.unwrap();
    conformance::run_all(&stores).await;
    conformance::history_is_kept_as_retention_says(&url).await;
}

#[tokio::test]
async fn the_aggregates_migration_counts_the_games_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ludex.db");
    let rewind = || async {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TABLE game_counts; DROP TABLE game_versions;
                 ALTER TABLE games DROP COLUMN changed_by; PRAGMA user_version = 3;",
            )
            .unwrap();
    };
    conformance::the_aggregates_migration_counts_stored_games(
        &format!("sqlite://{}", path.display()),
        rewind,
        "0004_game_counts",
    )
    .await;
}
