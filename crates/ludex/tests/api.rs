//! The API router driven with `oneshot`: every endpoint, its success and each error path.

use crate::app::{TestApp, app, app_with};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt as _;
use http_body_util::BodyExt;
use ludex::api::ApiConfig;
use ludex::ingest::{IngestConfig, Ingestor, Upload};
use serde_json::{Value, json};
use tower::ServiceExt;

const FORM_BOUNDARY: &str = "XyZ";

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a reply of this status and returns its JSON body.
    fn json_of(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Asserts a problem+json reply of this status and returns it.
    fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header(header::CONTENT_TYPE),
            "application/problem+json"
        );
        let problem = self.json();
        assert_eq!(problem["status"], status.as_u16());
        assert!(problem["type"].as_str().unwrap().starts_with("/problems/"));
        problem
    }
}

impl TestApp {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    fn write(&self, method: &str, uri: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.writer))
    }

    async fn write_json(&self, method: &str, uri: &str, body: Value) -> Reply {
        self.send(
            self.write(method, uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// `POST /uploads{query}` with a multipart form delimited by [`FORM_BOUNDARY`].
    async fn post_form(&self, query: &str, form: String) -> Reply {
        self.send(
            self.write("POST", &format!("/uploads{query}"))
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={FORM_BOUNDARY}"),
                )
                .body(Body::from(form))
                .unwrap(),
        )
        .await
    }

    /// `PUT /games/{id}/cover` with an image body, typed as its first bytes say (as the
    /// server reads it anyway), with the write key.
    async fn put_cover(&self, id: &str, image: &[u8]) -> Reply {
        let media_type = ludex::covers::image_type(image).map_or("image/png", |t| t.0);
        self.send(
            self.write("PUT", &format!("/games/{id}/cover"))
                .header(header::CONTENT_TYPE, media_type)
                .body(Body::from(image.to_vec()))
                .unwrap(),
        )
        .await
    }

    async fn create(&self, body: Value) -> Value {
        let reply = self.write_json("POST", "/games", body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = app();
    assert_eq!(app.get("/healthz").await.json(), json!({"status": "ok"}));
    assert_eq!(app.get("/readyz").await.json(), json!({"status": "ready"}));
}

#[tokio::test]
async fn create_read_and_conditional_read() {
    let app = app();
    let reply = app
        .write_json(
            "POST",
            "/games",
            json!({"title": "Hades", "rating": 9.3, "platforms": ["PC"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header(header::LOCATION), "/games/hades");
    assert_eq!(reply.header(header::ETAG), "\"1\"");
    assert_eq!(reply.json()["version"], 1);

    let again = app
        .write_json("POST", "/games", json!({"title": "Hades"}))
        .await;
    assert!(
        again.problem(StatusCode::CONFLICT)["detail"]
            .as_str()
            .unwrap()
            .contains("hades")
    );

    let read = app.get("/games/hades").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header(header::ETAG), "\"1\"");
    assert_eq!(read.json()["rating"], 9.3);
    assert!(read.header("x-request-id".parse().unwrap()).len() > 3);

    let cached = app
        .send(
            Request::get("/games/hades")
                .header(header::IF_NONE_MATCH, "\"1\"")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    let stale = app
        .send(
            Request::get("/games/hades")
                .header(header::IF_NONE_MATCH, "\"0\"")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);

    app.get("/games/nope").await.problem(StatusCode::NOT_FOUND);
    let bad = app
        .get("/games/bad%20id")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(bad["errors"][0]["field"], "id");
}

#[tokio::test]
async fn bodies_are_checked_before_anything_is_written() {
    let app = app();
    let invalid = app
        .write_json(
            "POST",
            "/games",
            json!({"title": "X", "rating": 11.5, "release_date": "2019-02-30"}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid["errors"],
        json!([
            {"field": "release_date", "reason": "2019-02-30 does not exist"},
            {"field": "rating", "reason": "11.5 is above the maximum 10"}
        ])
    );
    let not_json = app
        .send(
            app.write("POST", "/games")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"title\": oops}"))
                .unwrap(),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(
        not_json["detail"].as_str().unwrap().contains("byte 10"),
        "{not_json}"
    );
    app.write_json("POST", "/games", json!([1, 2]))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    app.write_json("POST", "/games", json!({"title": 5}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    app.send(
        app.write("POST", "/games")
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from("title\nX"))
            .unwrap(),
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"title": "X", "description": "d".repeat(2 * 1024 * 1024)});
    app.write_json("POST", "/games", huge)
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.get("/games").await.json()["items"], json!([]));
}

#[tokio::test]
async fn writes_need_a_write_key() {
    let app = app();
    let anonymous = app
        .send(
            Request::post("/games")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"title":"X"}"#))
                .unwrap(),
        )
        .await;
    anonymous.problem(StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .header(header::WWW_AUTHENTICATE)
            .starts_with("Bearer")
    );
    for (auth, status) in [
        (
            "Bearer ludex_not_a_key".to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        ("Basic dXNlcjpwYXNz".to_owned(), StatusCode::UNAUTHORIZED),
        (format!("Bearer {}", app.reader), StatusCode::FORBIDDEN),
    ] {
        app.send(
            Request::post("/games")
                .header(header::AUTHORIZATION, auth)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"title":"X"}"#))
                .unwrap(),
        )
        .await
        .problem(status);
    }
    app.get("/games/x").await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reads_can_require_a_key() {
    let app = app_with(ApiConfig {
        reads_require_key: true,
        ..ApiConfig::default()
    });
    app.get("/games").await.problem(StatusCode::UNAUTHORIZED);
    let with_key = app
        .send(
            Request::get("/games")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.reader))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(with_key.status, StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

/// Paths anyone may read even when reads require a key: probes and the API's own description.
const ALWAYS_PUBLIC: [&str; 4] = ["/healthz", "/readyz", "/openapi.json", "/docs"];

#[tokio::test]
async fn when_reads_require_a_key_every_readable_path_asks_for_one() {
    let app = app_with(ApiConfig {
        reads_require_key: true,
        ..ApiConfig::default()
    });
    app.create(json!({"id": "g1", "title": "A"})).await;
    let document = app.get("/openapi.json").await.json();
    let paths: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| item.get("get").is_some())
        .map(|(path, _)| path.replace("{id}", "g1"))
        .chain(["/metrics".to_owned()])
        .collect();
    assert!(paths.len() > 5, "{paths:?}");
    for path in paths {
        let status = app.get(&path).await.status;
        if ALWAYS_PUBLIC.contains(&path.as_str()) {
            assert_eq!(status, StatusCode::OK, "{path}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} without a key");
        }
    }
    let metrics = app
        .send(
            Request::get("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.reader))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
}

#[tokio::test]
async fn every_kind_of_response_forbids_content_sniffing() {
    let app = app();
    // An upload is decoded now, so such a file is refused; one put in the bucket and named by
    // an ingest is still served as it is.
    app.state
        .bucket
        .put(
            "covers/evil.png",
            bytes::Bytes::from_static(b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script>"),
        )
        .await
        .unwrap();
    app.create(json!({"id": "g1", "title": "A", "cover_image": "covers/evil.png"}))
        .await;
    for path in [
        "/games/g1/cover",
        "/games/g1",
        "/games",
        "/nope",
        "/metrics",
        "/openapi.json",
        "/",
    ] {
        let reply = app.get(path).await;
        assert_eq!(
            reply.header(header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{path} ({})",
            reply.status
        );
    }
}

#[tokio::test]
async fn replace_honours_if_match_and_writes_nothing_when_stale() {
    let app = app();
    app.create(json!({"id": "g1", "title": "Old", "rating": 5}))
        .await;
    let stale = app
        .send(
            app.write("PUT", "/games/g1")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::IF_MATCH, "\"7\"")
                .body(Body::from(r#"{"title":"New"}"#))
                .unwrap(),
        )
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale["current_version"], 1);
    assert_eq!(app.get("/games/g1").await.json()["title"], "Old");

    let replaced = app
        .send(
            app.write("PUT", "/games/g1")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::IF_MATCH, "\"1\"")
                .body(Body::from(r#"{"title":"New"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.header(header::ETAG), "\"2\"");
    let game = replaced.json();
    assert_eq!(game["title"], "New");
    assert!(game.get("rating").is_none(), "PUT replaces the whole game");

    let same = app
        .write_json("PUT", "/games/g1", json!({"title": "New"}))
        .await;
    assert_eq!(
        same.json()["version"],
        2,
        "writing identical content is not a change"
    );
    app.write_json("PUT", "/games/g1", json!({"id": "other", "title": "X"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    app.write_json("PUT", "/games/missing", json!({"title": "X"}))
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_applies_a_json_merge_patch() {
    let app = app();
    app.create(json!({"id": "g1", "title": "A", "rating": 5, "tags": ["x"], "price": 10}))
        .await;
    let patched = app
        .send(
            app.write("PATCH", "/games/g1")
                .header(header::CONTENT_TYPE, "application/merge-patch+json")
                .body(Body::from(
                    r#"{"rating": 7.5, "tags": null, "developer": "D"}"#,
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let game = patched.json();
    assert_eq!(game["rating"], 7.5);
    assert_eq!(game["developer"], "D");
    assert_eq!(game["price"], 10.0);
    assert!(game.get("tags").is_none());
    assert_eq!(game["version"], 2);

    let invalid = app
        .write_json("PATCH", "/games/g1", json!({"rating": 11.5}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid["errors"][0]["reason"],
        "11.5 is above the maximum 10"
    );
    app.send(
        app.write("PATCH", "/games/g1")
            .header(header::CONTENT_TYPE, "application/merge-patch+json")
            .header(header::IF_MATCH, "\"1\"")
            .body(Body::from(r#"{"rating": 1}"#))
            .unwrap(),
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get("/games/g1").await.json()["rating"], 7.5);
}

#[tokio::test]
async fn a_patch_that_removes_the_price_removes_its_currency() {
    let app = app();
    app.create(json!({"id": "p", "title": "Priced", "price": 19.99, "currency": "EUR"}))
        .await;
    let game = app
        .write_json("PATCH", "/games/p", json!({"price": null}))
        .await;
    assert_eq!(game.status, StatusCode::OK, "{}", game.json());
    let game = game.json();
    assert!(
        game.get("price").is_none() && game.get("currency").is_none(),
        "{game}"
    );
    // A currency set in the same patch still needs a price, as in any body.
    let problem = app
        .write_json("PATCH", "/games/p", json!({"currency": "GBP"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "currency", "{problem}");
    // A new currency alone changes the currency of a price that stays.
    app.write_json("PATCH", "/games/p", json!({"price": 5}))
        .await;
    let game = app
        .write_json("PATCH", "/games/p", json!({"currency": "GBP"}))
        .await
        .json();
    assert_eq!(
        (game["price"].clone(), game["currency"].clone()),
        (json!(5.0), json!("GBP"))
    );
}

#[tokio::test]
async fn numbers_in_unknown_fields_survive_create_replace_and_patch() {
    let app = app();
    let send = |method: &'static str, uri: &'static str, body: &'static str| {
        app.write(method, uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let kept = [
        r#""big":18446744073709551616"#,
        r#""neg":-0"#,
        r#""exp":1E2"#,
        r#""deep":{"x":1.50,"n":{"m":-0.0}}"#,
    ];
    let body = r#"{"id":"n1","title":"A","big":18446744073709551616,"neg":-0,"exp":1E2,"deep":{"x":1.50,"n":{"m":-0.0}}}"#;
    let created = app.send(send("POST", "/games", body)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let replaced = app.send(send("PUT", "/games/n1", body)).await;
    assert_eq!(replaced.status, StatusCode::OK);
    // A patch of other fields, and one inside the nested object, leaves the rest as given.
    let patched = app
        .send(send(
            "PATCH",
            "/games/n1",
            r#"{"rating": 7, "deep": {"added": 2E1}}"#,
        ))
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    for reply in [created, replaced, patched] {
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        for kept in &kept[..3] {
            assert!(text.contains(kept), "{kept} not in {text}");
        }
    }
    let text = String::from_utf8(app.get("/games/n1").await.body).unwrap();
    assert!(
        text.contains(r#""deep":{"added":2E1,"n":{"m":-0.0},"x":1.50}"#),
        "{text}"
    );
}

#[tokio::test]
async fn delete_removes_the_game_and_its_cover() {
    let app = app();
    app.create(json!({"id": "g1", "title": "A"})).await;
    let png = png(60, 90);
    let covered = app.put_cover("g1", &png).await;
    assert_eq!(covered.status, StatusCode::OK);
    let key = covered.json()["cover_image"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("covers/g1/") && key.ends_with("/original.png"),
        "{key}"
    );
    let cover = app.get("/games/g1/cover").await;
    assert_eq!(cover.status, StatusCode::OK);
    assert_eq!(cover.header(header::CONTENT_TYPE), "image/png");
    assert_eq!(
        cover.body, png,
        "a PNG without metadata is kept byte for byte"
    );

    app.send(
        app.write("DELETE", "/games/g1")
            .header(header::IF_MATCH, "\"1\"")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED);
    let deleted = app
        .send(
            app.write("DELETE", "/games/g1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get("/games/g1").await.problem(StatusCode::NOT_FOUND);
    assert_eq!(app.state.bucket.get(&key).await.unwrap(), None);
    assert_eq!(
        app.state.bucket.list("covers/g1").await.unwrap(),
        Vec::<String>::new(),
        "the sizes went too"
    );
    app.send(
        app.write("DELETE", "/games/g1")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_game_never_deletes_a_cover_it_only_names() {
    // `cover_image` is a field a client may send (an export ingests again), so a game may name
    // another game's cover. Deleting or re-covering it must leave that cover alone.
    let app = app();
    app.create(json!({"id": "a", "title": "A"})).await;
    let png = png(30, 40);
    let covered = app.put_cover("a", &png).await.json_of(StatusCode::OK);
    let key = covered["cover_image"].as_str().unwrap();
    app.create(json!({"id": "b", "title": "B", "cover_image": key}))
        .await;
    app.create(json!({"id": "c", "title": "C", "cover_image": key}))
        .await;
    // b's sizes of a's cover are b's own, and go when b names another cover.
    let thumb = app.get("/games/b/cover?size=thumb").await;
    assert_eq!(thumb.status, StatusCode::OK);
    assert_eq!(app.put_cover("b", &png).await.status, StatusCode::OK);
    let deleted = app
        .send(app.write("DELETE", "/games/c").body(Body::empty()).unwrap())
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/games/a/cover").await.status,
        StatusCode::OK,
        "a's cover is still there"
    );
    assert_eq!(
        app.get("/games/a/cover?size=thumb").await.status,
        StatusCode::OK,
        "and its sizes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_without_a_version_precondition_never_answer_412() {
    // 412 answers a precondition that failed; a write that named no version (no If-Match, or
    // `*`) and met a concurrent one is applied again on the fresh version instead.
    let app = app();
    app.create(json!({"id": "r", "title": "Race"})).await;
    let png = png(8, 8);
    let mut writes = Vec::new();
    for i in 0..60 {
        let request = match i % 3 {
            0 => app
                .write("PUT", "/games/r/cover")
                .header(header::CONTENT_TYPE, "image/png")
                .header(header::IF_MATCH, "*")
                .body(Body::from(png.clone())),
            1 => app
                .write("PATCH", "/games/r")
                .header(header::CONTENT_TYPE, "application/merge-patch+json")
                .header(header::IF_MATCH, "*")
                .body(Body::from(format!(r#"{{"rating": {}}}"#, i % 10))),
            _ => app
                .write("PUT", "/games/r")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(r#"{{"title": "Race {i}"}}"#))),
        };
        let router = app.router.clone();
        let request = request.unwrap();
        writes.push(tokio::spawn(async move {
            router.oneshot(request).await.unwrap().status()
        }));
    }
    for write in writes {
        assert_eq!(write.await.unwrap(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_cover_key_is_one_the_bucket_can_hold() {
    let app = app();
    for key in [
        "covers/a//b.png",
        "covers/a/",
        &format!("covers/{}", "é".repeat(300)),
    ] {
        let problem = app
            .write_json("POST", "/games", json!({"title": "K", "cover_image": key}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            problem["errors"][0]["field"], "cover_image",
            "{key}: {problem}"
        );
    }
}

#[tokio::test]
async fn an_etag_of_a_deleted_game_does_not_match_its_successor() {
    let app = app();
    app.create(json!({"id": "g1", "title": "First"})).await;
    let read = app.get("/games/g1").await;
    let etag = read.header(header::ETAG).to_owned();
    assert_eq!(etag, "\"1\"");
    let deleted = app
        .send(
            app.write("DELETE", "/games/g1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let second = app.create(json!({"id": "g1", "title": "Second"})).await;
    assert_eq!(second["version"], 3, "after the deletion, itself version 2");
    for (method, body) in [
        ("PATCH", json!({"title": "Overwritten"})),
        ("PUT", json!({"id": "g1", "title": "Overwritten"})),
    ] {
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        app.send(
            app.write(method, "/games/g1")
                .header(header::IF_MATCH, &etag)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    }
    app.send(
        app.write("DELETE", "/games/g1")
            .header(header::IF_MATCH, &etag)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get("/games/g1").await.json()["title"], "Second");
}

#[tokio::test]
async fn covers_must_be_images() {
    let app = app();
    app.create(json!({"id": "g1", "title": "A"})).await;
    app.send(
        app.write("PUT", "/games/g1/cover")
            .header(header::CONTENT_TYPE, "image/png")
            .body(Body::from("GIF89a..."))
            .unwrap(),
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.send(
        app.write("PUT", "/games/g1/cover")
            .body(Body::from(vec![0xFF; 20 * 1024 * 1024 + 1]))
            .unwrap(),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    app.get("/games/g1/cover")
        .await
        .problem(StatusCode::NOT_FOUND);
}

/// A `width`×`height` PNG: a gradient, so that its sizes are real images too.
fn png(width: u32, height: u32) -> Vec<u8> {
    encoded(width, height, image::ImageFormat::Png)
}

fn encoded(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// The width and height of an image, from its header.
fn dimensions(bytes: &[u8]) -> (u32, u32) {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_dimensions()
        .unwrap()
}

/// A decompression bomb: a 1×1 PNG whose header declares 100,000×100,000 pixels (its CRC
/// made right, so only the size is wrong).
fn bomb() -> Vec<u8> {
    let mut png = png(1, 1);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    png
}

#[tokio::test]
async fn a_cover_is_served_in_every_size_as_webp_and_the_original_as_sent() {
    let app = app();
    app.create(json!({"id": "g1", "title": "A"})).await;
    let upload = png(600, 900);
    let game = app.put_cover("g1", &upload).await.json_of(StatusCode::OK);
    assert_eq!(game["version"], 2);
    let key = game["cover_image"].as_str().unwrap();
    for (query, want) in [
        ("size=thumb", (85, 128)),
        ("size=thumb&dpr=1", (85, 128)),
        ("size=thumb&dpr=2", (171, 256)),
        ("size=small", (249, 374)),
        ("size=small&dpr=2", (499, 748)),
        ("size=big", (600, 900)),
        ("size=big&dpr=2", (600, 900)),
    ] {
        let reply = app.get(&format!("/games/g1/cover?{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}");
        assert_eq!(reply.header(header::CONTENT_TYPE), "image/webp", "{query}");
        assert_eq!(dimensions(&reply.body), want, "{query}");
    }
    let original = app.get("/games/g1/cover").await;
    assert_eq!(original.header(header::CONTENT_TYPE), "image/png");
    assert_eq!(original.body, upload);
    let sizes = app.state.bucket.list("covers/g1").await.unwrap();
    assert_eq!(sizes.len(), 7, "six sizes and the original: {sizes:?}");
    assert!(sizes.contains(&key.to_owned()));
    for query in [
        "size=huge",
        "size=thumb&dpr=3",
        "dpr=x",
        "size=thumb&v=p",
        "v=0123456789ABCDEF",
    ] {
        let problem = app
            .get(&format!("/games/g1/cover?{query}"))
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert!(
            ["size", "dpr", "v"].contains(&problem["errors"][0]["field"].as_str().unwrap()),
            "{query}: {problem}"
        );
    }
}

#[tokio::test]
async fn versioned_cover_urls_are_cached_for_good_and_others_revalidate() {
    let app = app();
    app.create(json!({"id": "g1", "title": "A"})).await;
    let game = app
        .put_cover("g1", &png(200, 300))
        .await
        .json_of(StatusCode::OK);
    let key = game["cover_image"].as_str().unwrap();
    let version = key.split('/').nth(2).unwrap();
    let versioned = app
        .get(&format!("/games/g1/cover?size=thumb&v={version}"))
        .await;
    assert_eq!(
        versioned.header(header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    let etag = versioned.header(header::ETAG).to_owned();
    assert!(
        etag.starts_with('"') && etag.len() == 34,
        "a strong ETag: {etag}"
    );
    for uri in [
        "/games/g1/cover?size=thumb".to_owned(),
        "/games/g1/cover?size=thumb&v=0000000000000000".to_owned(),
    ] {
        let reply = app.get(&uri).await;
        assert_eq!(reply.header(header::CACHE_CONTROL), "no-cache", "{uri}");
        assert_eq!(reply.header(header::ETAG), etag, "{uri}: the same bytes");
        let again = app
            .send(
                Request::get(&uri)
                    .header(header::IF_NONE_MATCH, &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(again.body.is_empty());
        assert_eq!(again.header(header::ETAG), etag);
    }
    let original = app.get(&format!("/games/g1/cover?v={version}")).await;
    assert_eq!(
        original.header(header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_ne!(original.header(header::ETAG), etag);

    // Where reads need a key, no shared cache may keep a cover.
    let private = app.with_config(ApiConfig {
        reads_require_key: true,
        ..ApiConfig::default()
    });
    let reply = private
        .send(
            Request::get(format!("/games/g1/cover?size=thumb&v={version}"))
                .header(header::AUTHORIZATION, format!("Bearer {}", app.reader))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        reply.header(header::CACHE_CONTROL),
        "private, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn images_that_cannot_be_covers_are_422_with_the_reason_and_nothing_is_stored() {
    let app = app();
    app.create(json!({"id": "g1", "title": "A"})).await;
    let whole_png = png(300, 400);
    let whole_jpeg = encoded(300, 400, image::ImageFormat::Jpeg);
    let cases: [(Vec<u8>, &str); 4] = [
        (
            bomb(),
            "the image is 100000×100000 pixels (10000 megapixels); a cover may have at most 40 megapixels",
        ),
        (
            whole_png[..whole_png.len() / 2].to_vec(),
            "the image could not be decoded",
        ),
        (
            whole_jpeg[..whole_jpeg.len() / 2].to_vec(),
            "the image could not be decoded: the JPEG is truncated",
        ),
        (
            b"RIFF\x10\0\0\0WEBPVP8 \x04\0\0\0\0\0\0\0".to_vec(),
            "the image could not be decoded",
        ),
    ];
    for (body, reason) in cases {
        let problem = app
            .put_cover("g1", &body)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["type"], "/problems/unprocessable-image");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(reason), "{detail}");
    }
    app.send(
        app.write("PUT", "/games/g1/cover")
            .header(header::CONTENT_TYPE, "image/gif")
            .body(Body::from("GIF89a not a cover"))
            .unwrap(),
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let game = app.get("/games/g1").await.json_of(StatusCode::OK);
    assert_eq!(game["version"], 1);
    assert_eq!(game["cover_image"], Value::Null);
    assert_eq!(
        app.state.bucket.list("covers").await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_new_cover_takes_the_place_of_the_old_one_and_its_sizes() {
    let app = app();
    app.create(json!({"id": "g1", "title": "A"})).await;
    let first = app
        .put_cover("g1", &png(100, 150))
        .await
        .json_of(StatusCode::OK);
    let first_key = first["cover_image"].as_str().unwrap();
    let old_folder = first_key.trim_end_matches("/original.png");
    let jpeg = encoded(150, 100, image::ImageFormat::Jpeg);
    let second = app.put_cover("g1", &jpeg).await.json_of(StatusCode::OK);
    let second_key = second["cover_image"].as_str().unwrap();
    assert!(second_key.ends_with("/original.jpg"), "{second_key}");
    assert_eq!(
        app.state.bucket.list(old_folder).await.unwrap(),
        Vec::<String>::new(),
        "the old original and its sizes are gone"
    );
    let thumb = app.get("/games/g1/cover?size=thumb").await;
    assert_eq!(dimensions(&thumb.body), (90, 60));
    // The same image again is the same cover: nothing to remove.
    let again = app
        .put_cover("g1", &encoded(150, 100, image::ImageFormat::Jpeg))
        .await
        .json_of(StatusCode::OK);
    assert_eq!(again["cover_image"], second_key);
    assert_eq!(app.state.bucket.list("covers/g1").await.unwrap().len(), 7);
}

#[tokio::test]
async fn a_cover_stored_before_sizes_gets_them_on_its_first_request() {
    let app = app();
    // As `PUT /games/{id}/cover` stored covers before sizes existed.
    let upload = png(300, 450);
    app.state
        .bucket
        .put("covers/old.png", upload.clone().into())
        .await
        .unwrap();
    app.create(json!({"id": "old", "title": "Old", "cover_image": "covers/old.png"}))
        .await;
    let thumb = app.get("/games/old/cover?size=thumb&dpr=2").await;
    assert_eq!(thumb.status, StatusCode::OK);
    assert_eq!(thumb.header(header::CONTENT_TYPE), "image/webp");
    assert_eq!(dimensions(&thumb.body), (171, 256));
    let kept = app.state.bucket.list("covers/old").await.unwrap();
    assert_eq!(kept.len(), 6, "every size is kept: {kept:?}");
    let again = app.get("/games/old/cover?size=thumb&dpr=2").await;
    assert_eq!(again.body, thumb.body);
    assert_eq!(app.get("/games/old/cover").await.body, upload);

    // One that cannot be made into sizes says why, as an upload would.
    app.state
        .bucket
        .put("covers/bomb.png", bomb().into())
        .await
        .unwrap();
    app.create(json!({"id": "bomb", "title": "Bomb", "cover_image": "covers/bomb.png"}))
        .await;
    let problem = app
        .get("/games/bomb/cover?size=small")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("at most 40 megapixels"),
        "{problem}"
    );

    let deleted = app
        .send(
            app.write("DELETE", "/games/old")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.state.bucket.get("covers/old.png").await.unwrap(), None);
    assert_eq!(
        app.state.bucket.list("covers/old").await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn listings_over_their_budget_are_refused_with_the_limits() {
    let app = app();
    app.create(json!({"id": "k", "title": "Kingdom Come"}))
        .await;
    let long_word = "k".repeat(41);
    let over = [
        ("q", vec!["kingdom"; 3000].join("+")),
        ("q", "a+b+c+d+e+f+g+h+i".to_owned()),
        ("q", long_word),
        ("q", "x".repeat(201)),
        ("platform", "p".repeat(65)),
        ("genre", "g".repeat(65)),
        ("cursor", "c".repeat(1025)),
    ];
    for (field, value) in over {
        let problem = app
            .get(&format!("/games?{field}={value}"))
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("at most"), "the limit is named: {detail}");
        if field == "q" {
            assert!(
                detail.contains("200 characters") && detail.contains("8 distinct words"),
                "{detail}"
            );
        }
    }
    // The document states the same limits as the domain enforces.
    let doc = app.get("/openapi.json").await.json();
    let params = doc["paths"]["/games"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let max_length = |name: &str| {
        params.iter().find(|p| p["name"] == name).unwrap()["schema"]["maxLength"].clone()
    };
    use ludex_domain::query_limits;
    assert_eq!(max_length("q"), query_limits::SEARCH_MAX_CHARS);
    assert_eq!(max_length("cursor"), query_limits::CURSOR_MAX_CHARS);
    for label in ["platform", "genre"] {
        assert_eq!(
            max_length(label),
            ludex_domain::fields::limits::LABEL_MAX_CHARS
        );
    }
    // Duplicates, case and words that start another word cost nothing: they are dropped.
    let same = app
        .get("/games?q=Kingdom+kingdom+KINGDOM+king+kin+k+com+co+c")
        .await
        .json();
    assert_eq!(same["items"][0]["id"], "k", "{same}");
}

#[tokio::test]
async fn a_listing_that_runs_past_its_timeout_is_stopped_with_a_503() {
    let app = app_with(ApiConfig {
        list_timeout: std::time::Duration::from_millis(1),
        ..ApiConfig::default()
    });
    // Enough games that a scan no index serves takes several times the timeout (20,000 were
    // scanned in under a millisecond now and then).
    let batch: Vec<_> = (0..100_000)
        .map(|i| {
            let game = ludex_domain::Game::from_value(
                &json!({"id": format!("g{i}"), "title": format!("Game {i}"), "platforms": ["PC"]}),
            )
            .unwrap();
            ludex_domain::StagedGame::new(game, ludex_domain::Position::Line(i + 1))
        })
        .collect();
    app.state
        .stores
        .catalog
        .upsert_batch(
            batch,
            &ludex_domain::AttemptId("seed".into()),
            &crate::conformance::tester(),
        )
        .await
        .unwrap();
    let problem = app
        .get("/games?platform=Amiga&sort=title")
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        problem["detail"].as_str().unwrap().contains("longer than"),
        "{problem}"
    );
    // The stopped scan left the store as it was: a point read answers at once.
    assert_eq!(app.get("/games/g1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn listing_filters_sorts_and_pages_with_an_opaque_cursor() {
    let app = app();
    for (id, platform, year, rating) in [
        ("a", "PC", 2001, 5.0),
        ("b", "PC", 2005, 9.0),
        ("c", "Switch", 2010, 7.0),
        ("d", "pc", 2015, 8.0),
        ("e", "PC", 2020, 6.5),
    ] {
        app.create(json!({"id": id, "title": format!("Game {id}"), "platforms": [platform], "release_date": year.to_string(), "rating": rating}))
            .await;
    }
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = app
        .get("/games?platform=PC&sort=-rating&limit=2")
        .await
        .json();
    assert_eq!(ids(&first), ["b", "d"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!(
            "/games?platform=PC&sort=-rating&limit=2&cursor={cursor}"
        ))
        .await
        .json();
    assert_eq!(ids(&second), ["e", "a"]);
    assert_eq!(second["next_cursor"], Value::Null);

    assert_eq!(
        ids(&app
            .get("/games?year_from=2005&year_to=2015&sort=release_date")
            .await
            .json()),
        ["b", "c", "d"]
    );
    assert_eq!(
        ids(&app.get("/games?min_rating=7.5&sort=title").await.json()),
        ["b", "d"]
    );
    assert_eq!(ids(&app.get("/games?q=game%20c").await.json()), ["c"]);

    let wrong_query = app
        .get(&format!(
            "/games?platform=Switch&sort=-rating&limit=2&cursor={cursor}"
        ))
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(wrong_query["errors"][0]["field"], "cursor");
    app.get("/games?cursor=garbage")
        .await
        .problem(StatusCode::BAD_REQUEST);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "sort=price",
        "min_rating=11",
        "year_from=1800",
    ] {
        let problem = app
            .get(&format!("/games?{bad}"))
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert_eq!(
            problem["errors"][0]["field"],
            bad.split('=').next().unwrap(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = app();
    app.get("/nope").await.problem(StatusCode::NOT_FOUND);
    let reply = app
        .send(Request::delete("/games").body(Body::empty()).unwrap())
        .await;
    reply.problem(StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.header(header::ALLOW).contains("POST"));
}

async fn upload_raw(app: &TestApp, filename: &str, body: &[u8]) -> Reply {
    app.send(
        app.write("POST", &format!("/uploads?filename={filename}"))
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from(body.to_vec()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn an_upload_may_take_longer_than_the_request_timeout_while_its_body_keeps_coming() {
    let app = app_with(ApiConfig {
        request_timeout: std::time::Duration::from_millis(300),
        ..ApiConfig::default()
    });
    let lines = [
        "{\"id\": \"slow-1\", \"title\": \"Slow One\"}\n",
        "{\"id\": \"slow-2\", \"title\": \"Slow Two\"}\n",
        "{\"id\": \"slow-3\", \"title\": \"Slow Three\"}\n",
    ];
    // Three chunks 200 ms apart: 600 ms in all, twice the request timeout.
    let chunks = futures::stream::iter(lines).then(|line| async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Ok::<_, std::io::Error>(bytes::Bytes::from(line))
    });
    let reply = app
        .send(
            app.write("POST", "/uploads?filename=slow.ndjson")
                .header(header::CONTENT_TYPE, "application/x-ndjson")
                .body(Body::from_stream(chunks))
                .unwrap(),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // Every other request keeps the whole-request timeout; GET /uploads is still a 405.
    app.get("/uploads")
        .await
        .problem(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn uploads_are_stored_queued_ingested_and_their_rejects_listed() {
    let app = app();
    let bad = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/bad-games.ndjson"
    ))
    .unwrap();
    let reply = upload_raw(&app, "bad-games.ndjson", &bad).await;
    let accepted = reply.json_of(StatusCode::ACCEPTED);
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["key"], "uploads/bad-games.ndjson");
    let id = accepted["ingest_id"].as_str().unwrap().to_owned();
    assert_eq!(reply.header(header::LOCATION), format!("/ingests/{id}"));
    assert_eq!(
        app.get(&format!("/ingests/{id}")).await.json()["status"],
        "queued"
    );

    // What the inbox watcher does when the file appears.
    let ingestor = Ingestor::new(
        app.state.stores.clone(),
        app.state.bucket.clone(),
        IngestConfig::default(),
    );
    let outcome = ingestor
        .ingest(
            &Upload {
                source: &app.state.bucket,
                key: "uploads/bad-games.ndjson",
                ledger_key: "uploads/bad-games.ndjson".into(),
            },
            &(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.record.id.as_str(), id);
    let record = app.get(&format!("/ingests/{id}")).await.json();
    assert_eq!(record["status"], "partially_failed");
    assert_eq!(record["accepted"], 3);
    let rejects = app
        .get(&format!("/ingests/{id}/rejects?limit=2"))
        .await
        .json();
    assert_eq!(rejects["total"], 7);
    assert_eq!(rejects["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        rejects["items"][0],
        json!({"line": 2, "id": "overrated", "errors": [{"field": "rating", "reason": "11.5 is above the maximum 10"}]})
    );
    let listed = app.get("/ingests?limit=1").await.json();
    assert_eq!(listed["items"][0]["id"], id.as_str());

    let replay = upload_raw(&app, "bad-games.ndjson", &bad).await.json();
    assert_eq!(
        replay["status"], "partially_failed",
        "the same content reports its earlier outcome"
    );

    app.get("/ingests/0123456789abcdef0123")
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get("/ingests/nope")
        .await
        .problem(StatusCode::BAD_REQUEST);
    app.get(&format!("/ingests/{id}/rejects?limit=0"))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_form_with_two_file_parts_is_refused_and_stores_nothing() {
    let app = app();
    let boundary = FORM_BOUNDARY;
    let part = |name: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/x-ndjson\r\n\r\n{{\"title\":\"{name}\"}}\n\r\n"
        )
    };
    let form = format!(
        "{}{}--{boundary}--\r\n",
        part("one.ndjson"),
        part("two.ndjson")
    );
    let problem = app
        .post_form("", form)
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "file", "{problem}");
    assert_eq!(
        app.state.bucket.list("uploads").await.unwrap(),
        Vec::<String>::new(),
        "neither part was stored"
    );
}

#[tokio::test]
async fn a_form_with_a_part_other_than_file_is_refused_and_stores_nothing() {
    // The document says a form has one part, `file`; a server that ignored others would take
    // what a client meant as a setting without saying so.
    let app = app();
    let boundary = FORM_BOUNDARY;
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"one.ndjson\"\r\n\r\n{{\"title\":\"One\"}}\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\nyes\r\n--{boundary}--\r\n"
    );
    let problem = app
        .post_form("", form)
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "overwrite", "{problem}");
    assert_eq!(
        app.state.bucket.list("uploads").await.unwrap(),
        Vec::<String>::new(),
        "the file part was not stored"
    );
    let document = app.get("/openapi.json").await.json();
    let form =
        &document["paths"]["/uploads"]["post"]["requestBody"]["content"]["multipart/form-data"];
    let name = form["schema"]["$ref"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let schema = &document["components"]["schemas"][name];
    assert_eq!(schema["additionalProperties"], false, "{schema}");
}

#[tokio::test]
async fn a_filename_parameter_is_checked_and_names_a_form_upload_too() {
    let app = app();
    let boundary = FORM_BOUNDARY;
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.ndjson\"\r\n\r\n{{\"title\":\"F\"}}\n\r\n--{boundary}--\r\n"
    );
    for bad in ["?filename=", "?filename=..%2Fx.json", "?filename=x.xlsx"] {
        let problem = app
            .post_form(bad, form.clone())
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert_eq!(
            problem["errors"][0]["field"], "filename",
            "{bad}: {problem}"
        );
    }
    assert_eq!(
        app.state.bucket.list("uploads").await.unwrap(),
        Vec::<String>::new()
    );
    let renamed = app.post_form("?filename=renamed.ndjson", form).await;
    assert_eq!(renamed.status, StatusCode::ACCEPTED);
    assert_eq!(renamed.json()["key"], "uploads/renamed.ndjson");
}

#[tokio::test]
async fn uploads_accept_exactly_the_media_types_the_document_lists() {
    let app = app();
    let document = app.get("/openapi.json").await.json();
    let listed: Vec<String> = document["paths"]["/uploads"]["post"]["requestBody"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|t| *t != "multipart/form-data")
        .cloned()
        .collect();
    assert!(listed.len() >= 3, "{listed:?}");
    for (i, media_type) in listed.iter().enumerate() {
        let reply = app
            .send(
                app.write("POST", &format!("/uploads?filename=t{i}.ndjson"))
                    .header(header::CONTENT_TYPE, media_type.as_str())
                    .body(Body::from("{\"title\":\"T\"}\n"))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{media_type} is listed");
    }
    for unlisted in [
        "text/plain",
        "application/octet-stream",
        "text/html",
        "image/png",
        "text/csv",
    ] {
        if listed.iter().any(|t| t == unlisted) {
            continue;
        }
        app.send(
            app.write("POST", "/uploads?filename=u.ndjson")
                .header(header::CONTENT_TYPE, unlisted)
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}

#[tokio::test]
async fn uploads_take_multipart_forms_and_refuse_bad_names_and_types() {
    let app = app();
    let boundary = FORM_BOUNDARY;
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.ndjson\"\r\nContent-Type: application/x-ndjson\r\n\r\n{{\"title\":\"From a form\"}}\n\r\n--{boundary}--\r\n"
    );
    let reply = app.post_form("", form).await;
    assert_eq!(
        reply.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["key"], "uploads/form.ndjson");
    assert!(
        app.state
            .bucket
            .get("uploads/form.ndjson")
            .await
            .unwrap()
            .is_some()
    );

    let bad_name = upload_raw(&app, "..%2Fescape.json", b"{}")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(bad_name["errors"][0]["field"], "filename");
    upload_raw(&app, "games.xlsx", b"{}")
        .await
        .problem(StatusCode::BAD_REQUEST);
    app.send(
        app.write("POST", "/uploads?filename=a.json")
            .header(header::CONTENT_TYPE, "image/png")
            .body(Body::from("x"))
            .unwrap(),
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let small = app_with(ApiConfig {
        max_upload_bytes: 8,
        ..ApiConfig::default()
    });
    upload_raw(&small, "big.ndjson", b"{\"title\":\"too long\"}\n")
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        small.state.bucket.list("uploads").await.unwrap(),
        Vec::<String>::new(),
        "nothing half-written"
    );
}

/// A value `schema` allows at its bound and one just past it, for each bound it states.
fn bound_probes(name: &str, schema: &Value) -> Vec<(String, Value, Value)> {
    let mut probes = Vec::new();
    let types = schema["type"].to_string();
    if let Some(max) = schema["maxLength"]
        .as_u64()
        .filter(|_| types.contains("string"))
    {
        let at = |n: u64| match name {
            "cover_image" => format!("covers/{}", "x".repeat(n as usize - "covers/".len())),
            // One word: the words of a search have bounds of their own (its named format).
            "q" => format!("x{}", " ".repeat(n as usize - 1)),
            _ => "x".repeat(n as usize),
        };
        probes.push(("maxLength".into(), json!(at(max)), json!(at(max + 1))));
    }
    if let Some(max) = schema["maxItems"].as_u64() {
        let list = |n: u64| json!((0..n).map(|i| format!("l{i}")).collect::<Vec<_>>());
        probes.push(("maxItems".into(), list(max), list(max + 1)));
    }
    if let (Some(max), true) = (schema["maximum"].as_f64(), types.contains("number")) {
        let step = schema["multipleOf"].as_f64().unwrap_or(1.0);
        probes.push(("maximum".into(), json!(max), json!(max + step)));
        probes.push(("minimum".into(), json!(0), json!(-step)));
        probes.push(("multipleOf".into(), json!(step), json!(step / 2.0)));
    }
    if let (Some(max), Some(min), true) = (
        schema["maximum"].as_u64(),
        schema["minimum"].as_u64(),
        types.contains("integer") && name != "id",
    ) {
        probes.push(("maximum".into(), json!(max), json!(max + 1)));
        probes.push(("minimum".into(), json!(min), json!(min - 1)));
    }
    if let Some(values) = schema["enum"].as_array() {
        probes.push(("enum".into(), values[0].clone(), json!("QQQ")));
    }
    probes
}

#[tokio::test]
async fn the_document_states_exactly_the_bounds_the_server_enforces() {
    // Every bound the document gives a game field or a listing parameter is probed against the
    // server: at the bound accepted, one step past it refused, naming the field. Schema and
    // validator come from one source (ludex_domain::schema); this is what keeps them one.
    let app = app();
    let doc = app.get("/openapi.json").await.json();
    let mut probed = 0;
    let input = &doc["components"]["schemas"]["GameInput"]["properties"];
    for (name, schema) in input.as_object().unwrap() {
        for (bound, at, past) in bound_probes(name, schema) {
            probed += 1;
            let body = |value: &Value| {
                let mut body = json!({"title": format!("Bounds {probed}")});
                body[name] = value.clone();
                if name == "currency" {
                    body["price"] = json!(1);
                }
                body
            };
            let accepted = app.write_json("POST", "/games", body(&at)).await;
            assert_eq!(
                accepted.status,
                StatusCode::CREATED,
                "{name} {bound} {at}: {}",
                accepted.json()
            );
            let refused = app
                .write_json("POST", "/games", body(&past))
                .await
                .problem(StatusCode::UNPROCESSABLE_ENTITY);
            let field = refused["errors"][0]["field"].as_str().unwrap();
            assert!(
                field.starts_with(name.as_str()),
                "{name} {bound} {past}: {refused}"
            );
        }
    }
    let parameters = doc["paths"]["/games"]["get"]["parameters"]
        .as_array()
        .unwrap();
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap();
        for (bound, at, past) in bound_probes(name, &parameter["schema"]) {
            if name == "cursor" && bound == "maxLength" {
                continue; // no cursor of that length was issued: 400 either way, for another reason
            }
            probed += 1;
            let query = |value: &Value| {
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                format!("/games?{name}={}", text.replace(' ', "+"))
            };
            let accepted = app.get(&query(&at)).await;
            assert_eq!(
                accepted.status,
                StatusCode::OK,
                "{name} {bound} {at}: {}",
                accepted.json()
            );
            let refused = app
                .get(&query(&past))
                .await
                .problem(StatusCode::BAD_REQUEST);
            assert_eq!(
                refused["errors"][0]["field"], name,
                "{name} {bound} {past}: {refused}"
            );
        }
    }
    assert!(probed >= 25, "only {probed} bounds were probed");
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let app = app();
    let doc = app.get("/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/games",
        "/games/{id}",
        "/games/{id}/cover",
        "/games/batch",
        "/uploads",
        "/ingests",
        "/ingests/{ingest_id}",
        "/ingests/{ingest_id}/rejects",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    for method in ["get", "put", "patch", "delete"] {
        assert!(
            paths["/games/{id}"].get(method).is_some(),
            "{method} /games/{{id}}"
        );
    }
    let page = app.get("/docs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page.body).contains("/ingests/{ingest_id}/rejects"));
}

/// The body of a reply decoded from its Content-Encoding.
fn decoded(reply: &Reply) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    match reply.header(header::CONTENT_ENCODING) {
        "" => out.clone_from(&reply.body),
        "gzip" => {
            flate2::read::GzDecoder::new(&reply.body[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(&reply.body[..], 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::decode_all(&reply.body[..]).unwrap(),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

#[tokio::test]
async fn text_responses_are_compressed_as_the_client_accepts_and_images_are_not() {
    let app = app();
    for i in 0..100 {
        app.create(json!({"id": format!("g{i}"), "title": format!("Game number {i}"), "platforms": ["PC", "Nintendo Switch"], "genres": ["Action"], "description": "A game about games, said at some length to look like a catalog."}))
            .await;
    }
    let png = png(40, 40);
    let covered = app.put_cover("g1", &png).await;
    assert_eq!(covered.status, StatusCode::OK);
    let get = |uri: &str, encoding: &str| {
        let request = Request::get(uri)
            .header(header::ACCEPT_ENCODING, encoding)
            .body(Body::empty())
            .unwrap();
        app.send(request)
    };
    for uri in [
        "/games?limit=100",
        "/openapi.json",
        "/docs",
        "/ui/reports",
        "/ui/reports/platforms.csv",
        "/games/nope",
    ] {
        let plain = get(uri, "identity").await;
        assert_eq!(plain.header(header::CONTENT_ENCODING), "", "{uri}");
        for encoding in ["gzip", "br", "zstd"] {
            let reply = get(uri, encoding).await;
            assert_eq!(reply.header(header::CONTENT_ENCODING), encoding, "{uri}");
            assert_eq!(decoded(&reply), plain.body, "{uri} in {encoding}");
            if plain.body.len() > 4096 {
                assert!(
                    reply.body.len() * 3 < plain.body.len(),
                    "{uri} in {encoding}"
                );
            }
        }
    }
    let cover = get("/games/g1/cover", "gzip, br, zstd").await;
    assert_eq!(
        cover.header(header::CONTENT_ENCODING),
        "",
        "images are sent as they are"
    );
    assert_eq!(cover.body, png);
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = app();
    app.create(json!({"id": "g", "title": "G"})).await;
    let cases = [
        ("/games", false, "application/json"),
        ("/games/missing", false, "application/problem+json"),
        ("/docs", false, "text/html"),
        ("/ui/reports", false, "text/html"),
        ("/ui/reports/platforms.csv", false, "text/csv"),
        ("/openapi.json", false, "application/json"),
        ("/games/g", true, "application/json"),
        ("/ingests", true, "application/json"),
    ];
    for (uri, with_key, kind) in cases {
        let mut request = Request::get(uri);
        if with_key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", app.reader));
        }
        let reply = app.send(request.body(Body::empty()).unwrap()).await;
        assert!(
            reply.header(header::CONTENT_TYPE).starts_with(kind),
            "{uri}"
        );
        assert_eq!(
            reply.header(header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{uri}"
        );
        assert_eq!(
            reply.header(header::REFERRER_POLICY),
            "same-origin",
            "{uri}"
        );
        let csp = reply.header(header::CONTENT_SECURITY_POLICY);
        assert_eq!(
            kind == "text/html",
            csp.contains("frame-ancestors 'none'"),
            "{uri}: {csp}"
        );
        if with_key {
            assert_eq!(reply.header(header::CACHE_CONTROL), "no-store", "{uri}");
        }
    }
    // Assets linked with their fingerprint never change: cached for a year.
    let page = app.get("/ui/reports").await;
    let html = String::from_utf8_lossy(&page.body).into_owned();
    let start = html.find("/ui/assets/ui.css?v=").unwrap();
    let href = html[start..].split('"').next().unwrap().to_owned();
    let versioned = app.get(&href).await;
    assert_eq!(
        versioned.header(header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    let unversioned = app.get("/ui/assets/ui.css").await;
    assert_eq!(unversioned.header(header::CACHE_CONTROL), "no-cache");
}

#[tokio::test]
async fn an_unchanged_listing_or_report_is_answered_304() {
    let app = app();
    app.create(json!({"id": "a", "title": "A", "platforms": ["PC"]}))
        .await;
    for uri in [
        "/games?limit=5",
        "/ingests",
        "/ui/reports",
        "/ui/reports/platforms.csv",
    ] {
        let first = app.get(uri).await;
        assert_eq!(first.status, StatusCode::OK, "{uri}");
        let etag = first.header(header::ETAG).to_owned();
        assert!(etag.starts_with("W/\""), "{uri}: {etag:?}");
        let again = app
            .send(
                Request::get(uri)
                    .header(header::IF_NONE_MATCH, &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(again.body.is_empty());
        assert_eq!(again.header(header::ETAG), etag);
    }
    // A change makes a new tag, and the old one gets the whole answer again.
    let before = app
        .get("/games?limit=5")
        .await
        .header(header::ETAG)
        .to_owned();
    app.create(json!({"id": "b", "title": "B", "platforms": ["PC"]}))
        .await;
    let after = app
        .send(
            Request::get("/games?limit=5")
                .header(header::IF_NONE_MATCH, &before)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_ne!(after.header(header::ETAG), before);
}

#[tokio::test]
async fn writes_over_the_rate_limit_are_answered_429_with_retry_after() {
    use ludex::api::rate::{Limiters, RateLimits};
    let app = app_with(ApiConfig {
        rate_limiters: std::sync::Arc::new(Limiters::new(RateLimits {
            writes_per_minute: 3,
            sign_ins_per_minute: 0,
        })),
        ..ApiConfig::default()
    });
    for i in 0..3 {
        app.create(json!({"id": format!("w{i}"), "title": "W"}))
            .await;
    }
    let refused = app
        .write_json("POST", "/games", json!({"id": "w3", "title": "W"}))
        .await;
    let problem = refused.problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(problem["type"], "/problems/too-many-requests");
    let retry_after: u64 = refused.header(header::RETRY_AFTER).parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    app.get("/games/w3").await.problem(StatusCode::NOT_FOUND);
    // Reads are not limited, and another key has its own allowance.
    for _ in 0..10 {
        assert_eq!(app.get("/games").await.status, StatusCode::OK);
    }
    let other = app
        .send(
            Request::post("/games")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.reader))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"title":"R"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::FORBIDDEN,
        "counted apart, refused for its scope"
    );
}

/// Asks for a direct-upload URL; returns the answer.
async fn presign(app: &TestApp, filename: &str, size: usize) -> Value {
    let reply = app
        .send(
            app.write(
                "POST",
                &format!("/uploads/presign?filename={filename}&size={size}"),
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    reply.json_of(StatusCode::OK)
}

/// Sends `body` to a direct-upload URL as a client does: with its length and `content_type`.
async fn put_direct(app: &TestApp, url: &str, content_type: &str, body: Vec<u8>) -> Reply {
    app.send(
        Request::put(url)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_direct_upload_url_takes_one_file_of_its_size_and_type_until_it_expires() {
    let app = app();
    let body = b"{\"id\": \"direct-1\", \"title\": \"Direct One\"}\n".to_vec();
    let grant = presign(&app, "direct.ndjson", body.len()).await;
    assert_eq!(grant["method"], "PUT");
    assert_eq!(grant["key"], "uploads/direct.ndjson");
    assert_eq!(grant["headers"]["content-type"], "application/x-ndjson");
    assert_eq!(grant["headers"]["content-length"], body.len().to_string());
    let url = grant["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/uploads/direct?token="), "{url}");
    let expires = time::OffsetDateTime::parse(
        grant["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires - time::OffsetDateTime::now_utc();
    assert!(
        lifetime > time::Duration::minutes(14) && lifetime <= time::Duration::minutes(15),
        "{lifetime}"
    );

    // Another size, in either direction, or another type: refused, nothing stored.
    let mut longer = body.clone();
    longer.extend_from_slice(b"{\"id\": \"direct-2\", \"title\": \"Smuggled\"}\n");
    put_direct(&app, &url, "application/x-ndjson", longer)
        .await
        .problem(StatusCode::BAD_REQUEST);
    put_direct(&app, &url, "application/x-ndjson", body[..10].to_vec())
        .await
        .problem(StatusCode::BAD_REQUEST);
    put_direct(&app, &url, "application/json", body.clone())
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A body that runs past its size without announcing one is cut off while read.
    let unannounced = futures::stream::iter([
        Ok::<_, std::io::Error>(bytes::Bytes::from(body.clone())),
        Ok(bytes::Bytes::from_static(b"more")),
    ]);
    app.send(
        Request::put(&url)
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from_stream(unannounced))
            .unwrap(),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    // One that ends short of it is not stored either.
    let short = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(
        body[..10].to_vec(),
    ))]);
    let problem = app
        .send(
            Request::put(&url)
                .header(header::CONTENT_TYPE, "application/x-ndjson")
                .body(Body::from_stream(short))
                .unwrap(),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("ended after 10")
    );
    assert!(
        app.state.bucket.list("uploads").await.unwrap().is_empty(),
        "nothing stored from the refused bodies"
    );

    // A token altered in any place, or for another key, is refused.
    let token = url.split("token=").nth(1).unwrap();
    for i in [0, token.len() / 2, token.len() - 1] {
        let mut altered: Vec<char> = token.chars().collect();
        altered[i] = if altered[i] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        put_direct(
            &app,
            &format!("/uploads/direct?token={altered}"),
            "application/x-ndjson",
            body.clone(),
        )
        .await
        .problem(StatusCode::FORBIDDEN);
    }

    // The URL as made: stored under uploads/, queued for the ingest, followed by its name.
    let reply = put_direct(&app, &url, "application/x-ndjson", body.clone()).await;
    let accepted = reply.json_of(StatusCode::ACCEPTED);
    assert_eq!(accepted["key"], "uploads/direct.ndjson");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(
        app.state
            .bucket
            .get("uploads/direct.ndjson")
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
        body
    );
    let latest = app.get("/uploads/direct.ndjson").await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(latest.json()["id"], accepted["ingest_id"]);
    app.get("/uploads/never.ndjson")
        .await
        .problem(StatusCode::NOT_FOUND);

    // An expired URL is refused.
    let expired = app_with(ApiConfig {
        upload_url_lifetime: std::time::Duration::ZERO,
        ..ApiConfig::default()
    });
    let grant = presign(&expired, "late.ndjson", body.len()).await;
    let problem = put_direct(
        &expired,
        grant["url"].as_str().unwrap(),
        "application/x-ndjson",
        body,
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    assert!(problem["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn a_direct_upload_url_is_only_for_writers_a_plain_name_and_the_size_limit() {
    let app = app_with(ApiConfig {
        max_direct_upload_bytes: 1000,
        ..ApiConfig::default()
    });
    app.send(
        Request::post("/uploads/presign?filename=a.json&size=10")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    app.send(
        Request::post("/uploads/presign?filename=a.json&size=10")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.reader))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    for name in [
        "../a.json",
        "a%2Fb.json",
        "rejected%2Fa.json",
        ".a.json",
        "a.txt",
    ] {
        let problem = app
            .send(
                app.write("POST", &format!("/uploads/presign?filename={name}&size=10"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "filename", "{name}");
    }
    for size in ["-1", "x", ""] {
        app.send(
            app.write(
                "POST",
                &format!("/uploads/presign?filename=a.json&size={size}"),
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
    app.send(
        app.write("POST", "/uploads/presign?filename=a.json&size=1001")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    let grant = presign(&app, "a.json.gz", 1000).await;
    assert_eq!(grant["headers"]["content-type"], "application/gzip");
    // The document states this server's limit.
    let document = app.get("/openapi.json").await.json();
    let size = document["paths"]["/uploads/presign"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "size")
        .unwrap()
        .clone();
    assert_eq!(size["schema"]["maximum"], 1000);
    // A URL sealed by another server (another session key) is refused.
    let other = app_with(ApiConfig::default());
    put_direct(
        &other,
        grant["url"].as_str().unwrap(),
        "application/gzip",
        vec![0; 1000],
    )
    .await
    .problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole_and_writes_nothing() {
    let app = app();
    let good = json!({"op": "create", "game": {"id": "kept-out", "title": "Kept Out"}});
    for (operations, says) in [
        (
            json!([good, {"op": "frobnicate", "id": "x"}]),
            "operations[1]: \"op\" must be",
        ),
        (
            json!([good, {"op": "create", "id": "x", "game": {"title": "X"}}]),
            "operations[1]: a \"create\" operation takes no \"id\"",
        ),
        (
            json!([good, {"op": "patch", "id": "x"}]),
            "operations[1]: a \"patch\" operation needs \"patch\"",
        ),
        (
            json!([good, {"op": "replace", "id": "x", "game": [1]}]),
            "operations[1]: \"game\" must be a JSON object",
        ),
        (
            json!([good, {"op": "delete", "id": 5}]),
            "operations[1]: invalid type",
        ),
        (
            json!([good, {"op": "delete", "id": "x", "force": true}]),
            "operations[1]: unknown field `force`",
        ),
        (json!([good, "delete x"]), "operations[1]: invalid type"),
    ] {
        let reply = app
            .write_json("POST", "/games/batch", json!({"operations": operations}))
            .await;
        let problem = reply.problem(StatusCode::BAD_REQUEST);
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{problem}"
        );
        app.get("/games/kept-out")
            .await
            .problem(StatusCode::NOT_FOUND);
    }
    for body in [
        json!([good]),
        json!({"operations": good}),
        json!({"operations": [], "more": 1}),
    ] {
        let reply = app.write_json("POST", "/games/batch", body).await;
        assert!(
            reply.problem(StatusCode::BAD_REQUEST)["detail"]
                .as_str()
                .unwrap()
                .starts_with("not a batch")
        );
    }
    let empty = app
        .write_json("POST", "/games/batch", json!({"operations": []}))
        .await;
    assert_eq!(empty.json_of(StatusCode::OK), json!({"results": []}));
}

#[tokio::test]
async fn a_batch_holds_at_most_1000_operations_and_5_mib() {
    let app = app();
    let deletes = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"op": "delete", "id": format!("g{i}")}))
            .collect()
    };
    let full = app
        .write_json("POST", "/games/batch", json!({"operations": deletes(1000)}))
        .await
        .json_of(StatusCode::OK);
    assert_eq!(full["results"].as_array().unwrap().len(), 1000);
    assert_eq!(full["results"][999]["status"], 404);
    let over = app
        .write_json("POST", "/games/batch", json!({"operations": deletes(1001)}))
        .await;
    assert!(
        over.problem(StatusCode::BAD_REQUEST)["detail"]
            .as_str()
            .unwrap()
            .contains("at most 1000 operations")
    );
    let description = "d".repeat(9000);
    let big: Vec<Value> = (0..600)
        .map(|i| json!({"op": "create", "game": {"id": format!("big{i}"), "title": "Big", "description": description}}))
        .collect();
    let too_large = app
        .write_json("POST", "/games/batch", json!({"operations": big}))
        .await;
    too_large.problem(StatusCode::PAYLOAD_TOO_LARGE);
    app.get("/games/big0").await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_batch_needs_the_write_scope_and_json() {
    let app = app();
    let body = json!({"operations": [{"op": "create", "game": {"title": "Nope"}}]}).to_string();
    let as_reader = app
        .send(
            Request::post("/games/batch")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.reader))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    as_reader.problem(StatusCode::FORBIDDEN);
    let anonymous = app
        .send(
            Request::post("/games/batch")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    anonymous.problem(StatusCode::UNAUTHORIZED);
    let as_text = app
        .send(
            app.write("POST", "/games/batch")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    as_text.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_game_whose_id_is_batch_is_read_and_written_at_its_own_path() {
    let app = app();
    app.create(json!({"title": "Batch"})).await;
    let read = app.get("/games/batch").await.json_of(StatusCode::OK);
    assert_eq!(read["title"], "Batch");
    let patched = app
        .send(
            app.write("PATCH", "/games/batch")
                .header(header::CONTENT_TYPE, "application/merge-patch+json")
                .header(header::IF_MATCH, "\"1\"")
                .body(Body::from(r#"{"rating": 7}"#))
                .unwrap(),
        )
        .await
        .json_of(StatusCode::OK);
    assert_eq!(patched["rating"], 7.0);
    let deleted = app
        .send(
            app.write("DELETE", "/games/batch")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get("/games/batch").await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_operation_of_a_batch_counts_as_a_write_against_the_rate_limit() {
    use ludex::api::rate::{Limiters, RateLimits};
    let app = app_with(ApiConfig {
        rate_limiters: std::sync::Arc::new(Limiters::new(RateLimits {
            writes_per_minute: 10,
            sign_ins_per_minute: 0,
        })),
        ..ApiConfig::default()
    });
    let creates = |from: usize, n: usize| -> Value {
        let operations: Vec<Value> = (from..from + n)
            .map(|i| json!({"op": "create", "game": {"id": format!("r{i}"), "title": "R"}}))
            .collect();
        json!({"operations": operations})
    };
    let beyond = app.write_json("POST", "/games/batch", creates(0, 11)).await;
    let problem = beyond.problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("send smaller batches"),
        "{problem}"
    );
    app.get("/games/r0").await.problem(StatusCode::NOT_FOUND);
    // 1 (the refused request) + 6 = 7 of 10 writes spent; 4 more is over.
    let six = app.write_json("POST", "/games/batch", creates(0, 6)).await;
    assert_eq!(six.json_of(StatusCode::OK)["results"][5]["status"], 201);
    let four = app.write_json("POST", "/games/batch", creates(6, 4)).await;
    let problem = four.problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("this batch needs 4 writes"),
        "{problem}"
    );
    assert!(four.header(header::RETRY_AFTER).parse::<u64>().unwrap() >= 1);
    app.get("/games/r6").await.problem(StatusCode::NOT_FOUND);
}

/// `POST /uploads?dry_run=true` with a raw body.
async fn dry_run(app: &TestApp, body: String) -> Reply {
    app.send(
        app.write("POST", "/uploads?filename=games.ndjson&dry_run=true")
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_dry_run_upload_counts_and_shows_changes_and_stores_nothing() {
    let app = app();
    for i in 0..150 {
        app.create(json!({"id": format!("d{i}"), "title": format!("Game {i}")}))
            .await;
    }
    let mut file: String = (0..150)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("d{i}"), "title": format!("Game {i}"), "rating": 5})
            )
        })
        .collect();
    file.push_str("{\"id\": \"fresh\", \"title\": \"Fresh\"}\n{\"title\": \"\"}\nnot json\n");
    let reply = dry_run(&app, file).await.json_of(StatusCode::OK);
    assert_eq!(reply["dry_run"], true);
    let preview = &reply["preview"];
    assert_eq!(
        [
            &preview["records"],
            &preview["new"],
            &preview["changed"],
            &preview["unchanged"],
            &preview["rejected"]
        ],
        [153, 1, 150, 0, 2],
        "{preview}"
    );
    let changes = preview["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 100, "the first 100 shown, all counted");
    assert_eq!(
        changes[0],
        json!({"id": "d0", "line": 1, "version": 1, "fields": [{"field": "rating", "from": null, "to": 5.0}]})
    );
    assert_eq!(preview["rejects"][0]["line"], 152);
    assert_eq!(preview["rejects"][1]["errors"][0]["field"], Value::Null);
    // Nothing stored: no game changed or added, no ledger entry, no upload, no report.
    assert_eq!(app.get("/games/d0").await.json()["version"], 1);
    app.get("/games/fresh").await.problem(StatusCode::NOT_FOUND);
    assert_eq!(app.get("/ingests").await.json()["items"], json!([]));
    for prefix in ["uploads/", "rejected/"] {
        assert_eq!(
            app.state.bucket.list(prefix).await.unwrap(),
            Vec::<String>::new(),
            "{prefix}"
        );
    }
}

#[tokio::test]
async fn a_dry_run_takes_a_form_and_keeps_the_upload_rules() {
    let app = app_with(ApiConfig {
        max_upload_bytes: 200,
        ..ApiConfig::default()
    });
    let form = |parts: &[(&str, &str)]| -> String {
        let mut body = String::new();
        for (name, content) in parts {
            body.push_str(&format!("--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"g.ndjson\"\r\nContent-Type: application/x-ndjson\r\n\r\n{content}\r\n"));
        }
        body.push_str(&format!("--{FORM_BOUNDARY}--\r\n"));
        body
    };
    let one = form(&[("file", "{\"title\": \"Form Game\"}\n")]);
    let previewed = app
        .post_form("?dry_run=true", one)
        .await
        .json_of(StatusCode::OK);
    assert_eq!(previewed["preview"]["new"], 1);
    let two = form(&[
        ("file", "{\"title\": \"A\"}"),
        ("file", "{\"title\": \"B\"}"),
    ]);
    let refused = app.post_form("?dry_run=true", two).await;
    assert!(
        refused.problem(StatusCode::BAD_REQUEST)["detail"]
            .as_str()
            .unwrap()
            .contains("more than one `file` part")
    );
    let big = format!("{}\n", json!({"title": "x".repeat(300)}));
    dry_run(&app, big)
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    let no_name = app
        .send(
            app.write("POST", "/uploads?dry_run=true")
                .header(header::CONTENT_TYPE, "application/x-ndjson")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    no_name.problem(StatusCode::BAD_REQUEST);
    assert_eq!(
        app.state.bucket.list("uploads/").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(app.get("/ingests").await.json()["items"], json!([]));
}

#[tokio::test]
async fn a_csv_upload_with_a_mapping_lands_and_its_rejects_name_line_and_column() {
    let app = app();
    let csv = "Name;Systems;Score;Studio;Notes\r\n\
               Hades;PC|Switch;9.3;Supergiant;loved\r\n\
               \"Celeste; the climb\";PC;eleven;Maddy Makes Games;\"multi\r\nline\"\r\n\
               ;PC;5;Nobody;no title\r\n";
    let map = "Name=title,Systems=platforms,Score=rating,Notes=";
    let query = format!(
        "/uploads?filename=games.csv&map={}",
        map.replace(',', "%2C")
    );
    // A dry run first: the same reading, nothing stored.
    let dry = app
        .send(
            app.write("POST", &format!("{query}&dry_run=true"))
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from(csv))
                .unwrap(),
        )
        .await
        .json_of(StatusCode::OK);
    assert_eq!(
        [&dry["preview"]["new"], &dry["preview"]["rejected"]],
        [1, 2],
        "{dry}"
    );
    let accepted = app
        .send(
            app.write("POST", &query)
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from(csv))
                .unwrap(),
        )
        .await
        .json_of(StatusCode::ACCEPTED);
    let id = accepted["ingest_id"].as_str().unwrap().to_owned();
    let queued = app.get(&format!("/ingests/{id}")).await.json();
    assert_eq!(
        queued["mapping"], map,
        "the mapping is kept with the upload"
    );
    // The watcher's ingest of the stored file takes the mapping of its queued entry.
    let ingestor = Ingestor::new(
        app.state.stores.clone(),
        app.state.bucket.clone(),
        IngestConfig::default(),
    );
    let outcome = ingestor
        .ingest(
            &Upload {
                source: &app.state.bucket,
                key: "uploads/games.csv",
                ledger_key: "uploads/games.csv".into(),
            },
            &(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.record.id.as_str(), id);
    assert_eq!(outcome.record.mapping.as_deref(), Some(map));
    assert_eq!((outcome.record.accepted, outcome.record.rejected), (1, 2));
    let hades = app.get("/games/hades").await.json();
    assert_eq!(hades["platforms"], json!(["PC", "Switch"]));
    assert_eq!(hades["rating"], 9.3);
    assert_eq!(
        hades["Studio"], "Supergiant",
        "an unmapped column is an extra field"
    );
    assert!(
        hades.get("Notes").is_none(),
        "a column mapped to nothing is left out"
    );
    let rejects = app.get(&format!("/ingests/{id}/rejects")).await.json();
    let first = &rejects["items"][0];
    assert_eq!(first["line"], 3);
    assert_eq!(
        first["errors"][0],
        json!({"field": "rating", "reason": first["errors"][0]["reason"], "column": {"number": 3, "header": "Score"}})
    );
    assert_eq!(
        rejects["items"][1]["line"], 5,
        "lines count inside quoted cells"
    );
    assert_eq!(rejects["items"][1]["errors"][0]["column"]["header"], "Name");
}

#[tokio::test]
async fn a_bad_mapping_is_refused_before_the_body_is_read() {
    let app = app();
    for map in ["Name=titel", "Name=title,Name=platforms", "Name=created_at"] {
        let reply = app
            .send(
                app.write(
                    "POST",
                    &format!("/uploads?filename=g.csv&map={}", map.replace(',', "%2C")),
                )
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from("Name\nHades\n"))
                .unwrap(),
            )
            .await;
        let problem = reply.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "map", "{map}: {problem}");
    }
    assert_eq!(
        app.state.bucket.list("uploads/").await.unwrap(),
        Vec::<String>::new()
    );
}

/// Runs a filter job to its end, step by step; returns the steps' answers.
async fn run_job(app: &TestApp, filter: &str, change: Value, dry_run: bool) -> Vec<Value> {
    let mut steps = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let step = app
            .write_json(
                "POST",
                "/games/batch/filter",
                json!({"filter": filter, "change": change, "cursor": cursor, "dry_run": dry_run}),
            )
            .await
            .json_of(StatusCode::OK);
        cursor = step["next_cursor"].clone();
        steps.push(step);
        if cursor.is_null() {
            return steps;
        }
        assert!(steps.len() < 50, "the job ends");
    }
}

fn total(steps: &[Value], count: &str) -> u64 {
    steps.iter().map(|s| s[count].as_u64().unwrap()).sum()
}

#[tokio::test]
async fn a_change_to_every_game_a_filter_matches_runs_in_bounded_steps() {
    use ludex::api::rate::{Limiters, RateLimits};
    // Thousands of writes with one key on purpose: no write limit here (it has its own test).
    let app = app_with(ApiConfig {
        rate_limiters: std::sync::Arc::new(Limiters::new(RateLimits {
            writes_per_minute: 0,
            sign_ins_per_minute: 0,
        })),
        ..ApiConfig::default()
    });
    let operations: Vec<Value> = (0..1200)
        .map(|i| {
            let platforms = if i % 3 == 0 { json!(["PC", "Switch"]) } else { json!(["PS5"]) };
            json!({"op": "create", "game": {"id": format!("j{i:04}"), "title": format!("Job Game {i}"), "platforms": platforms, "tags": ["old"]}})
        })
        .collect();
    for chunk in operations.chunks(1000) {
        app.write_json("POST", "/games/batch", json!({"operations": chunk}))
            .await
            .json_of(StatusCode::OK);
    }
    let add = json!({"op": "add", "field": "tags", "value": "bulk"});
    // A dry run counts every match, in steps of at most 500 games, and writes nothing.
    let counted = run_job(&app, "platform=pc", add.clone(), true).await;
    assert_eq!(counted.len(), 1, "400 games fit one step");
    assert_eq!(
        (total(&counted, "processed"), total(&counted, "changed")),
        (400, 400)
    );
    assert_eq!(app.get("/games/j0000").await.json()["tags"], json!(["old"]));

    let every = run_job(&app, "", add.clone(), true).await;
    assert_eq!(every.len(), 3, "1,200 games take three steps");
    assert!(
        every
            .iter()
            .all(|s| s["processed"].as_u64().unwrap() <= 500)
    );
    assert_eq!(total(&every, "processed"), 1200);

    let applied = run_job(&app, "platform=PC", add.clone(), false).await;
    assert_eq!(
        (total(&applied, "changed"), total(&applied, "failed")),
        (400, 0)
    );
    let game = app.get("/games/j0003").await.json();
    assert_eq!(game["tags"], json!(["old", "bulk"]));
    assert_eq!(game["version"], 2);
    assert_eq!(
        app.get("/games/j0001").await.json()["tags"],
        json!(["old"]),
        "outside the filter"
    );
    // Again: nothing left to change.
    let again = run_job(&app, "platform=PC", add, false).await;
    assert_eq!(
        (total(&again, "changed"), total(&again, "unchanged")),
        (0, 400)
    );

    // Removing what the filter selects on: games leave the filter as they change.
    let removed = run_job(
        &app,
        "platform=Switch",
        json!({"op": "remove", "field": "platforms", "value": "switch"}),
        false,
    )
    .await;
    assert_eq!(total(&removed, "changed"), 400);
    assert_eq!(
        app.get("/games/j0003").await.json()["platforms"],
        json!(["PC"])
    );
    let set = run_job(
        &app,
        "platform=PS5&q=game",
        json!({"op": "set", "field": "rating", "value": 11}),
        false,
    )
    .await;
    assert_eq!(total(&set, "failed"), 800, "each game's own 422");
    let first = &set[0]["failures"][0];
    assert_eq!(first["status"], 422);
    assert_eq!(first["problem"]["errors"][0]["field"], "rating");
    assert_eq!(
        set[0]["failures"].as_array().unwrap().len(),
        100,
        "the first 100 listed"
    );
    let deleted = run_job(&app, "platform=PC", json!({"op": "delete"}), false).await;
    assert_eq!(total(&deleted, "changed"), 400);
    app.get("/games/j0000").await.problem(StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/games?platform=PS5&limit=1").await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_filter_job_refuses_a_bad_filter_or_step_before_writing() {
    let app = app();
    app.create(json!({"id": "kept", "title": "Kept"})).await;
    for (body, field) in [
        (
            json!({"filter": "sort=title", "change": {"op": "delete"}}),
            "filter",
        ),
        (
            json!({"filter": "year_from=1800", "change": {"op": "delete"}}),
            "year_from",
        ),
        (
            json!({"filter": "", "change": {"op": "add", "field": "developer", "value": "x"}}),
            "",
        ),
        (
            json!({"filter": "", "change": {"op": "delete"}, "cursor": "not-a-cursor"}),
            "cursor",
        ),
        (
            json!({"filter": "", "change": {"op": "delete"}, "force": true}),
            "",
        ),
    ] {
        let reply = app
            .write_json("POST", "/games/batch/filter", body.clone())
            .await;
        let problem = reply.problem(StatusCode::BAD_REQUEST);
        if !field.is_empty() {
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        }
        assert_eq!(
            app.get("/games/kept").await.status,
            StatusCode::OK,
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_filter_job_stopped_by_the_write_limit_says_when_to_go_on_and_loses_nothing() {
    use ludex::api::rate::{Limiters, RateLimits};
    let app = app();
    for i in 0..12 {
        app.create(json!({"id": format!("r{i:02}"), "title": format!("Rated {i:02}")}))
            .await;
    }
    let limited = app.with_config(ApiConfig {
        rate_limiters: std::sync::Arc::new(Limiters::new(RateLimits {
            writes_per_minute: 5,
            sign_ins_per_minute: 0,
        })),
        ..ApiConfig::default()
    });
    let change = json!({"op": "set", "field": "developer", "value": "Limited"});
    let first = limited
        .write_json(
            "POST",
            "/games/batch/filter",
            json!({"filter": "", "change": change}),
        )
        .await
        .json_of(StatusCode::OK);
    assert_eq!(first["changed"], 5, "{first}");
    assert_eq!(first["next_cursor"], "", "the first page again");
    assert!(first["retry_after"].as_u64().unwrap() >= 1);
    let refused = limited
        .write_json(
            "POST",
            "/games/batch/filter",
            json!({"filter": "", "change": change, "cursor": ""}),
        )
        .await;
    refused.problem(StatusCode::TOO_MANY_REQUESTS);
    // Another key, another allowance: the job goes on where it stopped and ends.
    let steps = run_job(&app, "", change, false).await;
    assert_eq!(
        (total(&steps, "changed"), total(&steps, "unchanged")),
        (7, 5)
    );
}
