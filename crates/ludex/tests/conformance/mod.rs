//! The contract every `Catalog` and `Ledger` adapter keeps. Each adapter's test file opens a
//! fresh store and calls `run_all`; backend-specific behaviour must be documented and asserted
//! here, not skipped.

use ludex::bucket::Bucket;
use ludex::ingest::{IngestConfig, IngestError, IngestOutcome, Ingestor, Upload};
use ludex::store::Stores;
use ludex_domain::CatalogCounts;
use ludex_domain::counts::LabelCount;
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus};
use ludex_domain::{
    AttemptId, Author, Claim, Game, GameId, HistoryQuery, Lease, LedgerQuery, ListQuery, Position,
    Rating, Sort, SortField, StagedGame, StoreError, UpsertOutcome,
};
use serde_json::{Value, json};

/// The author of the suites' writes.
pub fn tester() -> Author {
    Author::key("tester")
}

fn game(value: Value) -> Game {
    Game::from_value(&value).expect("a valid test game")
}

fn staged(value: Value, line: u64) -> StagedGame {
    StagedGame::new(game(value), Position::Line(line))
}

/// Every page of a listing, following its cursors: every page but the last is full.
async fn ids(stores: &Stores, query: ListQuery) -> Vec<String> {
    let mut all = Vec::new();
    let mut query = query;
    loop {
        let page = stores.catalog.list(&query).await.expect("list");
        all.extend(page.items.iter().map(|g| g.id.to_string()));
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(
                    page.items.len(),
                    query.limit as usize,
                    "a page before the last"
                );
                query.cursor = Some(cursor);
            }
            None => {
                assert!(page.items.len() <= query.limit as usize);
                return all;
            }
        }
    }
}

/// Every store serves every filter with every sort, from its indexes (docs/dynamodb.md says
/// how DynamoDB does).
pub async fn run_all(stores: &Stores) {
    crud_and_conditional_writes(stores).await;
    versions_never_repeat_across_delete_and_recreate(stores).await;
    batch_upserts_are_idempotent_and_catch_duplicates(stores).await;
    filters_sorts_and_pagination_to_the_last_page(stores).await;
    ledger_entries(stores).await;
    one_claim_wins_and_an_expired_lease_is_taken_over(stores).await;
    a_second_ingest_of_an_upload_in_progress_waits_for_its_lease(stores).await;
    deliveries_of_one_upload_at_the_same_moment_ingest_it_once(stores).await;
    content_that_comes_back_under_a_name_is_ingested_again(stores).await;
    aggregates_follow_every_write(stores).await;
    counts_match_the_catalog(stores).await;
    // Last: on DynamoDB an ingest that overwrites an edit made since its read leaves the
    // aggregates off (docs/dynamodb.md, "Where the counters can drift"); the listings not.
    an_ingest_racing_an_edit_leaves_one_consistent_index(stores).await;
    a_batch_answers_each_operation_as_its_own_request(stores).await;
    a_dry_run_tells_what_an_ingest_would_do_and_writes_nothing(stores).await;
    a_csv_mapping_is_kept_with_its_ledger_entry(stores).await;
    a_filter_job_changes_every_matching_game_in_steps(stores).await;
    every_change_is_kept_in_the_history(stores).await;
    the_api_shows_the_history_and_restores_any_version(stores).await;
    an_ingest_is_reverted_and_its_revert_reverted(stores).await;
    a_revert_stopped_half_way_goes_on_where_it_stopped(stores).await;
}

/// Every version of a game, newest first, following the cursors in pages of `limit`:
/// (version, author, title or `None` for a deletion).
async fn history(
    stores: &Stores,
    id: &str,
    limit: u32,
) -> Vec<(u64, Option<Author>, Option<String>)> {
    let id = GameId::parse(id).expect("an id");
    let mut query = HistoryQuery {
        limit,
        before: None,
    };
    let mut all = Vec::new();
    loop {
        let page = stores.catalog.history(&id, &query).await.expect("history");
        assert!(page.items.len() <= limit as usize, "a page over its limit");
        all.extend(page.items.iter().map(|v| {
            let title = v.content.as_deref().map(|c| {
                let value: Value = serde_json::from_str(c).expect("stored JSON");
                value["title"].as_str().expect("a title").to_owned()
            });
            (v.version, v.author.clone(), title)
        }));
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(page.items.len(), limit as usize, "a page before the last");
                query.before = Some(cursor.parse().expect("a version as the cursor"));
            }
            None => return all,
        }
    }
}

/// Updates and deletes file what they replace, with who wrote it and when; a create, an
/// unchanged write and a refused one file nothing; a deleted game's history goes on when it
/// is created again.
async fn every_change_is_kept_in_the_history(stores: &Stores) {
    let catalog = &stores.catalog;
    let (alice, bob) = (Author::key("alice"), Author::key("bob"));
    let ingest = Author::ingest("uploads/h.ndjson#1");
    let titled = |title: &str| game(json!({"id": "hist", "title": title}));
    let v = |version: u64, author: &Author, title: Option<&str>| {
        (version, Some(author.clone()), title.map(str::to_owned))
    };
    assert_eq!(history(stores, "hist", 3).await, [], "no game, no history");
    catalog.create(&titled("One"), &alice).await.unwrap();
    assert_eq!(
        history(stores, "hist", 3).await,
        [v(1, &alice, Some("One"))]
    );
    catalog
        .replace(&titled("Two"), Some(1), &bob)
        .await
        .unwrap();
    // Refused and unchanged writes file nothing.
    let stale = catalog.replace(&titled("Stale"), Some(1), &alice).await;
    assert!(
        matches!(stale, Err(StoreError::VersionMismatch { current: 2 })),
        "{stale:?}"
    );
    let stale = catalog
        .delete(&GameId::parse("hist").unwrap(), Some(1), &alice)
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionMismatch { current: 2 })),
        "{stale:?}"
    );
    catalog.replace(&titled("Two"), None, &alice).await.unwrap();
    let upsert = |title: &str, attempt: &str| {
        let batch = vec![StagedGame::new(titled(title), Position::Line(1))];
        let attempt = AttemptId(attempt.into());
        let ingest = ingest.clone();
        async move {
            catalog
                .upsert_batch(batch, &attempt, &ingest)
                .await
                .unwrap()
        }
    };
    assert_eq!(upsert("Two", "h-1").await, [UpsertOutcome::Unchanged]);
    assert_eq!(upsert("Three", "h-2").await, [UpsertOutcome::Updated]);
    let stored = catalog.get(&GameId::parse("hist").unwrap()).await.unwrap();
    assert_eq!(stored.map(|g| g.version), Some(3));
    let before_delete = [
        v(3, &ingest, Some("Three")),
        v(2, &bob, Some("Two")),
        v(1, &alice, Some("One")),
    ];
    assert_eq!(history(stores, "hist", 2).await, before_delete);
    let deleted = catalog
        .delete(&GameId::parse("hist").unwrap(), Some(3), &bob)
        .await
        .unwrap();
    assert_eq!(deleted.version, 3);
    let mut expected = vec![v(4, &bob, None)];
    expected.extend(before_delete.iter().cloned());
    assert_eq!(
        history(stores, "hist", 10).await,
        expected,
        "the deletion is a version"
    );
    // Created again, it counts on from the deletion and keeps what came before.
    let again = catalog.create(&titled("Four"), &alice).await.unwrap();
    assert_eq!(again.version, 5);
    expected.insert(0, v(5, &alice, Some("Four")));
    for limit in [1, 2, 5, 6] {
        assert_eq!(
            history(stores, "hist", limit).await,
            expected,
            "pages of {limit}"
        );
    }
    // A page starts below its cursor, whatever the cursor.
    let page = catalog
        .history(
            &GameId::parse("hist").unwrap(),
            &HistoryQuery {
                limit: 10,
                before: Some(3),
            },
        )
        .await
        .unwrap();
    let versions: Vec<u64> = page.items.iter().map(|v| v.version).collect();
    assert_eq!((versions, page.next_cursor), (vec![2, 1], None));
    // Times are the writes' own, newest first.
    let page = catalog
        .history(
            &GameId::parse("hist").unwrap(),
            &HistoryQuery {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    assert!(
        page.items
            .windows(2)
            .all(|w| w[0].changed_at >= w[1].changed_at)
    );
    // An ingest's new game files nothing: its history is the game alone.
    let batch = vec![StagedGame::new(
        game(json!({"id": "hist-new", "title": "New"})),
        Position::Line(1),
    )];
    catalog
        .upsert_batch(batch, &AttemptId("h-3".into()), &ingest)
        .await
        .unwrap();
    assert_eq!(
        history(stores, "hist-new", 5).await,
        [v(1, &ingest, Some("New"))]
    );
}

/// The ids listed with `platform` (and nothing else), in pages of 2.
async fn on_platform(stores: &Stores, platform: &str) -> Vec<String> {
    let query = ListQuery {
        platform: Some(platform.into()),
        limit: 2,
        ..ListQuery::default()
    };
    ids(stores, query).await
}

/// An ingest and an API edit of the same game at the same moment, at several offsets: whichever
/// write wins, the game is listed as its stored document says — once under each of its words
/// and its platform, and never under those of the version that lost.
async fn an_ingest_racing_an_edit_leaves_one_consistent_index(stores: &Stores) {
    let catalog = &stores.catalog;
    let race = |title: &str, platform: &str| {
        game(json!({"id": "race", "title": title, "platforms": [platform]}))
    };
    let versions = [
        ("Alpha Red", "PC"),
        ("Beta Green", "Switch"),
        ("Gamma Blue", "PS5"),
    ];
    for round in 0..8u64 {
        catalog
            .create(&race("Alpha Red", "PC"), &tester())
            .await
            .unwrap();
        // The ingest writes other games in the same batch, so that its writes take a while.
        let mut batch: Vec<StagedGame> = (0..40)
            .map(|i| {
                staged(
                    json!({"id": format!("fill-{i}"), "title": format!("Filler {round}")}),
                    i + 2,
                )
            })
            .collect();
        batch.insert(
            0,
            StagedGame::new(race("Beta Green", "Switch"), Position::Line(1)),
        );
        let (attempt, author) = (AttemptId(format!("race-{round}")), tester());
        let ingest = catalog.upsert_batch(batch, &attempt, &author);
        let edit = async {
            tokio::time::sleep(std::time::Duration::from_millis(round * 15)).await;
            catalog
                .replace(&race("Gamma Blue", "PS5"), None, &tester())
                .await
        };
        let (ingested, edited) = tokio::join!(ingest, edit);
        ingested.unwrap();
        edited.unwrap();
        let now = catalog
            .get(&race("x", "x").id)
            .await
            .unwrap()
            .unwrap()
            .game()
            .unwrap();
        for (title, platform) in versions {
            let current = now.title.as_str() == title;
            let times = usize::from(current);
            for word in title.split(' ') {
                let found = search(stores, word).await;
                assert_eq!(
                    found.iter().filter(|id| *id == "race").count(),
                    times,
                    "round {round}: {word:?} finds the game {times} times; it is {:?}",
                    now.title
                );
            }
            let listed = on_platform(stores, platform).await;
            assert_eq!(
                listed,
                if current {
                    vec!["race".to_owned()]
                } else {
                    vec![]
                }
            );
        }
        catalog.delete(&now.id, None, &tester()).await.unwrap();
    }
    for i in 0..40 {
        let filler = game(json!({"id": format!("fill-{i}"), "title": "x"}));
        catalog.delete(&filler.id, None, &tester()).await.unwrap();
    }
}

/// Games stored before the aggregates existed are counted by the migration that adds them:
/// two games are created through `url`'s store, `rewind` takes the store back to the schema
/// before the aggregates (the games staying), and opening it again must apply `migration`
/// and give the same numbers.
#[allow(
    dead_code,
    reason = "each adapter's test binary calls it when its store migrates"
)]
pub async fn the_aggregates_migration_counts_stored_games<F: Future<Output = ()>>(
    url: &str,
    rewind: impl FnOnce() -> F,
    migration: &str,
) {
    let stores = ludex::store::open(url).await.unwrap();
    let games = [
        json!({"id": "m1", "title": "M1", "platforms": ["PC", "Ünïx"],
            "release_date": "1999", "rating": 7.5}),
        json!({"id": "m2", "title": "M2", "platforms": ["pc"], "genres": ["RPG"]}),
    ]
    .map(game);
    for game in &games {
        stores.catalog.create(game, &tester()).await.unwrap();
    }
    let expected = stores.catalog.counts().await.unwrap();
    assert_eq!(expected, CatalogCounts::of_games(&games));
    drop(stores);
    rewind().await;
    let (migrated, applied) = ludex::store::init(url, Default::default()).await.unwrap();
    // Then the migrations after it, where the rewind had to undo them too.
    assert_eq!(
        applied.first().map(AsRef::as_ref),
        Some(migration),
        "{applied:?}"
    );
    assert_eq!(migrated.catalog.counts().await.unwrap(), expected);
}

