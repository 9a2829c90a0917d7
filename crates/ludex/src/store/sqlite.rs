//! The embedded default store: one SQLite file in WAL mode holding the catalog and the ingest
//! ledger. One writer connection, a small pool of reader connections; every call runs on the
//! blocking thread pool so async callers never wait on disk.

use super::{WrittenAfter, ledger_entry, ledger_json, now_rfc3339};
use async_trait::async_trait;
use ludex_domain::counts::{self, CatalogCounts, CountChanges, Dimension};
use ludex_domain::cursor::{self, After};
use ludex_domain::report::{IngestId, IngestRecord};
use ludex_domain::{
    AttemptId, Author, Catalog, Claim, Game, GameId, GameVersion, HistoryQuery, Ledger,
    LedgerQuery, ListQuery, Page, Position, Retention, SortField, StagedGame, StoreError,
    StoreResult, StoredGame, UpsertOutcome,
};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, config::DbConfig, params, params_from_iter,
    types::Value as SqlValue,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Schema migrations, applied in order and recorded in `PRAGMA user_version`. Never edit one
/// that has shipped: add the next.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_catalog", include_str!("sqlite/0001_catalog.sql")),
    (
        "0002_ingests_by_key",
        include_str!("sqlite/0002_ingests_by_key.sql"),
    ),
    (
        "0003_game_tombstones",
        include_str!("sqlite/0003_game_tombstones.sql"),
    ),
    (
        "0004_game_counts",
        include_str!("sqlite/0004_game_counts.sql"),
    ),
    (
        "0005_game_history",
        include_str!("sqlite/0005_game_history.sql"),
    ),
];

/// The migration that creates the aggregates, which are then counted from the stored games.
const COUNTS_MIGRATION: &str = "0004_game_counts";

/// Label lists are stored between unit separators (which labels cannot contain), so a filter
/// is a substring test: `\x1fpc\x1f`.
const SEP: char = '\u{1f}';

/// Listings running at once on the blocking pool.
const MAX_CONCURRENT_SCANS: usize = 3;

pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Reader connections kept open: as many as can read at once, opened with the store so
    /// that reads never need a new file handle (a server out of them still answers).
    max_readers: usize,
    scans: tokio::sync::Semaphore,
    applied: Vec<String>,
}

fn internal(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        // With the extended code, which tells the kinds of "database is locked" apart (a
        // snapshot gone stale, a recovery, a checkpoint...).
        Some(
            rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked
            | rusqlite::ErrorCode::OperationInterrupted,
        ) => StoreError::Unavailable(match &e {
            rusqlite::Error::SqliteFailure(failure, _) => {
                format!("{e} (SQLite extended code {})", failure.extended_code)
            }
            _ => e.to_string(),
        }),
        // The transaction was rolled back; nothing half-written stays.
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Internal(format!(
            "the disk holding the database is full ({e}); free some space and run it again"
        )),
        _ => StoreError::Internal(e.to_string()),
    }
}

/// Interrupts a reader's running statement when dropped before it is disarmed: a listing
/// whose caller gave up stops instead of scanning on. (An interrupt while no statement runs
/// does nothing, so a late one cannot hit the connection's next user.)
struct InterruptOnDrop(Option<rusqlite::InterruptHandle>);

impl InterruptOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.interrupt();
        }
    }
}

/// Keeps the query planner from looking at bound values. A statement whose plan used one is
/// compiled again each time it is bound anew, and SQLite plans with the value of every
/// `LIMIT ?`: every page of a listing or a history was compiled again at each request (a
/// fifth of the time a history page took). No plan here gains from a bound value (no
/// `LIKE ?` on an index, no STAT4 statistics).
fn plan_without_bound_values(conn: &Connection) -> StoreResult<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(drop)
        .map_err(internal)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a connection half-used: SQLite rolls back
    // any open transaction when the statement is dropped. Keep going with the inner value.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut writer = Connection::open(path).map_err(internal)?;
        writer
            .execute_batch(
                "PRAGMA page_size = 16384;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA wal_autocheckpoint = 4096;
                 PRAGMA busy_timeout = 5000;
                 PRAGMA cache_size = -8192;
                 PRAGMA temp_store = FILE;",
            )
            .map_err(internal)?;
        plan_without_bound_values(&writer)?;
        let applied = migrate(&mut writer)?;
        // Point reads run on the async workers (one per core), listings on the blocking pool
        // a few at a time: together, the most readers ever in use at once (up to 8 cores;
        // beyond, a burst of point reads opens a passing extra connection).
        let max_readers = std::thread::available_parallelism()
            .map_or(4, std::num::NonZero::get)
            .min(8)
            + MAX_CONCURRENT_SCANS;
        let readers = (0..max_readers)
            .map(|_| Self::open_reader(path))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self {
            path: path.to_owned(),
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(readers)),
            max_readers,
            scans: tokio::sync::Semaphore::new(MAX_CONCURRENT_SCANS),
            applied,
        })
    }

    /// The migrations this `open` applied, oldest first (empty when the schema was current).
    pub fn migrations_applied(&self) -> &[String] {
        &self.applied
    }

    fn open_reader(path: &Path) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(internal)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -2048;")
            .map_err(internal)?;
        plan_without_bound_values(&conn)?;
        Ok(conn)
    }

    /// A reader connection from the pool (opened when the pool is empty).
    fn take_reader(&self) -> StoreResult<Connection> {
        let pooled = lock(&self.readers).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => Self::open_reader(&self.path),
        }
    }

    /// Puts a reader back, unless the pool is full.
    fn give_back(readers: &Mutex<Vec<Connection>>, max_readers: usize, conn: Connection) {
        let mut pool = lock(readers);
        if pool.len() < max_readers {
            pool.push(conn);
        }
    }

    /// Runs a point read (one indexed row, microseconds from the page cache) right on the
    /// async worker: handing it to another thread would cost more than the read itself.
    fn read_now<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.take_reader()?;
        let result = f(&conn);
        Self::give_back(&self.readers, self.max_readers, conn);
        result
    }

    /// Runs a read that may scan (listings) on the blocking pool, a few at a time, so that
    /// load cannot open a connection and a thread per request. Dropping the call (a caller's
    /// timeout) interrupts the query: the scan stops and frees its place.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let _permit = self
            .scans
            .acquire()
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let conn = self.take_reader()?;
        let interrupt = InterruptOnDrop(Some(conn.get_interrupt_handle()));
        let (readers, max_readers) = (Arc::clone(&self.readers), self.max_readers);
        let result = blocking(move || {
            let result = f(&conn);
            Self::give_back(&readers, max_readers, conn);
            result
        })
        .await;
        interrupt.disarm();
        result
    }

    /// Runs `f` with the writer connection on the blocking pool.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let writer = Arc::clone(&self.writer);
        blocking(move || f(&mut lock(&writer))).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
}

