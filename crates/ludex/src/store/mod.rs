//! Catalog and ledger adapters, chosen by a URL-shaped setting.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use ludex_domain::report::IngestRecord;
use ludex_domain::{Catalog, Ledger, Retention, StoreError, StoreResult};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const RFC3339_MILLIS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The current time as the stores write it: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339_in(std::time::Duration::ZERO)
}

/// The time `later` from now, written like [`now_rfc3339`].
pub fn rfc3339_in(later: std::time::Duration) -> String {
    (OffsetDateTime::now_utc() + later)
        .format(RFC3339_MILLIS)
        .unwrap_or_default()
}

/// A ledger entry as every adapter stores it: its JSON. `which` names the entry in the error.
pub(crate) fn ledger_entry(json: &str, which: impl std::fmt::Display) -> StoreResult<IngestRecord> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Internal(format!("ledger entry {which}: {e}")))
}

/// The attempt a claim is for: its lease's holder.
pub(crate) fn claimer(record: &IngestRecord) -> StoreResult<&str> {
    record
        .lease
        .as_ref()
        .map(|lease| lease.holder.as_str())
        .ok_or_else(|| StoreError::Internal(format!("a claim of {} without a lease", record.id)))
}

/// What a claim that wrote nothing found: the stored entry, settled or held by another.
pub(crate) fn refused_claim(stored: IngestRecord) -> StoreResult<ludex_domain::Claim> {
    Ok(if stored.is_settled() {
        ludex_domain::Claim::Settled(stored)
    } else {
        ludex_domain::Claim::Busy(stored)
    })
}

/// A page of history from up to `limit + 1` versions, newest first: the extra one only says
/// that older versions follow.
pub(crate) fn history_page(
    versions: &mut Vec<ludex_domain::GameVersion>,
    limit: u32,
) -> ludex_domain::Page<ludex_domain::GameVersion> {
    let more = versions.len() > limit as usize;
    versions.truncate(limit as usize);
    ludex_domain::Page {
        next_cursor: versions
            .last()
            .filter(|_| more)
            .map(|v| v.version.to_string()),
        items: std::mem::take(versions),
    }
}

/// Where a [`Catalog::written_by`](ludex_domain::Catalog::written_by) listing of a SQL store
/// goes on: the games (current versions) first, then the filed versions, each after a key of the
/// store's own. Written `g:KEY` or `v:KEY`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WrittenAfter {
    Games(Option<String>),
    Versions(Option<String>),
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl WrittenAfter {
    pub(crate) fn decode(cursor: Option<&str>) -> StoreResult<Self> {
        match cursor.map(|c| c.split_once(':')) {
            None => Ok(Self::Games(None)),
            Some(Some(("g", key))) => Ok(Self::Games(Some(key.to_owned()))),
            Some(Some(("v", key))) => Ok(Self::Versions(Some(key.to_owned()))),
            Some(_) => Err(StoreError::InvalidCursor(
                "not a cursor of this listing".into(),
            )),
        }
    }

    /// What follows rows of this phase ending at the key `last`: `Ok(cursor)` ends the page
    /// (`None`: the listing ends), `Err(position)` goes on from there in the same page. `full`
    /// says whether the rows filled the page.
    pub(crate) fn after_rows(
        self,
        full: bool,
        last: Option<String>,
    ) -> Result<Option<String>, WrittenAfter> {
        match self {
            Self::Games(_) if !full => Err(Self::Versions(None)),
            Self::Games(key) => Ok(Some(format!("g:{}", last.or(key).unwrap_or_default()))),
            Self::Versions(key) => {
                Ok(full.then(|| format!("v:{}", last.or(key).unwrap_or_default())))
            }
        }
    }
}

/// A game id as a store holds it.
pub(crate) fn stored_id(id: &str) -> StoreResult<ludex_domain::GameId> {
    ludex_domain::GameId::parse(id).map_err(|e| StoreError::Internal(format!("stored id {e}")))
}

