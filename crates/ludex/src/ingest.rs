//! The ingest pipeline: upload object → stream-parse → validate → batched upserts → ledger
//! entry → rejects report. The file watcher, `ludex ingest` and the S3-event Lambda all call
//! [`Ingestor::ingest`].
//!
//! Parsing and validation run on a blocking thread and hand batches to the writer through a
//! bounded channel, so parsing hides behind the writes and memory stays flat.
//!
//! Each ingest logs inside an `ingest` span (upload key, ingest id) and reports the busy time of
//! its stages — download, parse, validate, write, report — in its last log line and in the
//! metrics. The stages overlap, so their times add up to more than the wall time.

use crate::bucket::{Bucket, BucketError, BucketWriter};
use crate::metrics::{IngestMetrics, Metrics, Stage, StageDurations};
use crate::store::{Stores, now_rfc3339, rfc3339_in};
use crate::telemetry::RequestContext;
use futures::StreamExt;
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus, Reject};
use ludex_domain::upload::{
    self, CsvColumns, ParseLimits, Position, Stop, UploadError, UploadOptions,
};
use ludex_domain::{
    AttemptId, Author, Claim, FieldError, Game, Lease, RecordError, RecordFields, SourceColumn,
    StagedGame, StoreError, StoredGame, UpsertOutcome,
};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::Instrument;

#[derive(Clone, Copy, Debug)]
pub struct IngestConfig {
    pub limits: ParseLimits,
    /// Valid records per store write.
    pub batch_size: usize,
    /// Rejects kept in the returned outcome for display (all go to the report).
    pub rejects_shown: usize,
    /// How long an ingest's claim on its upload lasts unless renewed; it is renewed every
    /// third of it, so another worker takes over this long after a worker dies.
    pub lease: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            limits: ParseLimits::default(),
            batch_size: 3000,
            rejects_shown: 100,
            lease: Duration::from_secs(60),
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
    /// Another attempt holds a live claim on the upload: try again after the lease.
    #[error("another attempt ({holder}) is ingesting this upload, its lease runs until {until}")]
    Busy { holder: String, until: String },
    /// The lease expired before this attempt was done and another attempt took the upload
    /// over; what this one wrote is rewritten by that one, which owns the ledger entry.
    #[error("this attempt lost its claim on the upload to {0}")]
    LeaseLost(String),
}

impl IngestError {
    /// Whether trying again may succeed (throttling, timeouts, lost connections).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => matches!(e, StoreError::Unavailable(_)),
            Self::Bucket(e) => e.is_transient(),
            Self::Parser(_) => false,
            Self::Busy { .. } | Self::LeaseLost(_) => true,
        }
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
/// How far an ingest has come, told after every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Advance {
    /// Bytes of the file read so far (compressed bytes for a .gz file), of `size`.
    pub bytes: u64,
    pub size: u64,
    pub records: u64,
    pub rejected: u64,
}

pub trait Progress: Send + Sync {
    fn advanced(&self, at: &Advance);
}

impl Progress for () {
    fn advanced(&self, _: &Advance) {}
}

#[derive(Debug)]
pub struct IngestOutcome {
    pub record: IngestRecord,
    /// True when this upload (same key, same content) was ingested before: nothing was done.
    pub replayed: bool,
    /// The first rejects, in file order; the report holds them all.
    pub rejects: Vec<Reject>,
    /// Busy time of each stage (zero for a replay).
    pub stages: StageDurations,
}

/// Runs ingests against one store and one bucket (where rejects reports go).
#[derive(Clone)]
pub struct Ingestor {
    stores: Stores,
    bucket: Bucket,
    config: IngestConfig,
    metrics: Metrics,
}

/// One parsed record on its way to the writer. Valid records are the common case and are
/// moved by value; boxing them would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Item {
    Valid(StagedGame),
    /// Boxed: rejects are rare and much smaller than the games beside them in a batch.
    Rejected(Box<Reject>),
    /// Merge mode: a record to merge into its stored game before it is validated.
    Patch(Box<Patch>),
}