/// The store's aggregates equal the ones counted game by game from a full listing (labels
/// compared ignoring case: a counter keeps the spelling it was created with).
async fn counts_match_the_catalog(stores: &Stores) -> CatalogCounts {
    let mut games = Vec::new();
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = stores.catalog.list(&query).await.expect("list");
        games.extend(
            page.items
                .iter()
                .map(|g| g.game().expect("a readable game")),
        );
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    let fold = |mut counts: CatalogCounts| {
        for label in counts.platforms.iter_mut().chain(counts.genres.iter_mut()) {
            label.label = label.label.to_lowercase();
        }
        counts
    };
    let kept = stores.catalog.counts().await.expect("counts");
    assert_eq!(
        fold(kept.clone()),
        fold(CatalogCounts::of_games(&games)),
        "the aggregates of {} games",
        games.len()
    );
    kept
}

fn label_count(labels: &[LabelCount], label: &str) -> Option<u64> {
    labels.iter().find(|l| l.label == label).map(|l| l.games)
}

async fn aggregates_follow_every_write(stores: &Stores) {
    let catalog = &stores.catalog;
    let before = counts_match_the_catalog(stores).await;
    let batch = vec![
        staged(
            json!({"id": "agg1", "title": "Agg One", "platforms": ["Agg-PC", "Agg-Amiga"],
                "genres": ["Agg-RPG"], "release_date": "1990-05", "rating": 9.5}),
            1,
        ),
        staged(
            json!({"id": "agg2", "title": "Agg Two", "platforms": ["agg-pc"], "rating": 10}),
            2,
        ),
        // A duplicate of agg1 in the same upload: not written, not counted.
        staged(
            json!({"id": "agg1", "title": "Agg One", "platforms": ["Agg-C64"]}),
            3,
        ),
    ];
    catalog
        .upsert_batch(batch.clone(), &AttemptId("agg-1".into()), &tester())
        .await
        .unwrap();
    let counts = counts_match_the_catalog(stores).await;
    assert_eq!(counts.games, before.games + 2);
    assert_eq!(
        label_count(&counts.platforms, "Agg-PC"),
        Some(2),
        "one counter for both spellings, shown as the first in byte order"
    );
    assert_eq!(label_count(&counts.platforms, "Agg-C64"), None);
    assert_eq!(counts.ratings[9], before.ratings[9] + 2, "10 counts with 9");
    assert_eq!(
        counts.years.get(&1990),
        Some(&(before.years.get(&1990).unwrap_or(&0) + 1))
    );

    // A replay changes nothing; a change moves the game between counters.
    catalog
        .upsert_batch(batch[..2].to_vec(), &AttemptId("agg-2".into()), &tester())
        .await
        .unwrap();
    assert_eq!(counts_match_the_catalog(stores).await, counts);
    catalog
        .upsert_batch(
            vec![staged(
                json!({"id": "agg2", "title": "Agg Two", "platforms": ["Agg-Switch"]}),
                1,
            )],
            &AttemptId("agg-3".into()),
            &tester(),
        )
        .await
        .unwrap();
    let counts = counts_match_the_catalog(stores).await;
    assert_eq!(label_count(&counts.platforms, "Agg-PC"), Some(1));
    assert_eq!(label_count(&counts.platforms, "Agg-Switch"), Some(1));
    assert_eq!(counts.unrated, before.unrated + 1);

    // Edits through the API: create, replace (also with identical content), delete.
    let created = catalog
        .create(
            &game(json!({"id": "agg3", "title": "Agg Three", "genres": ["agg-rpg"]})),
            &tester(),
        )
        .await
        .unwrap();
    let counts = counts_match_the_catalog(stores).await;
    assert_eq!(
        label_count(&counts.genres, "Agg-RPG"),
        Some(2),
        "an existing counter keeps its label"
    );
    let replaced = game(
        json!({"id": "agg3", "title": "Agg Three", "genres": ["Agg-Puzzle"],
        "release_date": "2001"}),
    );
    catalog
        .replace(&replaced, Some(created.version), &tester())
        .await
        .unwrap();
    catalog.replace(&replaced, None, &tester()).await.unwrap();
    let counts = counts_match_the_catalog(stores).await;
    assert_eq!(label_count(&counts.genres, "Agg-RPG"), Some(1));
    assert_eq!(label_count(&counts.genres, "Agg-Puzzle"), Some(1));
    assert!(matches!(
        catalog.replace(&replaced, Some(99), &tester()).await,
        Err(StoreError::VersionMismatch { .. })
    ));
    for id in ["agg1", "agg2", "agg3"] {
        catalog
            .delete(&game(json!({"id": id, "title": "x"})).id, None, &tester())
            .await
            .unwrap();
    }
    let after = counts_match_the_catalog(stores).await;
    assert_eq!(after, before, "every counter back where it was");
}

/// The ids a title search finds.
async fn search(stores: &Stores, q: &str) -> Vec<String> {
    let query = ListQuery {
        q: Some(q.into()),
        limit: 10,
        ..ListQuery::default()
    };
    ids(stores, query).await
}

