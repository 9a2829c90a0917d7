//! The AWS path end to end on local servers, doing what AWS does: a bucket whose `uploads/`
//! notifies an SQS queue (moto), a file uploaded with the AWS SDK, the real S3 event taken from
//! the queue and handed to the ingest function's handler as Lambda's SQS event source would,
//! then the games read back through the API router — with DynamoDB as the catalog, and again
//! with PostgreSQL.

use crate::{fresh_postgres, moto};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use ludex::api::{ApiConfig, AppState};
use ludex::bucket::Bucket;
use ludex::ingest::{IngestConfig, Ingestor};
use ludex::keys::{KeyRing, Keys};
use ludex::metrics::Metrics;
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus};
use ludex_domain::{Claim, Lease};
use ludex_lambda::event::IngestEvent;
use ludex_lambda::ingest::{HandlerError, IngestHandler};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

const UPLOAD: &str = concat!(
    r#"{"id":"hades","title":"Hades","platforms":["PC"],"rating":9.3}"#,
    "\n",
    r#"{"id":"broken","title":"Broken","rating":42}"#,
    "\n",
    r#"{"id":"celeste","title":"Celeste","release_date":"2018-01-25"}"#,
    "\n",
);

/// The queue's messages until one of them is about an object, as the SQS records Lambda
/// would deliver.
async fn receive_until_object(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut records = Vec::new();
    while Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            records.push(json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": message.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
                "awsRegion": "us-east-1",
            }));
        }
        if records.iter().any(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains("ObjectCreated")
        }) {
            return records;
        }
    }
    panic!("no ObjectCreated message arrived: {records:?}");
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn upload_ingest_and_read_back(endpoint: &str, store_url: &str) {
    let config = ludex::aws::sdk_config(Some(endpoint)).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bucket = moto::unique_name("ludex-aws-path");

    let queue_url = sqs
        .create_queue()
        .queue_name(&bucket)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let uploads_only = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value("uploads/")
                        .build(),
                )
                .build(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(queue_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .filter(uploads_only)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    // On AWS, Terraform makes the table; here the test does, as `ludex init` would.
    let stores = ludex::store::open(store_url).await.unwrap();
    let function_bucket = Bucket::s3(&bucket, Some(endpoint)).unwrap();
    let handler = IngestHandler::new(
        Ingestor::new(
            stores.clone(),
            function_bucket.clone(),
            IngestConfig::default(),
        ),
        &bucket,
        "uploads/",
    );

    s3.put_object()
        .bucket(&bucket)
        .key("uploads/dir/my games.ndjson")
        .body(ByteStream::from_static(UPLOAD.as_bytes()))
        .send()
        .await
        .unwrap();
    let records = receive_until_object(&sqs, &queue_url).await;
    let bodies: Vec<&str> = records.iter().filter_map(|r| r["body"].as_str()).collect();
    assert!(
        bodies.iter().any(|b| b.contains("s3:TestEvent")),
        "S3 announces the configuration with a test event first: {bodies:?}"
    );
    assert!(
        bodies.iter().any(|b| b.contains("dir%2Fmy+games.ndjson")),
        "keys arrive URL-encoded: {bodies:?}"
    );
    let event = json!({ "Records": records });

    // Another invocation holds the upload (a duplicate delivery running at the same moment):
    // the message is handed back to SQS as a batch item failure, and the same record straight
    // from S3 fails the invocation as retryable. Nothing is ingested meanwhile.
    let key = "uploads/dir/my games.ndjson";
    let info = function_bucket.info(key).await.unwrap();
    let held = IngestRecord {
        lease: Some(Lease {
            holder: "other-invocation".into(),
            until: ludex::store::rfc3339_in(Duration::from_secs(300)),
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
    let now = ludex::store::now_rfc3339();
    assert_eq!(
        stores.ledger.claim(&held, &now).await.unwrap(),
        Claim::Taken
    );
    let object_message = records
        .iter()
        .find(|r| {
            r["body"]
                .as_str()
                .is_some_and(|b| b.contains("ObjectCreated"))
        })
        .unwrap();
    let parsed: IngestEvent = serde_json::from_value(event.clone()).unwrap();
    let reply = handler.handle(parsed).await.unwrap();
    let failed: Vec<_> = reply
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [object_message["messageId"].as_str().unwrap()]);
    let notification: Value =
        serde_json::from_str(object_message["body"].as_str().unwrap()).unwrap();
    let direct: IngestEvent = serde_json::from_value(notification).unwrap();
    let error = handler.handle(direct).await.unwrap_err();
    assert!(matches!(error, HandlerError::Transient { .. }), "{error}");
    assert_eq!(
        stores.ledger.get(&held.id).await.unwrap(),
        Some(held.clone())
    );
    // The other invocation died: once its lease has run out the next delivery ingests.
    let expired = IngestRecord {
        lease: Some(Lease {
            holder: "other-invocation".into(),
            until: "2000-01-01T00:00:00.000Z".into(),
        }),
        ..held.clone()
    };
    assert!(
        stores
            .ledger
            .update(&expired, "other-invocation")
            .await
            .unwrap()
    );

    let parsed: IngestEvent = serde_json::from_value(event.clone()).unwrap();
    let reply = handler.handle(parsed).await.unwrap();
    assert!(
        reply.batch_item_failures.is_empty(),
        "a bad record is not a failed message: {reply:?}"
    );

    // At-least-once delivery: the same messages again change nothing.
    let parsed: IngestEvent = serde_json::from_value(event).unwrap();
    let reply = handler.handle(parsed).await.unwrap();
    assert!(reply.batch_item_failures.is_empty(), "{reply:?}");

    let router = ludex::api::router(AppState {
        stores,
        bucket: function_bucket,
        keys: Arc::new(Keys::new(KeyRing::new(&[]).unwrap())),
        config: Arc::new(ApiConfig::default()),
        metrics: Metrics::off(),
    });
    let (status, hades) = get(&router, "/games/hades").await;
    assert_eq!(status, StatusCode::OK, "{hades}");
    assert_eq!(hades["title"], "Hades");
    assert_eq!(hades["version"], 1, "the replay did not write again");
    assert_eq!(get(&router, "/games/celeste").await.0, StatusCode::OK);
    assert_eq!(get(&router, "/games/broken").await.0, StatusCode::NOT_FOUND);

    let (_, ledger) = get(&router, "/ingests").await;
    let entries = ledger["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "one upload, one entry: {ledger}");
    assert_eq!(entries[0]["key"], "uploads/dir/my games.ndjson");
    assert_eq!(entries[0]["status"], "partially_failed");
    assert_eq!(entries[0]["accepted"], 2);
    assert_eq!(entries[0]["rejected"], 1);
    let id = entries[0]["id"].as_str().unwrap();
    let (status, rejects) = get(&router, &format!("/ingests/{id}/rejects")).await;
    assert_eq!(status, StatusCode::OK, "{rejects}");
    let text = rejects.to_string();
    assert!(
        text.contains("rating") && text.contains('2'),
        "the reject names its line and field: {text}"
    );
}

#[tokio::test]
async fn an_upload_reaches_the_api_through_s3_sqs_and_the_ingest_function_on_dynamodb() {
    let Some(endpoint) = moto::endpoint("AWS path S3 → SQS → ingest → DynamoDB → API")
    else {
        return;
    };
    let table = moto::unique_name("ludex-aws-path");
    upload_ingest_and_read_back(
        &endpoint,
        &format!("dynamodb://{table}?endpoint={endpoint}"),
    )
    .await;
}

#[tokio::test]
async fn an_upload_reaches_the_api_through_s3_sqs_and_the_ingest_function_on_postgresql() {
    let Some(endpoint) = moto::endpoint("AWS path S3 → SQS → ingest → PostgreSQL → API")
    else {
        return;
    };
    let Some(server) = fresh_postgres::server("AWS path S3 → SQS → ingest → PostgreSQL → API")
    else {
        return;
    };
    let db = fresh_postgres::FreshDatabase::create(&server).await;
    upload_ingest_and_read_back(&endpoint, &db.url).await;
    db.drop().await;
}
