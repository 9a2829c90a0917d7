//! Catalog and ledger adapters, chosen by a URL-shaped setting.

pub mod cursor;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use ludex_domain::{Catalog, Ledger};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const RFC3339_MILLIS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The current time as the stores write it: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(RFC3339_MILLIS)
        .unwrap_or_default()
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
        "the store URL {0:?} is not supported; use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    Unsupported(String),
    #[error("cannot open the store {url}: {source}")]
    Open {
        url: String,
        source: ludex_domain::StoreError,
    },
}

impl Stores {
    /// The embedded SQLite store in one file (created if needed).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: &std::path::Path) -> Result<Self, OpenStoreError> {
        let store = sqlite::SqliteStore::open(path).map_err(|source| OpenStoreError::Open {
            url: format!("sqlite://{}", path.display()),
            source,
        })?;
        let store = Arc::new(store);
        Ok(Self {
            catalog: store.clone(),
            ledger: store,
        })
    }
}

/// Opens the store a URL names: `sqlite://PATH` (relative paths are relative to the working
/// directory) or `postgres://…` / `postgresql://…` (libpq-style URL; the schema is migrated).
pub async fn open(url: &str) -> Result<Stores, OpenStoreError> {
    Ok(init(url).await?.0)
}

/// Opens a store like [`open`] and also tells which schema migrations this call applied
/// (`ludex init`).
pub async fn init(url: &str) -> Result<(Stores, Vec<String>), OpenStoreError> {
    #[cfg(feature = "sqlite")]
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(std::path::Path::new(path)).map_err(|source| {
            OpenStoreError::Open {
                url: url.to_owned(),
                source,
            }
        })?;
        let applied = store.migrations_applied().to_vec();
        let store = Arc::new(store);
        return Ok((
            Stores {
                catalog: store.clone(),
                ledger: store,
            },
            applied,
        ));
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
        let store = Arc::new(store);
        return Ok((
            Stores {
                catalog: store.clone(),
                ledger: store,
            },
            applied,
        ));
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
