//! Log lines as operators read them in CloudWatch: JSON, with the request id, the X-Ray trace
//! id and, for ingests, the upload key and stage durations; never a key.

use crate::observed::{Captured, TRACE_HEADER, TRACE_ID, app, examples};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ludex::metrics::{Metrics, Stage};
use ludex::telemetry::RequestContext;
use serde_json::{Value, json};
use std::time::Duration;

fn is_info_or_above(line: &Value) -> bool {
    matches!(line["level"].as_str(), Some("INFO" | "WARN" | "ERROR"))
}

#[tokio::test]
async fn request_log_lines_carry_the_request_and_trace_ids_and_never_a_key() {
    let app = app(Metrics::prometheus());
    let logs = Captured::default();
    let _guard = logs.logs("trace");
    let bad_key = "ludex_not-a-real-key-7f3a9c";

    let (status, _, _) = app
        .send(
            Request::post("/games")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.writer))
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-request-id", "req-ok")
                .header("x-amzn-trace-id", TRACE_HEADER)
                .body(Body::from(json!({"title": "Hades"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, _) = app
        .send(
            Request::post("/games")
                .header(header::AUTHORIZATION, format!("Bearer {bad_key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-request-id", "req-bad-key")
                .header("x-amzn-trace-id", TRACE_HEADER)
                .body(Body::from(json!({"title": "Celeste"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["x-request-id"], "req-bad-key");
    let (status, _, _) = app
        .send(
            Request::get("/games/no-such-game")
                .header("x-request-id", "req-missing")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let text = logs.text();
    assert!(!text.contains(&app.writer), "a key was logged:\n{text}");
    assert!(
        !text.contains(bad_key),
        "a presented key was logged:\n{text}"
    );
    assert!(
        !text.contains("Bearer"),
        "an Authorization value was logged:\n{text}"
    );

    let lines = logs.json_lines();
    assert!(!lines.is_empty());
    for line in &lines {
        let id = line["request_id"].as_str().unwrap_or_default();
        assert!(
            ["req-ok", "req-bad-key", "req-missing"].contains(&id),
            "a line without its request id: {line}"
        );
        if id != "req-missing" {
            assert_eq!(
                line["trace_id"], TRACE_ID,
                "a line without its trace id: {line}"
            );
        }
        for field in ["timestamp", "level", "target"] {
            assert!(line[field].is_string(), "no {field}: {line}");
        }
    }
    // Every request is traced at debug level; fast successes say nothing at info.
    assert!(lines.iter().any(|l| l["request_id"] == "req-ok"));
    assert!(
        !lines
            .iter()
            .any(|l| l["request_id"] == "req-ok" && is_info_or_above(l)),
        "a fast successful request logged at info"
    );
    let rejected = lines
        .iter()
        .find(|l| l["request_id"] == "req-bad-key" && l["message"] == "request rejected")
        .expect("the failed request is in the access log");
    assert_eq!(rejected["level"], "INFO");
    assert_eq!(rejected["status"], 401);
    assert_eq!(rejected["route"], "/games");
    assert_eq!(rejected["problem"], "unauthorized");
    assert_eq!(rejected["detail"], "the API key is not valid");
    let missing = lines
        .iter()
        .find(|l| l["request_id"] == "req-missing" && l["message"] == "request rejected")
        .expect("the 404 is in the access log");
    assert_eq!(missing["route"], "/games/{id}");
    assert_eq!(missing["status"], 404);
    assert!(missing["latency_ms"].is_number());
}

#[tokio::test]
async fn ingest_log_lines_carry_the_upload_key_the_ids_and_the_stage_durations() {
    let app = app(Metrics::prometheus());
    let bad = std::fs::read(examples().join("bad-games.ndjson")).unwrap();
    let logs = Captured::default();
    let guard = logs.logs("info");
    let invocation = RequestContext::new(
        "lambda-request-1",
        Some("Root=1-aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb"),
    );
    let outcome = invocation
        .scope(app.ingest("uploads/bad.ndjson", &bad, Metrics::off()))
        .await;
    drop(guard);
    assert_eq!(outcome.record.rejected, 7);

    let lines = logs.json_lines();
    let ingest_id = outcome.record.id.as_str();
    for line in &lines {
        assert_eq!(line["key"], "uploads/bad.ndjson", "{line}");
        assert_eq!(line["request_id"], "lambda-request-1", "{line}");
        assert_eq!(
            line["trace_id"], "1-aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb",
            "{line}"
        );
        assert_eq!(line["ingest_id"], ingest_id, "{line}");
    }
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(messages.first(), Some(&"ingest started"));
    assert_eq!(messages.last(), Some(&"ingest finished"));
    let rejects: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "record rejected")
        .collect();
    assert!(rejects.len() >= 7, "{rejects:?}");
    assert!(rejects.iter().any(|r| r["field"] == "rating"
        && r["reason"] == "11.5 is above the maximum 10"
        && r["position"] == "line 2"));

    let finished = lines.last().unwrap();
    assert_eq!(finished["status"], "partially_failed");
    assert_eq!(finished["accepted"], 3);
    assert_eq!(finished["rejected"], 7);
    for stage in Stage::ALL {
        let ms = &finished[format!("{}_ms", stage.as_str())];
        assert!(
            ms.as_f64().is_some_and(|ms| ms >= 0.0),
            "{stage:?}: {finished}"
        );
        // serde_json reads floats to within an ulp, not exactly.
        assert!(
            (ms.as_f64().unwrap() - outcome.stages.millis(stage)).abs() < 1e-9,
            "the log and the outcome disagree on {stage:?}"
        );
    }
    assert!(outcome.stages.get(Stage::Parse) > Duration::ZERO);
    assert!(outcome.stages.get(Stage::Write) > Duration::ZERO);
}
