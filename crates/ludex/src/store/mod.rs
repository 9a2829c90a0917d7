//! Catalog and ledger adapters, chosen by a URL-shaped setting.

pub mod cursor;
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
    #[error("the store URL {0:?} is not supported; use sqlite://PATH")]
    Unsupported(String),
    #[error("cannot open the store {url}: {source}")]
    Open {
        url: String,
        source: ludex_domain::StoreError,
    },
}

/// Opens the store a URL names: `sqlite://PATH` (relative paths are relative to the working
/// directory).
pub fn open(url: &str) -> Result<Stores, OpenStoreError> {
    #[cfg(feature = "sqlite")]
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(std::path::Path::new(path)).map_err(|source| {
            OpenStoreError::Open {
                url: url.to_owned(),
                source,
            }
        })?;
        let store = Arc::new(store);
        return Ok(Stores {
            catalog: store.clone(),
            ledger: store,
        });
    }
    Err(OpenStoreError::Unsupported(url.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let now = super::now_rfc3339();
        assert_eq!(now.len(), "2026-01-01T00:00:00.000Z".len(), "{now}");
        assert!(now.ends_with('Z'));
    }
}