/// Names one attempt at an ingest in the ledger's leases and in logs: the host, the process and
/// a random part, so that two attempts of one process differ too.
pub(crate) fn attempt_name() -> String {
    let host = rustix::system::uname();
    let mut random = [0u8; 4];
    // Without randomness the process id and the clock still tell attempts apart.
    let suffix = match getrandom::fill(&mut random) {
        Ok(()) => u32::from_be_bytes(random),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    };
    format!(
        "{}:{}:{suffix:08x}",
        host.nodename().to_string_lossy(),
        std::process::id()
    )
}

/// The key of the rejects report of one ingest: `uploads/a/b.json` →
/// `rejected/a/b.json.<first 12 digits of the ingest id>.errors.ndjson`. Each ingest of a key
/// has its own report, so a later ingest never overwrites or deletes what an earlier ledger
/// entry points at.
pub fn rejects_key(ledger_key: &str, id: &IngestId) -> String {
    let name = ledger_key
        .strip_prefix("uploads/")
        .or_else(|| ledger_key.rsplit('/').next())
        .unwrap_or(ledger_key);
    let short = id.as_str().get(..12).unwrap_or(id.as_str());
    format!("rejected/{name}.{short}.errors.ndjson")
}

impl Ingestor {
    pub fn new(stores: Stores, bucket: Bucket, config: IngestConfig) -> Self {
        Self {
            stores,
            bucket,
            config,
            metrics: Metrics::off(),
        }
    }

    /// Counts every ingest in `metrics` (off by default).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// How long a claim on an upload lasts unless renewed.
    pub fn lease(&self) -> Duration {
        self.config.lease
    }

    pub async fn ingest(
        &self,
        upload: &Upload<'_>,
        progress: &dyn Progress,
    ) -> Result<IngestOutcome, IngestError> {
        self.ingest_with(upload, &UploadOptions::default(), progress)
            .await
    }

    /// Ingests an upload read with `options` (a CSV's column mapping), which its ledger entry
    /// records. Without a mapping of its own, an upload takes the one its queued entry was
    /// given (`POST /uploads?map=`).
    pub async fn ingest_with(
        &self,
        upload: &Upload<'_>,
        options: &UploadOptions,
        progress: &dyn Progress,
    ) -> Result<IngestOutcome, IngestError> {
        let span = tracing::info_span!(
            "ingest",
            key = %upload.ledger_key,
            ingest_id = tracing::field::Empty
        );
        self.ingest_in(upload, options, progress, &span)
            .instrument(span.clone())
            .await
    }

