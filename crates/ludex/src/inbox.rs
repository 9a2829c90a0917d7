//! The stand-ins for the S3 upload trigger of AWS mode, for `ludex serve`: files that appear
//! under the bucket's `uploads/` (copied in by hand or stored by `POST /uploads`) are handed
//! to the ingest worker, one at a time, through the same pipeline as `ludex ingest`. A local
//! folder is watched; a remote bucket (`s3://…`) is listed every few seconds.
//!
//! Only complete files are ingested. Dot-files and `*.part` / `*.tmp` names are never
//! uploads, so a writer can write under such a name and rename when done (the reliable way).
//! A watched file is handed over once it is closed by its writer (where the platform reports
//! closes) and its size and modification time have not changed over the quiet period.

use crate::bucket::BucketError;
use crate::ingest::{IngestError, Ingestor, Upload};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Endings of files the inbox ingests (the S3 notification filters on the same).
pub const UPLOAD_SUFFIXES: [&str; 7] = [
    ".json",
    ".ndjson",
    ".jsonl",
    ".csv",
    ".json.gz",
    ".ndjson.gz",
    ".csv.gz",
];

/// A file counts as complete once it has not changed for this long.
const QUIET: Duration = Duration::from_millis(250);

/// Names being written: a writer renames them to the upload's name when done.
const PARTIAL_SUFFIXES: [&str; 2] = [".part", ".tmp"];

/// How often `serve` lists a remote bucket's `uploads/` by default.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// Whether a key names an upload: an upload ending, not a dot-file, not a partial name.
pub fn is_upload(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    !file.starts_with('.')
        && !PARTIAL_SUFFIXES.iter().any(|s| file.ends_with(s))
        && UPLOAD_SUFFIXES.iter().any(|s| file.ends_with(s))
}

/// Whether the watcher reports closes (inotify does): a written file is then complete only
/// once its writer has closed it. Elsewhere, quiet and unchanged is all there is to go by.
const CLOSES_REPORTED: bool = cfg!(target_os = "linux");

/// What the watcher heard about one path.
#[derive(Clone, Copy)]
enum Heard {
    /// Created or written.
    Written,
    /// Renamed into place, or its metadata changed.
    Changed,
    /// Closed by a writer.
    Closed,
}

/// A watched file that changed and is not handed over yet.
struct Pending {
    /// When the watcher last heard of it.
    heard: Instant,
    /// Written since its writer last closed it: a writer that pauses keeps it open.
    open: bool,
    /// Size and modification time at the last check, to be unchanged at the next.
    seen: Option<(u64, Option<std::time::SystemTime>)>,
}

impl Pending {
    /// Just heard of, with nothing known yet about its writer or its size.
    fn new() -> Self {
        Self {
            heard: Instant::now(),
            open: false,
            seen: None,
        }
    }

    /// Whether the file is complete: closed, quiet, and the same as at the last check. A file
    /// that changed since is checked again after another quiet period.
    fn complete(&mut self, path: &Path) -> bool {
        if self.open || self.heard.elapsed() < QUIET {
            return false;
        }
        let now = path
            .symlink_metadata()
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        let same = now.is_some() && now == self.seen;
        if !same {
            self.seen = now;
            self.heard = Instant::now();
        }
        same
    }
}