async fn crud_and_conditional_writes(stores: &Stores) {
    let catalog = &stores.catalog;
    let created = catalog
        .create(
            &game(json!({"id": "crud", "title": "Crüd Ünïcode 世界"})),
            &tester(),
        )
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.created_at, created.updated_at);
    assert!(matches!(
        catalog
            .create(&game(json!({"id": "crud", "title": "Again"})), &tester())
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    let fetched = catalog.get(&created.id).await.unwrap().unwrap();
    assert_eq!(fetched, created);
    assert_eq!(fetched.game().unwrap().title.as_str(), "Crüd Ünïcode 世界");

    let changed = game(json!({"id": "crud", "title": "Changed"}));
    assert!(matches!(
        catalog.replace(&changed, Some(9), &tester()).await,
        Err(StoreError::VersionMismatch { current: 1 })
    ));
    assert_eq!(
        catalog.get(&created.id).await.unwrap().unwrap().version,
        1,
        "a stale write writes nothing"
    );
    let replaced = catalog.replace(&changed, Some(1), &tester()).await.unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(replaced.created_at, created.created_at);
    let same = catalog.replace(&changed, None, &tester()).await.unwrap();
    assert_eq!(same.version, 2, "identical content is not a change");
    assert_eq!(search(stores, "chang").await, ["crud"]);
    assert!(
        search(stores, "crud").await.is_empty(),
        "the old title left the search index"
    );
    assert!(matches!(
        catalog
            .replace(&game(json!({"id": "ghost", "title": "X"})), None, &tester())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        catalog.delete(&created.id, Some(1), &tester()).await,
        Err(StoreError::VersionMismatch { current: 2 })
    ));
    catalog
        .delete(&created.id, Some(2), &tester())
        .await
        .unwrap();
    assert!(catalog.get(&created.id).await.unwrap().is_none());
    assert!(search(stores, "changed").await.is_empty());
    assert!(matches!(
        catalog.delete(&created.id, None, &tester()).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A game deleted and created again under the same id keeps counting: a client holding an
/// ETag of the first game can never write to the second.
async fn versions_never_repeat_across_delete_and_recreate(stores: &Stores) {
    let catalog = &stores.catalog;
    let first = game(json!({"id": "phoenix", "title": "Phoenix"}));
    let id = first.id.clone();
    catalog.create(&first, &tester()).await.unwrap();
    let edited = game(json!({"id": "phoenix", "title": "Phoenix, edited"}));
    assert_eq!(
        catalog
            .replace(&edited, Some(1), &tester())
            .await
            .unwrap()
            .version,
        2
    );
    catalog.delete(&id, Some(2), &tester()).await.unwrap();
    assert!(catalog.get(&id).await.unwrap().is_none());
    assert!(
        matches!(
            catalog.replace(&edited, Some(2), &tester()).await,
            Err(StoreError::NotFound(_))
        ),
        "a deleted game cannot be written back through its last version"
    );
    assert!(matches!(
        catalog.delete(&id, Some(2), &tester()).await,
        Err(StoreError::NotFound(_))
    ));

    let reborn = catalog.create(&first, &tester()).await.unwrap();
    assert_eq!(
        reborn.version, 4,
        "the new game counts on from the deletion, a version of its own (3)"
    );
    for stale in [1, 2, 3] {
        assert!(
            matches!(
                catalog.replace(&edited, Some(stale), &tester()).await,
                Err(StoreError::VersionMismatch { current: 4 })
            ),
            "If-Match {stale} of the deleted game"
        );
        assert!(matches!(
            catalog.delete(&id, Some(stale), &tester()).await,
            Err(StoreError::VersionMismatch { current: 4 })
        ));
    }
    assert_eq!(catalog.get(&id).await.unwrap().unwrap(), reborn);

    // An ingest that brings the id back counts on too, and reports it as inserted.
    catalog.delete(&id, Some(4), &tester()).await.unwrap();
    let outcomes = catalog
        .upsert_batch(
            vec![staged(json!({"id": "phoenix", "title": "Phoenix"}), 1)],
            &AttemptId("phoenix-1".into()),
            &tester(),
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [UpsertOutcome::Inserted]);
    assert_eq!(catalog.get(&id).await.unwrap().unwrap().version, 6);
    catalog.delete(&id, Some(6), &tester()).await.unwrap();
    let all = ids(stores, ListQuery::default()).await;
    assert!(
        !all.contains(&"phoenix".to_owned()),
        "what is kept of a deleted game is never listed: {all:?}"
    );
}

async fn batch_upserts_are_idempotent_and_catch_duplicates(stores: &Stores) {
    let catalog = &stores.catalog;
    let batch = vec![
        staged(json!({"id": "b1", "title": "Batch One"}), 1),
        staged(json!({"id": "b2", "title": "Batch Two"}), 2),
        staged(json!({"id": "b1", "title": "Batch One Again"}), 3),
    ];
    let first = AttemptId("attempt-1".into());
    let outcomes = catalog
        .upsert_batch(batch.clone(), &first, &tester())
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            UpsertOutcome::Inserted,
            UpsertOutcome::Inserted,
            UpsertOutcome::Duplicate {
                first: Position::Line(1)
            }
        ]
    );
    let b1 = catalog
        .get(&game(json!({"id": "b1", "title": "x"})).id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b1.game().unwrap().title.as_str(), "Batch One");

    // A replay in a new attempt (a rerun) changes nothing.
    let replay = catalog
        .upsert_batch(
            batch[..2].to_vec(),
            &AttemptId("attempt-2".into()),
            &tester(),
        )
        .await
        .unwrap();
    assert_eq!(replay, [UpsertOutcome::Unchanged, UpsertOutcome::Unchanged]);
    assert_eq!(catalog.get(&b1.id).await.unwrap().unwrap(), b1);

    let update = catalog
        .upsert_batch(
            vec![staged(
                json!({"id": "b2", "title": "Batch Two, revised"}),
                1,
            )],
            &AttemptId("attempt-3".into()),
            &tester(),
        )
        .await
        .unwrap();
    assert_eq!(update, [UpsertOutcome::Updated]);
    let b2 = catalog.get(&batch[1].game.id).await.unwrap().unwrap();
    assert_eq!(b2.version, 2);
    assert_eq!(
        search(stores, "revised").await,
        ["b2"],
        "batch writes keep the search index"
    );
    assert_eq!(
        search(stores, "batch").await,
        ["b2", "b1"],
        "each game once, newest first: the replaced version left the index"
    );
    for id in ["b1", "b2"] {
        catalog
            .delete(&game(json!({"id": id, "title": "x"})).id, None, &tester())
            .await
            .unwrap();
    }
}

/// Every filter and combination of filters, with every sort, in pages of several sizes: the
/// same games in the same order and the same pages as a plain computation over the documents.
async fn filters_sorts_and_pagination_to_the_last_page(stores: &Stores) {
    let catalog = &stores.catalog;
    let mut documents = Vec::new();
    for i in 0..23u32 {
        let mut platforms = vec![["PC", "Switch", "PlayStation 5"][i as usize % 3]];
        if i % 5 == 0 {
            platforms.push("Switch");
        }
        documents.push(json!({
            "id": format!("p{i:02}"),
            "title": format!("{} Quest {i}", ["Alpha", "beta", "Gamma", "Éclair"][i as usize % 4]),
            "platforms": platforms,
            "genres": [if i % 2 == 0 { "RPG" } else { "Puzzle" }],
            "release_date": format!("{}", 2000 + (i % 7)),
            "rating": (i % 11) as f64,
        }));
    }
    // Undated and unrated, and a title that a search word starts only in its second word.
    documents.push(json!({"id": "p90", "title": "The Alpha Quest", "platforms": ["PC"]}));
    documents.push(
        json!({"id": "p91", "title": "Quest for Glory", "genres": ["RPG"],
        "release_date": "2003-05-01"}),
    );
    let mut games = Vec::new();
    for value in &documents {
        let stored = catalog
            .create(&game(value.clone()), &tester())
            .await
            .unwrap();
        games.push((value.clone(), stored.updated_at));
    }
    let has = |g: &Value, field: &str, label: &str| {
        g[field].as_array().is_some_and(|l| {
            l.iter()
                .any(|v| v.as_str().unwrap().eq_ignore_ascii_case(label))
        })
    };
    let year = |g: &Value| {
        g["release_date"]
            .as_str()
            .map(|d| d[..4].parse::<u16>().unwrap())
    };
    let rating = |g: &Value| g["rating"].as_f64();
    type Keep<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let base = ListQuery::default();
    let cases: Vec<(&str, ListQuery, Keep)> = vec![
        ("everything", base.clone(), Box::new(|_| true)),
        (
            "platform",
            ListQuery {
                platform: Some("playstation 5".into()),
                ..base.clone()
            },
            Box::new(|g| has(g, "platforms", "PlayStation 5")),
        ),
        (
            "a second platform",
            ListQuery {
                platform: Some("SWITCH".into()),
                ..base.clone()
            },
            Box::new(|g| has(g, "platforms", "Switch")),
        ),
        (
            "genre",
            ListQuery {
                genre: Some("rpg".into()),
                ..base.clone()
            },
            Box::new(|g| has(g, "genres", "RPG")),
        ),
        (
            "years",
            ListQuery {
                year_from: Some(2002),
                year_to: Some(2004),
                ..base.clone()
            },
            Box::new(|g| year(g).is_some_and(|y| (2002..=2004).contains(&y))),
        ),
        (
            "year_to",
            ListQuery {
                year_to: Some(2001),
                ..base.clone()
            },
            Box::new(|g| year(g).is_some_and(|y| y <= 2001)),
        ),
        (
            "min_rating",
            ListQuery {
                min_rating: Some(Rating::parse("7.5").unwrap()),
                ..base.clone()
            },
            Box::new(|g| rating(g).is_some_and(|r| r >= 7.5)),
        ),
        (
            "search ignores accents and matches word prefixes",
            ListQuery {
                q: Some("eclair que".into()),
                ..base.clone()
            },
            Box::new(|g| g["title"].as_str().unwrap().starts_with("Éclair")),
        ),
        (
            "search on any word of the title",
            ListQuery {
                q: Some("ALPHA".into()),
                ..base.clone()
            },
            Box::new(|g| g["title"].as_str().unwrap().contains("Alpha")),
        ),
        (
            "platform and genre",
            ListQuery {
                platform: Some("PC".into()),
                genre: Some("Puzzle".into()),
                ..base.clone()
            },
            Box::new(|g| has(g, "platforms", "PC") && has(g, "genres", "Puzzle")),
        ),
        (
            "everything at once",
            ListQuery {
                q: Some("quest".into()),
                platform: Some("switch".into()),
                genre: Some("rpg".into()),
                year_from: Some(2001),
                min_rating: Some(Rating::parse("2").unwrap()),
                ..base.clone()
            },
            Box::new(|g| {
                has(g, "platforms", "Switch")
                    && has(g, "genres", "RPG")
                    && year(g).is_some_and(|y| y >= 2001)
                    && rating(g).is_some_and(|r| r >= 2.0)
            }),
        ),
        (
            "a platform no game has",
            ListQuery {
                platform: Some("Dreamcast".into()),
                ..base.clone()
            },
            Box::new(|_| false),
        ),
        (
            "a word no title starts",
            ListQuery {
                q: Some("uest".into()),
                ..base.clone()
            },
            Box::new(|_| false),
        ),
    ];
    let key = |field: SortField, g: &Value, updated_at: &str| match field {
        SortField::Title => g["title"].as_str().unwrap().to_lowercase(),
        SortField::ReleaseDate => g["release_date"].as_str().unwrap_or("").to_owned(),
        SortField::Rating => rating(g).map_or("-".into(), |r| format!("{:03}", (r * 10.0) as u32)),
        SortField::UpdatedAt => updated_at.to_owned(),
    };
    let mut listings = 0;
    for (what, query, keep) in &cases {
        for sort in Sort::names() {
            let sort = Sort::parse(&sort).unwrap();
            let mut want: Vec<(String, String)> = games
                .iter()
                .filter(|(g, _)| keep(g))
                .map(|(g, at)| (key(sort.field, g, at), g["id"].as_str().unwrap().to_owned()))
                .collect();
            want.sort();
            if sort.descending {
                want.reverse();
            }
            let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
            for limit in [3, 100] {
                let query = ListQuery {
                    sort,
                    limit,
                    ..query.clone()
                };
                assert_eq!(
                    ids(stores, query).await,
                    want,
                    "{what}, sort {sort}, limit {limit}"
                );
                listings += 1;
            }
        }
    }
    assert_eq!(listings, cases.len() * 16);
    // A cursor is bound to its query.
    let first = catalog
        .list(&ListQuery {
            limit: 2,
            ..base.clone()
        })
        .await
        .unwrap();
    let elsewhere = ListQuery {
        limit: 2,
        genre: Some("rpg".into()),
        cursor: first.next_cursor,
        ..base.clone()
    };
    assert!(matches!(
        catalog.list(&elsewhere).await,
        Err(StoreError::InvalidCursor(_))
    ));
    let bad_cursor = ListQuery {
        cursor: Some("AAAA".into()),
        ..base.clone()
    };
    assert!(matches!(
        catalog.list(&bad_cursor).await,
        Err(StoreError::InvalidCursor(_))
    ));
    for g in &documents {
        catalog
            .delete(&game(g.clone()).id, None, &tester())
            .await
            .unwrap();
    }
}

fn entry(id: &str, started_at: &str, status: IngestStatus) -> IngestRecord {
    IngestRecord {
        accepted: 1,
        inserted: 1,
        ..IngestRecord::new(
            IngestId::for_upload(id, "f"),
            format!("uploads/{id}.json"),
            10,
            "f".into(),
            status,
            started_at.into(),
        )
    }
}

/// `entry` claimed by `holder` until `until`.
fn leased(id: &str, holder: &str, until: &str) -> IngestRecord {
    IngestRecord {
        lease: Some(Lease {
            holder: holder.into(),
            until: until.into(),
        }),
        ..entry(id, "2026-01-01T00:00:00.000Z", IngestStatus::Running)
    }
}

const NOW: &str = "2026-06-01T00:00:00.000Z";
const LATER: &str = "2026-06-01T00:01:00.000Z";
const MUCH_LATER: &str = "2026-06-01T00:02:00.000Z";

async fn ledger_entries(stores: &Stores) {
    let ledger = &stores.ledger;
    let queued = entry("a", "2026-01-01T00:00:01.000Z", IngestStatus::Queued);
    assert!(ledger.create(&queued).await.unwrap());
    assert_eq!(ledger.get(&queued.id).await.unwrap(), Some(queued.clone()));
    let again = IngestRecord {
        size: 99,
        ..queued.clone()
    };
    assert!(
        !ledger.create(&again).await.unwrap(),
        "create never replaces"
    );
    assert_eq!(ledger.get(&queued.id).await.unwrap(), Some(queued.clone()));
    let mut running = IngestRecord {
        started_at: queued.started_at.clone(),
        ..leased("a", "worker", LATER)
    };
    assert_eq!(ledger.claim(&running, NOW).await.unwrap(), Claim::Taken);
    assert_eq!(
        ledger.get(&running.id).await.unwrap(),
        Some(running.clone())
    );
    running.status = IngestStatus::Succeeded;
    running.lease = None;
    assert!(ledger.update(&running, "worker").await.unwrap());
    assert_eq!(
        ledger.get(&running.id).await.unwrap(),
        Some(running.clone()),
        "the holder's update replaces"
    );
    for (i, name) in ["b", "c", "d", "e"].iter().enumerate() {
        assert!(
            ledger
                .create(&entry(
                    name,
                    &format!("2026-01-01T00:00:0{}.000Z", i + 2),
                    IngestStatus::Failed,
                ))
                .await
                .unwrap()
        );
    }
    let mut keys = Vec::new();
    let mut query = LedgerQuery {
        limit: 2,
        cursor: None,
    };
    loop {
        let page = ledger.list(&query).await.unwrap();
        keys.extend(page.items.iter().map(|e| e.key.clone()));
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        keys,
        ["e", "d", "c", "b", "a"].map(|k| format!("uploads/{k}.json")),
        "newest first, every page"
    );
    assert!(
        ledger
            .get(&IngestId::for_upload("zzz", "f"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Claims are atomic on every store: of many at once exactly one wins, the others see its
/// lease; only the holder updates; an expired lease is taken over, and the old holder's updates
/// are then refused; a settled entry is never claimed again, a retryable one is.
async fn one_claim_wins_and_an_expired_lease_is_taken_over(stores: &Stores) {
    let ledger = &stores.ledger;
    let claims = (0..12).map(|i| {
        let record = leased("claimed", &format!("w{i}"), LATER);
        async move { (i, ledger.claim(&record, NOW).await.unwrap()) }
    });
    let results = futures::future::join_all(claims).await;
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, claim)| *claim == Claim::Taken)
        .map(|(i, _)| format!("w{i}"))
        .collect();
    assert_eq!(winners.len(), 1, "one claim wins: {results:?}");
    let winner = &winners[0];
    for (_, claim) in &results {
        if let Claim::Busy(stored) = claim {
            assert_eq!(stored.lease.as_ref().unwrap().holder, *winner);
        } else {
            assert_eq!(*claim, Claim::Taken);
        }
    }
    let id = leased("claimed", "", "").id;
    let held = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(held.lease.as_ref().unwrap().holder, *winner);

    // Only the holder writes; the holder may claim again (a renewal through claim).
    let mut other = leased("claimed", "intruder", LATER);
    other.accepted = 7;
    assert!(!ledger.update(&other, "intruder").await.unwrap());
    assert_eq!(ledger.get(&id).await.unwrap().unwrap(), held);
    assert_eq!(
        ledger
            .claim(&leased("claimed", winner, MUCH_LATER), NOW)
            .await
            .unwrap(),
        Claim::Taken
    );

    // Past the lease (MUCH_LATER), many take over at once: one wins; the old holder is out.
    let late = "2026-06-01T00:03:00.000Z";
    let takeovers = (0..6).map(|i| {
        let record = leased("claimed", &format!("late{i}"), "2026-06-01T00:04:00.000Z");
        async move { ledger.claim(&record, late).await.unwrap() }
    });
    let taken = futures::future::join_all(takeovers).await;
    assert_eq!(
        taken.iter().filter(|c| **c == Claim::Taken).count(),
        1,
        "{taken:?}"
    );
    let successor = ledger
        .get(&id)
        .await
        .unwrap()
        .unwrap()
        .lease
        .unwrap()
        .holder;
    assert!(successor.starts_with("late"), "{successor}");
    let mut stale = leased("claimed", winner, MUCH_LATER);
    stale.status = IngestStatus::Succeeded;
    assert!(
        !ledger.update(&stale, winner).await.unwrap(),
        "an expired holder's outcome is refused once another holds the entry"
    );

    // The successor finishes: settled, nobody claims it again, nobody updates it.
    let mut done = leased("claimed", &successor, "");
    done.lease = None;
    done.status = IngestStatus::PartiallyFailed;
    done.rejected = 2;
    assert!(ledger.update(&done, &successor).await.unwrap());
    let far = "2099-01-01T00:00:00.000Z";
    assert_eq!(
        ledger
            .claim(&leased("claimed", "anyone", far), far)
            .await
            .unwrap(),
        Claim::Settled(done.clone())
    );
    assert!(
        !ledger.update(&done, &successor).await.unwrap(),
        "no lease, no holder"
    );
    assert_eq!(ledger.get(&id).await.unwrap().unwrap(), done);

    // A failure of the machinery leaves a retryable entry: claimed again at once.
    let first = leased("flaky", "first", LATER);
    assert_eq!(ledger.claim(&first, NOW).await.unwrap(), Claim::Taken);
    let failed = IngestRecord {
        status: IngestStatus::Failed,
        retryable: true,
        lease: None,
        ..first.clone()
    };
    assert!(ledger.update(&failed, "first").await.unwrap());
    assert_eq!(
        ledger
            .claim(&leased("flaky", "second", LATER), NOW)
            .await
            .unwrap(),
        Claim::Taken
    );
    let failed_for_good = IngestRecord {
        retryable: false,
        ..failed
    };
    assert!(ledger.update(&failed_for_good, "second").await.unwrap());
    assert!(matches!(
        ledger
            .claim(&leased("flaky", "third", LATER), NOW)
            .await
            .unwrap(),
        Claim::Settled(_)
    ));
}

/// Through the pipeline: an upload whose entry another attempt holds is not ingested (a
/// retryable error), and is once that attempt's lease has expired, as a retry.
async fn a_second_ingest_of_an_upload_in_progress_waits_for_its_lease(stores: &Stores) {
    let bucket = Bucket::memory();
    let ingestor = Ingestor::new(stores.clone(), bucket.clone(), IngestConfig::default());
    let key = "uploads/held.ndjson";
    let info = bucket
        .put(key, "{\"id\":\"held\",\"title\":\"Held\"}\n".into())
        .await
        .unwrap();
    let upload = Upload {
        source: &bucket,
        key,
        ledger_key: key.into(),
    };
    // Another attempt claimed it a moment ago (a minute's lease) and has written nothing yet.
    let holder = IngestRecord {
        lease: Some(Lease {
            holder: "elsewhere:1:0".into(),
            until: ludex::store::rfc3339_in(std::time::Duration::from_secs(60)),
        }),
        ..IngestRecord::new(
            IngestId::for_upload(key, &info.fingerprint),
            key.into(),
            info.size,
            info.fingerprint.clone(),
            IngestStatus::Running,
            ludex::store::now_rfc3339(),
        )
    };
    assert_eq!(
        stores
            .ledger
            .claim(&holder, &ludex::store::now_rfc3339())
            .await
            .unwrap(),
        Claim::Taken
    );
    let busy = ingestor.ingest(&upload, &()).await.unwrap_err();
    assert!(
        matches!(&busy, IngestError::Busy { holder, .. } if holder == "elsewhere:1:0"),
        "{busy}"
    );
    assert!(busy.is_transient());
    assert_eq!(
        stores.ledger.get(&holder.id).await.unwrap(),
        Some(holder.clone())
    );
    assert!(
        stores
            .catalog
            .get(&GameId::parse("held").unwrap())
            .await
            .unwrap()
            .is_none(),
        "nothing ingested"
    );

    // The holder died: its lease runs out, and the next attempt completes the upload.
    let expired = IngestRecord {
        lease: Some(Lease {
            holder: "elsewhere:1:0".into(),
            until: "2000-01-01T00:00:00.000Z".into(),
        }),
        ..holder.clone()
    };
    assert!(
        stores
            .ledger
            .update(&expired, "elsewhere:1:0")
            .await
            .unwrap()
    );
    let done = ingestor.ingest(&upload, &()).await.unwrap();
    assert!(!done.replayed);
    assert_eq!(done.record.id, holder.id);
    assert_eq!(
        (
            done.record.status,
            done.record.accepted,
            done.record.lease.clone()
        ),
        (IngestStatus::Succeeded, 1, None)
    );
    assert_eq!(
        stores.ledger.get(&holder.id).await.unwrap(),
        Some(done.record)
    );
    assert_eq!(entries_of(stores, key).await.len(), 1);
    assert!(ingestor.ingest(&upload, &()).await.unwrap().replayed);
}

/// S3 may deliver one event twice at once, and several workers may see one file: of five
/// ingests of one upload started together, one runs it; the others leave it (a retryable
/// error) or find it done. One ledger entry, counted once.
async fn deliveries_of_one_upload_at_the_same_moment_ingest_it_once(stores: &Stores) {
    let bucket = Bucket::memory();
    let key = "uploads/twice.ndjson";
    let records: String = (0..200)
        .map(|i| format!("{{\"id\":\"twice-{i}\",\"title\":\"Twice {i}\"}}\n"))
        .collect();
    bucket.put(key, records.into()).await.unwrap();
    let bucket = &bucket;
    let ingestors: Vec<_> = (0..5)
        .map(|_| Ingestor::new(stores.clone(), bucket.clone(), IngestConfig::default()))
        .collect();
    let runs = ingestors.iter().map(|ingestor| async move {
        let upload = Upload {
            source: bucket,
            key,
            ledger_key: key.into(),
        };
        ingestor.ingest(&upload, &()).await
    });
    let outcomes = futures::future::join_all(runs).await;
    let ran: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().filter(|o| !o.replayed))
        .collect();
    assert_eq!(
        ran.len(),
        1,
        "exactly one ingest ran the upload: {outcomes:?}"
    );
    for outcome in &outcomes {
        if let Err(e) = outcome {
            assert!(e.is_transient(), "{e}");
        }
    }
    let entries = entries_of(stores, key).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (
            entries[0].status,
            entries[0].accepted,
            entries[0].inserted,
            entries[0].lease.clone()
        ),
        (IngestStatus::Succeeded, 200, 200, None),
        "{outcomes:#?}"
    );
    assert_eq!(entries[0], ran[0].record);
}

/// Every ledger entry of one upload key, newest first.
async fn entries_of(stores: &Stores, key: &str) -> Vec<IngestRecord> {
    let mut found = Vec::new();
    let mut query = LedgerQuery {
        limit: 100,
        cursor: None,
    };
    loop {
        let page = stores.ledger.list(&query).await.unwrap();
        found.extend(page.items.into_iter().filter(|e| e.key == key));
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return found,
        }
    }
}

/// A → B → A under one name: the third upload is new content for that name, not a replay.
async fn content_that_comes_back_under_a_name_is_ingested_again(stores: &Stores) {
    let bucket = Bucket::memory();
    let ingestor = Ingestor::new(stores.clone(), bucket.clone(), IngestConfig::default());
    let key = "uploads/comeback.ndjson";
    let ingest = async |content: &'static str| -> IngestOutcome {
        bucket.put(key, content.into()).await.unwrap();
        let upload = Upload {
            source: &bucket,
            key,
            ledger_key: key.into(),
        };
        ingestor.ingest(&upload, &()).await.unwrap()
    };
    let title = async || {
        let id = GameId::parse("comeback").unwrap();
        let stored = stores.catalog.get(&id).await.unwrap().unwrap();
        serde_json::from_str::<Value>(&stored.content).unwrap()["title"].clone()
    };
    let a = "{\"id\":\"comeback\",\"title\":\"A\"}\n";
    let b = "{\"id\":\"comeback\",\"title\":\"B\"}\n";

    // Entries are ordered by their start, to the millisecond: tiny files can start within
    // the same one, so each ingest starts in a later millisecond than the one before.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(3));
    let first = ingest(a).await;
    pause().await;
    let second = ingest(b).await;
    pause().await;
    let third = ingest(a).await;
    assert!(!third.replayed, "A after B is new content for the name");
    assert_eq!(title().await, "A", "the catalog ends at the last upload");
    let ids: Vec<_> = [&first, &second, &third]
        .map(|o| o.record.id.clone())
        .into_iter()
        .collect();
    assert_eq!(
        entries_of(stores, key)
            .await
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        ids.iter().rev().cloned().collect::<Vec<_>>(),
        "one ledger entry per upload, newest first"
    );

    let replay = ingest(a).await;
    assert!(
        replay.replayed,
        "a replay of the latest content changes nothing"
    );
    assert_eq!(replay.record.id, third.record.id);
    assert_eq!(entries_of(stores, key).await.len(), 3);
    assert_eq!(title().await, "A");
}