fn migrate(conn: &mut Connection) -> StoreResult<Vec<String>> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(internal)?;
    let mut names = Vec::new();
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(internal)?;
        tx.execute_batch(sql).map_err(internal)?;
        if *name == COUNTS_MIGRATION {
            count_stored_games(&tx)?;
        }
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        names.push((*name).to_owned());
    }
    Ok(names)
}

/// Fills the aggregates from every stored game (once, when they are created).
fn count_stored_games(conn: &Connection) -> StoreResult<()> {
    let mut changes = CountChanges::default();
    let mut stmt = conn
        .prepare("SELECT id, version, created_at, updated_at, content FROM games")
        .map_err(internal)?;
    let rows = stmt.query_map([], stored_from_row).map_err(internal)?;
    for row in rows {
        let stored = into_stored(row.map_err(internal)?)?;
        let game = stored.game().map_err(|e| {
            StoreError::Internal(format!(
                "the stored game {} is unreadable: {e:?}",
                stored.id
            ))
        })?;
        changes.add(&game);
    }
    apply_counts(conn, changes).map_err(internal)
}

/// Adds a batch's counter changes, each counter once, in key order; a counter that reaches
/// zero goes.
fn apply_counts(conn: &Connection, changes: CountChanges) -> rusqlite::Result<()> {
    let mut add = conn.prepare_cached(
        "INSERT INTO game_counts (dimension, key, label, games) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (dimension, key) DO UPDATE SET games = games + excluded.games",
    )?;
    let mut prune = conn.prepare_cached(
        "DELETE FROM game_counts WHERE dimension = ?1 AND key = ?2 AND games <= 0",
    )?;
    for change in changes.into_changes() {
        let dimension = change.dimension.as_str();
        add.execute(params![dimension, change.key, change.label, change.delta])?;
        if change.delta < 0 {
            prune.execute(params![dimension, change.key])?;
        }
    }
    Ok(())
}

/// The counter keys a stored game is counted under, from its key columns.
struct CountedKeys {
    platforms_key: String,
    genres_key: String,
    release_year: Option<u16>,
    rating_key: i64,
}

/// The columns [`CountedKeys::read`] expects, in order: a macro, so that the statements that
/// read them are whole literals (`concat!`), not formatted on every call.
macro_rules! counted_columns {
    () => {
        "platforms_key, genres_key, release_year, rating_key"
    };
}

impl CountedKeys {
    /// From four columns of a row, starting at `at`.
    fn read(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            platforms_key: r.get(at)?,
            genres_key: r.get(at + 1)?,
            release_year: r.get(at + 2)?,
            rating_key: r.get(at + 3)?,
        })
    }

    /// Takes the game these keys count out of `changes`.
    fn uncount(&self, changes: &mut CountChanges) {
        let labels = |dimension, key: &'_ str| {
            key.split(SEP)
                .filter(|k| !k.is_empty())
                .map(move |k| (dimension, k.to_owned()))
                .collect::<Vec<_>>()
        };
        let mut keys = labels(Dimension::Platform, &self.platforms_key);
        keys.extend(labels(Dimension::Genre, &self.genres_key));
        keys.push((Dimension::Year, counts::year_key(self.release_year)));
        let tenths = u8::try_from(self.rating_key).ok();
        keys.push((Dimension::Rating, counts::rating_key(tenths).to_owned()));
        changes.remove(keys.iter().map(|(d, k)| (*d, k.as_str())));
    }
}

/// The columns a game is stored in, computed once from the domain value.
struct Row {
    id: String,
    title: String,
    title_key: String,
    release_key: String,
    release_year: Option<u16>,
    rating_key: i64,
    platforms_key: String,
    genres_key: String,
    content: String,
    content_hash: [u8; 32],
}

fn label_key(keys: Vec<String>) -> String {
    let mut out = String::from(SEP);
    for key in keys {
        out.push_str(&key);
        out.push(SEP);
    }
    out
}

impl Row {
    /// The row of a game written through the API.
    fn of(game: &Game) -> Self {
        let (content, content_hash) = game.content_and_hash();
        Self::new(game, content, content_hash)
    }

