//! The events the ingest function is invoked with: S3 event notifications, delivered by S3
//! directly or as the bodies of SQS messages, and S3's `s3:TestEvent`.
//!
//! Only the fields the function reads are declared, and none that S3 may leave out: moto, for
//! one, sends no `userIdentity` or `requestParameters`, which `aws_lambda_events` requires.

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

/// An event: records, or the test message S3 sends when a notification is configured.
#[derive(Debug, Deserialize)]
pub struct Notification<R> {
    #[serde(rename = "Records", default = "Vec::new")]
    pub records: Vec<R>,
    /// `s3:TestEvent` on a test message; absent otherwise.
    #[serde(rename = "Event")]
    pub event: Option<String>,
}

impl<R> Notification<R> {
    pub fn is_test(&self) -> bool {
        self.event.as_deref() == Some("s3:TestEvent")
    }
}

/// The event an invocation carries: S3 records, or SQS messages whose bodies are S3 events.
pub type IngestEvent = Notification<Record>;

/// One record of an invocation, by its `eventSource`.
#[derive(Debug, Deserialize)]
#[serde(tag = "eventSource")]
pub enum Record {
    #[serde(rename = "aws:s3")]
    S3(S3Record),
    #[serde(rename = "aws:sqs")]
    Sqs(SqsMessage),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Record {
    /// E.g. `ObjectCreated:Put`.
    pub event_name: String,
    pub s3: S3Entity,
}

#[derive(Debug, Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct S3Object {
    /// URL-encoded as in a form: `+` for a space, `%2F` for `/`.
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    pub message_id: String,
    /// An S3 event notification, as JSON text.
    pub body: String,
}

impl S3Record {
    pub fn is_object_created(&self) -> bool {
        self.event_name.starts_with("ObjectCreated:")
    }

    /// The object key, decoded.
    pub fn key(&self) -> Result<String, KeyError> {
        decode_key(&self.s3.object.key)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the object key {0:?} in the event is not URL-encoded UTF-8")]
pub struct KeyError(pub String);

/// Decodes a key as S3 writes it in events (`application/x-www-form-urlencoded` style).
pub fn decode_key(raw: &str) -> Result<String, KeyError> {
    // A literal `+` arrives as `%2B`, so turning `+` into spaces first is safe.
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| KeyError(raw.to_owned()))
}

/// The reply to an invocation. With an SQS event source that reports batch item failures,
/// Lambda deletes every message of the batch except these; S3 ignores the reply.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    /// The SQS message id.
    pub item_identifier: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        assert_eq!(
            decode_key("uploads/dir%2Fmy+games.json").unwrap(),
            "uploads/dir/my games.json"
        );
        assert_eq!(
            decode_key("uploads/a%2Bb.json").unwrap(),
            "uploads/a+b.json"
        );
        assert_eq!(
            decode_key("uploads/caf%C3%A9.ndjson").unwrap(),
            "uploads/café.ndjson"
        );
        assert!(decode_key("uploads/%FF.json").is_err());
    }

    #[test]
    fn a_direct_s3_event_with_several_records_is_read() {
        let event: IngestEvent = serde_json::from_str(&fixture("s3-put.json")).unwrap();
        assert!(!event.is_test());
        let keys: Vec<String> = event
            .records
            .iter()
            .map(|r| match r {
                Record::S3(r) => r.key().unwrap(),
                Record::Sqs(_) => panic!("an S3 record was read as SQS"),
            })
            .collect();
        assert_eq!(keys, ["uploads/dir/my games.json", "uploads/more.ndjson"]);
    }

    #[test]
    fn records_without_optional_fields_are_accepted() {
        // As moto sends them: no userIdentity, requestParameters or responseElements.
        let event: IngestEvent = serde_json::from_str(
            r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
                "s3":{"bucket":{"name":"b"},"object":{"key":"uploads/a.json"}}}]}"#,
        )
        .unwrap();
        assert!(matches!(&event.records[0], Record::S3(r) if r.is_object_created()));
    }

    #[test]
    fn sqs_messages_carry_s3_events_and_test_events() {
        let event: IngestEvent = serde_json::from_str(&fixture("sqs-s3-put.json")).unwrap();
        let bodies: Vec<Notification<S3Record>> = event
            .records
            .iter()
            .map(|r| match r {
                Record::Sqs(m) => serde_json::from_str(&m.body).unwrap(),
                Record::S3(_) => panic!("an SQS record was read as S3"),
            })
            .collect();
        assert!(bodies.iter().any(Notification::is_test));
        assert!(bodies.iter().any(|b| b.records.len() == 1));
        let test: IngestEvent = serde_json::from_str(&fixture("s3-test-event.json")).unwrap();
        assert!(test.is_test() && test.records.is_empty());
    }

    #[test]
    fn the_reply_names_failed_messages_as_lambda_expects() {
        let reply = BatchResponse {
            batch_item_failures: vec![ItemFailure {
                item_identifier: "m-1".into(),
            }],
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"batchItemFailures":[{"itemIdentifier":"m-1"}]}"#
        );
    }
}
