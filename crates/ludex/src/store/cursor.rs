//! Opaque keyset cursors shared by the SQL adapters: the sort key and id of the last item of a
//! page, bound to the sort and filters of the query that produced it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ludex_domain::{ListQuery, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the next page starts: after the item with this sort value and id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct After {
    pub value: Value,
    pub id: String,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Fingerprint of the sort and filters.
    q: String,
    v: Value,
    id: String,
}

/// A short fingerprint of everything in the query except the page itself.
fn query_fingerprint(query: &ListQuery) -> String {
    let scope = ListQuery {
        limit: 0,
        cursor: None,
        ..query.clone()
    };
    blake3::hash(format!("{scope:?}").as_bytes()).to_hex()[..16].to_owned()
}

pub fn encode(query: &ListQuery, after: After) -> String {
    let wire = Wire {
        q: query_fingerprint(query),
        v: after.value,
        id: after.id,
    };
    // A struct of strings and JSON values always serialises.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// Decodes the query's cursor, refusing one that is malformed or was made for another query.
pub fn decode(query: &ListQuery) -> Result<Option<After>, StoreError> {
    let Some(raw) = &query.cursor else {
        return Ok(None);
    };
    let bad = || StoreError::InvalidCursor("it is not a cursor this service issued".into());
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if wire.q != query_fingerprint(query) {
        return Err(StoreError::InvalidCursor(
            "it was issued for a different sort or filters".into(),
        ));
    }
    Ok(Some(After {
        value: wire.v,
        id: wire.id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ludex_domain::Sort;

    #[test]
    fn a_cursor_round_trips_and_is_bound_to_its_query() {
        let query = ListQuery {
            platform: Some("pc".into()),
            limit: 20,
            ..ListQuery::default()
        };
        let after = After {
            value: Value::from("doom"),
            id: "doom-1993".into(),
        };
        let cursor = encode(&query, after.clone());
        let next = ListQuery {
            cursor: Some(cursor.clone()),
            limit: 50,
            ..query.clone()
        };
        assert_eq!(decode(&next).unwrap(), Some(after));
        let other = ListQuery {
            sort: Sort::parse("-rating").unwrap(),
            ..next.clone()
        };
        assert!(matches!(decode(&other), Err(StoreError::InvalidCursor(_))));
        let garbage = ListQuery {
            cursor: Some("not-a-cursor!".into()),
            ..query
        };
        assert!(matches!(
            decode(&garbage),
            Err(StoreError::InvalidCursor(_))
        ));
    }
}