    fn new(game: &Game, content: String, content_hash: [u8; 32]) -> Self {
        Self {
            id: game.id.as_str().to_owned(),
            title: game.title.as_str().to_owned(),
            title_key: game.title_key(),
            release_key: game.release_key(),
            release_year: game.release_date.map(|d| d.year()),
            rating_key: game.rating.map_or(-1, |r| i64::from(r.tenths())),
            platforms_key: label_key(game.platform_keys()),
            genres_key: label_key(game.genre_keys()),
            content_hash,
            content,
        }
    }
}

/// An insert whose new game is at `$version`.
macro_rules! insert_game_sql {
    ($version:expr) => {
        concat!(
            "INSERT INTO games (id, title, title_key, release_key, release_year, rating_key,
    platforms_key, genres_key, content, content_hash, version, created_at, updated_at, attempt, attempt_pos,
    changed_by)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ",
            $version,
            ", ?11, ?11, ?12, ?13, ?14)"
        )
    };
}

/// A new game counts on from its id's tombstone, if the id was used before.
macro_rules! counted_version {
    () => {
        "1 + coalesce((SELECT version FROM game_tombstones WHERE id = ?1), 0)"
    };
}

const INSERT_GAME: &str = insert_game_sql!(counted_version!());

/// The first try of an upsert: insert unless the id exists.
const INSERT_NEW: &str = concat!(
    insert_game_sql!(counted_version!()),
    " ON CONFLICT(id) DO NOTHING"
);

/// The same while no game was ever deleted: every new game is at version 1, without a lookup
/// per row (the ingest's hot path; the writer holds the transaction, so no delete can come
/// between the check and the inserts).
const INSERT_NEW_FIRST: &str = concat!(insert_game_sql!("1"), " ON CONFLICT(id) DO NOTHING");

/// Whether any game was ever deleted.
fn has_tombstones(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM game_tombstones)")?
        .query_row([], |r| r.get(0))
}

const UPDATE_GAME: &str =
    "UPDATE games SET title = ?2, title_key = ?3, release_key = ?4, release_year = ?5,
    rating_key = ?6, platforms_key = ?7, genres_key = ?8, content = ?9, content_hash = ?10,
    version = version + 1, updated_at = ?11, attempt = ?12, attempt_pos = ?13, changed_by = ?14
  WHERE id = ?1";

/// Files the stored version of game `?1` in its history, before a change replaces it.
const FILE_VERSION: &str =
    "INSERT INTO game_versions (id, version, content, changed_at, changed_by)
  SELECT id, version, content, updated_at, changed_by FROM games WHERE id = ?1";

/// Files the version `?2` that deleted game `?1`, at `?3` by `?4`.
const FILE_DELETION: &str =
    "INSERT INTO game_versions (id, version, content, changed_at, changed_by)
  VALUES (?1, ?2, NULL, ?3, ?4)";

const RETURNING: &str = "RETURNING id, version, created_at, updated_at, content, seq, title";

type StoredRow = (String, u64, String, String, String);

fn stored_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// A row from a `RETURNING` clause: the stored game plus its `seq` and title.
fn returned_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(StoredRow, i64, String)> {
    Ok((stored_from_row(r)?, r.get(5)?, r.get(6)?))
}

fn into_stored(
    (id, version, created_at, updated_at, content): (String, u64, String, String, String),
) -> StoreResult<StoredGame> {
    Ok(StoredGame {
        id: super::stored_id(&id)?,
        version,
        created_at,
        updated_at,
        content,
    })
}

/// The server-side values written with a row.
struct Stamp {
    now: String,
    attempt: Option<String>,
    pos: Option<u64>,
    /// [`Author::to_text`].
    author: String,
}

fn row_params<'a>(row: &'a Row, stamp: &'a Stamp) -> [&'a dyn rusqlite::ToSql; 14] {
    [
        &row.id,
        &row.title,
        &row.title_key,
        &row.release_key,
        &row.release_year,
        &row.rating_key,
        &row.platforms_key,
        &row.genres_key,
        &row.content,
        &row.content_hash,
        &stamp.now,
        &stamp.attempt,
        &stamp.pos,
        &stamp.author,
    ]
}

fn edit_stamp(author: &Author) -> Stamp {
    Stamp {
        now: now_rfc3339(),
        attempt: None,
        pos: None,
        author: author.to_text(),
    }
}

fn position_number(position: Position) -> u64 {
    match position {
        Position::Line(n) | Position::Index(n) => n,
    }
}

/// A search index change an update leaves for the end of its batch: the game's `seq`, its old
/// title and its new one.
type Retitle = (i64, String, String);