    async fn ingest_in(
        &self,
        upload: &Upload<'_>,
        options: &UploadOptions,
        progress: &dyn Progress,
        span: &tracing::Span,
    ) -> Result<IngestOutcome, IngestError> {
        let began = Instant::now();
        let mut stages = StageDurations::default();
        let info = upload
            .source
            .info(upload.key)
            .instrument(tracing::debug_span!("download"))
            .await?;
        stages.add(Stage::Download, began.elapsed());
        // Only what the key last brought is a replay: content it had before (A → B → A) is
        // ingested again, as a new entry.
        let latest = self.stores.ledger.latest(&upload.ledger_key).await?;
        let id = IngestId::for_upload_after(
            &upload.ledger_key,
            &info.fingerprint,
            options.reading().as_deref(),
            latest.as_ref(),
        );
        span.record("ingest_id", id.as_str());
        let earlier = latest.filter(|latest| latest.id == id);
        if let Some(earlier) = earlier.as_ref()
            && earlier.status.is_finished()
            && !earlier.retryable
        {
            tracing::info!(status = %earlier.status, "upload seen before; nothing to do");
            return Ok(IngestOutcome {
                record: earlier.clone(),
                replayed: true,
                rejects: Vec::new(),
                stages: StageDurations::default(),
            });
        }
        // Asked for nothing particular, the upload is read as its entry says (the mapping and
        // merge `POST /uploads` queued it with, or those of the attempt being retried).
        let options = match earlier.as_ref() {
            Some(entry) if options.reading().is_none() => UploadOptions {
                mapping: entry
                    .mapping
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e: upload::MappingError| {
                        IngestError::Parser(format!("the mapping of the queued upload: {e}"))
                    })?,
                merge: entry.merge,
            },
            _ => options.clone(),
        };
        // An earlier attempt failed, or stopped half-way (still `running`): this one re-runs
        // its writes.
        let retry = earlier.is_some_and(|e| e.retryable || e.status == IngestStatus::Running);
        let holder = attempt_name();
        let mut record = IngestRecord {
            lease: Some(Lease {
                holder: holder.clone(),
                until: rfc3339_in(self.config.lease),
            }),
            ..IngestRecord::new(
                id.clone(),
                upload.ledger_key.clone(),
                info.size,
                info.fingerprint,
                IngestStatus::Running,
                now_rfc3339(),
            )
        };
        record.mapping = options.mapping.as_ref().map(ToString::to_string);
        record.merge = options.merge;
        match self.stores.ledger.claim(&record, &now_rfc3339()).await? {
            Claim::Taken => {}
            // Another attempt finished it since the ledger was read.
            Claim::Settled(earlier) => {
                tracing::info!(status = %earlier.status, "upload ingested meanwhile; nothing to do");
                return Ok(IngestOutcome {
                    record: earlier,
                    replayed: true,
                    rejects: Vec::new(),
                    stages: StageDurations::default(),
                });
            }
            Claim::Busy(stored) => {
                let lease = stored.lease.unwrap_or(Lease {
                    holder: "another attempt".into(),
                    until: stored.started_at,
                });
                tracing::info!(holder = %lease.holder, until = %lease.until, "another attempt holds the upload; left to it");
                self.metrics.record_claim_lost();
                return Err(IngestError::Busy {
                    holder: lease.holder,
                    until: lease.until,
                });
            }
        }
        tracing::info!(size = info.size, retry, holder, "ingest started");
        let mut rejects = Vec::new();
        // The claim is renewed while the ingest runs; losing it stops the ingest.
        let claimed = record.clone();
        let result = tokio::select! {
            result = self.run(upload, &options, &mut record, &mut rejects, progress, &mut stages) => result,
            lost = self.keep_claim(claimed, &holder) => Err(lost),
        };
        record.lease = None;
        let finished = match result {
            Ok(()) => {
                record.finished_at = Some(now_rfc3339());
                let ledger = Instant::now();
                let put = self.stores.ledger.update(&record, &holder).await;
                stages.add(Stage::Report, ledger.elapsed());
                match put {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(IngestError::LeaseLost(self.holder_now(&id).await)),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        };
        let stage_ms = |stage| stages.millis(stage);
        match finished {
            Ok(()) => {
                tracing::info!(
                    status = %record.status,
                    accepted = record.accepted,
                    rejected = record.rejected,
                    bytes = record.size,
                    error = record.error.as_deref(),
                    elapsed_ms = began.elapsed().as_secs_f64() * 1000.0,
                    download_ms = stage_ms(Stage::Download),
                    parse_ms = stage_ms(Stage::Parse),
                    validate_ms = stage_ms(Stage::Validate),
                    write_ms = stage_ms(Stage::Write),
                    report_ms = stage_ms(Stage::Report),
                    "ingest finished"
                );
                self.record_metrics(&record, &stages, retry);
                Ok(IngestOutcome {
                    record,
                    replayed: false,
                    rejects,
                    stages,
                })
            }
            Err(e) => {
                // Leave a visible, retryable entry: a replay of the same upload runs again.
                record.status = IngestStatus::Failed;
                record.retryable = true;
                record.error = Some(format!("ingest interrupted: {e}"));
                record.finished_at = Some(now_rfc3339());
                tracing::error!(
                    status = %record.status,
                    error = %e,
                    transient = e.is_transient(),
                    accepted = record.accepted,
                    rejected = record.rejected,
                    elapsed_ms = began.elapsed().as_secs_f64() * 1000.0,
                    "ingest failed"
                );
                match self.stores.ledger.update(&record, &holder).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        "the upload's entry belongs to another attempt now; left as it is"
                    ),
                    Err(ledger) => {
                        tracing::error!(error = %ledger, "could not record the failed ingest")
                    }
                }
                self.record_metrics(&record, &stages, retry);
                Err(e)
            }
        }
    }

    /// Renews the claim every third of the lease until the ingest ends (this future is then
    /// dropped). Returns only when another attempt has taken the upload over. A renewal that
    /// fails is tried again at the next turn: the claim survives a store fault shorter than
    /// two thirds of the lease.
    async fn keep_claim(&self, mut record: IngestRecord, holder: &str) -> IngestError {
        let lease = self.config.lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            if let Some(claim) = record.lease.as_mut() {
                claim.until = rfc3339_in(lease);
            }
            match self.stores.ledger.update(&record, holder).await {
                Ok(true) => tracing::debug!("claim renewed"),
                Ok(false) => {
                    let now = self.holder_now(&record.id).await;
                    tracing::warn!(holder = %now, "the claim expired and another attempt took the upload over; stopping");
                    self.metrics.record_claim_lost();
                    return IngestError::LeaseLost(now);
                }
                Err(e) => tracing::warn!(error = %e, "could not renew the claim; trying again"),
            }
        }
    }

    /// Who holds an entry's lease now, for the messages of an attempt that lost it.
    async fn holder_now(&self, id: &IngestId) -> String {
        match self.stores.ledger.get(id).await {
            Ok(Some(IngestRecord {
                lease: Some(lease), ..
            })) => lease.holder,
            _ => "another attempt".into(),
        }
    }

    fn record_metrics(&self, record: &IngestRecord, stages: &StageDurations, retry: bool) {
        self.metrics.record_ingest(&IngestMetrics {
            accepted: record.accepted,
            rejected: record.rejected,
            bytes: record.size,
            stages: *stages,
            write_retries: u64::from(retry),
            ingest_id: record.id.to_string(),
            key: record.key.clone(),
            status: record.status.to_string(),
        });
    }

    async fn run(
        &self,
        upload: &Upload<'_>,
        options: &UploadOptions,
        record: &mut IngestRecord,
        shown: &mut Vec<Reject>,
        progress: &dyn Progress,
        stages: &mut StageDurations,
    ) -> Result<(), IngestError> {
        let attempt = AttemptId(format!("{}-{}", record.id, now_rfc3339()));
        let author = Author::ingest(&record.id);
        let opened = Instant::now();
        let reader = upload
            .source
            .reader(upload.key)
            .instrument(tracing::debug_span!("download"))
            .await?;
        stages.add(Stage::Download, opened.elapsed());
        let Parser {
            mut rx,
            thread: parser,
            meter,
        } = Parser::start(reader, self.config, options.clone());

        let report_key = rejects_key(&record.key, &record.id);
        let mut report: Option<BucketWriter> = None;
        let mut processed = 0u64;
        let written = async {
            while let Some(batch) = rx.recv().await {
                let batch = if options.merge {
                    let reading = Instant::now();
                    let merged = merge_batch(&self.stores, batch).await?;
                    stages.add(Stage::Write, reading.elapsed());
                    merged
                } else {
                    batch
                };
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
                        Item::Patch(patch) => Err(patch.unmerged()),
                    })
                    .collect();
                let write = Instant::now();
                let upserted = self
                    .stores
                    .catalog
                    .upsert_batch(staged, &attempt, &author)
                    .instrument(tracing::debug_span!("write", records = slots.len()))
                    .await;
                stages.add(Stage::Write, write.elapsed());
                let mut outcomes = upserted?.into_iter();
                for slot in slots {
                    processed += 1;
                    let reject = match slot {
                        Err(reject) => reject,
                        Ok((position, id)) => match outcomes.next() {
                            Some(UpsertOutcome::Duplicate { first }) => {
                                duplicate(position, &id, first)
                            }
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
                    let reporting = Instant::now();
                    let writer = match &mut report {
                        Some(writer) => writer,
                        None => report.insert(self.bucket.writer(&report_key).await?),
                    };
                    let mut line = serde_json::to_vec(&reject).unwrap_or_default();
                    line.push(b'\n');
                    let written = writer.write_all(&line).await;
                    stages.add(Stage::Report, reporting.elapsed());
                    written.map_err(BucketError::from)?;
                    if shown.len() < self.config.rejects_shown {
                        log_reject(&reject);
                        shown.push(reject);
                    }
                }
                progress.advanced(&Advance {
                    bytes: meter.bytes.load(Ordering::Relaxed),
                    size: record.size,
                    records: processed,
                    rejected: record.rejected,
                });
            }
            Ok::<(), IngestError>(())
        }
        .await;
        // Dropping the receiver stops the parser if the writer gave up.
        drop(rx);
        let (parsed, times) = parser
            .await
            .map_err(|e| IngestError::Parser(e.to_string()))?;
        stages.add(Stage::Download, times.download);
        stages.add(Stage::Parse, times.parse);
        stages.add(Stage::Validate, times.validate);
        if let Err(e) = written {
            if let Some(writer) = report {
                let _ = writer.abort().await;
            }
            return Err(e);
        }
        // The parser saw a read error as a broken file; it was the bucket: the file is read
        // again by a retry, and the entry says so (retryable) instead of `failed` for good.
        let broken = meter.broken.lock().ok().and_then(|mut b| b.take());
        if let Some(reason) = broken {
            if let Some(writer) = report {
                let _ = writer.abort().await;
            }
            return Err(IngestError::Bucket(BucketError::Io(std::io::Error::other(
                format!("reading the upload failed: {reason}"),
            ))));
        }
        let file_error = match parsed {
            Ok(_) => None,
            Err(UploadError::File(e)) => Some(e.to_string()),
            Err(UploadError::Stopped) => {
                return Err(IngestError::Parser("the record channel closed".into()));
            }
        };
        let reporting = Instant::now();
        let finished = async {
            match report {
                Some(writer) => {
                    writer.shutdown().await?;
                    record.rejects_key = Some(report_key);
                }
                // A clean run leaves no report of an interrupted attempt of this same ingest.
                None => self.bucket.delete(&report_key).await?,
            }
            Ok::<(), IngestError>(())
        }
        .instrument(tracing::debug_span!("report"))
        .await;
        stages.add(Stage::Report, reporting.elapsed());
        finished?;
        record.status =
            IngestStatus::finished(record.accepted, record.rejected, file_error.is_some());
        record.error = file_error;
        Ok(())
    }
}