/// Filed versions one round of pruning deletes at most.
pub const PRUNE_ROUND: u32 = 1000;

/// Prunes the history as `retention` says, a round at a time, until a round finds less than a
/// full one or `rounds` have run; returns how many versions went. Between rounds writers get
/// the store.
pub async fn prune_history(
    catalog: &dyn Catalog,
    retention: &Retention,
    rounds: usize,
) -> StoreResult<u64> {
    let mut pruned = 0;
    if retention.keeps_all() {
        return Ok(0);
    }
    for _ in 0..rounds {
        let round = catalog
            .prune_history(retention, OffsetDateTime::now_utc(), PRUNE_ROUND)
            .await?;
        pruned += round;
        if round < u64::from(PRUNE_ROUND) {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(pruned)
}

/// The JSON a ledger entry is stored as.
pub(crate) fn ledger_json(record: &IngestRecord) -> StoreResult<String> {
    serde_json::to_string(record)
        .map_err(|e| StoreError::Internal(format!("ledger entry {}: {e}", record.id)))
}

/// The aggregates from a store's counters as it keeps them: `(dimension, key, label, games)`.
/// The SQL stores keep them so; DynamoDB reads its counter items itself.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn counts_of(
    counters: impl IntoIterator<Item = (String, String, String, i64)>,
) -> StoreResult<ludex_domain::CatalogCounts> {
    let mut typed = Vec::new();
    for (dimension, key, label, games) in counters {
        let dimension = ludex_domain::Dimension::parse(&dimension)
            .ok_or_else(|| StoreError::Internal(format!("the counter dimension {dimension:?}")))?;
        typed.push((dimension, key, label, games));
    }
    ludex_domain::CatalogCounts::from_counters(typed).map_err(StoreError::Internal)
}

/// The catalog and the ledger of one store.
#[derive(Clone)]
pub struct Stores {
    pub catalog: Arc<dyn Catalog>,
    pub ledger: Arc<dyn Ledger>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error(
        "the store URL {0:?} is not supported by this build; use sqlite://PATH, \
         postgres://USER@HOST/DATABASE or dynamodb://TABLE"
    )]
    Unsupported(String),
    #[error("cannot open the store {url}: {source}")]
    Open {
        url: String,
        source: ludex_domain::StoreError,
    },
}

impl Stores {
    /// Both ports from one store that implements them.
    pub fn of<S: Catalog + Ledger + 'static>(store: S) -> Self {
        let store = Arc::new(store);
        Self {
            catalog: store.clone(),
            ledger: store,
        }
    }

    /// The embedded SQLite store in one file (created if needed).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: &std::path::Path) -> Result<Self, OpenStoreError> {
        let store = sqlite::SqliteStore::open(path).map_err(|source| OpenStoreError::Open {
            url: format!("sqlite://{}", path.display()),
            source,
        })?;
        Ok(Self::of(store))
    }
}

/// Opens the store a URL names, creating what it needs when missing: `sqlite://PATH`
/// (relative paths are relative to the working directory), `postgres://…` /
/// `postgresql://…` (libpq-style URL; the schema is migrated) or `dynamodb://TABLE`
/// (`?endpoint=URL` to use a local server; the table and its indexes are created).
pub async fn open(url: &str) -> Result<Stores, OpenStoreError> {
    open_with(url, Retention::default()).await
}

/// Opens a store like [`open`], keeping the history as `retention` says: DynamoDB applies it
/// as it files versions (TTL, and the versions past the count deleted); the SQL stores keep
/// everything until [`Catalog::prune_history`](ludex_domain::Catalog::prune_history) runs.
pub async fn open_with(url: &str, retention: Retention) -> Result<Stores, OpenStoreError> {
    Ok(init(url, retention).await?.0)
}

