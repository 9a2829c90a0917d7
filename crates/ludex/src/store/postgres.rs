//! The PostgreSQL store (RDS in AWS mode): the catalog and the ingest ledger over a sqlx pool.
//! The schema is migrated on open; every query is checked against it at compile time (the
//! offline data lives in `.sqlx/` at the workspace root). A batch upsert is one statement,
//! and one check that it raced no delete (`counting_on!`).

use super::{WrittenAfter, ledger_entry, ledger_json, now_rfc3339};
use async_trait::async_trait;
use ludex_domain::CatalogCounts;
use ludex_domain::cursor::{self, After};
use ludex_domain::report::{IngestId, IngestRecord};
use ludex_domain::{
    AttemptId, Author, Catalog, Claim, Game, GameId, GameVersion, HistoryQuery, Ledger,
    LedgerQuery, ListQuery, Page, Position, Retention, SortField, StagedGame, StoreError,
    StoreResult, StoredGame, UpsertOutcome,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Label lists travel to the batch statement as one string per record, joined by a unit
/// separator (which labels cannot contain), and are split back into arrays on the server.
const SEP: char = '\u{1f}';

/// Connections per process. A Lambda instance serves one request at a time; a `ludex serve`
/// process rarely needs more than a handful.
const MAX_CONNECTIONS: u32 = 8;

/// Listings have a pool of their own, so that however many run, point reads and writes still
/// get a connection; and a listing statement is cancelled by the server after
/// `LISTING_STATEMENT_TIMEOUT` (a caller that gave up earlier does not stop it).
const LISTING_CONNECTIONS: u32 = 3;
const LISTING_STATEMENT_TIMEOUT: &str = "5s";

/// Times a write that raced a delete of the same id is tried again (see `counting_on!`).
const RACE_RETRIES: usize = 5;

/// Runs a write that may create games (`$write`, a query run on the connection `$tx`) in a
/// transaction, and commits it only if no game of `$ids` ended up at or below the version its
/// deleted predecessor reached. A write reads the tombstones in its snapshot; a delete that
/// commits while the write waits for the deleted row leaves a tombstone the write did not
/// see. The check runs in a new snapshot, sees it, and the write is rolled back and tried
/// again. (A macro, not a function taking a closure: the query borrows its arguments, and
/// the future must stay `Send`.)
macro_rules! counting_on {
    ($store:expr, $ids:expr, |$tx:ident| $write:expr) => {{
        let mut outcome = Err(StoreError::Unavailable(format!(
            "games were deleted and created again under {RACE_RETRIES} attempts to write them"
        )));
        for _ in 0..RACE_RETRIES {
            let mut connection = $store.connection().await?;
            let mut transaction = connection.begin().await.map_err(store_error)?;
            let $tx: &mut PgConnection = &mut transaction;
            let written = $write.await.map_err(store_error)?;
            if !PostgresStore::repeats_a_version(&mut transaction, $ids).await? {
                transaction.commit().await.map_err(store_error)?;
                outcome = Ok(written);
                break;
            }
        }
        outcome
    }};
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/postgres");

/// Where the store's password comes from when it can change under a running process (RDS
/// rotates the master password): asked once at open, and again whenever the server refuses
/// the password in use.
#[async_trait]
pub trait PasswordSource: Send + Sync {
    async fn password(&self) -> Result<String, String>;
}

pub struct PostgresStore {
    pool: PgPool,
    /// Listings only (see `LISTING_CONNECTIONS`).
    listings: PgPool,
    password: Option<Arc<dyn PasswordSource>>,
    applied: Vec<String>,
}

/// Maps a driver error: faults that may pass (connection loss, timeouts, serialization
/// failures, deadlocks, a server shutting down) are `Unavailable`; the rest `Internal`.
fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db)
            if db.code().is_some_and(|code| {
                // 08: connection exception, 40001: serialization failure, 40P01: deadlock,
                // 53: insufficient resources, 57P0x: operator intervention (shutdown),
                // 57014: a statement cancelled by its timeout.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "57014"
                    || code == "40001"
                    || code == "40P01"
            }) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

/// The server refused the credentials: 28P01 (invalid password) or 28000 (invalid
/// authorization).
fn is_auth_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("28P01" | "28000")))
}

fn to_version(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Internal(format!("stored version {v}")))
}

fn from_version(v: Option<u64>) -> StoreResult<Option<i64>> {
    v.map(|v| {
        i64::try_from(v).map_err(|_| StoreError::Internal(format!("version {v} is out of range")))
    })
    .transpose()
}

