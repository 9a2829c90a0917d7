//! The ludex domain: games and their fields, upload parsing, ingest reports and the storage
//! ports. No I/O happens here; everything is plain data and pure functions.

pub mod counts;
pub mod cursor;
pub mod fields;
pub mod game;
pub mod history;
pub mod ports;
pub mod record;
pub mod report;
pub mod schema;
pub mod search;
pub mod upload;

pub use counts::{CatalogCounts, CountChanges, Dimension};
pub use fields::{GameId, Rating};
pub use game::{FieldError, Game, SourceColumn, StoredGame};
pub use history::{Author, GameVersion, HistoryQuery, Retention};
pub use ports::{
    AttemptId, Catalog, Claim, Ledger, LedgerQuery, ListQuery, Page, Sort, SortField, StagedGame,
    StoreError, StoreResult, UpsertOutcome, query_limits, search_words,
};
pub use record::{RecordError, RecordFields};
pub use report::{IngestId, IngestRecord, IngestStatus, Lease, Reject};
pub use upload::{
    ColumnMapping, ParseLimits, Position, UploadError, UploadFormat, UploadOptions, UploadSummary,
};
