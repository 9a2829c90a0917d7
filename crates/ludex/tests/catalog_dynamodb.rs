//! The catalog conformance suite and the batch-write machinery of the DynamoDB store, against
//! moto (`scripts/with-moto cargo test`), a fresh table per test.

#![cfg(feature = "dynamodb")]

use crate::conformance;
use crate::moto;

use crate::dynamo_requests::Requests;

use aws_sdk_dynamodb::types::AttributeValue;
use ludex::store::dynamodb::DynamoStore;
use ludex::store::{self, Stores};
use ludex_domain::{
    AttemptId, Game, GameId, HistoryQuery, ListQuery, Position, Rating, Sort, StagedGame,
    StoreError, UpsertOutcome,
};
use std::collections::BTreeMap;
use std::time::Duration;

fn url(endpoint: &str, table: &str) -> String {
    format!("dynamodb://{table}?endpoint={endpoint}")
}

#[tokio::test]
async fn dynamodb_keeps_the_catalog_contract() {
    let Some(endpoint) = moto::endpoint("DynamoDB catalog conformance") else {
        return;
    };
    let table = moto::unique_name("ludex");
    let (stores, created) = store::init(&url(&endpoint, &table), Default::default())
        .await
        .unwrap();
    assert_eq!(
        created,
        [format!(
            "table {table} with indexes gsi1..gsi4 and TTL on expires_at"
        )]
    );
    let (_, again) = store::init(&url(&endpoint, &table), Default::default())
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    conformance::run_all(&stores).await;
    conformance::history_is_kept_as_retention_says(&url(&endpoint, &table)).await;
}

#[tokio::test]
async fn connecting_creates_nothing_and_a_missing_table_is_a_clear_error() {
    let Some(endpoint) = moto::endpoint("DynamoDB connect") else {
        return;
    };
    let stores = store::connect(
        &url(&endpoint, &moto::unique_name("absent")),
        Default::default(),
    )
    .await
    .unwrap();
    let error = stores.catalog.ping().await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Internal(m) if m.contains("ludex init --store dynamodb://")),
        "{error}"
    );
}

fn staged(id: &str, title: &str, line: u64) -> StagedGame {
    let game = Game::from_value(&serde_json::json!({"id": id, "title": title})).unwrap();
    StagedGame::new(game, Position::Line(line))
}

async fn counted_store(endpoint: &str, faults: usize) -> (Stores, Requests) {
    let table = moto::unique_name("ludex");
    store::init(&url(endpoint, &table), Default::default())
        .await
        .unwrap();
    let requests = Requests::with_unprocessed_faults(faults);
    let store = DynamoStore::new(requests.client(endpoint).await, table)
        .with_retry_deadline(Duration::from_secs(5));
    (Stores::of(store), requests)
}

/// `BatchWriteItem` calls since `before`.
fn writes_since(requests: &Requests, before: usize) -> usize {
    requests.count("BatchWriteItem") - before
}

#[tokio::test]
async fn batches_write_25_items_a_call_and_catch_duplicates_across_batches() {
    let Some(endpoint) = moto::endpoint("DynamoDB batch writes") else {
        return;
    };
    let (stores, requests) = counted_store(&endpoint, 0).await;
    let attempt = AttemptId("one".into());
    // 260 records, then 100 more of which 10 repeat ids of the first batch.
    let first: Vec<_> = (0..260)
        .map(|i| staged(&format!("g{i:03}"), "First", i + 1))
        .collect();
    let outcomes = stores
        .catalog
        .upsert_batch(first, &attempt, &crate::conformance::tester())
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| *o == UpsertOutcome::Inserted));
    // "First" has five word prefixes: five index items a game, written before the games.
    assert_eq!(
        writes_since(&requests, 0),
        (260 * 5usize).div_ceil(25) + 260usize.div_ceil(25)
    );
    let second: Vec<_> = (250..350)
        .map(|i| staged(&format!("g{i:03}"), "Second", i + 11))
        .collect();
    let outcomes = stores
        .catalog
        .upsert_batch(second, &attempt, &crate::conformance::tester())
        .await
        .unwrap();
    for (i, outcome) in (250..350).zip(&outcomes) {
        if i < 260 {
            assert_eq!(
                *outcome,
                UpsertOutcome::Duplicate {
                    first: Position::Line(i + 1)
                }
            );
        } else {
            assert_eq!(*outcome, UpsertOutcome::Inserted);
        }
    }
    let kept = stores
        .catalog
        .get(&GameId::parse("g255").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.game().unwrap().title.as_str(), "First");

    // Another upload: 40 games renamed, 10 unchanged. The renamed ones write the index items
    // of "Third" (five prefixes) with the versions they replace, filed in their history, and
    // delete those of "First"; the unchanged ones only their mark.
    let before = requests.count("BatchWriteItem");
    let third: Vec<_> = (0..50)
        .map(|i| {
            staged(
                &format!("g{i:03}"),
                if i < 40 { "Third" } else { "First" },
                i + 1,
            )
        })
        .collect();
    let outcomes = stores
        .catalog
        .upsert_batch(
            third,
            &AttemptId("two".into()),
            &crate::conformance::tester(),
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == UpsertOutcome::Updated)
            .count(),
        40
    );
    assert_eq!(
        writes_since(&requests, before),
        (40 * 6usize).div_ceil(25) + 50usize.div_ceil(25) + (40 * 5usize).div_ceil(25)
    );
}

