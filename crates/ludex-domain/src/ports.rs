//! The storage ports: what the ingest pipeline and the API need from a catalog store and an
//! ingest ledger. Adapters (SQLite, PostgreSQL, DynamoDB) implement them; one conformance
//! suite checks every adapter against the same contract.

use crate::fields::{GameId, Rating};
use crate::game::{Game, StoredGame};
use crate::report::{IngestId, IngestRecord};
use crate::upload::Position;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no game with the id {0}")]
    NotFound(GameId),
    #[error("a game with the id {0} already exists")]
    AlreadyExists(GameId),
    /// A conditional write found another version than the caller expected.
    #[error("the game is at version {current}, not the expected version")]
    VersionMismatch { current: u64 },
    #[error("the cursor is not valid for this query: {0}")]
    InvalidCursor(String),
    /// A filter or sort this backend cannot serve efficiently (documented per backend).
    #[error("{0}")]
    Unsupported(String),
    /// A fault that may pass: throttling, a timeout, a lost connection. Worth retrying.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the message is for logs, never for API clients.
    #[error("store failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Names one run over one upload. Rows written by the same attempt carry it, so a second
/// record with the same id in one file is recognised as a duplicate without remembering every
/// id of the file in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptId(pub String);

/// One valid record of an upload, ready to be written, with its canonical document computed
/// where the record was parsed (so the single store writer has less to do).
#[derive(Clone, Debug)]
pub struct StagedGame {
    pub game: Game,
    pub position: Position,
    /// [`Game::content_json`].
    pub content: String,
    /// BLAKE3 of `content`: stores compare it to tell a change from a replay.
    pub content_hash: [u8; 32],
}

impl StagedGame {
    pub fn new(game: Game, position: Position) -> Self {
        let (content, content_hash) = game.content_and_hash();
        Self {
            game,
            position,
            content,
            content_hash,
        }
    }
}

/// What a batch upsert did with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    Inserted,
    Updated,
    /// The stored game already had exactly this content: nothing changed, not even the version.
    Unchanged,
    /// The same id came earlier in the same upload; this record was not written.
    Duplicate {
        first: Position,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    Title,
    ReleaseDate,
    Rating,
    UpdatedAt,
}

impl SortField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::ReleaseDate => "release_date",
            Self::Rating => "rating",
            Self::UpdatedAt => "updated_at",
        }
    }
}

/// A sort: a field and a direction. Written `rating` (ascending) or `-rating` (descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Default for Sort {
    /// Most recently changed first: the order every store serves from an index.
    fn default() -> Self {
        Self {
            field: SortField::UpdatedAt,
            descending: true,
        }
    }
}

impl Sort {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let field = [
            SortField::Title,
            SortField::ReleaseDate,
            SortField::Rating,
            SortField::UpdatedAt,
        ]
        .into_iter()
        .find(|f| f.as_str() == name)
        .ok_or_else(|| {
            format!("{raw:?} is not a sort; use title, release_date, rating or updated_at, with '-' in front for descending")
        })?;
        Ok(Self { field, descending })
    }
}

impl std::fmt::Display for Sort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        f.write_str(self.field.as_str())
    }
}

/// Filters, sort and page of a catalog listing. Filters combine with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Matches a platform, ignoring case.
    pub platform: Option<String>,
    pub genre: Option<String>,
    pub year_from: Option<u16>,
    pub year_to: Option<u16>,
    pub min_rating: Option<Rating>,
    /// Title search: every word must start a word of the title.
    pub q: Option<String>,
    pub sort: Sort,
    pub limit: u32,
    /// The opaque `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The catalog of games.
#[async_trait]
pub trait Catalog: Send + Sync {
    async fn get(&self, id: &GameId) -> StoreResult<Option<StoredGame>>;

    /// Stores a new game; [`StoreError::AlreadyExists`] if the id is taken.
    async fn create(&self, game: &Game) -> StoreResult<StoredGame>;

    /// Replaces an existing game. With `if_version`, writes only if the stored version matches
    /// ([`StoreError::VersionMismatch`] otherwise, and nothing is written).
    async fn replace(&self, game: &Game, if_version: Option<u64>) -> StoreResult<StoredGame>;

    /// Deletes a game, with the same version check as `replace`; returns what was deleted.
    async fn delete(&self, id: &GameId, if_version: Option<u64>) -> StoreResult<StoredGame>;

    /// Writes a batch of upload records in order, one outcome per record. Replaying the same
    /// records changes nothing; a record whose id an earlier record of the same `attempt`
    /// already wrote is reported as a duplicate and not written.
    async fn upsert_batch(
        &self,
        batch: Vec<StagedGame>,
        attempt: &AttemptId,
    ) -> StoreResult<Vec<UpsertOutcome>>;

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<StoredGame>>;

    /// Checks that the store answers (for readiness probes).
    async fn ping(&self) -> StoreResult<()>;
}

/// The ingest ledger: one entry per upload of new content under a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    pub limit: u32,
    pub cursor: Option<String>,
}

#[async_trait]
pub trait Ledger: Send + Sync {
    async fn get(&self, id: &IngestId) -> StoreResult<Option<IngestRecord>>;

    /// Creates or replaces the entry with this id.
    async fn put(&self, record: &IngestRecord) -> StoreResult<()>;

    /// The newest entry (by `started_at`) of an upload key: what that key last brought. Read
    /// from an index, never by scanning the ledger.
    async fn latest(&self, key: &str) -> StoreResult<Option<IngestRecord>>;

    /// Entries, newest first.
    async fn list(&self, query: &LedgerQuery) -> StoreResult<Page<IngestRecord>>;
}