fn into_stored(
    id: String,
    version: i64,
    created_at: String,
    updated_at: String,
    content: String,
) -> StoreResult<StoredGame> {
    Ok(StoredGame {
        id: super::stored_id(&id)?,
        version: to_version(version)?,
        created_at,
        updated_at,
        content,
    })
}

/// Splits a title into the words the search matches: runs of letters and digits, lower-cased.
/// The query's words are split the same way (`ludex_domain::search_words`), so search behaves
/// the same whatever the database's locale.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Free text as a `tsquery` where every word must start a word of the title. Words hold only
/// letters and digits, so quoting them needs no escaping.
fn search_query(q: &str) -> Option<String> {
    let terms: Vec<String> = ludex_domain::search_words(q)
        .iter()
        .map(|w| format!("'{w}':*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" & "))
}

/// The columns a game is stored in, computed once from the domain value.
struct Row {
    id: String,
    title: String,
    title_key: String,
    release_key: String,
    release_year: Option<i32>,
    rating_key: i32,
    platforms: Vec<String>,
    genres: Vec<String>,
    /// The title's words separated by spaces, for `to_tsvector`.
    words: String,
    content: String,
    content_hash: Vec<u8>,
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
            release_year: game.release_date.map(|d| i32::from(d.year())),
            rating_key: game.rating.map_or(-1, |r| i32::from(r.tenths())),
            platforms: game.platform_keys(),
            genres: game.genre_keys(),
            words: words(game.title.as_str()).collect::<Vec<_>>().join(" "),
            content_hash: content_hash.to_vec(),
            content,
        }
    }
}

impl From<StagedGame> for Row {
    fn from(staged: StagedGame) -> Self {
        Self::new(&staged.game, staged.content, staged.content_hash)
    }
}

fn position_number(position: Position) -> StoreResult<i64> {
    let (Position::Line(n) | Position::Index(n)) = position;
    i64::try_from(n).map_err(|_| StoreError::Internal(format!("position {n} is out of range")))
}

/// A batch in columns, one array per column, for `UNNEST`.
#[derive(Default)]
struct Columns {
    id: Vec<String>,
    title: Vec<String>,
    title_key: Vec<String>,
    release_key: Vec<String>,
    release_year: Vec<Option<i32>>,
    rating_key: Vec<i32>,
    platforms: Vec<String>,
    genres: Vec<String>,
    words: Vec<String>,
    content: Vec<String>,
    content_hash: Vec<Vec<u8>>,
    pos: Vec<i64>,
}

impl Columns {
    fn of(batch: Vec<StagedGame>) -> StoreResult<(Self, Vec<Position>)> {
        let mut columns = Self::default();
        let mut positions = Vec::with_capacity(batch.len());
        for staged in batch {
            positions.push(staged.position);
            columns.pos.push(position_number(staged.position)?);
            let row = Row::from(staged);
            columns.id.push(row.id);
            columns.title.push(row.title);
            columns.title_key.push(row.title_key);
            columns.release_key.push(row.release_key);
            columns.release_year.push(row.release_year);
            columns.rating_key.push(row.rating_key);
            columns.platforms.push(row.platforms.join(&SEP.to_string()));
            columns.genres.push(row.genres.join(&SEP.to_string()));
            columns.words.push(row.words);
            columns.content.push(row.content);
            columns.content_hash.push(row.content_hash);
        }
        Ok((columns, positions))
    }
}

