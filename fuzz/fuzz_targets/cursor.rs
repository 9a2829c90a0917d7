//! A listing query as anyone may send it: search words, platform, genre and cursor, one per
//! line of the input. Bounding the query and decoding its cursor must not panic. When the
//! cursor line is a JSON array `[sort value, id]`, the cursor made of it must decode back to
//! the same place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ludex_domain::{ListQuery, cursor};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(4, '\n').map(|s| Some(s.to_owned()));
    let query = ListQuery {
        q: parts.next().flatten(),
        platform: parts.next().flatten(),
        genre: parts.next().flatten(),
        cursor: parts.next().flatten(),
        ..ListQuery::default()
    };
    let _ = cursor::decode_ledger(query.cursor.as_deref());
    let Ok(query) = query.bounded() else {
        return;
    };
    let _ = cursor::decode(&query);
    let Some(Ok((value, id))) = query.cursor.as_deref().map(serde_json::from_str) else {
        return;
    };
    let after = cursor::After { value, id };
    let again = ListQuery {
        cursor: Some(cursor::encode(&query, after.clone())),
        ..query
    };
    assert_eq!(cursor::decode(&again).ok().flatten(), Some(after));
});