/// Writes one upload record inside the batch transaction. Title changes go to `retitles`, for
/// the search index after the batch's rows: FTS5 writes its pending changes to disk whenever a
/// statement opens a savepoint (filing a version does) while it holds some.
fn upsert_one(
    tx: &rusqlite::Transaction<'_>,
    insert: &mut rusqlite::CachedStatement<'_>,
    staged: StagedGame,
    stamp: &mut Stamp,
    changes: &mut CountChanges,
    retitles: &mut Vec<Retitle>,
) -> rusqlite::Result<UpsertOutcome> {
    let position = staged.position;
    let row = Row::new(&staged.game, staged.content, staged.content_hash);
    let pos = Some(position_number(position));
    stamp.pos = pos;
    let attempt = stamp.attempt.as_deref().unwrap_or_default();
    let params = row_params(&row, stamp);
    if insert.execute(&params[..])? == 1 {
        changes.add(&staged.game);
        return Ok(UpsertOutcome::Inserted);
    }
    let (seq, title, hash, previous_attempt, previous_pos, counted): (
        i64,
        String,
        Vec<u8>,
        Option<String>,
        Option<u64>,
        CountedKeys,
    ) = tx
        .prepare_cached(concat!(
            "SELECT seq, title, content_hash, attempt, attempt_pos, ",
            counted_columns!(),
            " FROM games WHERE id = ?1"
        ))?
        .query_row([&row.id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                CountedKeys::read(r, 5)?,
            ))
        })?;
    if previous_attempt.as_deref() == Some(attempt) {
        let first = previous_pos.unwrap_or(0);
        let first = match position {
            Position::Line(_) => Position::Line(first),
            Position::Index(_) => Position::Index(first),
        };
        return Ok(UpsertOutcome::Duplicate { first });
    }
    if hash == row.content_hash {
        tx.prepare_cached("UPDATE games SET attempt = ?2, attempt_pos = ?3 WHERE id = ?1")?
            .execute(params![row.id, attempt, pos])?;
        return Ok(UpsertOutcome::Unchanged);
    }
    tx.prepare_cached(FILE_VERSION)?.execute([&row.id])?;
    tx.prepare_cached(UPDATE_GAME)?.execute(&params[..])?;
    retitles.push((seq, title, row.title));
    counted.uncount(changes);
    changes.add(&staged.game);
    Ok(UpsertOutcome::Updated)
}

/// Search index upkeep, done here rather than by triggers (see the migration).
fn fts_remove(conn: &Connection, seq: i64, title: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO games_fts (games_fts, rowid, title) VALUES ('delete', ?1, ?2)",
    )?
    .execute(params![seq, title])?;
    Ok(())
}

fn fts_add(conn: &Connection, seq: i64, title: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO games_fts (rowid, title) VALUES (?1, ?2)")?
        .execute(params![seq, title])?;
    Ok(())
}

fn retitle(conn: &Connection, seq: i64, old: &str, new: &str) -> rusqlite::Result<()> {
    if old != new {
        fts_remove(conn, seq, old)?;
        fts_add(conn, seq, new)?;
    }
    Ok(())
}

/// New rows always get a `seq` above every existing one, so the rows a batch inserted are
/// indexed with one statement.
fn max_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM games")?
        .query_row([], |r| r.get(0))
}

fn fts_add_since(conn: &Connection, seq: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO games_fts (rowid, title) SELECT seq, title FROM games WHERE seq > ?1",
    )?
    .execute([seq])?;
    Ok(())
}

/// Finds out why a conditional write matched no row.
fn missing_or_stale(conn: &Connection, id: &GameId) -> StoreError {
    match conn
        .query_row(
            "SELECT version FROM games WHERE id = ?1",
            [id.as_str()],
            |r| r.get::<_, u64>(0),
        )
        .optional()
    {
        Ok(Some(current)) => StoreError::VersionMismatch { current },
        Ok(None) => StoreError::NotFound(id.clone()),
        Err(e) => internal(e),
    }
}

/// Turns free text into an FTS5 query where every word must start a word of the title. The
/// words hold only letters and digits, so quoting them needs no escaping.
fn fts_query(q: &str) -> Option<String> {
    let terms: Vec<String> = ludex_domain::search_words(q)
        .iter()
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

fn sort_column(field: SortField) -> &'static str {
    match field {
        SortField::Title => "title_key",
        SortField::ReleaseDate => "release_key",
        SortField::Rating => "rating_key",
        SortField::UpdatedAt => "updated_at",
    }
}

/// Builds the SQL and parameters of a listing.
fn list_sql(query: &ListQuery, after: Option<&After>) -> StoreResult<(String, Vec<SqlValue>)> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    if let Some(platform) = &query.platform {
        clauses.push("instr(platforms_key, ?) > 0");
        params.push(SqlValue::Text(format!(
            "{SEP}{}{SEP}",
            platform.to_lowercase()
        )));
    }
    if let Some(genre) = &query.genre {
        clauses.push("instr(genres_key, ?) > 0");
        params.push(SqlValue::Text(format!(
            "{SEP}{}{SEP}",
            genre.to_lowercase()
        )));
    }
    if let Some(from) = query.year_from {
        clauses.push("release_year >= ?");
        params.push(SqlValue::Integer(from.into()));
    }
    if let Some(to) = query.year_to {
        clauses.push("release_year <= ?");
        params.push(SqlValue::Integer(to.into()));
    }
    if let Some(min) = query.min_rating {
        clauses.push("rating_key >= ?");
        params.push(SqlValue::Integer(min.tenths().into()));
    }
    if let Some(fts) = query.q.as_deref().and_then(fts_query) {
        clauses.push("seq IN (SELECT rowid FROM games_fts WHERE games_fts MATCH ?)");
        params.push(SqlValue::Text(fts));
    }
    let column = sort_column(query.sort.field);
    let (cmp, dir) = if query.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let keyset;
    if let Some(after) = after {
        let value = match (&after.value, query.sort.field) {
            (serde_json::Value::Number(n), SortField::Rating) => n.as_i64().map(SqlValue::Integer),
            (
                serde_json::Value::String(s),
                SortField::Title | SortField::ReleaseDate | SortField::UpdatedAt,
            ) => Some(SqlValue::Text(s.clone())),
            _ => None,
        }
        .ok_or_else(|| StoreError::InvalidCursor("its sort value has the wrong type".into()))?;
        keyset = format!("({column}, id) {cmp} (?, ?)");
        clauses.push(&keyset);
        params.push(value);
        params.push(SqlValue::Text(after.id.clone()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    params.push(SqlValue::Integer(i64::from(query.limit) + 1));
    let sql = format!(
        "SELECT id, version, created_at, updated_at, content, {column} FROM games {filter}
         ORDER BY {column} {dir}, id {dir} LIMIT ?"
    );
    Ok((sql, params))
}

/// What a backup holds, told by `ludex backup` and `ludex restore`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub games: u64,
    pub ingests: u64,
    pub bytes: u64,
}

fn snapshot_of(conn: &Connection, path: &Path) -> StoreResult<Snapshot> {
    let count = |table: &str| -> StoreResult<u64> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(internal)
    };
    Ok(Snapshot {
        games: count("games")?,
        ingests: count("ingests")?,
        bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
    })
}