/// One reject in the logs (the first few of each file; the report holds them all), one line
/// per field error so Logs Insights can count rejects by field and reason.
fn log_reject(reject: &Reject) {
    for error in &reject.errors {
        tracing::info!(
            position = %reject.position,
            record_id = reject.id.as_deref(),
            field = error.field.as_deref(),
            reason = %error.reason,
            "record rejected"
        );
    }
}

/// The parser thread and what it hands over: batches of records, and at the end its summary.
pub(crate) struct Parser {
    pub rx: mpsc::Receiver<Vec<Item>>,
    pub thread: tokio::task::JoinHandle<(Result<upload::UploadSummary, UploadError>, ParseTimes)>,
    pub meter: Arc<ReadMeter>,
}

impl Parser {
    /// Reads, validates and batches `reader` on a blocking thread.
    pub fn start(
        reader: Box<dyn Read + Send>,
        config: IngestConfig,
        options: UploadOptions,
    ) -> Self {
        let meter = Arc::new(ReadMeter::default());
        let reader = MeteredRead {
            inner: reader,
            meter: Arc::clone(&meter),
        };
        let (tx, rx) = mpsc::channel::<Vec<Item>>(2);
        // The parser thread logs with the same ids and inside the same span as this task.
        let context = RequestContext::current();
        let parse_span = tracing::debug_span!("parse");
        let thread = tokio::task::spawn_blocking(move || {
            let work = || parse_span.in_scope(|| parse(reader, config, &options, &tx));
            match context {
                Some(context) => context.sync_scope(work),
                None => work(),
            }
        });
        Self { rx, thread, meter }
    }
}