/// Watches `root/uploads` and ingests what appears there until `stop` resolves; the ingest in
/// progress then finishes. Files already there at start are ingested first (the ledger makes
/// the ones seen before no-ops).
pub async fn run(
    ingestor: Ingestor,
    root: PathBuf,
    stop: impl std::future::Future<Output = ()>,
) -> notify::Result<()> {
    let uploads = root.join("uploads");
    std::fs::create_dir_all(&uploads)?;
    // Events name absolute paths; keys are relative to the canonical root.
    let root = root.canonicalize()?;
    let uploads = uploads.canonicalize()?;
    let (events_tx, mut events) = mpsc::unbounded_channel::<(PathBuf, Heard)>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let heard = match event.kind {
            EventKind::Create(CreateKind::Folder) => return,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                Heard::Written
            }
            EventKind::Modify(_) => Heard::Changed,
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Heard::Closed,
            _ => return,
        };
        for path in event.paths {
            // The receiver lives as long as the watcher.
            let _ = events_tx.send((path, heard));
        }
    })?;
    watcher.watch(&uploads, RecursiveMode::Recursive)?;

    let (work_tx, work_rx) = mpsc::unbounded_channel::<String>();
    let worker = tokio::spawn(work(ingestor.clone(), work_rx, work_tx.downgrade()));
    // Paths waiting to be complete. Files already there may still be being written: they wait
    // like the ones that appear.
    let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
    for key in ingestor.bucket().list("uploads").await.unwrap_or_default() {
        if is_upload(&key) {
            pending.insert(root.join(&key), Pending::new());
        }
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some((path, heard)) = events.recv() => {
                let entry = pending.entry(path).or_insert_with(Pending::new);
                entry.heard = Instant::now();
                match heard {
                    Heard::Written => entry.open = CLOSES_REPORTED,
                    Heard::Changed => {}
                    Heard::Closed => entry.open = false,
                }
            }
            _ = tick.tick() => {
                let due: Vec<PathBuf> = pending
                    .iter_mut()
                    .filter_map(|(path, file)| file.complete(path).then(|| path.clone()))
                    .collect();
                for path in due {
                    pending.remove(&path);
                    if let Some(key) = key_of(&root, &path) {
                        let _ = work_tx.send(key);
                    }
                }
            }
        }
    }
    drop(watcher);
    drop(work_tx);
    // The worker finishes the ingest it is in, drops the rest (picked up at the next start).
    let _ = worker.await;
    Ok(())
}

/// The bucket key of a file under the bucket root, if it is an upload file.
fn key_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let key = relative.to_str()?.replace(std::path::MAIN_SEPARATOR, "/");
    // A link is not an upload: the bucket never follows one (it is skipped with a warning).
    let meta = path.symlink_metadata().ok()?;
    if meta.is_symlink() {
        tracing::warn!(
            key,
            "skipped a symbolic link in the inbox; links are never followed"
        );
    }
    (key.starts_with("uploads/") && is_upload(&key) && meta.is_file()).then_some(key)
}

/// Ingests the keys one at a time. An upload another attempt holds (another process sharing
/// the folder), or whose ingest a passing fault of the store or bucket stopped, is queued
/// again once a lease has passed: the watcher hears of a file only once.
async fn work(
    ingestor: Ingestor,
    mut keys: mpsc::UnboundedReceiver<String>,
    again: mpsc::WeakUnboundedSender<String>,
) {
    while let Some(key) = keys.recv().await {
        if ingest_one(&ingestor, key.clone()).await == Outcome::TryAgain {
            let again = again.clone();
            let after = ingestor.lease();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                if let Some(keys) = again.upgrade() {
                    let _ = keys.send(key);
                }
            });
        }
        if keys.is_closed() {
            break;
        }
    }
}

/// Lists a remote bucket's `uploads/` every `every` and ingests the upload files there until
/// `stop` resolves; the ingest in progress then finishes. The ledger makes files ingested
/// before no-ops, at one HEAD and one ledger read each per round. A round is listed only once
/// the previous one is done, so a long ingest does not pile rounds up.
pub async fn poll(
    ingestor: Ingestor,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let (rounds_tx, mut rounds) = mpsc::channel::<Vec<String>>(1);
    let worker = tokio::spawn({
        let ingestor = ingestor.clone();
        async move {
            while let Some(keys) = rounds.recv().await {
                for key in keys {
                    ingest_one(&ingestor, key).await;
                    if rounds.is_closed() {
                        return;
                    }
                }
            }
        }
    });
    let mut tick = tokio::time::interval(every);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                let Ok(round) = rounds_tx.try_reserve() else {
                    continue;
                };
                match ingestor.bucket().list("uploads").await {
                    Ok(keys) => round.send(keys.into_iter().filter(|k| is_upload(k)).collect()),
                    Err(e) => tracing::warn!(error = %e, "cannot list the uploads; trying again"),
                }
            }
        }
    }
    drop(rounds_tx);
    let _ = worker.await;
}