/// Checks that a file is a whole ludex database this build can open: SQLite's integrity
/// check passes and its schema is not newer than this build's.
fn check_database(conn: &Connection, path: &Path) -> StoreResult<()> {
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(internal)?;
    if verdict != "ok" {
        return Err(StoreError::Internal(format!(
            "{} fails SQLite's integrity check: {verdict}",
            path.display()
        )));
    }
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(internal)?;
    let has_games: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'games')",
            [],
            |r| r.get(0),
        )
        .map_err(internal)?;
    if version == 0 || !has_games {
        return Err(StoreError::Internal(format!(
            "{} is not a ludex database",
            path.display()
        )));
    }
    if version > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "{} has schema version {version}, newer than this build's {}; restore it with a newer ludex",
            path.display(),
            MIGRATIONS.len()
        )));
    }
    Ok(())
}

/// A file beside `path` to write into and then rename over it.
fn temporary_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

impl SqliteStore {
    /// Copies the whole database to a new file at `path`, consistent as of one moment, while
    /// the store is in use: SQLite's online backup API, in one step under one read
    /// transaction (in WAL mode it does not hold up writers, and no write can restart it). The
    /// copy is written beside `path` and renamed into place once it is complete and checked,
    /// so `path` is never a partial backup. `path` must not exist.
    pub async fn backup_to(&self, path: &Path) -> StoreResult<Snapshot> {
        let path = path.to_owned();
        self.read(move |conn| {
            if path.exists() {
                return Err(StoreError::Internal(format!(
                    "{} exists; a backup never overwrites a file",
                    path.display()
                )));
            }
            let partial = temporary_beside(&path);
            let written = (|| {
                let mut target = Connection::open(&partial).map_err(internal)?;
                rusqlite::backup::Backup::new(conn, &mut target)
                    .and_then(|backup| backup.step(-1))
                    .map_err(internal)?;
                // One file, no WAL beside it: the backup is complete on its own.
                target
                    .execute_batch("PRAGMA journal_mode = DELETE;")
                    .map_err(internal)?;
                check_database(&target, &partial)?;
                let snapshot = snapshot_of(&target, &partial)?;
                drop(target);
                std::fs::File::open(&partial)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| StoreError::Internal(format!("syncing the backup: {e}")))?;
                Ok(snapshot)
            })();
            match written {
                Ok(snapshot) => {
                    std::fs::rename(&partial, &path).map_err(|e| {
                        StoreError::Internal(format!("moving the backup into place: {e}"))
                    })?;
                    Ok(snapshot)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    Err(e)
                }
            }
        })
        .await
    }

    /// Replaces the whole database with a backup made by [`SqliteStore::backup_to`], in one
    /// write transaction (readers see the old catalog or the new one, never a mix), after
    /// checking the backup (integrity, a ludex schema no newer than this build's). An older
    /// backup's schema is brought up to date at once.
    pub async fn restore_from(&self, path: &Path) -> StoreResult<Snapshot> {
        let path = path.to_owned();
        self.write(move |conn| {
            let source = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(internal)?;
            check_database(&source, &path)?;
            let snapshot = snapshot_of(&source, &path)?;
            rusqlite::backup::Backup::new(&source, conn)
                .and_then(|backup| backup.step(-1))
                .map_err(internal)?;
            migrate(conn)?;
            Ok(snapshot)
        })
        .await
    }
}

/// Rows computed ahead of time, for measuring the store's ingest ceiling (`benches/ingest.rs`).
pub struct PreparedRows(Vec<Row>);

impl PreparedRows {
    pub fn of(games: &[Game]) -> Self {
        Self(games.iter().map(Row::of).collect())
    }
}

