//! Reverting an ingest: undoing what one ledger entry wrote. Games its upload created are
//! deleted, games it changed get the content they had before it, games a revert deleted come
//! back; games someone changed since are left as they are and reported as conflicts.
//!
//! A revert has a ledger entry of its own ([`IngestId::revert_of`]), whose id is the author of
//! its writes, so that a revert is in every game's history and can itself be reverted (which
//! applies the upload again). It runs in steps, like a filter job: each step lists the next of
//! the entry's versions ([`Catalog::written_by`]), reverts each with a version check, for at
//! most [`STEP_GAMES`] games or [`STEP_TIME`], and answers its counts and the cursor of the next
//! step. Any instance runs any step; a step run again, or a revert started over after an
//! interruption, finds what is done already (the game's newest version is the revert's own) and
//! goes on.

use crate::ingest::attempt_name;
use crate::store::{Stores, now_rfc3339, rfc3339_in};
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus, Lease};
use ludex_domain::{
    Author, Catalog, Claim, Game, GameId, GameVersion, HistoryQuery, StoreError, StoreResult,
};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Games one step handles at most (as a filter job's step).
pub const STEP_GAMES: usize = 500;

/// How long one step goes on taking new games.
const STEP_TIME: Duration = Duration::from_secs(5);

/// How long a step holds the revert's ledger entry: more than a step can take.
const STEP_LEASE: Duration = Duration::from_secs(60);

/// Conflicts one step lists; all are counted.
pub const CONFLICTS_SHOWN: usize = 100;

/// Why a revert step did not run.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error("no ingest {0}")]
    NotFound(IngestId),
    #[error("ingest {0} is {1}: it can be reverted once it has finished")]
    NotFinished(IngestId, IngestStatus),
    #[error("{0}")]
    AlreadyReverted(String),
    #[error("another request is running a step of this revert (held by {0}); try again shortly")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one step did, or would do (`dry_run`).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RevertStep {
    /// The ledger entry of the revert; its writes have the author `ingest:<this id>`.
    #[schema(value_type = String)]
    pub revert: String,
    /// The entry being reverted.
    #[schema(value_type = String)]
    pub ingest: String,
    pub dry_run: bool,
    /// Games deleted: the upload had created them.
    pub deleted: u64,
    /// Games put back to their content before the upload.
    pub restored: u64,
    /// Games brought back: the entry reverted is a revert that had deleted them.
    pub recreated: u64,
    /// Games an earlier step (or an interrupted run) of this revert reverted already.
    pub already_reverted: u64,
    /// Games left as they are; the first [`CONFLICTS_SHOWN`] are listed in `conflicts`.
    pub conflicted: u64,
    pub conflicts: Vec<Conflict>,
    /// The cursor of the next step; absent when this step was the last.
    pub next_cursor: Option<String>,
    /// Seconds to wait before the next step, when the key's write limit stopped this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Asked before each write of a step but its first: `Err(seconds)` stops the step there, to go
/// on after that many seconds (an API key's write limit).
pub type Admit<'a> = &'a mut (dyn FnMut() -> Result<(), u64> + Send);

/// A game the revert leaves as it is, and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Conflict {
    #[serde(serialize_with = "as_text")]
    #[schema(value_type = String)]
    pub id: GameId,
    /// The version the reverted entry wrote.
    pub version: u64,
    /// The game's newest version now (a deletion when `deleted`).
    pub now: u64,
    /// Who wrote the newest version (`key:NAME`, `ingest:ID`); absent when not recorded.
    pub changed_by: Option<String>,
    pub deleted: bool,
    pub reason: String,
}