/// Busy time of the parser thread, split by stage.
#[derive(Default)]
pub(crate) struct ParseTimes {
    /// Reading the upload's bytes.
    download: Duration,
    /// Decompressing and parsing, without the reads, the validation and the waits for the writer.
    parse: Duration,
    validate: Duration,
}

/// What reading the upload object cost so far: the time spent in reads (the download stage)
/// and the bytes read (the progress by bytes).
#[derive(Default)]
pub(crate) struct ReadMeter {
    nanos: AtomicU64,
    bytes: AtomicU64,
    /// Why reading the object itself failed (the bucket, not the file's content), if it did.
    pub broken: std::sync::Mutex<Option<String>>,
}

/// The upload object's reader, measured by its [`ReadMeter`].
struct MeteredRead {
    inner: Box<dyn Read + Send>,
    meter: Arc<ReadMeter>,
}

impl Read for MeteredRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let began = Instant::now();
        let read = self.inner.read(buf);
        let nanos = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.meter.nanos.fetch_add(nanos, Ordering::Relaxed);
        match &read {
            Ok(n) => {
                self.meter.bytes.fetch_add(*n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                if let Ok(mut broken) = self.meter.broken.lock() {
                    broken.get_or_insert_with(|| e.to_string());
                }
            }
        }
        read
    }
}

