//! The catalog conformance suite against the PostgreSQL store, on a real server and a fresh
//! database per test (`scripts/with-postgres cargo test`).

#![cfg(feature = "postgres")]

use crate::conformance;
use crate::fresh_postgres;

use crate::fresh_postgres::FreshDatabase;
use futures::FutureExt as _;
use ludex::store;
use ludex_domain::{AttemptId, Game, Position, StagedGame, UpsertOutcome};
use std::panic::AssertUnwindSafe;

/// Runs `test` against a fresh database and drops the database afterwards, pass or fail.
async fn with_database<F, Fut>(suite: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(server) = fresh_postgres::server(suite) else {
        return;
    };
    let db = FreshDatabase::create(&server).await;
    let result = AssertUnwindSafe(test(db.url.clone())).catch_unwind().await;
    db.drop().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn postgres_keeps_the_catalog_contract() {
    with_database("PostgreSQL catalog conformance", |url| async move {
        let stores = store::open(&url).await.unwrap();
        conformance::run_all(&stores).await;
        conformance::history_is_kept_as_retention_says(&url).await;
    })
    .await;
}

#[tokio::test]
async fn opening_migrates_once_and_reports_what_it_applied() {
    with_database("PostgreSQL migrations", |url| async move {
        let (_, applied) = store::init(&url, Default::default()).await.unwrap();
        assert_eq!(
            applied,
            [
                "0001_catalog",
                "0002_ingests by key",
                "0003_game tombstones",
                "0004_game counts",
                "0005_game history",
            ]
        );
        let (_, again) = store::init(&url, Default::default()).await.unwrap();
        assert!(again.is_empty(), "{again:?}");
    })
    .await;
}

#[tokio::test]
async fn the_aggregates_migration_counts_the_games_already_stored() {
    use sqlx::{Connection as _, Executor as _};
    with_database("PostgreSQL aggregates migration", |url| async move {
        let rewind = || async {
            let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
            admin
                .execute(
                    "DROP TRIGGER games_counted_inserts ON games;
                     DROP TRIGGER games_counted_updates ON games;
                     DROP TRIGGER games_counted_deletes ON games;
                     DROP FUNCTION games_counted, label_game_counts, apply_game_counts, brings,
                         game_count_keys, game_labels;
                     DROP TYPE game_count_change;
                     DROP TABLE game_counts;
                     DELETE FROM _sqlx_migrations WHERE version = 4;",
                )
                .await
                .unwrap();
        };
        conformance::the_aggregates_migration_counts_stored_games(&url, rewind, "0004_game counts")
            .await;
    })
    .await;
}

fn staged(id: &str, title: &str, line: u64) -> StagedGame {
    let game = Game::from_value(&serde_json::json!({"id": id, "title": title})).unwrap();
    StagedGame::new(game, Position::Line(line))
}

#[tokio::test]
async fn concurrent_batches_over_the_same_ids_neither_deadlock_nor_lose_writes() {
    with_database("PostgreSQL concurrent batches", |url| async move {
        let stores = store::open(&url).await.unwrap();
        // Two attempts write the same 500 ids in opposite orders at once.
        let forward: Vec<_> = (0..500)
            .map(|i| staged(&format!("g{i:03}"), "Forward", i))
            .collect();
        let backward: Vec<_> = forward
            .iter()
            .rev()
            .map(|s| staged(s.game.id.as_str(), "Backward", 0))
            .collect();
        let (one, two) = (AttemptId("forward".into()), AttemptId("backward".into()));
        let author = crate::conformance::tester();
        let (a, b) = tokio::join!(
            stores.catalog.upsert_batch(forward, &one, &author),
            stores.catalog.upsert_batch(backward, &two, &author),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        for (x, y) in a.iter().zip(b.iter().rev()) {
            // One of the two inserted each game and the other updated it.
            assert!(
                matches!(
                    (x, y),
                    (UpsertOutcome::Inserted, UpsertOutcome::Updated)
                        | (UpsertOutcome::Updated, UpsertOutcome::Inserted)
                ),
                "{x:?} {y:?}"
            );
        }
        let first = stores
            .catalog
            .get(
                &Game::from_value(&serde_json::json!({"id": "g000", "title": "x"}))
                    .unwrap()
                    .id,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.version, 2, "both writes counted");
    })
    .await;
}

/// A delete that commits while a write waits for the deleted row leaves a tombstone the write's
/// snapshot does not hold: the write must still count on from it. The test deletes as the
/// store does (game row and tombstone in one transaction), holding the transaction open while
/// a create and an ingest batch of the same ids wait for it.
#[tokio::test]
async fn writes_racing_a_delete_count_on_from_its_tombstone() {
    use sqlx::Connection as _;
    with_database("PostgreSQL delete races", |url| async move {
        let stores = store::open(&url).await.unwrap();
        let game =
            |id: &str| Game::from_value(&serde_json::json!({"id": id, "title": id})).unwrap();
        for id in ["made", "ingested"] {
            stores
                .catalog
                .create(&game(id), &crate::conformance::tester())
                .await
                .unwrap();
        }
        let mut deleter = sqlx::PgConnection::connect(&url).await.unwrap();
        let mut delete = deleter.begin().await.unwrap();
        sqlx::query(
            "WITH d AS (DELETE FROM games WHERE id IN ('made', 'ingested') RETURNING id, version)
             INSERT INTO game_tombstones (id, version) SELECT id, version FROM d",
        )
        .execute(&mut *delete)
        .await
        .unwrap();

        let catalog = stores.catalog.clone();
        let created = tokio::spawn(async move {
            catalog
                .create(&game("made"), &crate::conformance::tester())
                .await
        });
        let catalog = stores.catalog.clone();
        let upserted = tokio::spawn(async move {
            catalog
                .upsert_batch(
                    vec![staged("ingested", "ingested", 1)],
                    &AttemptId("racing".into()),
                    &crate::conformance::tester(),
                )
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !created.is_finished() && !upserted.is_finished(),
            "both writes wait for the deleting transaction"
        );
        delete.commit().await.unwrap();

        assert_eq!(created.await.unwrap().unwrap().version, 2);
        assert_eq!(upserted.await.unwrap().unwrap(), [UpsertOutcome::Inserted]);
        let ingested = stores
            .catalog
            .get(&game("ingested").id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ingested.version, 2);
    })
    .await;
}

/// The password a test hands out, and how often it was asked for.
struct RotatingPassword {
    current: std::sync::Mutex<String>,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ludex::store::postgres::PasswordSource for RotatingPassword {
    async fn password(&self) -> Result<String, String> {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.current.lock().unwrap().clone())
    }
}

/// RDS rotates the master password under running functions. A store given a password source
/// asks it again when the server refuses the password, and goes on; a store opened with a
/// fixed password in its URL cannot. The server must check passwords for this role:
/// `scripts/with-postgres` makes members of `ludex_password_auth` log in with one.
#[tokio::test]
async fn a_rotated_password_is_read_again_and_the_store_goes_on() {
    use ludex::store::postgres::PostgresStore;
    use ludex_domain::Catalog as _;
    use sqlx::{Connection as _, Executor as _};
    with_database("PostgreSQL password rotation", |url| async move {
        // The schema, created by the admin; then a role that logs in with a password.
        store::open(&url).await.unwrap();
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        let role = format!("ludex_rotating_{:08x}", getrandom::u32().unwrap());
        for statement in [
            "DO $$ BEGIN CREATE ROLE ludex_password_auth; EXCEPTION WHEN duplicate_object THEN NULL; END $$".to_owned(),
            format!("CREATE ROLE {role} LOGIN PASSWORD 'first' IN ROLE ludex_password_auth"),
            format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"),
            format!("GRANT ALL ON SCHEMA public TO {role}"),
        ] {
            admin.execute(sqlx::AssertSqlSafe(statement)).await.unwrap();
        }
        let options = |password: &str| {
            use sqlx::ConnectOptions as _;
            let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url)
                .unwrap()
                .username(&role);
            let options = match password {
                "" => options,
                password => options.password(password),
            };
            options.to_url_lossy().to_string()
        };
        if PostgresStore::open(&options("wrong")).await.is_ok() {
            eprintln!(
                "\n!! SKIPPED: PostgreSQL password rotation\n!! The server does not check \
                 passwords for members of ludex_password_auth (scripts/with-postgres sets it up).\n"
            );
            return;
        }
        let source = std::sync::Arc::new(RotatingPassword {
            current: std::sync::Mutex::new("first".into()),
            asked: 0.into(),
        });
        let rotating = PostgresStore::open_with(&options(""), Some(source.clone()))
            .await
            .unwrap();
        let fixed = PostgresStore::open(&options("first")).await.unwrap();
        let game = Game::from_value(&serde_json::json!({"id": "kept", "title": "Kept"})).unwrap();
        rotating.create(&game, &crate::conformance::tester()).await.unwrap();
        assert!(fixed.get(&game.id).await.unwrap().is_some());

        // Rotation: a new password, and the open sessions end (as idle connections do).
        *source.current.lock().unwrap() = "second".into();
        for statement in [
            format!("ALTER ROLE {role} PASSWORD 'second'"),
            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"),
        ] {
            admin.execute(sqlx::AssertSqlSafe(statement)).await.unwrap();
        }
        assert!(
            fixed.get(&game.id).await.is_err(),
            "a store with a fixed password cannot connect after the rotation"
        );
        assert_eq!(
            rotating.get(&game.id).await.unwrap().unwrap().id,
            game.id,
            "the store read the password again and connected"
        );
        assert_eq!(source.asked.load(std::sync::atomic::Ordering::Relaxed), 2);
        admin.close().await.ok();
    })
    .await;
}