/// Opens a store like [`open_with`] and also tells what this call created: schema migrations,
/// or the DynamoDB table (`ludex init`).
pub async fn init(
    url: &str,
    retention: Retention,
) -> Result<(Stores, Vec<String>), OpenStoreError> {
    #[cfg(feature = "dynamodb")]
    if let Some(store) = dynamodb_store(url, retention).await? {
        let created = store
            .ensure_table()
            .await
            .map_err(|source| OpenStoreError::Open {
                url: url.to_owned(),
                source,
            })?;
        return Ok((Stores::of(store), created));
    }
    open_sql(url).await
}

/// Opens a store for the Lambda functions: a DynamoDB table is taken as it is, without a
/// single request (Terraform owns it). SQL stores are opened as by [`open`]: Terraform cannot
/// reach inside a database, so the embedded migrations run here, idempotent and under
/// sqlx's advisory lock (docs/postgres.md).
pub async fn connect(url: &str, retention: Retention) -> Result<Stores, OpenStoreError> {
    #[cfg(feature = "dynamodb")]
    if let Some(store) = dynamodb_store(url, retention).await? {
        return Ok(Stores::of(store));
    }
    Ok(open_sql(url).await?.0)
}

/// The DynamoDB store a `dynamodb://TABLE[?endpoint=URL]` URL names, or `None` for another
/// scheme.
#[cfg(feature = "dynamodb")]
async fn dynamodb_store(
    url: &str,
    retention: Retention,
) -> Result<Option<dynamodb::DynamoStore>, OpenStoreError> {
    let Some(rest) = url.strip_prefix("dynamodb://") else {
        return Ok(None);
    };
    let (table, endpoint) = match rest.split_once('?') {
        None => (rest, None),
        Some((table, params)) => match params.strip_prefix("endpoint=") {
            Some(endpoint) if !endpoint.contains('&') => (table, Some(endpoint)),
            _ => return Err(OpenStoreError::Unsupported(url.to_owned())),
        },
    };
    if table.is_empty() || table.contains('/') {
        return Err(OpenStoreError::Unsupported(url.to_owned()));
    }
    let config = crate::aws::sdk_config(endpoint).await;
    Ok(Some(
        dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table)
            .with_retention(retention),
    ))
}

async fn open_sql(url: &str) -> Result<(Stores, Vec<String>), OpenStoreError> {
    #[cfg(feature = "sqlite")]
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(std::path::Path::new(path)).map_err(|source| {
            OpenStoreError::Open {
                url: url.to_owned(),
                source,
            }
        })?;
        let applied = store.migrations_applied().to_vec();
        return Ok((Stores::of(store), applied));
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store =
            postgres::PostgresStore::open(url)
                .await
                .map_err(|source| OpenStoreError::Open {
                    url: redact(url),
                    source,
                })?;
        let applied = store.migrations_applied().to_vec();
        return Ok((Stores::of(store), applied));
    }
    Err(OpenStoreError::Unsupported(redact(url)))
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Full jitter: a random wait up to `backoff`, so that writers who met spread out.
pub(crate) fn jittered(backoff: std::time::Duration) -> std::time::Duration {
    let fraction = getrandom::u64().unwrap_or(u64::MAX / 2) as f64 / u64::MAX as f64;
    backoff.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let now = super::now_rfc3339();
        assert_eq!(now.len(), "2026-01-01T00:00:00.000Z".len(), "{now}");
        assert!(now.ends_with('Z'));
    }

    #[test]
    fn store_urls_lose_their_password_in_messages() {
        assert_eq!(
            super::redact("postgres://ludex:s3cret@db.example:5432/ludex?sslmode=require"),
            "postgres://ludex:***@db.example:5432/ludex?sslmode=require"
        );
        assert_eq!(
            super::redact("postgres://ludex@localhost/ludex"),
            "postgres://ludex@localhost/ludex"
        );
        assert_eq!(super::redact("sqlite://a/b.db"), "sqlite://a/b.db");
    }
}