/// The parser thread: reads, validates and sends batches until the file ends.
fn parse(
    reader: MeteredRead,
    config: IngestConfig,
    options: &UploadOptions,
    tx: &mpsc::Sender<Vec<Item>>,
) -> (Result<upload::UploadSummary, UploadError>, ParseTimes) {
    let began = Instant::now();
    let meter = Arc::clone(&reader.meter);
    let reader = Box::new(reader);
    let mut validating = Duration::ZERO;
    // Waiting for the writer to take a batch is nobody's busy time.
    let mut waiting = Duration::ZERO;
    let summary = parse_records(reader, config, options, tx, &mut validating, &mut waiting);
    let download = Duration::from_nanos(meter.nanos.load(Ordering::Relaxed));
    let times = ParseTimes {
        download,
        parse: began
            .elapsed()
            .saturating_sub(download + validating + waiting),
        validate: validating,
    };
    (summary, times)
}

fn parse_records(
    reader: Box<dyn Read + Send>,
    config: IngestConfig,
    options: &UploadOptions,
    tx: &mpsc::Sender<Vec<Item>>,
    validating: &mut Duration,
    waiting: &mut Duration,
) -> Result<upload::UploadSummary, UploadError> {
    let reader = upload::decompressed(reader).map_err(|e| upload::FileError {
        offset: 0,
        reason: format!("the upload could not be read: {e}"),
    })?;
    let mut batch: Vec<Item> = Vec::with_capacity(config.batch_size);
    let send = |batch: &mut Vec<Item>| {
        let full = std::mem::replace(batch, Vec::with_capacity(config.batch_size));
        let began = Instant::now();
        tx.blocking_send(full).map_err(|_| Stop)?;
        Ok(began.elapsed())
    };
    let opened = upload::UploadReader::open(reader, config.limits, options)?;
    // A CSV's columns, to name the column of each field a reject names.
    let columns = opened.csv_columns().cloned().map(Arc::new);
    let summary = opened.read(&mut |position, record| {
        // Decoding the JSON counts as parsing; what follows is validation.
        let fields = record.and_then(decode);
        let began = Instant::now();
        let mut item = validate(position, fields, options.merge);
        match (&columns, &mut item) {
            (Some(columns), Item::Rejected(reject)) => name_columns(reject, columns),
            // Validated once merged: the columns go along, for its rejects.
            (Some(columns), Item::Patch(patch)) => patch.columns = Some(Arc::clone(columns)),
            _ => {}
        }
        *validating += began.elapsed();
        batch.push(item);
        if batch.len() >= config.batch_size {
            *waiting += send(&mut batch)?;
        }
        Ok(())
    });
    // Records before a file-level error still land.
    if !batch.is_empty() {
        *waiting += send(&mut batch).map_err(|Stop| UploadError::Stopped)?;
    }
    summary
}