impl PostgresStore {
    /// Connects to the database a `postgres://` URL names and brings its schema up to date.
    /// TLS follows the URL's `sslmode` (`require`, `verify-full` with `sslrootcert=…`).
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, None).await
    }

    /// Opens a store whose password comes from `password` (not from the URL), and is asked for
    /// again when the server refuses it: connections already open stay as they are, new ones
    /// use the new password.
    pub async fn open_with(
        url: &str,
        password: Option<Arc<dyn PasswordSource>>,
    ) -> StoreResult<Self> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("the PostgreSQL URL is not valid: {e}")))?
            .application_name("ludex")
            // Listings bind optional filters as `$n IS NULL OR …`: planning each execution
            // with its values lets the planner drop the unused filters and pick an index.
            .options([("plan_cache_mode", "force_custom_plan")]);
        if let Some(source) = &password {
            options = options.password(&source.password().await.map_err(StoreError::Unavailable)?);
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(store_error)?;
        let listings = PgPoolOptions::new()
            .max_connections(LISTING_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.options([("statement_timeout", LISTING_STATEMENT_TIMEOUT)]));
        let before = Self::applied_versions(&pool).await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("cannot migrate the schema: {e}")))?;
        let applied = MIGRATOR
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| format!("{:04}_{}", m.version, m.description))
            .collect();
        Ok(Self {
            pool,
            listings,
            password,
            applied,
        })
    }

    /// The migrations this `open` applied, oldest first (empty when the schema was current).
    pub fn migrations_applied(&self) -> &[String] {
        &self.applied
    }

    async fn applied_versions(pool: &PgPool) -> StoreResult<Vec<i64>> {
        // The migrations table does not exist before the first migration.
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(pool)
                .await
                .map_err(store_error)?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .map_err(store_error)
    }

    /// Finds out why a conditional write matched no row.
    async fn missing_or_stale(&self, id: &GameId) -> StoreError {
        let mut connection = match self.connection().await {
            Ok(connection) => connection,
            Err(e) => return e,
        };
        match sqlx::query_scalar!("SELECT version FROM games WHERE id = $1", id.as_str())
            .fetch_optional(&mut *connection)
            .await
        {
            Ok(Some(current)) => match to_version(current) {
                Ok(current) => StoreError::VersionMismatch { current },
                Err(e) => e,
            },
            Ok(None) => StoreError::NotFound(id.clone()),
            Err(e) => store_error(e),
        }
    }

    /// A connection of `pool`. When the server refuses the password (rotated since the pool
    /// connected), the password is asked for again, both pools take it for their new
    /// connections, and the connection is tried once more.
    async fn acquire(&self, pool: &PgPool) -> StoreResult<PoolConnection<Postgres>> {
        match (pool.acquire().await, &self.password) {
            (Err(e), Some(source)) if is_auth_failure(&e) => {
                tracing::warn!(error = %e, "PostgreSQL refused the password; reading it again");
                let password = source.password().await.map_err(StoreError::Unavailable)?;
                for pool in [&self.pool, &self.listings] {
                    let options = (*pool.connect_options()).clone().password(&password);
                    pool.set_connect_options(options);
                }
                pool.acquire().await.map_err(store_error)
            }
            (acquired, _) => acquired.map_err(store_error),
        }
    }

    /// A connection for a point read or a write.
    async fn connection(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.acquire(&self.pool).await
    }

    /// Whether a game of `ids` is at or below the version its deleted predecessor reached.
    async fn repeats_a_version(tx: &mut PgConnection, ids: &[String]) -> StoreResult<bool> {
        sqlx::query_scalar!(
            r#"SELECT EXISTS (
                 SELECT 1 FROM game_tombstones t JOIN games g ON g.id = t.id
                 WHERE t.id = ANY($1) AND g.version <= t.version
             ) AS "repeated!""#,
            ids,
        )
        .fetch_one(tx)
        .await
        .map_err(store_error)
    }
}

