//! The ingest pipeline: upload object → stream-parse → validate → batched upserts → ledger
//! entry → rejects report. The file watcher, `ludex ingest` and the S3-event Lambda all call
//! [`Ingestor::ingest`].
//!
//! Parsing and validation run on a blocking thread and hand batches to the writer through a
//! bounded channel, so parsing hides behind the writes and memory stays flat.

use crate::bucket::{Bucket, BucketError};
use crate::store::{Stores, now_rfc3339};
use flate2::read::MultiGzDecoder;
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus, Reject};
use ludex_domain::upload::{self, ParseLimits, Position, Stop, UploadError};
use ludex_domain::{AttemptId, FieldError, Game, StagedGame, StoreError, UpsertOutcome};
use std::io::{BufRead, BufReader, Read};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug)]
pub struct IngestConfig {
    pub limits: ParseLimits,
    /// Valid records per store write.
    pub batch_size: usize,
    /// Rejects kept in the returned outcome for display (all go to the report).
    pub rejects_shown: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            limits: ParseLimits::default(),
            batch_size: 3000,
            rejects_shown: 100,
        }
    }
}

/// A failure of the machinery, not of the file: worth retrying later.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("the parser stopped unexpectedly: {0}")]
    Parser(String),
}

impl IngestError {
    /// Whether trying again may succeed (throttling, timeouts, lost connections).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Store(StoreError::Unavailable(_)) | Self::Bucket(_)
        )
    }
}

/// Where an upload is read from.
pub struct Upload<'a> {
    pub source: &'a Bucket,
    /// The object's key in `source`.
    pub key: &'a str,
    /// The name the ledger knows the upload by: the bucket key, or `file://…` for a local file.
    pub ledger_key: String,
}

/// Told how far an ingest has got, for progress bars.
pub trait Progress: Send + Sync {
    fn advanced(&self, records: u64, rejected: u64);
}

impl Progress for () {
    fn advanced(&self, _: u64, _: u64) {}
}

#[derive(Debug)]
pub struct IngestOutcome {
    pub record: IngestRecord,
    /// True when this upload (same key, same content) was ingested before: nothing was done.
    pub replayed: bool,
    /// The first rejects, in file order; the report holds them all.
    pub rejects: Vec<Reject>,
}

/// Runs ingests against one store and one bucket (where rejects reports go).
#[derive(Clone)]
pub struct Ingestor {
    stores: Stores,
    bucket: Bucket,
    config: IngestConfig,
}

/// One parsed record on its way to the writer. Valid records are the common case and are
/// moved by value; boxing them would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Item {
    Valid(StagedGame),
    /// Boxed: rejects are rare and much smaller than the games beside them in a batch.
    Rejected(Box<Reject>),
}

/// The key of the rejects report of an upload: `uploads/a/b.json` → `rejected/a/b.json.errors.ndjson`.
pub fn rejects_key(ledger_key: &str) -> String {
    let name = ledger_key
        .strip_prefix("uploads/")
        .or_else(|| ledger_key.rsplit('/').next())
        .unwrap_or(ledger_key);
    format!("rejected/{name}.errors.ndjson")
}