/// A JSON `POST` through the router over this store, with a write key: 200 and its body.
async fn post_json(router: &axum::Router, writer: &str, path: &str, body: &Value) -> Value {
    use tower::ServiceExt as _;
    let request = axum::http::Request::post(path)
        .header("authorization", format!("Bearer {writer}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap()
}

/// The API over this store, with its default settings.
fn api_over(stores: &Stores) -> crate::app::TestApp {
    crate::app::app_over(
        tempfile::tempdir().unwrap(),
        stores.clone(),
        ludex::api::ApiConfig::default(),
        ludex::metrics::Metrics::prometheus(),
    )
}

/// A request through the router with a write key (and `If-Match` when given): the status and
/// the body (`null` when empty).
async fn send(
    router: &axum::Router,
    writer: &str,
    (method, path): (&str, &str),
    body: Option<Value>,
    if_match: Option<&str>,
) -> (u16, Value) {
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {writer}"));
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or_else(axum::body::Body::empty, |b| b.to_string().into());
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, value)
}

/// `GET /games/{id}/history` followed to its last page, in pages of `limit`.
async fn history_pages(router: &axum::Router, writer: &str, id: &str, limit: u32) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/games/{id}/history?limit={limit}");
    loop {
        let (status, page) = send(router, writer, ("GET", &path), None, None).await;
        assert_eq!(status, 200, "{path}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        all.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/games/{id}/history?limit={limit}&cursor={cursor}"),
            None => return all,
        }
    }
}

