//! The storage ports: what the ingest pipeline and the API need from a catalog store and an
//! ingest ledger. Adapters (SQLite, PostgreSQL, DynamoDB) implement them; one conformance
//! suite checks every adapter against the same contract.

use crate::counts::CatalogCounts;
use crate::fields::{GameId, Rating, limits::LABEL_MAX_CHARS};
use crate::game::{FieldError, Game, StoredGame};
use crate::history::{Author, GameVersion, HistoryQuery, Retention};
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
    pub const ALL: [SortField; 4] = [
        SortField::Title,
        SortField::ReleaseDate,
        SortField::Rating,
        SortField::UpdatedAt,
    ];

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
        let field = SortField::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
        .ok_or_else(|| {
            format!("{raw:?} is not a sort; use title, release_date, rating or updated_at, with '-' in front for descending")
        })?;
        Ok(Self { field, descending })
    }

    /// Every sort [`Sort::parse`] accepts.
    pub fn names() -> Vec<String> {
        SortField::ALL
            .iter()
            .flat_map(|f| [f.as_str().to_owned(), format!("-{}", f.as_str())])
            .collect()
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

    /// The query as every store takes it, or each part over its bounds (see
    /// [`query_limits`]): `q` reduced to its [`search_words`] joined by spaces (`None` when it
    /// has none), and the labels and the cursor checked for length as sent (the labels are then
    /// trimmed; an empty one filters nothing). Anyone may send a listing,
    /// so every entry point calls this before a store sees the query.
    pub fn bounded(mut self) -> Result<Self, Vec<FieldError>> {
        use query_limits::*;
        let mut errors = Vec::new();
        if let Some(q) = self.q.take() {
            // Counted before the words are looked at: splitting costs with the length.
            let chars = q.chars().count();
            let words = if chars > SEARCH_MAX_CHARS {
                Err(format!("{chars} characters"))
            } else {
                let words = search_words(&q);
                let longest = words.iter().map(|w| w.chars().count()).max().unwrap_or(0);
                if words.len() > SEARCH_MAX_WORDS || longest > SEARCH_WORD_MAX_CHARS {
                    Err(format!(
                        "{} distinct words, the longest of {longest} characters",
                        words.len()
                    ))
                } else {
                    Ok(words)
                }
            };
            match words {
                Ok(words) => self.q = (!words.is_empty()).then(|| words.join(" ")),
                Err(what) => errors.push(FieldError::field(
                    "q",
                    format!(
                        "{what}; a search takes at most {SEARCH_MAX_CHARS} characters and \
                         {SEARCH_MAX_WORDS} distinct words of at most {SEARCH_WORD_MAX_CHARS} \
                         characters each"
                    ),
                )),
            }
        }
        for (field, label) in [("platform", &self.platform), ("genre", &self.genre)] {
            if let Some(chars) = label
                .as_deref()
                .map(|l| l.chars().count())
                .filter(|n| *n > LABEL_MAX_CHARS)
            {
                errors.push(FieldError::field(
                    field,
                    format!(
                        "{chars} characters; labels have at most {LABEL_MAX_CHARS}, so it can \
                         match nothing"
                    ),
                ));
            }
        }
        for label in [&mut self.platform, &mut self.genre] {
            *label = label
                .take()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty());
        }
        if let Some(chars) = self
            .cursor
            .as_deref()
            .map(|c| c.chars().count())
            .filter(|n| *n > CURSOR_MAX_CHARS)
        {
            errors.push(FieldError::field(
                "cursor",
                format!(
                    "{chars} characters; a cursor this service issued has at most \
                     {CURSOR_MAX_CHARS}"
                ),
            ));
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// What a listing may ask for, whoever sends it. A search costs in proportion to its words, so
/// their number and length are bounded; a label or cursor longer than any that exists cannot
/// match and is refused rather than scanned for.
pub mod query_limits {
    /// Characters of a search (`q`) as sent.
    pub const SEARCH_MAX_CHARS: usize = 200;
    /// Distinct words of a search, after [`search_words`](super::search_words) drops the
    /// duplicates.
    pub const SEARCH_MAX_WORDS: usize = 8;
    /// Characters of one search word.
    pub const SEARCH_WORD_MAX_CHARS: usize = 40;
    /// Bytes of a cursor; the service's own are a few hundred at most.
    pub const CURSOR_MAX_CHARS: usize = 1024;
}

/// The words a title search matches, in the order given: runs of letters and digits,
/// lower-cased. A word that repeats another, or that starts another word of the same search,
/// adds nothing (every title word that starts with `kingdoms` also starts with `king`) and is
/// dropped.
pub fn search_words(q: &str) -> Vec<String> {
    let all: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut kept: Vec<String> = Vec::new();
    for (i, word) in all.iter().enumerate() {
        let covered = all
            .iter()
            .enumerate()
            .any(|(j, other)| other.starts_with(word.as_str()) && (other != word || j < i));
        if !covered {
            kept.push(word.clone());
        }
    }
    kept
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

    /// Stores a new game; [`StoreError::AlreadyExists`] if the id is taken. A game whose id
    /// was deleted counts its versions on from the deletion's. Nothing is filed in the history.
    async fn create(&self, game: &Game, author: &Author) -> StoreResult<StoredGame>;

    /// Replaces an existing game. With `if_version`, writes only if the stored version matches
    /// ([`StoreError::VersionMismatch`] otherwise, and nothing is written). The same content
    /// changes nothing; other content files the replaced version in the history.
    async fn replace(
        &self,
        game: &Game,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame>;

    /// Deletes a game, with the same version check as `replace`; returns what was deleted. The
    /// history files the deleted version and a version of its own (the next number, no content)
    /// for the deletion.
    async fn delete(
        &self,
        id: &GameId,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame>;

    /// Writes a batch of upload records in order, one outcome per record, with `author` (the
    /// upload's ingest) as their author. Replaying the same records changes nothing; a record
    /// whose id an earlier record of the same `attempt` already wrote is reported as a
    /// duplicate and not written. An update files the replaced version as `replace` does.
    async fn upsert_batch(
        &self,
        batch: Vec<StagedGame>,
        attempt: &AttemptId,
        author: &Author,
    ) -> StoreResult<Vec<UpsertOutcome>>;

    /// A game's versions, newest first: the current one (if the game exists) and every filed
    /// one, `query.limit` of them at most, older than `query.before`. An empty page for an id
    /// that never had a game. `next_cursor` is the version of the last one when older ones
    /// follow.
    async fn history(&self, id: &GameId, query: &HistoryQuery) -> StoreResult<Page<GameVersion>>;

    /// The versions `author` wrote that the catalog and its history hold (a current version, a
    /// filed one or a deletion), as game id and version, a page after `cursor` at a time, in an
    /// order of the store's own. A page holds at most `limit`, maybe fewer (even none) with
    /// more to follow: `next_cursor` says. Nothing indexes authors: the listing reads the whole
    /// catalog and history, a page at a time, so that what reverting an ingest needs costs no
    /// write anything.
    async fn written_by(
        &self,
        author: &Author,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<Page<(GameId, u64)>>;

    /// Deletes at most `limit` filed versions that `retention` no longer keeps at `now`, in
    /// one short write; returns how many. A caller prunes in rounds until a
    /// round deletes fewer than `limit`, so that writers wait for one round at most. DynamoDB
    /// lets the table's TTL delete versions by age and deletes the ones past the count as it
    /// files new ones (docs/dynamodb.md): it prunes nothing here.
    async fn prune_history(
        &self,
        retention: &Retention,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64>;

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<StoredGame>>;

    /// The catalog's aggregates, kept as games are written: the cost of a call grows with the
    /// number of distinct platforms, genres and years, not with the number of games.
    async fn counts(&self) -> StoreResult<CatalogCounts>;

    /// Checks that the store answers (for readiness probes).
    async fn ping(&self) -> StoreResult<()>;
}

/// The ingest ledger: one entry per upload of new content under a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    pub limit: u32,
    pub cursor: Option<String>,
}

/// What [`Ledger::claim`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The entry is the claimer's now, as it was written.
    Taken,
    /// Another attempt holds a lease on the entry that has not expired: the entry as stored.
    Busy(IngestRecord),
    /// The upload's ingest has ended ([`IngestRecord::is_settled`]): the entry as stored.
    Settled(IngestRecord),
}

/// The ingest ledger. Entries are written in three ways, each atomic on every store: created
/// when absent (an upload accepted and queued), claimed by the attempt that runs the ingest,
/// and updated only by the attempt that holds the claim.
#[async_trait]
pub trait Ledger: Send + Sync {
    async fn get(&self, id: &IngestId) -> StoreResult<Option<IngestRecord>>;

    /// Writes the entry unless one with its id exists; true when it was written.
    async fn create(&self, record: &IngestRecord) -> StoreResult<bool>;

    /// Writes `record`, whose `lease` names the claiming attempt, when no entry has its id, or
    /// when the stored entry is not settled and holds no lease, a lease that expired before
    /// `now` (RFC 3339 UTC with milliseconds) or the claimer's own. Of two claims at the same
    /// moment, at most one is [`Claim::Taken`].
    async fn claim(&self, record: &IngestRecord, now: &str) -> StoreResult<Claim>;

    /// Writes `record` while the stored entry's lease is `holder`'s: renewals, and the outcome
    /// (which drops the lease). False, and nothing written, when another attempt holds it.
    async fn update(&self, record: &IngestRecord, holder: &str) -> StoreResult<bool>;

    /// The newest entry (by `started_at`) of an upload key: what that key last brought. Read
    /// from an index, never by scanning the ledger.
    async fn latest(&self, key: &str) -> StoreResult<Option<IngestRecord>>;

    /// Entries, newest first.
    async fn list(&self, query: &LedgerQuery) -> StoreResult<Page<IngestRecord>>;
}

#[cfg(test)]
mod tests {
    use super::{ListQuery, query_limits, search_words};

    #[test]
    fn search_words_drop_repeats_and_words_that_start_another() {
        assert_eq!(
            search_words("Kingdom kingdom, KING kin! Come co-op"),
            ["kingdom", "come", "op"]
        );
        assert_eq!(search_words("  ;; "), Vec::<String>::new());
        assert_eq!(search_words("Éclair 2"), ["éclair", "2"]);
    }

    #[test]
    fn queries_over_their_bounds_name_each_part_and_its_limit() {
        let query = |q: &str| ListQuery {
            q: Some(q.to_owned()),
            ..ListQuery::default()
        };
        let bounded = query("Kingdom kingdom king").bounded().unwrap();
        assert_eq!(bounded.q.as_deref(), Some("kingdom"));
        assert_eq!(query(" -- ").bounded().unwrap().q, None);
        let max = (0..query_limits::SEARCH_MAX_WORDS)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(query(&max).bounded().is_ok());
        for over in [
            format!("{max} extra"),
            "x".repeat(query_limits::SEARCH_WORD_MAX_CHARS + 1),
            "a ".repeat(query_limits::SEARCH_MAX_CHARS),
        ] {
            let errors = query(&over).bounded().unwrap_err();
            assert_eq!(errors[0].field.as_deref(), Some("q"));
            assert!(errors[0].reason.contains("at most"), "{}", errors[0]);
        }
        let errors = ListQuery {
            platform: Some("p".repeat(65)),
            genre: Some("g".repeat(65)),
            cursor: Some("c".repeat(query_limits::CURSOR_MAX_CHARS + 1)),
            ..ListQuery::default()
        }
        .bounded()
        .unwrap_err();
        let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
        assert_eq!(fields, ["platform", "genre", "cursor"]);
    }
}
