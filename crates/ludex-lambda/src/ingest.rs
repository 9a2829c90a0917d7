//! The ingest function's handler: each object an event names goes through the same pipeline as
//! `ludex ingest` ([`Ingestor::ingest`]).
//!
//! Delivery is at least once: a replayed event finds its upload in the ledger and does nothing.
//! A bad file is not a failure of the invocation (its rejects are in the ledger and the
//! rejects report); a transient fault is, so that Lambda retries it. Events that arrive through
//! SQS are answered with the messages that failed (`batchItemFailures`), so the others are not
//! redelivered.

use crate::config::Config;
use crate::event::{
    BatchResponse, IngestEvent, ItemFailure, KeyError, Notification, Record, S3Record,
};
use lambda_runtime::{Diagnostic, LambdaEvent};
use ludex::ingest::{IngestConfig, IngestError, Ingestor, Upload};
use ludex::metrics::Metrics;
use ludex::telemetry::RequestContext;

/// Why an object or a message could not be handled; the invocation (or the SQS message) fails.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A fault worth retrying: throttling, a timeout, a lost connection.
    #[error("ingesting {key} failed; a retry may succeed: {source}")]
    Transient { key: String, source: IngestError },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the SQS message {message_id} does not hold an S3 event notification: {reason}")]
    Message { message_id: String, reason: String },
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Self {
        let kind = match error {
            HandlerError::Transient { .. } => "Ludex.TransientIngestError",
            HandlerError::Key(_) | HandlerError::Message { .. } => "Ludex.MalformedEvent",
        };
        Diagnostic {
            error_type: kind.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Hands the uploads an event names to the ingest pipeline.
pub struct IngestHandler {
    ingestor: Ingestor,
    /// The bucket the ingestor reads (`LUDEX_BUCKET`); events about others are ignored.
    bucket_name: String,
    upload_prefix: String,
}

impl IngestHandler {
    pub fn new(ingestor: Ingestor, bucket_name: &str, upload_prefix: &str) -> Self {
        Self {
            ingestor,
            bucket_name: bucket_name.to_owned(),
            upload_prefix: upload_prefix.to_owned(),
        }
    }

    /// The handler for the environment's settings (see [`Config`]), with CloudWatch EMF metrics
    /// on Lambda.
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = Config::from_env()?;
        let ingestor = Ingestor::new(
            crate::open_store(&config).await?,
            crate::open_bucket(&config)?,
            IngestConfig::default(),
        )
        .with_metrics(Metrics::for_sink(config.reporting.metrics));
        Ok(Self::new(
            ingestor,
            config.bucket_name(),
            &config.upload_prefix,
        ))
    }

    /// One invocation, logged with its request and trace ids.
    pub async fn invoke(
        &self,
        event: LambdaEvent<IngestEvent>,
    ) -> Result<BatchResponse, HandlerError> {
        let context = RequestContext::new(
            &event.context.request_id,
            event.context.xray_trace_id.as_deref(),
        );
        context.scope(self.handle(event.payload)).await
    }

    pub async fn handle(&self, event: IngestEvent) -> Result<BatchResponse, HandlerError> {
        let mut reply = BatchResponse::default();
        if event.is_test() {
            tracing::info!("s3:TestEvent; nothing to ingest");
            return Ok(reply);
        }
        for record in &event.records {
            match record {
                // Directly from S3: a failure fails the invocation and Lambda retries the
                // whole event; the objects already ingested are then no-ops.
                Record::S3(record) => self.object(record).await?,
                Record::Sqs(message) => {
                    if let Err(error) = self.message(&message.body, &message.message_id).await {
                        tracing::error!(message_id = %message.message_id, %error, "message failed; SQS will deliver it again");
                        reply.batch_item_failures.push(ItemFailure {
                            item_identifier: message.message_id.clone(),
                        });
                    }
                }
            }
        }
        Ok(reply)
    }

    async fn message(&self, body: &str, message_id: &str) -> Result<(), HandlerError> {
        let notification: Notification<S3Record> =
            serde_json::from_str(body).map_err(|e| HandlerError::Message {
                message_id: message_id.to_owned(),
                reason: e.to_string(),
            })?;
        if notification.is_test() {
            tracing::info!(message_id, "s3:TestEvent; nothing to ingest");
        }
        for record in &notification.records {
            self.object(record).await?;
        }
        Ok(())
    }

    async fn object(&self, record: &S3Record) -> Result<(), HandlerError> {
        let key = record.key()?;
        let bucket = &record.s3.bucket.name;
        if !record.is_object_created() {
            tracing::info!(%key, event = %record.event_name, "not an ObjectCreated event; ignored");
            return Ok(());
        }
        if *bucket != self.bucket_name {
            tracing::warn!(%bucket, %key, expected = %self.bucket_name, "an event about another bucket; ignored");
            return Ok(());
        }
        if !key.starts_with(&self.upload_prefix) || !ludex::inbox::is_upload(&key) {
            tracing::info!(%key, prefix = %self.upload_prefix, "not an upload (outside the upload prefix, or not a name of ludex::inbox::UPLOAD_SUFFIXES); ignored");
            return Ok(());
        }
        let upload = Upload {
            source: self.ingestor.bucket(),
            key: &key,
            ledger_key: key.clone(),
        };
        match self.ingestor.ingest(&upload, &()).await {
            // The pipeline has logged the outcome, rejects included.
            Ok(_) => Ok(()),
            Err(source) if source.is_transient() => Err(HandlerError::Transient { key, source }),
            // The ledger holds the failed entry; running the same event again would fail the
            // same way, so it is not retried.
            Err(error) => {
                tracing::error!(%key, %error, "ingest failed; not retried");
                Ok(())
            }
        }
    }
}