impl Ingestor {
    pub fn new(stores: Stores, bucket: Bucket, config: IngestConfig) -> Self {
        Self {
            stores,
            bucket,
            config,
        }
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    pub async fn ingest(
        &self,
        upload: &Upload<'_>,
        progress: &dyn Progress,
    ) -> Result<IngestOutcome, IngestError> {
        let info = upload.source.info(upload.key).await?;
        let id = IngestId::for_upload(&upload.ledger_key, &info.fingerprint);
        if let Some(earlier) = self.stores.ledger.get(&id).await?
            && earlier.status.is_finished()
            && !earlier.retryable
        {
            tracing::info!(ingest = %id, key = %upload.ledger_key, status = %earlier.status, "upload seen before; nothing to do");
            return Ok(IngestOutcome {
                record: earlier,
                replayed: true,
                rejects: Vec::new(),
            });
        }
        let mut record = IngestRecord {
            id: id.clone(),
            key: upload.ledger_key.clone(),
            size: info.size,
            fingerprint: info.fingerprint,
            status: IngestStatus::Running,
            started_at: now_rfc3339(),
            finished_at: None,
            accepted: 0,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            rejected: 0,
            rejects_key: None,
            error: None,
            retryable: false,
        };
        self.stores.ledger.put(&record).await?;
        tracing::info!(ingest = %id, key = %upload.ledger_key, size = info.size, "ingest started");
        let mut rejects = Vec::new();
        match self.run(upload, &mut record, &mut rejects, progress).await {
            Ok(()) => {
                record.finished_at = Some(now_rfc3339());
                self.stores.ledger.put(&record).await?;
                tracing::info!(
                    ingest = %id, status = %record.status, accepted = record.accepted,
                    rejected = record.rejected, "ingest finished"
                );
                Ok(IngestOutcome {
                    record,
                    replayed: false,
                    rejects,
                })
            }
            Err(e) => {
                // Leave a visible, retryable entry: a replay of the same upload runs again.
                record.status = IngestStatus::Failed;
                record.retryable = true;
                record.error = Some(format!("ingest interrupted: {e}"));
                record.finished_at = Some(now_rfc3339());
                if let Err(ledger) = self.stores.ledger.put(&record).await {
                    tracing::error!(ingest = %id, error = %ledger, "could not record the failed ingest");
                }
                Err(e)
            }
        }
    }

    async fn run(
        &self,
        upload: &Upload<'_>,
        record: &mut IngestRecord,
        shown: &mut Vec<Reject>,
        progress: &dyn Progress,
    ) -> Result<(), IngestError> {
        let attempt = AttemptId(format!("{}-{}", record.id, now_rfc3339()));
        let reader = upload.source.reader(upload.key).await?;
        let (tx, mut rx) = mpsc::channel::<Vec<Item>>(2);
        let config = self.config;
        let parser = tokio::task::spawn_blocking(move || parse(reader, config, &tx));

        let report_key = rejects_key(&record.key);
        let mut report: Option<object_store::buffered::BufWriter> = None;
        let mut processed = 0u64;
        let written = async {
            while let Some(batch) = rx.recv().await {
                // Valid records go to the store; rejects wait in their slots so the report
                // keeps file order.
                let mut staged = Vec::with_capacity(batch.len());
                let slots: Vec<Result<(Position, String), Reject>> = batch
                    .into_iter()
                    .map(|item| match item {
                        Item::Valid(game) => {
                            let slot = (game.position, game.game.id.to_string());
                            staged.push(game);
                            Ok(slot)
                        }
                        Item::Rejected(reject) => Err(*reject),
                    })
                    .collect();
                let mut outcomes = self
                    .stores
                    .catalog
                    .upsert_batch(staged, &attempt)
                    .await?
                    .into_iter();
                for slot in slots {
                    processed += 1;
                    let reject = match slot {
                        Err(reject) => reject,
                        Ok((position, id)) => match outcomes.next() {
                            Some(UpsertOutcome::Duplicate { first }) => Reject {
                                position,
                                errors: vec![FieldError::field(
                                    "id",
                                    format!("{id} appears earlier in this file, at {first}"),
                                )],
                                id: Some(id),
                            },
                            Some(outcome) => {
                                record.accepted += 1;
                                match outcome {
                                    UpsertOutcome::Inserted => record.inserted += 1,
                                    UpsertOutcome::Updated => record.updated += 1,
                                    _ => record.unchanged += 1,
                                }
                                continue;
                            }
                            None => {
                                return Err(IngestError::Store(StoreError::Internal(
                                    "the store returned fewer outcomes than records".into(),
                                )));
                            }
                        },
                    };
                    record.rejected += 1;
                    let writer = match &mut report {
                        Some(writer) => writer,
                        None => report.insert(self.bucket.writer(&report_key)?),
                    };
                    let mut line = serde_json::to_vec(&reject).unwrap_or_default();
                    line.push(b'\n');
                    writer.write_all(&line).await.map_err(BucketError::from)?;
                    if shown.len() < self.config.rejects_shown {
                        shown.push(reject);
                    }
                }
                progress.advanced(processed, record.rejected);
            }
            Ok::<(), IngestError>(())
        }
        .await;
        // Dropping the receiver stops the parser if the writer gave up.
        drop(rx);
        let parsed = parser
            .await
            .map_err(|e| IngestError::Parser(e.to_string()))?;
        if let Err(e) = written {
            if let Some(mut writer) = report {
                let _ = writer.abort().await;
            }
            return Err(e);
        }
        let file_error = match parsed {
            Ok(_) => None,
            Err(UploadError::File(e)) => Some(e.to_string()),
            Err(UploadError::Stopped) => {
                return Err(IngestError::Parser("the record channel closed".into()));
            }
        };
        match report {
            Some(mut writer) => {
                writer.shutdown().await.map_err(BucketError::from)?;
                record.rejects_key = Some(report_key);
            }
            // A clean run leaves no stale report of an earlier version of the file.
            None => self.bucket.delete(&report_key).await?,
        }
        record.status =
            IngestStatus::finished(record.accepted, record.rejected, file_error.is_some());
        record.error = file_error;
        Ok(())
    }
}

/// Opens the decompressed stream: gzip is recognised by its magic bytes.
fn decompressed(reader: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

/// The parser thread: reads, validates and sends batches until the file ends.
fn parse(
    reader: Box<dyn Read + Send>,
    config: IngestConfig,
    tx: &mpsc::Sender<Vec<Item>>,
) -> Result<upload::UploadSummary, UploadError> {
    let reader = decompressed(reader).map_err(|e| upload::FileError {
        offset: 0,
        reason: format!("the upload could not be read: {e}"),
    })?;
    let mut batch: Vec<Item> = Vec::with_capacity(config.batch_size);
    let send = |batch: &mut Vec<Item>| {
        let full = std::mem::replace(batch, Vec::with_capacity(config.batch_size));
        tx.blocking_send(full).map_err(|_| Stop)
    };
    let summary = upload::read_upload(reader, config.limits, &mut |position, value| {
        batch.push(validate(position, value));
        if batch.len() >= config.batch_size {
            send(&mut batch)?;
        }
        Ok(())
    });
    // Records before a file-level error still land.
    if !batch.is_empty() {
        send(&mut batch).map_err(|Stop| UploadError::Stopped)?;
    }
    summary
}

fn validate(position: Position, value: Result<serde_json::Value, String>) -> Item {
    let value = match value {
        Ok(value) => value,
        Err(reason) => {
            return Item::Rejected(Box::new(Reject {
                position,
                id: None,
                errors: vec![FieldError::record(reason)],
            }));
        }
    };
    match Game::from_value(&value) {
        Ok(game) => Item::Valid(StagedGame::new(game, position)),
        Err(errors) => Item::Rejected(Box::new(Reject {
            position,
            id: value.get("id").and_then(|id| {
                id.as_str()
                    .map(str::to_owned)
                    .or_else(|| id.as_u64().map(|n| n.to_string()))
            }),
            errors,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::rejects_key;

    #[test]
    fn reports_sit_beside_the_upload_under_rejected() {
        assert_eq!(
            rejects_key("uploads/a/b.json"),
            "rejected/a/b.json.errors.ndjson"
        );
        assert_eq!(
            rejects_key("file:///home/me/games.ndjson"),
            "rejected/games.ndjson.errors.ndjson"
        );
    }
}