#[tokio::test]
async fn unprocessed_items_are_sent_again_until_written() {
    let Some(endpoint) = moto::endpoint("DynamoDB unprocessed items") else {
        return;
    };
    let (stores, requests) = counted_store(&endpoint, 3).await;
    let batch: Vec<_> = (0..50)
        .map(|i| staged(&format!("u{i:02}"), "Retried", i + 1))
        .collect();
    let outcomes = stores
        .catalog
        .upsert_batch(batch, &AttemptId("a".into()), &crate::conformance::tester())
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 50);
    assert_eq!(
        requests.count("BatchWriteItem"),
        (50 * 7usize).div_ceil(25) + 2 + 3,
        "the index items of seven prefixes of \"Retried\", the games, and three retries"
    );
    for i in 0..50 {
        let id = GameId::parse(&format!("u{i:02}")).unwrap();
        assert!(stores.catalog.get(&id).await.unwrap().is_some(), "{id}");
    }
}

#[tokio::test]
async fn items_still_unprocessed_at_the_deadline_fail_the_batch_as_retryable() {
    let Some(endpoint) = moto::endpoint("DynamoDB retry deadline") else {
        return;
    };
    let (stores, _) = counted_store(&endpoint, usize::MAX).await;
    let error = stores
        .catalog
        .upsert_batch(
            vec![staged("late", "Late", 1)],
            &AttemptId("a".into()),
            &crate::conformance::tester(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Unavailable(m) if m.contains("unprocessed")),
        "{error}"
    );
}

/// A game with one of a few platforms, genres, years and ratings.
fn varied(i: u64) -> StagedGame {
    let platform = ["PC", "Switch", "PS5", "Amiga"][i as usize % 4];
    let genre = ["RPG", "Puzzle", "Racing"][i as usize % 3];
    let value = serde_json::json!({
        "id": format!("v{i:04}"),
        "title": format!("Varied {i}"),
        "platforms": [platform],
        "genres": [genre],
        "release_date": format!("{}", 1990 + i % 5),
        "rating": (i % 11) as f64,
    });
    StagedGame::new(Game::from_value(&value).unwrap(), Position::Line(i + 1))
}

#[tokio::test]
async fn the_reports_cost_one_query_and_a_batch_updates_each_counter_once() {
    let Some(endpoint) = moto::endpoint("DynamoDB aggregates") else {
        return;
    };
    let (stores, requests) = counted_store(&endpoint, 0).await;
    // Counters touched by the games below: 4 platforms, 3 genres, 5 years, 10 rating points.
    let counters = 4 + 3 + 5 + 10;
    let mut expected_games = 0;
    for (round, size) in [(0u64, 40u64), (1, 400)] {
        let batch: Vec<_> = (0..size).map(|i| varied(round * 1000 + i)).collect();
        let before = requests.all();
        stores
            .catalog
            .upsert_batch(
                batch,
                &AttemptId(format!("round-{round}")),
                &crate::conformance::tester(),
            )
            .await
            .unwrap();
        let updates = requests.count("UpdateItem") - before.get("UpdateItem").unwrap_or(&0);
        assert_eq!(
            updates, counters,
            "one UpdateItem per counter, whatever the batch size"
        );
        expected_games += size;

        let before = requests.all();
        let counts = stores.catalog.counts().await.unwrap();
        let spent = requests.since(&before);
        assert_eq!(
            spent,
            std::collections::BTreeMap::from([("Query".to_owned(), 1)]),
            "the reports of {expected_games} games"
        );
        assert_eq!(counts.games, expected_games);
        assert_eq!(counts.platforms.len(), 4);
        assert_eq!(counts.ratings.iter().sum::<u64>(), expected_games);
    }
}