/// Merge mode: each valid record of a batch is merged into its stored game (the record's
/// fields over the stored ones, RFC 7396), so that fields the record does not have keep their
/// values; a merged game that is not valid is a reject. Records of new games pass as they are.
/// The stored games are read just before the batch is written: an edit that lands in between
/// is overwritten, as a replacing ingest overwrites it.
pub(crate) async fn merge_batch(
    stores: &Stores,
    batch: Vec<Item>,
) -> Result<Vec<Item>, StoreError> {
    let ids = batch
        .iter()
        .filter_map(|item| match item {
            Item::Valid(game) => Some(game.game.id.clone()),
            Item::Patch(patch) => Some(patch.id.clone()),
            Item::Rejected(_) => None,
        })
        .collect();
    let mut stored = read_stored(stores, ids).await?.into_iter();
    Ok(batch
        .into_iter()
        .map(|item| match item {
            Item::Valid(game) => match stored.next().flatten() {
                Some(current) => match RecordFields::parse(game.content.as_bytes()) {
                    Ok(record) => merged(game.position, &game.game.id, record, Some(&current)),
                    Err(_) => Item::Valid(game),
                },
                None => Item::Valid(game),
            },
            Item::Patch(patch) => {
                let Patch {
                    position,
                    id,
                    fields,
                    columns,
                } = *patch;
                let mut item = merged(position, &id, fields, stored.next().flatten().as_ref());
                if let (Some(columns), Item::Rejected(reject)) = (columns, &mut item) {
                    name_columns(reject, &columns);
                }
                item
            }
            rejected @ Item::Rejected(_) => rejected,
        })
        .collect())
}

/// A record merged into its stored game, if there is one, and validated.
fn merged(
    position: Position,
    id: &ludex_domain::GameId,
    record: RecordFields,
    current: Option<&StoredGame>,
) -> Item {
    let fields = match current.map(StoredGame::fields) {
        Some(Ok(mut fields)) => {
            fields.merge_patch(&record);
            // Stored content leaves the id out (it is the key); without it one would be made up.
            fields
                .known
                .insert("id".into(), serde_json::Value::String(id.to_string()));
            fields
        }
        // A new game, or a stored document that cannot be read: the record as it is.
        None | Some(Err(_)) => record,
    };
    validate(position, Ok(fields), false)
}

/// The reject of a record whose id came earlier in the same file, at `first`.
pub(crate) fn duplicate(position: Position, id: &dyn std::fmt::Display, first: Position) -> Reject {
    Reject {
        position,
        id: Some(id.to_string()),
        errors: vec![FieldError::field(
            "id",
            format!("{id} appears earlier in this file, at {first}"),
        )],
    }
}