/// The history through the API: each version with its author, time and change as a merge
/// patch, in pages; a restore makes an old version's content current as a new version, under
/// the same preconditions as any write, and brings a deleted game back.
async fn the_api_shows_the_history_and_restores_any_version(stores: &Stores) {
    let app = api_over(stores);
    let (router, writer) = (&app.router, app.writer.as_str());
    let call =
        |method: &'static str,
         path: &'static str,
         body: Option<Value>,
         tag: Option<&'static str>| { send(router, writer, (method, path), body, tag) };
    let first = json!({"id": "h-api", "title": "First", "platforms": ["PC"]});
    assert_eq!(call("POST", "/games", Some(first), None).await.0, 201);
    let patch = json!({"title": "Second", "rating": 7});
    assert_eq!(
        call("PATCH", "/games/h-api", Some(patch), None).await.0,
        200
    );
    let versions = history_pages(router, writer, "h-api", 20).await;
    let writer_key = json!({"kind": "key", "name": "writer"});
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["author"], writer_key);
    assert_eq!(
        versions[0]["change"],
        json!({"title": "Second", "rating": 7.0})
    );
    assert_eq!(versions[1]["version"], 1);
    assert_eq!(
        versions[1]["change"]["title"], "First",
        "the first version whole"
    );
    assert_eq!(versions[1]["deleted"], false);

    // A restore is a write: If-Match is checked, and the old content comes back as a new version.
    let restore = |version: Value| Some(json!({"version": version}));
    // Restores `version` with `If-Match: stale`, which must fail, then with `fresh`.
    let restore_once = |version: Value, stale: &'static str, fresh: &'static str| async move {
        let refused = call(
            "POST",
            "/games/h-api/restore",
            restore(version.clone()),
            Some(stale),
        )
        .await;
        assert_eq!(refused.0, 412, "{}", refused.1);
        call(
            "POST",
            "/games/h-api/restore",
            restore(version),
            Some(fresh),
        )
        .await
    };
    // JSON Schema's integers include 1.0.
    let (status, game) = restore_once(json!(1.0), "\"1\"", "\"2\"").await;
    assert_eq!((status, game["version"].clone()), (200, json!(3)), "{game}");
    assert_eq!(game["title"], "First");
    assert!(game.get("rating").is_none(), "{game}");
    let versions = history_pages(router, writer, "h-api", 1).await;
    assert_eq!(
        versions[0]["change"],
        json!({"title": "First", "rating": null})
    );

    assert_eq!(call("DELETE", "/games/h-api", None, None).await.0, 204);
    let versions = history_pages(router, writer, "h-api", 2).await;
    let numbers: Vec<u64> = versions
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1], "pages of 2 cover every version once");
    assert_eq!(
        (
            versions[0]["deleted"].clone(),
            versions[0]["change"].clone()
        ),
        (json!(true), Value::Null)
    );
    for (body, status) in [
        (restore(json!(4)), 422),
        (restore(json!(99)), 404),
        (restore(json!("two")), 400),
        (restore(json!(0)), 400),
        (restore(json!(2.5)), 400),
        // Past any version a store can hold (PostgreSQL's bigint, SQLite's integer).
        (restore(json!(u64::MAX - 1)), 400),
        (restore(json!(1e15)), 404),
        (Some(json!({"version": 2, "extra": 1})), 400),
        (Some(json!([2])), 400),
    ] {
        let reply = call("POST", "/games/h-api/restore", body.clone(), None).await;
        assert_eq!(reply.0, status, "{body:?}: {}", reply.1);
    }
    // A deleted game comes back; If-Match names its deletion.
    let (status, game) = restore_once(json!(2), "\"3\"", "\"4\"").await;
    assert_eq!((status, game["version"].clone()), (201, json!(5)), "{game}");
    assert_eq!(
        (game["title"].clone(), game["rating"].clone()),
        (json!("Second"), json!(7.0))
    );
    let versions = history_pages(router, writer, "h-api", 20).await;
    assert_eq!(
        versions[0]["change"]["title"], "Second",
        "after a deletion, the whole document"
    );

    for (path, status) in [
        ("/games/nobody-ever/history", 404),
        ("/games/h-api/history?cursor=abc", 400),
        ("/games/h-api/history?cursor=0", 400),
        ("/games/h-api/history?limit=0", 400),
        ("/games/h-api/history?limit=101", 400),
    ] {
        assert_eq!(call("GET", path, None, None).await.0, status, "{path}");
    }
}