/// One step of the revert of `target`, after `cursor` (the previous step's `next_cursor`).
/// `requested_by` is recorded on the revert's ledger entry.
pub async fn step(
    stores: &Stores,
    target: &IngestId,
    cursor: Option<&str>,
    dry_run: bool,
    requested_by: &str,
    admit: Admit<'_>,
) -> Result<RevertStep, RevertError> {
    let entry = stores
        .ledger
        .get(target)
        .await?
        .ok_or_else(|| RevertError::NotFound(target.clone()))?;
    if !entry.status.is_finished() {
        return Err(RevertError::NotFinished(target.clone(), entry.status));
    }
    let revert_id = IngestId::revert_of(target);
    let earlier = stores.ledger.get(&revert_id).await?;
    if earlier.as_ref().is_some_and(|e| e.status.is_finished()) {
        return Err(already_reverted(stores, target, &revert_id).await?);
    }
    let holder = attempt_name();
    let mut record = earlier.unwrap_or_else(|| IngestRecord {
        revert_of: Some(target.clone()),
        requested_by: Some(requested_by.to_owned()),
        ..IngestRecord::new(
            revert_id.clone(),
            format!("revert:{target}"),
            0,
            target.to_string(),
            IngestStatus::Running,
            now_rfc3339(),
        )
    });
    if !dry_run {
        record.lease = Some(Lease {
            holder: holder.clone(),
            until: rfc3339_in(STEP_LEASE),
        });
        match stores.ledger.claim(&record, &now_rfc3339()).await? {
            Claim::Taken => {}
            Claim::Busy(stored) => {
                return Err(RevertError::Busy(
                    stored.lease.map(|l| l.holder).unwrap_or_default(),
                ));
            }
            Claim::Settled(_) => return Err(already_reverted(stores, target, &revert_id).await?),
        }
    }
    let mut step = RevertStep {
        revert: revert_id.to_string(),
        ingest: target.to_string(),
        dry_run,
        ..RevertStep::default()
    };
    let mut reverter = Reverter {
        catalog: stores.catalog.as_ref(),
        target: Author::ingest(target),
        author: Author::ingest(&revert_id),
        dry_run,
        admit,
        writes: 0,
    };
    let began = Instant::now();
    // `""`: from the start (a step the write limit stopped on the first page).
    let mut cursor = cursor.filter(|c| !c.is_empty()).map(str::to_owned);
    let mut handled = 0;
    let outcome: StoreResult<()> = async {
        loop {
            let want = u32::try_from(STEP_GAMES - handled).unwrap_or(u32::MAX);
            let page = reverter
                .catalog
                .written_by(&reverter.target, want, cursor.as_deref())
                .await?;
            for (id, version) in page.items {
                if let Err(retry_after) = reverter.revert(&mut step, id, version).await? {
                    // The next step goes through this page again; what this one reverted, it
                    // meets as reverted already.
                    step.retry_after = Some(retry_after);
                    return Ok(());
                }
                handled += 1;
            }
            cursor = page.next_cursor;
            if cursor.is_none() || handled >= STEP_GAMES || began.elapsed() >= STEP_TIME {
                return Ok(());
            }
        }
    }
    .await;
    step.next_cursor = match step.retry_after {
        Some(_) => Some(cursor.unwrap_or_default()),
        None => cursor,
    };
    if dry_run {
        outcome?;
        return Ok(step);
    }
    // What the step did is counted even when it stopped on a fault: its writes happened.
    record.inserted += step.recreated;
    record.updated += step.restored;
    record.deleted += step.deleted;
    record.conflicts += step.conflicted;
    record.accepted = record.inserted + record.updated + record.deleted;
    record.lease = None;
    if outcome.is_ok() && step.next_cursor.is_none() {
        record.status = IngestStatus::finished(record.accepted, record.conflicts, false);
        record.finished_at = Some(now_rfc3339());
    }
    let recorded = stores.ledger.update(&record, &holder).await;
    outcome?;
    if !recorded? {
        tracing::warn!(revert = %revert_id, "another request took the revert over; its counts are its own");
    }
    Ok(step)
}

/// The answer to reverting an entry that a revert has undone already.
async fn already_reverted(
    stores: &Stores,
    target: &IngestId,
    revert: &IngestId,
) -> StoreResult<RevertError> {
    let again = IngestId::revert_of(revert);
    let undone = stores.ledger.get(&again).await?.is_some();
    Ok(RevertError::AlreadyReverted(if undone {
        format!(
            "ingest {target} was reverted by {revert}, and that revert by {again}: to undo \
             the upload's changes again, revert {again}"
        )
    } else {
        format!(
            "ingest {target} was reverted already, by {revert}; reverting {revert} applies it again"
        )
    }))
}

struct Reverter<'a> {
    catalog: &'a dyn Catalog,
    /// Whose versions are reverted.
    target: Author,
    /// The revert's own author.
    author: Author,
    dry_run: bool,
    admit: Admit<'a>,
    /// Writes so far in this step.
    writes: u64,
}