/// A record of merge mode with an id, kept as its fields until it is merged into the stored
/// game of that id and validated.
pub(crate) struct Patch {
    position: Position,
    id: ludex_domain::GameId,
    fields: RecordFields,
    /// A CSV's columns, to name them in the rejects of the merged record.
    columns: Option<Arc<CsvColumns>>,
}

impl Patch {
    /// The reject of a patch that reached a writer unmerged: [`merge_batch`] settles every
    /// patch, so this names a defect rather than losing the record without a word.
    pub(crate) fn unmerged(self) -> Reject {
        Reject {
            position: self.position,
            id: Some(self.id.to_string()),
            errors: vec![FieldError::record("the record was not merged")],
        }
    }
}

/// The stored games of `ids`, in their order, read a few at a time.
pub(crate) async fn read_stored(
    stores: &Stores,
    ids: Vec<ludex_domain::GameId>,
) -> Result<Vec<Option<StoredGame>>, StoreError> {
    let catalog = Arc::clone(&stores.catalog);
    futures::stream::iter(ids)
        .map(move |id| {
            let catalog = Arc::clone(&catalog);
            async move { catalog.get(&id).await }
        })
        .buffered(READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Stored games read at once by [`read_stored`].
const READS_AT_ONCE: usize = 16;

/// Names the CSV column of each field error of a reject.
fn name_columns(reject: &mut Reject, columns: &CsvColumns) {
    for error in &mut reject.errors {
        if let Some((number, header)) = error.field.as_deref().and_then(|f| columns.column_of(f)) {
            error.column = Some(SourceColumn {
                number,
                header: header.to_owned(),
            });
        }
    }
}

/// One record's fields, or why its text is not a record: malformed JSON names the line and
/// column inside the record (the column alone for a one-line record, as NDJSON lines are).
fn decode(record: upload::Record<'_>) -> Result<RecordFields, String> {
    record.into_fields().map_err(|e| match e {
        RecordError::Malformed(e) => {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let reason = full.strip_suffix(&suffix).unwrap_or(&full);
            match e.line() {
                0 | 1 => format!("malformed JSON at column {}: {reason}", e.column()),
                line => format!(
                    "malformed JSON at line {line}, column {} of the record: {reason}",
                    e.column()
                ),
            }
        }
        not_an_object => not_an_object.to_string(),
    })
}

/// A record's item: valid or rejected; in merge mode a record with an id is left whole, to be
/// validated once merged ([`merge_batch`]).
fn validate(position: Position, fields: Result<RecordFields, String>, merge: bool) -> Item {
    let fields = match fields {
        Ok(fields) => fields,
        Err(reason) => {
            return Item::Rejected(Box::new(Reject {
                position,
                id: None,
                errors: vec![FieldError::record(reason)],
            }));
        }
    };
    if merge && let Some(Ok(id)) = fields.known.get("id").map(ludex_domain::GameId::from_json) {
        return Item::Patch(Box::new(Patch {
            position,
            id,
            fields,
            columns: None,
        }));
    }
    let RecordFields { known, extra } = fields;
    match Game::from_fields(&known, extra) {
        Ok(game) => Item::Valid(StagedGame::new(game, position)),
        Err(errors) => Item::Rejected(Box::new(Reject {
            position,
            id: known.get("id").and_then(|id| {
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
    use ludex_domain::report::IngestId;

    #[test]
    fn reports_sit_beside_the_upload_under_rejected_named_by_their_ingest() {
        let id = IngestId::parse("0123456789abcdef0123").unwrap();
        assert_eq!(
            rejects_key("uploads/a/b.json", &id),
            "rejected/a/b.json.0123456789ab.errors.ndjson"
        );
        assert_eq!(
            rejects_key("file:///home/me/games.ndjson", &id),
            "rejected/games.ndjson.0123456789ab.errors.ndjson"
        );
    }
}