/// `POST /games/batch`: the results, one per operation.
async fn batch(router: &axum::Router, writer: &str, operations: Value) -> Vec<Value> {
    let reply = post_json(
        router,
        writer,
        "/games/batch",
        &json!({"operations": operations}),
    )
    .await;
    let results = reply["results"].as_array().unwrap().clone();
    assert_eq!(
        results.len(),
        operations.as_array().unwrap().len(),
        "{reply}"
    );
    results
}

fn statuses(results: &[Value]) -> Vec<u64> {
    results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect()
}

/// Each operation of a batch gets the status its own request would have had, in order; one
/// that fails stops nothing; a batch naming one game twice applies its operations in order, and
/// one naming many games applies them all (concurrently, on this store).
async fn a_batch_answers_each_operation_as_its_own_request(stores: &Stores) {
    let app = api_over(stores);
    let (router, writer) = (&app.router, app.writer.as_str());
    let created = batch(
        router,
        writer,
        json!([
            {"op": "create", "game": {"id": "b-one", "title": "Batch One", "platforms": ["PC"]}},
            {"op": "create", "game": {"id": "b-two", "title": "Batch Two"}},
            {"op": "create", "game": {"id": "b-one", "title": "Taken"}},
            {"op": "create", "game": {"title": ""}},
        ]),
    )
    .await;
    assert_eq!(statuses(&created), [201, 201, 409, 422], "{created:?}");
    assert_eq!(created[0]["game"]["version"], 1);
    assert_eq!(created[3]["problem"]["errors"][0]["field"], "title");

    let mixed = batch(
        router,
        writer,
        json!([
            {"op": "patch", "id": "b-one", "if_match": "\"1\"", "patch": {"rating": 8.5}},
            {"op": "patch", "id": "b-two", "if_match": "\"7\"", "patch": {"rating": 1}},
            {"op": "replace", "id": "b-missing", "game": {"title": "Nobody"}},
            {"op": "patch", "id": "b-one", "patch": {"rating": 11}},
            {"op": "delete", "id": "Not An Id!"},
            {"op": "patch", "id": "b-one", "if_match": "\"2\"", "patch": {"platforms": ["PC", "Switch"]}},
            {"op": "replace", "id": "b-two", "if_match": "\"1\"", "game": {"title": "Batch Two, Again"}},
            {"op": "delete", "id": "b-two", "if_match": "\"2\""},
        ]),
    )
    .await;
    assert_eq!(
        statuses(&mixed),
        [200, 412, 404, 422, 400, 200, 200, 204],
        "{mixed:?}"
    );
    assert_eq!(mixed[1]["problem"]["current_version"], 1);
    assert_eq!(mixed[3]["problem"]["errors"][0]["field"], "rating");
    assert_eq!(mixed[5]["game"]["version"], 3);
    assert_eq!(
        mixed[5]["game"]["rating"], 8.5,
        "the first patch was applied first"
    );
    assert!(mixed[7].get("game").is_none());
    let one = stores
        .catalog
        .get(&GameId::parse("b-one").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.version, 3);
    assert!(
        stores
            .catalog
            .get(&GameId::parse("b-two").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // Many games at once: every patch lands, each on its own game.
    let many: Vec<Value> = (0..40)
        .map(|i| json!({"op": "create", "game": {"id": format!("b-many-{i}"), "title": format!("Many {i}")}}))
        .collect();
    assert!(
        statuses(&batch(router, writer, Value::Array(many)).await)
            .iter()
            .all(|s| *s == 201)
    );
    let patches: Vec<Value> = (0..40)
        .map(|i| json!({"op": "patch", "id": format!("b-many-{i}"), "if_match": "\"1\"", "patch": {"developer": format!("Studio {i}")}}))
        .collect();
    let patched = batch(router, writer, Value::Array(patches)).await;
    for (i, result) in patched.iter().enumerate() {
        assert_eq!(result["status"], 200, "{result}");
        assert_eq!(
            result["game"]["id"],
            format!("b-many-{i}"),
            "results in order"
        );
        assert_eq!(result["game"]["developer"], format!("Studio {i}"));
    }
    let deletes: Vec<Value> = (0..40)
        .map(|i| json!({"op": "delete", "id": format!("b-many-{i}")}))
        .chain([json!({"op": "delete", "id": "b-one", "if_match": "\"3\""})])
        .collect();
    assert!(
        statuses(&batch(router, writer, Value::Array(deletes)).await)
            .iter()
            .all(|s| *s == 204)
    );
}

/// A dry run counts new, changed, unchanged and rejected records against this store, names the
/// changed fields, and writes nothing; the ingest that follows does what it said.
async fn a_dry_run_tells_what_an_ingest_would_do_and_writes_nothing(stores: &Stores) {
    let catalog = &stores.catalog;
    catalog
        .create(
            &game(json!({"id": "dry-same", "title": "Same", "rating": 7})),
            &tester(),
        )
        .await
        .unwrap();
    catalog
        .create(
            &game(json!({"id": "dry-edit", "title": "Edit", "tags": ["old"]})),
            &tester(),
        )
        .await
        .unwrap();
    let file = [
        json!({"id": "dry-same", "title": "Same", "rating": 7}),
        json!({"id": "dry-edit", "title": "Edited", "developer": "Someone"}),
        json!({"id": "dry-new", "title": "New"}),
        json!({"id": "dry-bad", "title": "Bad", "rating": 12}),
        json!({"id": "dry-new", "title": "New again"}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect::<String>();
    let preview = ludex::preview::preview(
        stores,
        Box::new(std::io::Cursor::new(file.clone().into_bytes())),
        IngestConfig::default(),
        ludex_domain::upload::UploadOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            preview.records,
            preview.new,
            preview.changed,
            preview.unchanged,
            preview.rejected
        ),
        (5, 1, 1, 1, 2),
        "{preview:?}"
    );
    let change = &preview.changes[0];
    assert_eq!(
        (change.id.as_str(), change.position, change.version),
        ("dry-edit", Position::Line(2), 1)
    );
    let fields: Vec<(&str, Option<&str>, Option<&str>)> = change
        .fields
        .iter()
        .map(|f| {
            (
                f.field.as_str(),
                f.from.as_ref().map(|v| v.get()),
                f.to.as_ref().map(|v| v.get()),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("developer", None, Some("\"Someone\"")),
            ("tags", Some("[\"old\"]"), None),
            ("title", Some("\"Edit\""), Some("\"Edited\"")),
        ]
    );
    assert_eq!(preview.rejects[0].position, Position::Line(4));
    assert_eq!(
        preview.rejects[1].errors[0].reason,
        "dry-new appears earlier in this file, at line 3"
    );
    let edit = catalog
        .get(&GameId::parse("dry-edit").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (edit.version, edit.game().unwrap().title.as_str()),
        (1, "Edit"),
        "nothing written"
    );
    assert!(
        catalog
            .get(&GameId::parse("dry-new").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    for id in ["dry-same", "dry-edit"] {
        catalog
            .delete(&GameId::parse(id).unwrap(), None, &tester())
            .await
            .unwrap();
    }
}

/// The column mapping of a CSV upload is part of its ledger entry.
async fn a_csv_mapping_is_kept_with_its_ledger_entry(stores: &Stores) {
    let ledger = &stores.ledger;
    let mapped = IngestRecord {
        mapping: Some("Name=title,Notes=".into()),
        ..entry("mapped", "2026-01-01T00:00:00.500Z", IngestStatus::Queued)
    };
    assert!(ledger.create(&mapped).await.unwrap());
    let stored = ledger.get(&mapped.id).await.unwrap().unwrap();
    assert_eq!(stored.mapping.as_deref(), Some("Name=title,Notes="));
    assert_eq!(stored, mapped);
}

/// `POST /games/batch/filter` through the router over this store: every game of the filter is
/// changed, across pages, and no other.
async fn a_filter_job_changes_every_matching_game_in_steps(stores: &Stores) {
    let app = api_over(stores);
    let operations: Vec<Value> = (0..130)
        .map(|i| {
            let platform = if i % 2 == 0 { "JobPlat" } else { "OtherPlat" };
            json!({"op": "create", "game": {"id": format!("fj-{i:03}"), "title": format!("Filter Job {i:03}"), "platforms": [platform]}})
        })
        .collect();
    assert!(
        statuses(&batch(&app.router, &app.writer, Value::Array(operations)).await)
            .iter()
            .all(|s| *s == 201)
    );
    let mut cursor = Value::Null;
    let mut changed = 0;
    for _ in 0..10 {
        let body = json!({"filter": "platform=jobplat", "change": {"op": "add", "field": "tags", "value": "job"}, "cursor": cursor});
        let step = post_json(&app.router, &app.writer, "/games/batch/filter", &body).await;
        changed += step["changed"].as_u64().unwrap();
        cursor = step["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert!(cursor.is_null(), "the job ends");
    assert_eq!(changed, 65);
    for i in [0, 64, 128] {
        let game = stores
            .catalog
            .get(&GameId::parse(&format!("fj-{i:03}")).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(game.game().unwrap().tags.len(), 1, "fj-{i:03}");
    }
    let other = stores
        .catalog
        .get(&GameId::parse("fj-001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(other.game().unwrap().tags.is_empty());
    let deletes: Vec<Value> = (0..130)
        .map(|i| json!({"op": "delete", "id": format!("fj-{i:03}")}))
        .collect();
    assert!(
        statuses(&batch(&app.router, &app.writer, Value::Array(deletes)).await)
            .iter()
            .all(|s| *s == 204)
    );
}

/// Ingests `content` under `key` from a bucket of its own.
async fn ingest_text(stores: &Stores, key: &str, content: &str) -> IngestRecord {
    let bucket = Bucket::memory();
    bucket.put(key, content.to_owned().into()).await.unwrap();
    let upload = Upload {
        source: &bucket,
        key,
        ledger_key: key.into(),
    };
    Ingestor::new(stores.clone(), bucket.clone(), IngestConfig::default())
        .ingest(&upload, &())
        .await
        .unwrap()
        .record
}

/// Every `(id, version)` `author` wrote, following `written_by`'s cursors in pages of `limit`,
/// sorted; only ids starting with `prefix` (the suite shares its store).
async fn written_by(
    stores: &Stores,
    author: &Author,
    limit: u32,
    prefix: &str,
) -> Vec<(String, u64)> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = stores
            .catalog
            .written_by(author, limit, cursor.as_deref())
            .await
            .expect("written_by");
        assert!(page.items.len() <= limit as usize);
        all.extend(
            page.items
                .into_iter()
                .map(|(id, version)| (id.to_string(), version))
                .filter(|(id, _)| id.starts_with(prefix)),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.sort();
    all
}

/// Every step of a revert through the API, to its end: the steps' answers.
async fn revert_steps(router: &axum::Router, writer: &str, id: &str, dry_run: bool) -> Vec<Value> {
    let path = format!("/ingests/{id}/revert");
    let mut steps = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let body = json!({"cursor": cursor, "dry_run": dry_run});
        let (status, step) = send(router, writer, ("POST", &path), Some(body), None).await;
        assert_eq!(status, 200, "{path}: {step}");
        cursor = step["next_cursor"].clone();
        steps.push(step);
        if cursor.is_null() {
            return steps;
        }
    }
}

/// The counts of a revert's steps added up, and its conflicts as `(id, reason)`, sorted.
fn revert_totals(steps: &[Value]) -> (Value, Vec<(String, String)>) {
    let names = [
        "deleted",
        "restored",
        "recreated",
        "already_reverted",
        "conflicted",
    ];
    let mut totals = serde_json::Map::new();
    for name in names {
        let sum: u64 = steps.iter().map(|s| s[name].as_u64().unwrap()).sum();
        totals.insert(name.into(), sum.into());
    }
    let mut conflicts: Vec<(String, String)> = steps
        .iter()
        .flat_map(|s| s["conflicts"].as_array().unwrap().iter())
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    conflicts.sort();
    (Value::Object(totals), conflicts)
}

/// A game's title through the API, `None` when there is no such game.
async fn title_of(router: &axum::Router, writer: &str, id: &str) -> Option<String> {
    let (status, game) = send(router, writer, ("GET", &format!("/games/{id}")), None, None).await;
    match status {
        200 => Some(game["title"].as_str().unwrap().to_owned()),
        404 => None,
        other => panic!("GET /games/{id}: {other} {game}"),
    }
}

/// A revert undoes what one ingest wrote: games it created are deleted, games it changed get
/// their content back, games changed since are conflicts; a dry run tells it all and writes
/// nothing; the revert has its own ledger entry and author, and reverting it applies the
/// upload again.
async fn an_ingest_is_reverted_and_its_revert_reverted(stores: &Stores) {
    let app = api_over(stores);
    let (router, writer) = (&app.router, app.writer.as_str());
    let post = |body: Value| send(router, writer, ("POST", "/games"), Some(body), None);
    for id in ["rv-a", "rv-c", "rv-e", "rv-f"] {
        let (status, game) = post(json!({"id": id, "title": format!("{id} before")})).await;
        assert_eq!(status, 201, "{game}");
    }
    assert_eq!(
        send(router, writer, ("DELETE", "/games/rv-f"), None, None)
            .await
            .0,
        204
    );
    let upload = [
        json!({"id": "rv-a", "title": "rv-a upload"}), // changes rv-a
        json!({"id": "rv-b", "title": "rv-b upload"}), // creates rv-b
        json!({"id": "rv-c", "title": "rv-c upload"}), // changes rv-c, edited after
        json!({"id": "rv-d", "title": "rv-d upload"}), // creates rv-d, deleted after
        json!({"id": "rv-e", "title": "rv-e before"}), // the same: unchanged
        json!({"id": "rv-f", "title": "rv-f upload"}), // creates rv-f again (version 3)
        json!({"id": "rv-g", "title": "rv-g upload", "rating": 11}), // rejected
    ]
    .map(|r| r.to_string())
    .join("\n");
    let x = ingest_text(stores, "uploads/revert-me.ndjson", &upload).await;
    assert_eq!(
        (x.inserted, x.updated, x.unchanged, x.rejected),
        (3, 2, 1, 1),
        "{x:?}"
    );
    let ingest_author = Author::ingest(&x.id);
    let wrote = vec![
        ("rv-a".to_owned(), 2),
        ("rv-b".to_owned(), 1),
        ("rv-c".to_owned(), 2),
        ("rv-d".to_owned(), 1),
        ("rv-f".to_owned(), 3),
    ];
    for limit in [1, 2, 500] {
        assert_eq!(
            written_by(stores, &ingest_author, limit, "rv-").await,
            wrote,
            "pages of {limit}"
        );
    }
    // Changed since by someone else.
    let edit = Some(json!({"title": "rv-c edited"}));
    assert_eq!(
        send(router, writer, ("PATCH", "/games/rv-c"), edit, None)
            .await
            .0,
        200
    );
    assert_eq!(
        send(router, writer, ("DELETE", "/games/rv-d"), None, None)
            .await
            .0,
        204
    );

    let x_id = x.id.to_string();
    let conflicts = vec![
        ("rv-c".to_owned(), "changed since the upload".to_owned()),
        ("rv-d".to_owned(), "changed since the upload".to_owned()),
    ];
    let (dry, dry_conflicts) = revert_totals(&revert_steps(router, writer, &x_id, true).await);
    assert_eq!(
        dry,
        json!({"deleted": 2, "restored": 1, "recreated": 0, "already_reverted": 0, "conflicted": 2})
    );
    assert_eq!(dry_conflicts, conflicts);
    assert_eq!(
        title_of(router, writer, "rv-b").await.as_deref(),
        Some("rv-b upload"),
        "a dry run writes nothing"
    );
    let revert_id = IngestId::revert_of(&x.id);
    assert!(
        stores.ledger.get(&revert_id).await.unwrap().is_none(),
        "nor a ledger entry"
    );

    let steps = revert_steps(router, writer, &x_id, false).await;
    let (done, done_conflicts) = revert_totals(&steps);
    assert_eq!(done, dry, "the revert does what its dry run said");
    assert_eq!(done_conflicts, conflicts);
    let conflict = steps
        .iter()
        .flat_map(|s| s["conflicts"].as_array().unwrap().iter())
        .find(|c| c["id"] == "rv-d")
        .unwrap();
    assert_eq!(
        (
            &conflict["version"],
            &conflict["now"],
            &conflict["deleted"],
            &conflict["changed_by"]
        ),
        (&json!(1), &json!(2), &json!(true), &json!("key:writer")),
        "{conflict}"
    );
    assert_eq!(steps[0]["revert"], revert_id.to_string());
    assert_eq!(
        title_of(router, writer, "rv-a").await.as_deref(),
        Some("rv-a before")
    );
    assert_eq!(title_of(router, writer, "rv-b").await, None);
    assert_eq!(
        title_of(router, writer, "rv-c").await.as_deref(),
        Some("rv-c edited")
    );
    assert_eq!(title_of(router, writer, "rv-d").await, None);
    assert_eq!(
        title_of(router, writer, "rv-e").await.as_deref(),
        Some("rv-e before")
    );
    assert_eq!(title_of(router, writer, "rv-f").await, None);
    // In the history, by the revert.
    let by_revert = json!({"kind": "ingest", "id": revert_id.to_string()});
    for (id, version, deleted) in [("rv-a", 3, false), ("rv-b", 2, true), ("rv-f", 4, true)] {
        let newest = &history_pages(router, writer, id, 1).await[0];
        assert_eq!(
            (&newest["version"], &newest["author"], &newest["deleted"]),
            (&json!(version), &by_revert, &json!(deleted)),
            "{id}: {newest}"
        );
    }
    assert_eq!(
        history_pages(router, writer, "rv-e", 20).await.len(),
        1,
        "an unchanged game is not touched"
    );
    // Its ledger entry.
    let entry = stores
        .ledger
        .get(&revert_id)
        .await
        .unwrap()
        .expect("the revert's entry");
    assert_eq!(entry.revert_of.as_ref(), Some(&x.id));
    assert_eq!(entry.requested_by.as_deref(), Some("key:writer"));
    assert_eq!(
        (
            entry.status,
            entry.updated,
            entry.deleted,
            entry.inserted,
            entry.conflicts
        ),
        (IngestStatus::PartiallyFailed, 1, 2, 0, 2),
        "{entry:?}"
    );
    assert!(
        entry.finished_at.is_some() && entry.lease.is_none(),
        "{entry:?}"
    );
    let (status, body) = send(
        router,
        writer,
        ("GET", &format!("/ingests/{revert_id}")),
        None,
        None,
    )
    .await;
    assert_eq!((status, &body["revert_of"]), (200, &json!(x_id)), "{body}");

    // Once is enough; the answer says how to apply the upload again.
    let path = format!("/ingests/{x_id}/revert");
    let (status, problem) = send(router, writer, ("POST", &path), Some(json!({})), None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&revert_id.to_string()),
        "{problem}"
    );

    // Reverting the revert applies the upload again: rv-b and rv-f come back, rv-a gets the
    // upload's content; rv-c and rv-d were never the revert's.
    let again = revert_steps(router, writer, &revert_id.to_string(), false).await;
    let (totals, conflicts) = revert_totals(&again);
    assert_eq!(
        totals,
        json!({"deleted": 0, "restored": 1, "recreated": 2, "already_reverted": 0, "conflicted": 0})
    );
    assert!(conflicts.is_empty());
    for id in ["rv-a", "rv-b", "rv-f"] {
        assert_eq!(
            title_of(router, writer, id).await,
            Some(format!("{id} upload"))
        );
    }
    let (_, game) = send(router, writer, ("GET", "/games/rv-f"), None, None).await;
    assert_eq!(
        game["version"], 5,
        "the versions count on through both reverts"
    );
    let twice = IngestId::revert_of(&revert_id);
    let entry = stores.ledger.get(&twice).await.unwrap().unwrap();
    assert_eq!(
        (entry.status, entry.inserted, entry.updated),
        (IngestStatus::Succeeded, 2, 1)
    );
    let (status, problem) = send(router, writer, ("POST", &path), Some(json!({})), None).await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("revert {twice}")),
        "{problem}"
    );

    // What cannot be reverted.
    let running = IngestRecord::new(
        IngestId::for_upload("uploads/still-running.json", "f"),
        "uploads/still-running.json".into(),
        1,
        "f".into(),
        IngestStatus::Running,
        "2026-01-01T00:00:00.000Z".into(),
    );
    assert!(stores.ledger.create(&running).await.unwrap());
    for (path, body, status) in [
        (format!("/ingests/{}/revert", running.id), json!({}), 409),
        (
            format!("/ingests/{}/revert", IngestId::for_upload("nothing", "f")),
            json!({}),
            404,
        ),
        ("/ingests/not-an-id/revert".to_owned(), json!({}), 400),
        (
            path.replace(&x_id, &revert_id.to_string()),
            json!({"cursor": "g:x", "dry_run": true}),
            409,
        ),
        (
            format!("/ingests/{twice}/revert"),
            json!({"cursor": "nonsense", "dry_run": true}),
            400,
        ),
        (format!("/ingests/{twice}/revert"), json!([]), 400),
        (
            format!("/ingests/{twice}/revert"),
            json!({"dry_run": "yes"}),
            400,
        ),
    ] {
        let (got, problem) = send(router, writer, ("POST", &path), Some(body), None).await;
        assert_eq!(got, status, "{path}: {problem}");
    }
}

/// A revert the key's write limit (or a crash) stopped goes on from its cursor, or from the
/// start: what is done is met as done, and the counts add up.
async fn a_revert_stopped_half_way_goes_on_where_it_stopped(stores: &Stores) {
    let upload = (0..5)
        .map(|i| json!({"id": format!("rw-{i}"), "title": format!("New {i}")}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let y = ingest_text(stores, "uploads/revert-halfway.ndjson", &upload).await;
    let mut writes = 0;
    let mut two_writes = || {
        writes += 1;
        if writes < 2 { Ok(()) } else { Err(7) }
    };
    let first = ludex::revert::step(stores, &y.id, None, false, "cli", &mut two_writes)
        .await
        .unwrap();
    assert_eq!(
        (first.deleted, first.retry_after),
        (2, Some(7)),
        "{first:?}"
    );
    let cursor = first
        .next_cursor
        .expect("a step stopped by the limit goes on");
    let entry = stores
        .ledger
        .get(&IngestId::revert_of(&y.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (entry.status, entry.deleted, entry.lease.is_none()),
        (IngestStatus::Running, 2, true)
    );
    // The next step goes through the stopped step's page again: the two deleted are met as
    // done.
    let mut admit = || Ok(());
    let mut rest = ludex::revert::step(stores, &y.id, Some(&cursor), false, "cli", &mut admit)
        .await
        .unwrap();
    while let Some(next) = rest.next_cursor.take() {
        let more = ludex::revert::step(stores, &y.id, Some(&next), false, "cli", &mut admit)
            .await
            .unwrap();
        rest.deleted += more.deleted;
        rest.already_reverted += more.already_reverted;
        rest.next_cursor = more.next_cursor;
    }
    assert_eq!((rest.deleted, rest.already_reverted), (3, 2));
    let entry = stores
        .ledger
        .get(&IngestId::revert_of(&y.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (entry.status, entry.deleted),
        (IngestStatus::Succeeded, 5),
        "{entry:?}"
    );
    for i in 0..5 {
        let id = GameId::parse(&format!("rw-{i}")).unwrap();
        assert!(stores.catalog.get(&id).await.unwrap().is_none());
    }
}

/// With a retention, the history keeps the newest versions of each game (pruned by
/// `prune_history` on the SQL stores, as versions are filed on DynamoDB), never a current
/// version nor a deleted game's deletion; versions replaced more than the days ago go from the
/// SQL stores in rounds (DynamoDB's TTL deletes them there; catalog_dynamodb.rs checks the
/// expiry it sets). Run last: it prunes the history of every game of the store.
pub async fn history_is_kept_as_retention_says(url: &str) {
    use time::{Duration, OffsetDateTime};
    let retention = ludex_domain::Retention {
        versions: Some(2),
        days: None,
    };
    let stores = ludex::store::open_with(url, retention).await.unwrap();
    let author = tester();
    let titled = |id: &str, title: String| game(json!({"id": id, "title": title}));
    stores
        .catalog
        .create(&titled("rt-a", "A 1".into()), &author)
        .await
        .unwrap();
    for n in 2..=5 {
        stores
            .catalog
            .replace(&titled("rt-a", format!("A {n}")), None, &author)
            .await
            .unwrap();
    }
    stores
        .catalog
        .create(&titled("rt-b", "B 1".into()), &author)
        .await
        .unwrap();
    stores
        .catalog
        .replace(&titled("rt-b", "B 2".into()), None, &author)
        .await
        .unwrap();
    let id = GameId::parse("rt-b").unwrap();
    stores.catalog.delete(&id, None, &author).await.unwrap();
    ludex::store::prune_history(stores.catalog.as_ref(), &retention, 100)
        .await
        .unwrap();
    let versions = async |id: &str| -> Vec<u64> {
        history(&stores, id, 2)
            .await
            .into_iter()
            .map(|v| v.0)
            .collect()
    };
    assert_eq!(
        versions("rt-a").await,
        [5, 4, 3],
        "the current version and two more"
    );
    assert_eq!(
        versions("rt-b").await,
        [3, 2],
        "the deletion and the version it deleted"
    );
    let title = history(&stores, "rt-a", 5).await[2].2.clone();
    assert_eq!(title.as_deref(), Some("A 3"), "the versions kept are whole");

    let by_days = ludex_domain::Retention {
        versions: None,
        days: Some(1),
    };
    let now = OffsetDateTime::now_utc();
    let pruned = stores
        .catalog
        .prune_history(&by_days, now, 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 0, "nothing was replaced a day ago");
    // Two days on, in rounds of one.
    let later = now + Duration::days(2);
    let mut rounds = 0;
    while stores
        .catalog
        .prune_history(&by_days, later, 1)
        .await
        .unwrap()
        == 1
    {
        rounds += 1;
        assert!(rounds < 100_000, "pruning ends");
    }
    if url.starts_with("dynamodb://") {
        assert_eq!(rounds, 0, "DynamoDB leaves ages to its TTL");
        assert_eq!(versions("rt-a").await, [5, 4, 3]);
    } else {
        assert!(rounds >= 3, "{rounds} rounds");
        assert_eq!(versions("rt-a").await, [5], "only the current version");
        assert_eq!(
            versions("rt-b").await,
            [3],
            "the deletion stays: nothing replaced it"
        );
    }
}