impl SqliteStore {
    /// Inserts prepared rows with the pipeline's statement shape and transaction size but none
    /// of its other work (no parsing, validation, conflict checks or outcomes): the ceiling an
    /// ingest is measured against.
    pub fn insert_prepared(&self, rows: &PreparedRows, batch: usize) -> StoreResult<()> {
        let mut conn = lock(&self.writer);
        let stamp = Stamp {
            now: now_rfc3339(),
            attempt: Some("ceiling".into()),
            pos: None,
            author: Author::ingest("ceiling").to_text(),
        };
        for chunk in rows.0.chunks(batch.max(1)) {
            let tx = conn.transaction().map_err(internal)?;
            let before = max_seq(&tx).map_err(internal)?;
            {
                let mut insert = tx.prepare_cached(insert_game_sql!("1")).map_err(internal)?;
                for row in chunk {
                    insert
                        .execute(&row_params(row, &stamp)[..])
                        .map_err(internal)?;
                }
            }
            fts_add_since(&tx, before).map_err(internal)?;
            tx.commit().map_err(internal)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Catalog for SqliteStore {
    async fn get(&self, id: &GameId) -> StoreResult<Option<StoredGame>> {
        self.read_now(|conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, version, created_at, updated_at, content FROM games WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([id.as_str()], stored_from_row).optional())
                .map_err(internal)?;
            row.map(into_stored).transpose()
        })
    }

    async fn create(&self, game: &Game, author: &Author) -> StoreResult<StoredGame> {
        let row = Row::of(game);
        let id = game.id.clone();
        let mut changes = CountChanges::default();
        changes.add(game);
        let stamp = edit_stamp(author);
        self.write(move |conn| {
            let tx = conn.transaction().map_err(internal)?;
            let result = tx
                .prepare_cached(&format!("{INSERT_GAME} {RETURNING}"))
                .and_then(|mut s| s.query_row(&row_params(&row, &stamp)[..], returned_row));
            let (stored, seq, title) = match result {
                Ok(returned) => returned,
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                {
                    return Err(StoreError::AlreadyExists(id));
                }
                Err(e) => return Err(internal(e)),
            };
            fts_add(&tx, seq, &title).map_err(internal)?;
            apply_counts(&tx, changes).map_err(internal)?;
            tx.commit().map_err(internal)?;
            into_stored(stored)
        })
        .await
    }

    async fn replace(
        &self,
        game: &Game,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame> {
        let row = Row::of(game);
        let id = game.id.clone();
        let mut changes = CountChanges::default();
        changes.add(game);
        let stamp = edit_stamp(author);
        self.write(move |conn| {
            let tx = conn.transaction().map_err(internal)?;
            let current: Option<(u64, Vec<u8>, String, CountedKeys)> = tx
                .query_row(
                    concat!(
                        "SELECT version, content_hash, title, ",
                        counted_columns!(),
                        " FROM games WHERE id = ?1"
                    ),
                    [&row.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, CountedKeys::read(r, 3)?)),
                )
                .optional()
                .map_err(internal)?;
            let Some((version, hash, old_title, counted)) = current else {
                return Err(StoreError::NotFound(id));
            };
            if if_version.is_some_and(|v| v != version) {
                return Err(StoreError::VersionMismatch { current: version });
            }
            let stored = if hash == row.content_hash {
                tx.query_row(
                    "SELECT id, version, created_at, updated_at, content FROM games WHERE id = ?1",
                    [&row.id],
                    stored_from_row,
                )
            } else {
                tx.prepare_cached(FILE_VERSION)
                    .and_then(|mut s| s.execute([&row.id]))
                    .and_then(|_| tx.prepare_cached(&format!("{UPDATE_GAME} {RETURNING}")))
                    .and_then(|mut s| s.query_row(&row_params(&row, &stamp)[..], returned_row))
                    .and_then(|(stored, seq, title)| {
                        retitle(&tx, seq, &old_title, &title)?;
                        counted.uncount(&mut changes);
                        apply_counts(&tx, changes)?;
                        Ok(stored)
                    })
            }
            .map_err(internal)?;
            tx.commit().map_err(internal)?;
            into_stored(stored)
        })
        .await
    }

    async fn delete(
        &self,
        id: &GameId,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame> {
        let id = id.clone();
        let stamp = edit_stamp(author);
        self.write(move |conn| {
            let tx = conn.transaction().map_err(internal)?;
            // Filed first: a delete that finds nothing to delete rolls it back.
            tx.prepare_cached(FILE_VERSION)
                .and_then(|mut s| s.execute([id.as_str()]))
                .map_err(internal)?;
            let deleted = tx
                .query_row(
                    &format!("DELETE FROM games WHERE id = ?1 AND (?2 IS NULL OR version = ?2) {RETURNING}, {}", counted_columns!()),
                    params![id.as_str(), if_version],
                    |r| Ok((returned_row(r)?, CountedKeys::read(r, 7)?)),
                )
                .optional()
                .map_err(internal)?;
            let Some(((stored, seq, title), counted)) = deleted else {
                return Err(missing_or_stale(&tx, &id));
            };
            fts_remove(&tx, seq, &title).map_err(internal)?;
            let mut changes = CountChanges::default();
            counted.uncount(&mut changes);
            apply_counts(&tx, changes).map_err(internal)?;
            // The deletion is a version of its own; a game created again counts on from it.
            let deletion = stored.1 + 1;
            tx.prepare_cached(FILE_DELETION)
                .and_then(|mut s| s.execute(params![stored.0, deletion, stamp.now, stamp.author]))
                .map_err(internal)?;
            tx.prepare_cached(
                "INSERT INTO game_tombstones (id, version) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            )
            .and_then(|mut s| s.execute(params![stored.0, deletion]))
            .map_err(internal)?;
            tx.commit().map_err(internal)?;
            into_stored(stored)
        })
        .await
    }

    async fn upsert_batch(
        &self,
        batch: Vec<StagedGame>,
        attempt: &AttemptId,
        author: &Author,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let attempt = attempt.0.clone();
        let author = author.to_text();
        self.write(move |conn| {
            let mut stamp = Stamp {
                now: now_rfc3339(),
                attempt: Some(attempt),
                pos: None,
                author,
            };
            let tx = conn.transaction().map_err(internal)?;
            let before = max_seq(&tx).map_err(internal)?;
            let mut changes = CountChanges::default();
            let outcomes = {
                let insert_new = match has_tombstones(&tx).map_err(internal)? {
                    true => INSERT_NEW,
                    false => INSERT_NEW_FIRST,
                };
                let mut insert = tx.prepare_cached(insert_new).map_err(internal)?;
                let mut retitles = Vec::new();
                let outcomes = batch
                    .into_iter()
                    .map(|staged| {
                        let (changes, retitles) = (&mut changes, &mut retitles);
                        upsert_one(&tx, &mut insert, staged, &mut stamp, changes, retitles)
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(internal)?;
                for (seq, old, new) in retitles {
                    retitle(&tx, seq, &old, &new).map_err(internal)?;
                }
                outcomes
            };
            fts_add_since(&tx, before).map_err(internal)?;
            apply_counts(&tx, changes).map_err(internal)?;
            tx.commit().map_err(internal)?;
            Ok(outcomes)
        })
        .await
    }

    async fn history(&self, id: &GameId, query: &HistoryQuery) -> StoreResult<Page<GameVersion>> {
        let (limit, before) = (query.limit, query.before);
        // A range of one primary key, at most a page long: a point read.
        self.read_now(|conn| {
            let mut versions = conn
                .prepare_cached(
                    "SELECT version, updated_at, changed_by, content FROM games
                       WHERE id = ?1 AND (?2 IS NULL OR version < ?2)
                     UNION ALL
                     SELECT version, changed_at, changed_by, content FROM game_versions
                       WHERE id = ?1 AND (?2 IS NULL OR version < ?2)
                     ORDER BY version DESC LIMIT ?3",
                )
                .and_then(|mut s| {
                    s.query_map(params![id.as_str(), before, limit + 1], |r| {
                        let author: Option<String> = r.get(2)?;
                        Ok(GameVersion {
                            version: r.get(0)?,
                            changed_at: r.get(1)?,
                            author: author.as_deref().and_then(Author::from_text),
                            content: r.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(internal)?;
            Ok(super::history_page(&mut versions, limit))
        })
    }

    async fn written_by(
        &self,
        author: &Author,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<Page<(GameId, u64)>> {
        let mut after = WrittenAfter::decode(cursor)?;
        let author = author.to_text();
        // Both tables in rowid order, each row read once over all pages.
        self.read(move |conn| {
            let mut items = Vec::new();
            loop {
                let (sql, key) = match &after {
                    WrittenAfter::Games(key) => (
                        "SELECT seq, id, version FROM games
                           WHERE seq > ?2 AND changed_by = ?1 ORDER BY seq LIMIT ?3",
                        key,
                    ),
                    WrittenAfter::Versions(key) => (
                        "SELECT seq, id, version FROM game_versions
                           WHERE seq > ?2 AND changed_by = ?1 ORDER BY seq LIMIT ?3",
                        key,
                    ),
                };
                let from: i64 = match key {
                    None => 0,
                    Some(key) => key.parse().map_err(|_| {
                        StoreError::InvalidCursor("not a cursor of this listing".into())
                    })?,
                };
                let want = limit as usize - items.len();
                let rows = conn
                    .prepare_cached(sql)
                    .and_then(|mut s| {
                        s.query_map(params![author, from, want], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, u64>(2)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(internal)?;
                let full = rows.len() == want;
                let last = rows.last().map(|r| r.0.to_string());
                for (_, id, version) in rows {
                    let id = super::stored_id(&id)?;
                    items.push((id, version));
                }
                match after.after_rows(full, last) {
                    Ok(next_cursor) => return Ok(Page { items, next_cursor }),
                    Err(next) => after = next,
                }
            }
        })
        .await
    }

    async fn prune_history(
        &self,
        retention: &Retention,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        if retention.keeps_all() {
            return Ok(0);
        }
        let (versions, before) = (retention.versions, retention.replaced_before(now));
        // A version was replaced when the next one was written: that one is filed too, or it
        // is the game's current version.
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM game_versions WHERE seq IN (
                       SELECT v.seq FROM game_versions v
                        WHERE (?1 IS NOT NULL AND v.version <= (
                                SELECT MAX(t.version) FROM game_versions t WHERE t.id = v.id) - ?1)
                           OR (?2 IS NOT NULL AND COALESCE(
                                (SELECT n.changed_at FROM game_versions n
                                  WHERE n.id = v.id AND n.version = v.version + 1),
                                (SELECT g.updated_at FROM games g
                                  WHERE g.id = v.id AND g.version = v.version + 1)) < ?2)
                        LIMIT ?3)",
                )
                .and_then(|mut s| s.execute(params![versions, before, limit]))
                .map_err(internal)?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<StoredGame>> {
        let query = query.clone();
        self.read(move |conn| {
            let after = cursor::decode(&query)?;
            let (sql, params) = list_sql(&query, after.as_ref())?;
            let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params_from_iter(params), |r| {
                    Ok((stored_from_row(r)?, r.get::<_, SqlValue>(5)?))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(internal)?;
            let limit = query.limit as usize;
            let next_cursor =
                (rows.len() > limit)
                    .then(|| &rows[limit - 1])
                    .map(|((id, ..), key)| {
                        let value = match key {
                            SqlValue::Integer(i) => serde_json::Value::from(*i),
                            SqlValue::Text(s) => serde_json::Value::from(s.as_str()),
                            _ => serde_json::Value::Null,
                        };
                        cursor::encode(
                            &query,
                            After {
                                value,
                                id: id.clone(),
                            },
                        )
                    });
            let items = rows
                .into_iter()
                .take(limit)
                .map(|(stored, _)| into_stored(stored))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn counts(&self) -> StoreResult<CatalogCounts> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT dimension, key, label, games FROM game_counts")
                .map_err(internal)?;
            let counters = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(internal)?;
            super::counts_of(counters)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read_now(|conn| {
            conn.query_row("SELECT count(*) FROM ingests WHERE 0", [], |_| Ok(()))
                .map_err(internal)
        })
    }
}

#[async_trait]
impl Ledger for SqliteStore {
    async fn get(&self, id: &IngestId) -> StoreResult<Option<IngestRecord>> {
        self.read_now(|conn| {
            let record: Option<String> = conn
                .prepare_cached("SELECT record FROM ingests WHERE id = ?1")
                .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
                .map_err(internal)?;
            record.map(|json| ledger_entry(&json, id)).transpose()
        })
    }

    async fn create(&self, record: &IngestRecord) -> StoreResult<bool> {
        let json = ledger_json(record)?;
        let (id, started_at) = (record.id.as_str().to_owned(), record.started_at.clone());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO ingests (id, started_at, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![id, started_at, json]))
            .map(|written| written == 1)
            .map_err(internal)
        })
        .await
    }

    async fn claim(&self, record: &IngestRecord, now: &str) -> StoreResult<Claim> {
        let json = ledger_json(record)?;
        let holder = super::claimer(record)?.to_owned();
        let (id, started_at, now) = (record.id.clone(), record.started_at.clone(), now.to_owned());
        self.write(move |conn| {
            // One statement on the one writer connection: atomic. The WHERE of the upsert reads
            // the stored row; `excluded` is the claim.
            let written = conn
                .prepare_cached(
                    "INSERT INTO ingests (id, started_at, record) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET started_at = excluded.started_at, record = excluded.record
                     WHERE NOT (json_extract(record, '$.status') IN ('succeeded', 'partially_failed', 'failed')
                                AND NOT coalesce(json_extract(record, '$.retryable'), 0))
                       AND (json_extract(record, '$.lease') IS NULL
                            OR json_extract(record, '$.lease.until') < ?4
                            OR json_extract(record, '$.lease.holder') = ?5)",
                )
                .and_then(|mut s| s.execute(params![id.as_str(), started_at, json, now, holder]))
                .map_err(internal)?;
            if written == 1 {
                return Ok(Claim::Taken);
            }
            let stored: String = conn
                .prepare_cached("SELECT record FROM ingests WHERE id = ?1")
                .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)))
                .map_err(internal)?;
            super::refused_claim(ledger_entry(&stored, &id)?)
        })
        .await
    }

    async fn update(&self, record: &IngestRecord, holder: &str) -> StoreResult<bool> {
        let json = ledger_json(record)?;
        let (id, started_at, holder) = (
            record.id.as_str().to_owned(),
            record.started_at.clone(),
            holder.to_owned(),
        );
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE ingests SET started_at = ?2, record = ?3
                 WHERE id = ?1 AND json_extract(record, '$.lease.holder') = ?4",
            )
            .and_then(|mut s| s.execute(params![id, started_at, json, holder]))
            .map(|written| written == 1)
            .map_err(internal)
        })
        .await
    }

    async fn latest(&self, key: &str) -> StoreResult<Option<IngestRecord>> {
        let key = key.to_owned();
        self.read(move |conn| {
            // The expression is the index's (0002_ingests_by_key.sql), so the index serves it.
            let record: Option<String> = conn
                .prepare_cached(
                    "SELECT record FROM ingests WHERE json_extract(record, '$.key') = ?1
                     ORDER BY started_at DESC, id DESC LIMIT 1",
                )
                .and_then(|mut s| s.query_row([&key], |r| r.get(0)).optional())
                .map_err(internal)?;
            record
                .map(|json| ledger_entry(&json, format_args!("of {key}")))
                .transpose()
        })
        .await
    }

    async fn list(&self, query: &LedgerQuery) -> StoreResult<Page<IngestRecord>> {
        let query = query.clone();
        self.read(move |conn| {
            let (started, id) = cursor::decode_ledger(query.cursor.as_deref())?.unzip();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, started_at, record FROM ingests
                     WHERE ?1 IS NULL OR (started_at, id) < (?1, ?2)
                     ORDER BY started_at DESC, id DESC LIMIT ?3",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![started, id, i64::from(query.limit) + 1], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(internal)?;
            let limit = query.limit as usize;
            let next_cursor = (rows.len() > limit).then(|| {
                let (id, started, _) = &rows[limit - 1];
                cursor::encode_ledger(started, id)
            });
            let items = rows
                .into_iter()
                .take(limit)
                .map(|(id, _, json)| ledger_entry(&json, id))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use rusqlite::StatementStatus;
    use std::time::Duration;

    /// A cached statement run again with new values is not compiled again. SQLite compiles a
    /// statement whose plan used a bound value (`LIMIT ?`, which every page has) anew at each
    /// binding unless the planner is told not to look at bound values.
    #[test]
    fn a_cached_statement_with_a_bound_limit_is_not_prepared_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ludex.db")).unwrap();
        let reader = store.take_reader().unwrap();
        let writer = super::lock(&store.writer);
        for conn in [&reader, &*writer] {
            let sql = "SELECT id FROM games WHERE seq > ?1 ORDER BY seq LIMIT ?2";
            for limit in [1, 20, 20, 100] {
                let mut statement = conn.prepare_cached(sql).unwrap();
                let rows = statement.query_map([0, limit], |r| r.get::<_, String>(0));
                assert_eq!(rows.unwrap().count(), 0);
            }
            let statement = conn.prepare_cached(sql).unwrap();
            assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
        }
    }

    #[tokio::test]
    async fn a_read_given_up_by_its_caller_is_interrupted_and_its_reader_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ludex.db")).unwrap();
        let pooled = super::lock(&store.readers).len();
        // A query that would never end on its own.
        let endless = store.read(|conn| {
            conn.query_row(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)
                 SELECT count(*) FROM n",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(super::internal)
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(50), endless)
                .await
                .is_err()
        );
        let started = std::time::Instant::now();
        while super::lock(&store.readers).len() < pooled {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the query runs on: its reader never came back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