/// A page reads each of the 8 shards' partitions once, on one index, and never scans: the
/// games' own items without a search or label; one term's index items with one, and then the
/// page's games in one `BatchGetItem`.
#[tokio::test]
async fn a_page_queries_each_shard_once_and_never_scans() {
    let Some(endpoint) = moto::endpoint("DynamoDB listing requests") else {
        return;
    };
    let (stores, requests) = counted_store(&endpoint, 0).await;
    let batch: Vec<_> = (0..200).map(varied).collect();
    stores
        .catalog
        .upsert_batch(
            batch,
            &AttemptId("seed".into()),
            &crate::conformance::tester(),
        )
        .await
        .unwrap();
    let cases = [
        ("", 0),
        ("sort=-rating&min_rating=3", 0),
        ("q=vari", 1),
        ("platform=pc&sort=title", 1),
        (
            "genre=rpg&platform=amiga&year_from=1991&sort=-release_date",
            1,
        ),
    ];
    for (query, batch_gets) in cases {
        let mut list = ListQuery {
            limit: 20,
            ..ListQuery::default()
        };
        for (name, value) in query.split('&').filter_map(|p| p.split_once('=')) {
            match name {
                "q" => list.q = Some(value.into()),
                "platform" => list.platform = Some(value.into()),
                "genre" => list.genre = Some(value.into()),
                "year_from" => list.year_from = value.parse().ok(),
                "min_rating" => list.min_rating = Rating::parse(value).ok(),
                "sort" => list.sort = Sort::parse(value).unwrap(),
                _ => unreachable!(),
            }
        }
        let before = requests.all();
        let page = stores.catalog.list(&list).await.unwrap();
        assert!(!page.items.is_empty(), "{query}");
        let spent = requests.since(&before);
        let mut expected = BTreeMap::from([("Query".to_owned(), 8)]);
        if batch_gets > 0 {
            expected.insert("BatchGetItem".to_owned(), batch_gets);
        }
        assert_eq!(spent, expected, "{query}");
    }
}