/// What reverting one version of a game does.
enum Undo {
    /// The version created the game: delete it.
    Delete,
    /// Put the content of the version before back.
    Restore(Game),
    /// The version deleted the game: bring the version before back.
    Recreate(Game),
}

impl Reverter<'_> {
    /// Reverts `version` of `id`, written by the target, if it is still the game's newest.
    /// `Ok(Err(seconds))` when the write was not admitted.
    async fn revert(
        &mut self,
        step: &mut RevertStep,
        id: GameId,
        version: u64,
    ) -> StoreResult<Result<(), u64>> {
        let newest = self
            .catalog
            .history(
                &id,
                &HistoryQuery {
                    limit: 2,
                    before: None,
                },
            )
            .await?
            .items;
        let Some(latest) = newest.first() else {
            return Ok(Ok(()));
        };
        // A version above the newest is one a crash cut short (DynamoDB files a version before
        // it writes the change): the target never wrote it.
        if latest.version < version {
            return Ok(Ok(()));
        }
        if latest.version > version {
            if latest.author.as_ref() == Some(&self.author) {
                step.already_reverted += 1;
            } else {
                step.conflict(id, version, latest, "changed since the upload");
            }
            return Ok(Ok(()));
        }
        let before = newest.get(1).filter(|b| b.version + 1 == version);
        // The target created the game: its first version, or the first after a deletion.
        let created = version == 1 || before.is_some_and(|b| b.content.is_none());
        let game = |content: &str| Game::from_stored(&id, content);
        let undo = match (&latest.content, before.and_then(|b| b.content.as_deref())) {
            (Some(_), _) if created => Ok(Undo::Delete),
            (Some(_), Some(content)) => game(content).map(Undo::Restore),
            (None, Some(content)) => game(content).map(Undo::Recreate),
            _ => {
                step.conflict(
                    id,
                    version,
                    latest,
                    "the version before it is no longer kept in the history",
                );
                return Ok(Ok(()));
            }
        };
        let undo = match undo {
            Ok(undo) => undo,
            Err(errors) => {
                step.invalid(id, version, latest, &errors);
                return Ok(Ok(()));
            }
        };
        if !self.dry_run
            && self.writes > 0
            && let Err(retry_after) = (self.admit)()
        {
            return Ok(Err(retry_after));
        }
        let written = if self.dry_run {
            Ok(())
        } else {
            self.writes += 1;
            match &undo {
                Undo::Delete => self
                    .catalog
                    .delete(&id, Some(version), &self.author)
                    .await
                    .map(drop),
                Undo::Restore(game) => self
                    .catalog
                    .replace(game, Some(version), &self.author)
                    .await
                    .map(drop),
                Undo::Recreate(game) => self.catalog.create(game, &self.author).await.map(drop),
            }
        };
        match written {
            Ok(()) => match undo {
                Undo::Delete => step.deleted += 1,
                Undo::Restore(_) => step.restored += 1,
                Undo::Recreate(_) => step.recreated += 1,
            },
            Err(
                StoreError::VersionMismatch { .. }
                | StoreError::NotFound(_)
                | StoreError::AlreadyExists(_),
            ) => step.conflict(id, version, latest, "changed while the revert ran"),
            Err(e) => return Err(e),
        }
        Ok(Ok(()))
    }
}

impl RevertStep {
    fn conflict(&mut self, id: GameId, version: u64, latest: &GameVersion, reason: &str) {
        self.conflicted += 1;
        if self.conflicts.len() < CONFLICTS_SHOWN {
            self.conflicts.push(Conflict {
                id,
                version,
                now: latest.version,
                changed_by: latest.author.as_ref().map(Author::to_text),
                deleted: latest.content.is_none(),
                reason: reason.to_owned(),
            });
        }
    }

    /// The version before no longer passes validation (the rules changed since).
    fn invalid(
        &mut self,
        id: GameId,
        version: u64,
        latest: &GameVersion,
        errors: &[ludex_domain::FieldError],
    ) {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        self.conflict(
            id,
            version,
            latest,
            &format!(
                "the version before it no longer passes validation: {}",
                errors.join("; ")
            ),
        );
    }
}

fn as_text<S: serde::Serializer>(id: &GameId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id.as_str())
}