/// One listing statement per sort, each walking its own index; the filters are the same in
/// all of them. `$7` is the sort value of the previous page's last item, `$8` its id.
macro_rules! list_games {
    ($pool:expr, $query:expr, $after_key:expr, $after_id:expr, key = $key:literal,
     after = $after:literal, cmp = $cmp:literal, dir = $dir:literal) => {
        sqlx::query!(
            "SELECT id, version, created_at, updated_at, content, "
                + $key
                + " AS \"sort_key!\"
             FROM games
             WHERE ($1::text IS NULL OR platforms @> ARRAY[$1::text])
               AND ($2::text IS NULL OR genres @> ARRAY[$2::text])
               AND ($3::int4 IS NULL OR release_year >= $3::int4)
               AND ($4::int4 IS NULL OR release_year <= $4::int4)
               AND ($5::int4 IS NULL OR rating_key >= $5::int4)
               AND ($6::text IS NULL OR search @@ to_tsquery('simple', unaccent($6::text)))
               AND ($8::text IS NULL OR ("
                + $key
                + ", id) "
                + $cmp
                + " ("
                + $after
                + ", $8::text))
             ORDER BY "
                + $key
                + " "
                + $dir
                + ", id "
                + $dir
                + "
             LIMIT $9",
            $query.platform.as_deref().map(str::to_lowercase),
            $query.genre.as_deref().map(str::to_lowercase),
            $query.year_from.map(i32::from),
            $query.year_to.map(i32::from),
            $query.min_rating.map(|r| i32::from(r.tenths())),
            $query.q.as_deref().and_then(search_query),
            $after_key,
            $after_id,
            i64::from($query.limit) + 1,
        )
        .fetch_all($pool)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|r| {
            let sort_value = serde_json::Value::from(r.sort_key);
            into_stored(r.id, r.version, r.created_at, r.updated_at, r.content)
                .map(|game| (sort_value, game))
        })
        .collect::<StoreResult<Vec<_>>>()?
    };
}

/// The cursor's sort value, as text for the text sorts or a number for the rating.
enum AfterKey {
    Text(Option<String>),
    Number(Option<i32>),
}

fn after_key(field: SortField, after: Option<&After>) -> StoreResult<AfterKey> {
    let wrong = || StoreError::InvalidCursor("its sort value has the wrong type".into());
    Ok(match (field, after.map(|a| &a.value)) {
        (SortField::Rating, None) => AfterKey::Number(None),
        (SortField::Rating, Some(serde_json::Value::Number(n))) => AfterKey::Number(Some(
            n.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(wrong)?,
        )),
        (SortField::Rating, Some(_)) => return Err(wrong()),
        (_, None) => AfterKey::Text(None),
        (_, Some(serde_json::Value::String(s))) => AfterKey::Text(Some(s.clone())),
        (_, Some(_)) => return Err(wrong()),
    })
}

#[async_trait]
impl Catalog for PostgresStore {
    async fn get(&self, id: &GameId) -> StoreResult<Option<StoredGame>> {
        sqlx::query!(
            "SELECT id, version, created_at, updated_at, content FROM games WHERE id = $1",
            id.as_str()
        )
        .fetch_optional(&mut *self.connection().await?)
        .await
        .map_err(store_error)?
        .map(|r| into_stored(r.id, r.version, r.created_at, r.updated_at, r.content))
        .transpose()
    }

    async fn create(&self, game: &Game, author: &Author) -> StoreResult<StoredGame> {
        let row = Row::of(game);
        let author = author.to_text();
        let now = now_rfc3339();
        let ids = [row.id.clone()];
        let created = counting_on!(self, &ids, |tx| {
            sqlx::query!(
                "INSERT INTO games (id, title, title_key, release_key, release_year,
                         rating_key, platforms, genres, search, content, content_hash, version,
                         created_at, updated_at, changed_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_tsvector('simple', unaccent($9)),
                         $10, $11,
                         1 + coalesce((SELECT version FROM game_tombstones WHERE id = $1), 0),
                         $12, $12, $13)
                     ON CONFLICT (id) DO NOTHING
                     RETURNING id, version, created_at, updated_at, content",
                row.id,
                row.title,
                row.title_key,
                row.release_key,
                row.release_year,
                row.rating_key,
                &row.platforms,
                &row.genres,
                row.words,
                row.content,
                row.content_hash,
                now,
                author,
            )
            .fetch_optional(tx)
        })?;
        match created {
            Some(r) => into_stored(r.id, r.version, r.created_at, r.updated_at, r.content),
            None => Err(StoreError::AlreadyExists(game.id.clone())),
        }
    }

    async fn replace(
        &self,
        game: &Game,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame> {
        let row = Row::of(game);
        let now = now_rfc3339();
        // One statement: lock the row, update it only when the version matches and the
        // content differs (filing the replaced version), and return both the row as it was
        // and as it is now.
        let result = sqlx::query!(
            r#"WITH stored AS MATERIALIZED (
                 SELECT id, version, created_at, updated_at, content, content_hash, changed_by,
                     ($13::int8 IS NULL OR version = $13::int8) AND content_hash <> $11
                         AS changes
                 FROM games WHERE id = $1 FOR UPDATE
             ),
             updated AS (
                 UPDATE games g SET title = $2, title_key = $3, release_key = $4,
                     release_year = $5, rating_key = $6, platforms = $7, genres = $8,
                     search = to_tsvector('simple', unaccent($9)), content = $10,
                     content_hash = $11, version = g.version + 1, updated_at = $12,
                     changed_by = $14
                 FROM stored c
                 WHERE g.id = c.id AND c.changes
                 RETURNING g.version, g.updated_at, g.content
             ),
             filed AS (
                 INSERT INTO game_versions (id, version, content, changed_at, changed_by)
                 SELECT id, version, content, updated_at, changed_by FROM stored WHERE changes
             )
             SELECT c.id, c.version AS current_version, c.created_at,
                 c.updated_at AS current_updated_at, c.content AS current_content,
                 u.version AS "new_version?", u.updated_at AS "new_updated_at?",
                 u.content AS "new_content?"
             FROM stored c LEFT JOIN updated u ON true"#,
            row.id,
            row.title,
            row.title_key,
            row.release_key,
            row.release_year,
            row.rating_key,
            &row.platforms,
            &row.genres,
            row.words,
            row.content,
            row.content_hash,
            now,
            from_version(if_version)?,
            author.to_text(),
        )
        .fetch_optional(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        let Some(r) = result else {
            return Err(StoreError::NotFound(game.id.clone()));
        };
        if let (Some(version), Some(updated_at), Some(content)) =
            (r.new_version, r.new_updated_at, r.new_content)
        {
            return into_stored(r.id, version, r.created_at, updated_at, content);
        }
        if let Some(expected) = if_version
            && to_version(r.current_version)? != expected
        {
            return Err(StoreError::VersionMismatch {
                current: to_version(r.current_version)?,
            });
        }
        // Identical content: not a change, the stored game stays as it is.
        into_stored(
            r.id,
            r.current_version,
            r.created_at,
            r.current_updated_at,
            r.current_content,
        )
    }

    async fn delete(
        &self,
        id: &GameId,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame> {
        // In the same statement: the deleted version and the deletion (the next version) are
        // filed in the history, and the deletion's version is kept as the id's tombstone.
        let deleted = sqlx::query!(
            r#"WITH deleted AS (
                 DELETE FROM games WHERE id = $1 AND ($2::int8 IS NULL OR version = $2::int8)
                 RETURNING id, version, created_at, updated_at, content, changed_by
             ),
             filed AS (
                 INSERT INTO game_versions (id, version, content, changed_at, changed_by)
                 SELECT id, version, content, updated_at, changed_by FROM deleted
                 UNION ALL
                 SELECT id, version + 1, NULL, $3, $4 FROM deleted
             ),
             tombstone AS (
                 INSERT INTO game_tombstones (id, version) SELECT id, version + 1 FROM deleted
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version
             )
             SELECT id AS "id!", version AS "version!", created_at AS "created_at!",
                 updated_at AS "updated_at!", content AS "content!"
             FROM deleted"#,
            id.as_str(),
            from_version(if_version)?,
            now_rfc3339(),
            author.to_text(),
        )
        .fetch_optional(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        match deleted {
            Some(r) => into_stored(r.id, r.version, r.created_at, r.updated_at, r.content),
            None => Err(self.missing_or_stale(id).await),
        }
    }

    async fn upsert_batch(
        &self,
        batch: Vec<StagedGame>,
        attempt: &AttemptId,
        author: &Author,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (columns, positions) = Columns::of(batch)?;
        let now = now_rfc3339();
        // One statement, one round trip, atomic: `previous` locks the rows the batch touches
        // (in id order, so concurrent batches cannot deadlock) and remembers them as they
        // were; `written` inserts or updates the first record of each id that no earlier
        // batch of this attempt wrote; the final select tells each record's outcome in input
        // order. An identical record only takes the attempt's mark: version and updated_at
        // stay as they were. `filed` keeps the versions that changed records replace.
        let rows = counting_on!(self, &columns.id, |tx| {
            sqlx::query!(
                r#"WITH input AS (
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                     $5::int4[], $6::int4[], $7::text[], $8::text[], $9::text[], $10::text[],
                     $11::bytea[], $12::int8[])
                 WITH ORDINALITY AS t(id, title, title_key, release_key, release_year,
                     rating_key, platforms, genres, words, content, content_hash, pos, ord)
             ),
             firsts AS MATERIALIZED (
                 SELECT DISTINCT ON (id) * FROM input ORDER BY id, ord
             ),
             previous AS MATERIALIZED (
                 SELECT g.id, g.content_hash, g.attempt, g.attempt_pos, g.version, g.content,
                     g.updated_at, g.changed_by FROM games g
                 WHERE g.id IN (SELECT id FROM firsts)
                 ORDER BY g.id
                 FOR UPDATE
             ),
             filed AS (
                 INSERT INTO game_versions (id, version, content, changed_at, changed_by)
                 SELECT p.id, p.version, p.content, p.updated_at, p.changed_by
                 FROM previous p JOIN firsts f ON f.id = p.id
                 WHERE p.attempt IS DISTINCT FROM $14::text AND p.content_hash <> f.content_hash
             ),
             written AS (
                 INSERT INTO games AS g (id, title, title_key, release_key, release_year,
                     rating_key, platforms, genres, search, content, content_hash, version,
                     created_at, updated_at, attempt, attempt_pos, changed_by)
                 SELECT f.id, f.title, f.title_key, f.release_key, f.release_year, f.rating_key,
                     string_to_array(f.platforms, chr(31)), string_to_array(f.genres, chr(31)),
                     to_tsvector('simple', unaccent(f.words)), f.content, f.content_hash,
                     1 + coalesce(t.version, 0), $13::text, $13::text, $14::text, f.pos,
                     $15::text
                 FROM firsts f LEFT JOIN previous p ON p.id = f.id
                     LEFT JOIN game_tombstones t ON t.id = f.id
                 WHERE p.attempt IS DISTINCT FROM $14::text
                 ORDER BY f.id
                 ON CONFLICT (id) DO UPDATE SET
                     title = excluded.title, title_key = excluded.title_key,
                     release_key = excluded.release_key, release_year = excluded.release_year,
                     rating_key = excluded.rating_key, platforms = excluded.platforms,
                     genres = excluded.genres, search = excluded.search,
                     content = excluded.content, content_hash = excluded.content_hash,
                     version = CASE WHEN g.content_hash = excluded.content_hash
                         THEN g.version ELSE g.version + 1 END,
                     updated_at = CASE WHEN g.content_hash = excluded.content_hash
                         THEN g.updated_at ELSE excluded.updated_at END,
                     changed_by = CASE WHEN g.content_hash = excluded.content_hash
                         THEN g.changed_by ELSE excluded.changed_by END,
                     attempt = excluded.attempt, attempt_pos = excluded.attempt_pos
                 RETURNING g.id, g.xmax = 0 AS inserted
             )
             SELECT
                 CASE
                     WHEN p.attempt = $14::text OR i.ord <> f.ord THEN 'duplicate'
                     WHEN p.id IS NULL AND w.inserted THEN 'inserted'
                     WHEN p.id IS NOT NULL AND p.content_hash = i.content_hash THEN 'unchanged'
                     ELSE 'updated'
                 END AS "outcome!",
                 CASE WHEN p.attempt = $14::text THEN p.attempt_pos ELSE f.pos END AS first_pos
             FROM input i
             JOIN firsts f ON f.id = i.id
             LEFT JOIN previous p ON p.id = i.id
             LEFT JOIN written w ON w.id = i.id
             ORDER BY i.ord"#,
                &columns.id,
                &columns.title,
                &columns.title_key,
                &columns.release_key,
                &columns.release_year as &[Option<i32>],
                &columns.rating_key,
                &columns.platforms,
                &columns.genres,
                &columns.words,
                &columns.content,
                &columns.content_hash,
                &columns.pos,
                now,
                attempt.0,
                author.to_text(),
            )
            .fetch_all(tx)
        })?;
        if rows.len() != positions.len() {
            return Err(StoreError::Internal(format!(
                "the batch upsert returned {} outcomes for {} records",
                rows.len(),
                positions.len()
            )));
        }
        rows.into_iter()
            .zip(positions)
            .map(|(r, position)| {
                Ok(match r.outcome.as_str() {
                    "inserted" => UpsertOutcome::Inserted,
                    "updated" => UpsertOutcome::Updated,
                    "unchanged" => UpsertOutcome::Unchanged,
                    _ => {
                        let first = u64::try_from(r.first_pos.unwrap_or(0)).unwrap_or(0);
                        UpsertOutcome::Duplicate {
                            first: match position {
                                Position::Line(_) => Position::Line(first),
                                Position::Index(_) => Position::Index(first),
                            },
                        }
                    }
                })
            })
            .collect()
    }

    async fn history(&self, id: &GameId, query: &HistoryQuery) -> StoreResult<Page<GameVersion>> {
        let rows = sqlx::query!(
            r#"SELECT version AS "version!", changed_at AS "changed_at!", changed_by, content
               FROM (
                   SELECT version, updated_at AS changed_at, changed_by, content FROM games
                     WHERE id = $1 AND ($2::int8 IS NULL OR version < $2::int8)
                   UNION ALL
                   SELECT version, changed_at, changed_by, content FROM game_versions
                     WHERE id = $1 AND ($2::int8 IS NULL OR version < $2::int8)
               ) v
               ORDER BY version DESC LIMIT $3"#,
            id.as_str(),
            from_version(query.before)?,
            i64::from(query.limit) + 1,
        )
        .fetch_all(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        let mut versions = rows
            .into_iter()
            .map(|r| {
                Ok(GameVersion {
                    version: to_version(r.version)?,
                    changed_at: r.changed_at,
                    author: r.changed_by.as_deref().and_then(Author::from_text),
                    content: r.content,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(super::history_page(&mut versions, query.limit))
    }

    async fn written_by(
        &self,
        author: &Author,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<Page<(GameId, u64)>> {
        let mut after = WrittenAfter::decode(cursor)?;
        let author = author.to_text();
        let bad_cursor = || StoreError::InvalidCursor("not a cursor of this listing".into());
        let mut connection = self.connection().await?;
        let mut items = Vec::new();
        // Both tables in primary key order, each row read once over all pages.
        loop {
            let want = i64::from(limit) - i64::try_from(items.len()).unwrap_or(i64::MAX);
            let rows: Vec<(String, i64)> = match &after {
                WrittenAfter::Games(key) => sqlx::query!(
                    "SELECT id, version FROM games
                       WHERE id > $2 AND changed_by = $1 ORDER BY id LIMIT $3",
                    author,
                    key.as_deref().unwrap_or_default(),
                    want,
                )
                .fetch_all(&mut *connection)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|r| (r.id, r.version))
                .collect(),
                WrittenAfter::Versions(key) => {
                    // `VERSION.ID` of the last row.
                    let (version, id) = match key.as_deref().map(|k| k.split_once('.')) {
                        None => (0, ""),
                        Some(Some((version, id))) => {
                            (version.parse::<i64>().map_err(|_| bad_cursor())?, id)
                        }
                        Some(None) => return Err(bad_cursor()),
                    };
                    sqlx::query!(
                        "SELECT id, version FROM game_versions
                           WHERE (id, version) > ($2, $3) AND changed_by = $1
                           ORDER BY id, version LIMIT $4",
                        author,
                        id,
                        version,
                        want,
                    )
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(store_error)?
                    .into_iter()
                    .map(|r| (r.id, r.version))
                    .collect()
                }
            };
            let full = i64::try_from(rows.len()).is_ok_and(|n| n == want);
            let last = rows.last().map(|(id, version)| match after {
                WrittenAfter::Games(_) => id.clone(),
                WrittenAfter::Versions(_) => format!("{version}.{id}"),
            });
            for (id, version) in rows {
                let id = super::stored_id(&id)?;
                items.push((id, to_version(version)?));
            }
            match after.after_rows(full, last) {
                Ok(next_cursor) => return Ok(Page { items, next_cursor }),
                Err(next) => after = next,
            }
        }
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
        let deleted = sqlx::query!(
            r#"DELETE FROM game_versions d USING (
                 SELECT v.id, v.version FROM game_versions v
                  WHERE ($1::int8 IS NOT NULL AND v.version <= (
                          SELECT MAX(t.version) FROM game_versions t WHERE t.id = v.id) - $1::int8)
                     OR ($2::text IS NOT NULL AND COALESCE(
                          (SELECT n.changed_at FROM game_versions n
                            WHERE n.id = v.id AND n.version = v.version + 1),
                          (SELECT g.updated_at FROM games g
                            WHERE g.id = v.id AND g.version = v.version + 1)) < $2::text)
                  LIMIT $3) p
               WHERE d.id = p.id AND d.version = p.version"#,
            versions.map(i64::from),
            before,
            i64::from(limit),
        )
        .execute(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        Ok(deleted.rows_affected())
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<StoredGame>> {
        let after = cursor::decode(query)?;
        let key = after_key(query.sort.field, after.as_ref())?;
        let after_id = after.as_ref().map(|a| a.id.as_str());
        let mut listing = self.acquire(&self.listings).await?;
        let pool = &mut *listing;
        // The sort's statement in the query's direction: ascending walks its index forward
        // from the cursor, descending backward.
        macro_rules! sorted {
            ($after_key:expr, $key:literal, $after:literal) => {
                if query.sort.descending {
                    list_games!(
                        pool,
                        query,
                        $after_key,
                        after_id,
                        key = $key,
                        after = $after,
                        cmp = "<",
                        dir = "DESC"
                    )
                } else {
                    list_games!(
                        pool,
                        query,
                        $after_key,
                        after_id,
                        key = $key,
                        after = $after,
                        cmp = ">",
                        dir = "ASC"
                    )
                }
            };
        }
        let rows = match (query.sort.field, key) {
            (SortField::Title, AfterKey::Text(k)) => sorted!(k, "title_key", "$7::text"),
            (SortField::ReleaseDate, AfterKey::Text(k)) => sorted!(k, "release_key", "$7::text"),
            (SortField::UpdatedAt, AfterKey::Text(k)) => sorted!(k, "updated_at", "$7::text"),
            (SortField::Rating, AfterKey::Number(k)) => sorted!(k, "rating_key", "$7::int4"),
            _ => {
                return Err(StoreError::InvalidCursor(
                    "its sort value has the wrong type".into(),
                ));
            }
        };
        // The statement fetched one row beyond the page: its presence means there is more.
        let limit = query.limit as usize;
        let next_cursor = (rows.len() > limit).then(|| {
            let (value, game) = &rows[limit - 1];
            cursor::encode(
                query,
                After {
                    value: value.clone(),
                    id: game.id.to_string(),
                },
            )
        });
        let items = rows.into_iter().take(limit).map(|(_, game)| game).collect();
        Ok(Page { items, next_cursor })
    }

    async fn counts(&self) -> StoreResult<CatalogCounts> {
        let rows = sqlx::query!("SELECT dimension, key, label, games FROM game_counts")
            .fetch_all(&mut *self.connection().await?)
            .await
            .map_err(store_error)?;
        super::counts_of(
            rows.into_iter()
                .map(|r| (r.dimension, r.key, r.label, r.games)),
        )
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query_scalar!("SELECT count(*) FROM ingests WHERE false")
            .fetch_one(&mut *self.connection().await?)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl Ledger for PostgresStore {
    async fn get(&self, id: &IngestId) -> StoreResult<Option<IngestRecord>> {
        let record = sqlx::query_scalar!(
            r#"SELECT record::text AS "record!" FROM ingests WHERE id = $1"#,
            id.as_str()
        )
        .fetch_optional(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        record.map(|json| ledger_entry(&json, id)).transpose()
    }

    async fn create(&self, record: &IngestRecord) -> StoreResult<bool> {
        let json = ledger_json(record)?;
        let written = sqlx::query!(
            "INSERT INTO ingests (id, started_at, record) VALUES ($1, $2, $3::text::json)
             ON CONFLICT (id) DO NOTHING",
            record.id.as_str(),
            record.started_at,
            json,
        )
        .execute(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        Ok(written.rows_affected() == 1)
    }

    async fn claim(&self, record: &IngestRecord, now: &str) -> StoreResult<Claim> {
        let json = ledger_json(record)?;
        let holder = super::claimer(record)?;
        let mut conn = self.connection().await?;
        // The upsert locks the row it conflicts with and evaluates the WHERE on it: of two
        // claims at once, the second sees the first's lease.
        let written = sqlx::query!(
            r#"INSERT INTO ingests AS stored (id, started_at, record) VALUES ($1, $2, $3::text::json)
             ON CONFLICT (id) DO UPDATE
             SET started_at = excluded.started_at, record = excluded.record
             WHERE NOT (stored.record ->> 'status' IN ('succeeded', 'partially_failed', 'failed')
                        AND NOT coalesce((stored.record ->> 'retryable')::boolean, false))
               AND (stored.record -> 'lease' IS NULL
                    OR (stored.record -> 'lease' ->> 'until') COLLATE "C" < $4
                    OR stored.record -> 'lease' ->> 'holder' = $5)"#,
            record.id.as_str(),
            record.started_at,
            json,
            now,
            holder,
        )
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
        if written.rows_affected() == 1 {
            return Ok(Claim::Taken);
        }
        let stored = sqlx::query_scalar!(
            r#"SELECT record::text AS "record!" FROM ingests WHERE id = $1"#,
            record.id.as_str()
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(store_error)?;
        super::refused_claim(ledger_entry(&stored, &record.id)?)
    }

    async fn update(&self, record: &IngestRecord, holder: &str) -> StoreResult<bool> {
        let json = ledger_json(record)?;
        let written = sqlx::query!(
            "UPDATE ingests SET started_at = $2, record = $3::text::json
             WHERE id = $1 AND record -> 'lease' ->> 'holder' = $4",
            record.id.as_str(),
            record.started_at,
            json,
            holder,
        )
        .execute(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        Ok(written.rows_affected() == 1)
    }

    async fn latest(&self, key: &str) -> StoreResult<Option<IngestRecord>> {
        // Unchecked like the migration queries: the offline query data is refreshed only with
        // a database at hand. The expression is the index's (0002_ingests_by_key.sql).
        let record: Option<String> = sqlx::query_scalar(
            "SELECT record::text FROM ingests WHERE record ->> 'key' = $1
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        record
            .map(|json| ledger_entry(&json, format_args!("of {key}")))
            .transpose()
    }

    async fn list(&self, query: &LedgerQuery) -> StoreResult<Page<IngestRecord>> {
        let (started, id) = cursor::decode_ledger(query.cursor.as_deref())?.unzip();
        let rows = sqlx::query!(
            r#"SELECT id, started_at, record::text AS "record!" FROM ingests
             WHERE $1::text IS NULL OR (started_at, id) < ($1::text, $2::text)
             ORDER BY started_at DESC, id DESC
             LIMIT $3"#,
            started,
            id,
            i64::from(query.limit) + 1,
        )
        .fetch_all(&mut *self.connection().await?)
        .await
        .map_err(store_error)?;
        let limit = query.limit as usize;
        let next_cursor = (rows.len() > limit).then(|| {
            let last = &rows[limit - 1];
            cursor::encode_ledger(&last.started_at, &last.id)
        });
        let items = rows
            .into_iter()
            .take(limit)
            .map(|r| ledger_entry(&r.record, &r.id))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_are_lowercased_prefixes_of_letters_and_digits() {
        assert_eq!(
            search_query("Éclair  que-2!").as_deref(),
            Some("'éclair':* & 'que':* & '2':*")
        );
        assert_eq!(search_query(" ,;' "), None);
        assert_eq!(
            words("Baldur's Gate 3").collect::<Vec<_>>(),
            ["baldur", "s", "gate", "3"]
        );
    }
}