/// One API request through the router: its status, `Retry-After` and body.
async fn call(
    app: &crate::app::TestApp,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>, String) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {}", app.writer))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .router
        .clone()
        .oneshot(
            request
                .body(axum::body::Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn throttled_calls_are_retried_and_a_spent_budget_is_a_503_with_retry_after() {
    let Some(endpoint) = moto::endpoint("DynamoDB throttling at the API") else {
        return;
    };
    let (stores, requests) = counted_store(&endpoint, 0).await;
    // Listings get time for the SDK's retries and their backoff (up to some seconds), so that
    // what is tested is the retry budget, not the listing timeout.
    let app = crate::app::app_over(
        tempfile::tempdir().unwrap(),
        stores.clone(),
        ludex::api::ApiConfig {
            list_timeout: Duration::from_secs(30),
            ..ludex::api::ApiConfig::default()
        },
        ludex::metrics::Metrics::off(),
    );
    let created = call(
        &app,
        "POST",
        "/games",
        &[],
        r#"{"id": "t", "title": "Throttled"}"#,
    )
    .await;
    assert_eq!(created.0, 201, "{created:?}");

    // Throttled twice, then answered: the SDK's retries absorb it.
    for (operation, method, uri, if_match, body) in [
        (
            "PutItem",
            "PATCH",
            "/games/t",
            "\"1\"",
            r#"{"title": "Throttled once"}"#,
        ),
        ("GetItem", "GET", "/games/t", "", ""),
        ("Query", "GET", "/games?q=thro", "", ""),
    ] {
        let before = requests.count(operation);
        requests.throttle(operation, 2);
        let headers: &[(&str, &str)] = if if_match.is_empty() {
            &[]
        } else {
            &[("if-match", if_match)]
        };
        let (status, _, reply) = call(&app, method, uri, headers, body).await;
        assert_eq!(status, 200, "{operation}: {reply}");
        assert!(
            requests.count(operation) - before >= 3,
            "{operation} was tried again after two throttles: {} {:?}",
            requests.count(operation) - before,
            requests.all()
        );
    }

    // Throttled every time: the retry budget is spent and the API says to come back later.
    for (operation, method, uri, if_match, body) in [
        (
            "PutItem",
            "PATCH",
            "/games/t",
            "\"2\"",
            r#"{"title": "Never stored"}"#,
        ),
        ("GetItem", "GET", "/games/t", "", ""),
        ("Query", "GET", "/games?q=thro", "", ""),
        ("BatchGetItem", "GET", "/games?q=thro", "", ""),
    ] {
        requests.throttle(operation, 1_000);
        let headers: &[(&str, &str)] = if if_match.is_empty() {
            &[]
        } else {
            &[("if-match", if_match)]
        };
        let (status, retry_after, reply) = call(&app, method, uri, headers, body).await;
        requests.throttle(operation, 0);
        assert_eq!(status, 503, "{operation}: {reply}");
        assert_eq!(retry_after.as_deref(), Some("2"), "{operation}");
        assert!(reply.contains("/problems/unavailable"), "{reply}");
        assert!(!reply.contains("Throughput"), "no SDK message: {reply}");
    }

    // Nothing half-done: the game is as the last acknowledged write left it, and listed so.
    let (status, _, reply) = call(&app, "GET", "/games/t", &[], "").await;
    assert_eq!(status, 200);
    let game: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(game["title"], "Throttled once", "{game}");
    let (_, _, listed) = call(&app, "GET", "/games?q=never", &[], "").await;
    assert!(listed.contains("\"items\":[]"), "{listed}");

    // A write whose game lands but whose counter update is throttled past the retries is a
    // success: the client must not retry a write that is done. The aggregates are then off.
    requests.throttle("UpdateItem", 1_000);
    let (status, _, reply) = call(
        &app,
        "PATCH",
        "/games/t",
        &[("if-match", "\"2\"")],
        r#"{"title": "Counted late", "platforms": ["Amiga"]}"#,
    )
    .await;
    requests.throttle("UpdateItem", 0);
    assert_eq!(status, 200, "{reply}");
    let (_, _, game) = call(&app, "GET", "/games/t", &[], "").await;
    assert!(game.contains("Counted late"), "{game}");
}

/// With a retention in days, a filed version expires that long after it was filed (the
/// table's TTL deletes it); a deletion never expires. With a count, filing a version deletes
/// the one the count no longer keeps.
#[tokio::test]
async fn filed_versions_expire_by_ttl_and_the_count_is_kept_as_they_are_filed() {
    let Some(endpoint) = moto::endpoint("DynamoDB history retention") else {
        return;
    };
    let table = moto::unique_name("ludex");
    let retention = ludex_domain::Retention {
        versions: Some(2),
        days: Some(3),
    };
    let (stores, _) = store::init(&url(&endpoint, &table), retention)
        .await
        .unwrap();
    let client = aws_sdk_dynamodb::Client::new(&ludex::aws::sdk_config(Some(&endpoint)).await);
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    let author = ludex_domain::Author::key("tester");
    let game =
        |title: &str| Game::from_value(&serde_json::json!({"id": "ttl", "title": title})).unwrap();
    stores.catalog.create(&game("1"), &author).await.unwrap();
    for title in ["2", "3", "4"] {
        stores
            .catalog
            .replace(&game(title), None, &author)
            .await
            .unwrap();
    }
    let id = GameId::parse("ttl").unwrap();
    stores.catalog.delete(&id, None, &author).await.unwrap();
    let item = async |version: u64| {
        client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S("GAME#ttl".into()))
            .key("sk", AttributeValue::S(format!("V#{version:020}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expires = item(4).await.expect("version 4 is kept")["expires_at"]
        .as_n()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    let three_days = 3 * 24 * 3600;
    assert!(
        (now + three_days - 120..=now + three_days + 120).contains(&expires),
        "{expires}"
    );
    assert!(
        !item(5)
            .await
            .expect("the deletion")
            .contains_key("expires_at")
    );
    for gone in [1, 2, 3] {
        assert!(
            item(gone).await.is_none(),
            "version {gone} is past the count"
        );
    }
    let versions: Vec<u64> = stores
        .catalog
        .history(
            &id,
            &HistoryQuery {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .items
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [5, 4]);
}