/// Whether an upload is worth another try later: another attempt holds it, or a passing fault
/// stopped its ingest.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    TryAgain,
    Done,
}

async fn ingest_one(ingestor: &Ingestor, key: String) -> Outcome {
    let upload = Upload {
        source: ingestor.bucket(),
        key: &key,
        ledger_key: key.clone(),
    };
    let result = ingestor.ingest(&upload, &()).await;
    if let Err(IngestError::Busy { .. } | IngestError::LeaseLost(_)) = result {
        // Logged by the pipeline; the next round (or the requeue) looks again.
        return Outcome::TryAgain;
    }
    match result {
        Ok(outcome) if outcome.replayed => {
            tracing::debug!(key, "already ingested");
        }
        Ok(outcome) => tracing::info!(
            key,
            ingest = %outcome.record.id,
            status = %outcome.record.status,
            accepted = outcome.record.accepted,
            rejected = outcome.record.rejected,
            "ingested"
        ),
        Err(IngestError::Bucket(e)) if !e.is_transient() => {
            tracing::warn!(key, error = %e, "upload skipped");
        }
        // Removed since it was listed or heard of; if it comes back it is seen again.
        Err(IngestError::Bucket(BucketError::NotFound(_))) => {
            tracing::info!(key, "upload gone before its ingest; skipped");
        }
        Err(e) if e.is_transient() => {
            tracing::error!(key, error = %e, "ingest failed; it runs again shortly");
            return Outcome::TryAgain;
        }
        Err(e) => {
            tracing::error!(key, error = %e, "ingest failed; it runs again on the next change or start")
        }
    }
    Outcome::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::Bucket;

    #[test]
    fn only_upload_files_under_uploads_are_keys() {
        let root = tempfile::tempdir().unwrap();
        let uploads = root.path().join("uploads/sub");
        std::fs::create_dir_all(&uploads).unwrap();
        for name in [
            "a.ndjson",
            "b.xlsx",
            "g.csv",
            "c.json#1",
            ".d.ndjson",
            "e.ndjson.part",
            "f.json.tmp",
        ] {
            std::fs::write(uploads.join(name), "{}").unwrap();
        }
        assert_eq!(
            key_of(root.path(), &uploads.join("a.ndjson")).as_deref(),
            Some("uploads/sub/a.ndjson")
        );
        assert_eq!(key_of(root.path(), &uploads.join("b.xlsx")), None);
        assert_eq!(
            key_of(root.path(), &uploads.join("g.csv")).as_deref(),
            Some("uploads/sub/g.csv")
        );
        for name in ["c.json#1", ".d.ndjson", "e.ndjson.part", "f.json.tmp"] {
            assert_eq!(key_of(root.path(), &uploads.join(name)), None, "{name}");
        }
        assert_eq!(
            key_of(root.path(), &root.path().join("elsewhere.json")),
            None
        );
    }

    #[tokio::test]
    async fn a_file_gone_before_its_ingest_is_not_tried_again_and_a_stored_one_is() {
        let root = tempfile::tempdir().unwrap();
        let stores = crate::store::Stores::sqlite(&root.path().join("ludex.db")).unwrap();
        let bucket = Bucket::local(&root.path().join("bucket")).unwrap();
        let ingestor = Ingestor::new(
            stores,
            bucket.clone(),
            crate::ingest::IngestConfig::default(),
        );
        // Removed after the watcher heard of it: when it comes back, the watcher hears again.
        assert_eq!(
            ingest_one(&ingestor, "uploads/gone.ndjson".into()).await,
            Outcome::Done
        );
        bucket
            .put(
                "uploads/here.ndjson",
                "{\"id\":\"here\",\"title\":\"Here\"}\n".into(),
            )
            .await
            .unwrap();
        assert_eq!(
            ingest_one(&ingestor, "uploads/here.ndjson".into()).await,
            Outcome::Done
        );
    }
}
