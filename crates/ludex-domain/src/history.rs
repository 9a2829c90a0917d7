//! The history of a game: every version it had, who wrote it and when, so that any change can
//! be seen and undone.
//!
//! Stores keep what each change replaced: an update or a delete files the version it replaces
//! (its content, author and time) under the game's id and that version; a delete also files a
//! version of its own, with no content, that says who deleted the game and when. Creating a game
//! files nothing (the new game is its own first version), so a first ingest pays nothing for
//! history.

use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;

/// Who wrote a version: the name of an API key (a UI session is its key's), or an ingest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Author {
    /// A write through the API or the web UI with this key.
    Key { name: String },
    /// A record of the upload ingested under this ledger id.
    Ingest { id: String },
}

impl Author {
    pub fn key(name: impl Into<String>) -> Self {
        Self::Key { name: name.into() }
    }

    pub fn ingest(id: impl fmt::Display) -> Self {
        Self::Ingest { id: id.to_string() }
    }

    /// The author as stores keep it: `key:NAME` or `ingest:ID`.
    pub fn to_text(&self) -> String {
        match self {
            Self::Key { name } => format!("key:{name}"),
            Self::Ingest { id } => format!("ingest:{id}"),
        }
    }

    /// What [`Author::to_text`] wrote; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Self> {
        match text.split_once(':')? {
            ("key", name) => Some(Self::key(name)),
            ("ingest", id) => Some(Self::ingest(id)),
            _ => None,
        }
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key { name } => write!(f, "key {name}"),
            Self::Ingest { id } => write!(f, "ingest {id}"),
        }
    }
}

/// One version of a game as its history keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GameVersion {
    pub version: u64,
    /// When the version was written (RFC 3339 UTC).
    pub changed_at: String,
    /// `None` for versions written before history was kept.
    pub author: Option<Author>,
    /// The game's canonical document at this version; `None` when this version deleted it.
    pub content: Option<String>,
}

/// A page of a game's history, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub limit: u32,
    /// Versions older than this one (the `next_cursor` of the previous page).
    pub before: Option<u64>,
}

impl HistoryQuery {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;
}

/// How much of the history is kept: every version (the default); the newest `versions` filed
/// versions of each game; the versions replaced less than `days` ago. With both, a version goes
/// as soon as either lets it go. A game's current version is never pruned, nor the newest
/// filed one of a deleted game (its deletion), which says who deleted it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub versions: Option<u32>,
    pub days: Option<u32>,
}

impl Retention {
    pub fn keeps_all(&self) -> bool {
        self.versions.is_none() && self.days.is_none()
    }

    /// The time before which a version must have been replaced to go: `now` less `days`,
    /// written as the stores write times (RFC 3339 UTC with milliseconds).
    pub fn replaced_before(&self, now: time::OffsetDateTime) -> Option<String> {
        let days = self.days?;
        let cutoff = now - time::Duration::days(i64::from(days));
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        cutoff.format(format).ok()
    }
}

/// A stored version's JSON text with its top-level members read, so that a page of versions
/// reads each document once although each serves two changes (its own and the next one's).
#[derive(Debug)]
pub struct StoredDocument<'a> {
    text: &'a str,
    /// `None` for a value that is not an object.
    members: Option<BTreeMap<String, &'a RawValue>>,
}

impl<'a> StoredDocument<'a> {
    /// Reads the top-level members of `text` (an error when it is not JSON).
    pub fn parse(text: &'a str) -> serde_json::Result<Self> {
        let members = if text.trim_start().starts_with('{') {
            Some(serde_json::from_str(text)?)
        } else {
            None
        };
        Ok(Self { text, members })
    }

    /// The JSON Merge Patch (RFC 7396) that turns `before` into this document (`None`: from
    /// nothing, so the whole document): members that changed or appeared with their new value
    /// (objects patched member by member), members that went as `null`; between two values
    /// that are not both objects, this one itself. Computed on the members' text, without
    /// building JSON values: two members are the same when they are written the same, which
    /// for documents a store wrote (canonical JSON) is when their values are.
    pub fn merge_patch_from(
        &self,
        before: Option<&StoredDocument<'_>>,
    ) -> serde_json::Result<Box<RawValue>> {
        let mut patch = String::with_capacity(self.text.len() / 2 + 16);
        match before {
            Some(before) => write_patch(before, self, &mut patch)?,
            None => patch.push_str(self.text.trim()),
        }
        RawValue::from_string(patch)
    }
}

fn write_patch(
    before: &StoredDocument<'_>,
    after: &StoredDocument<'_>,
    out: &mut String,
) -> serde_json::Result<()> {
    let (Some(old), Some(new)) = (&before.members, &after.members) else {
        out.push_str(after.text.trim());
        return Ok(());
    };
    out.push('{');
    let mut first = true;
    let mut name = |out: &mut String, key: &str| -> serde_json::Result<()> {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::to_string(key)?);
        out.push(':');
        Ok(())
    };
    for (key, was) in old {
        match new.get(key) {
            None => {
                name(out, key)?;
                out.push_str("null");
            }
            Some(is) if is.get() != was.get() => {
                name(out, key)?;
                let (was, is) = (
                    StoredDocument::parse(was.get())?,
                    StoredDocument::parse(is.get())?,
                );
                write_patch(&was, &is, out)?;
            }
            Some(_) => {}
        }
    }
    for (key, is) in new {
        if !old.contains_key(key) {
            name(out, key)?;
            out.push_str(is.get());
        }
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordFields;
    use serde_json::{Value, json};

    /// `before` with `patch` applied as the catalog applies patches.
    fn patched(before: &Value, patch: &Value) -> Value {
        let fields = |v: &Value| RecordFields::parse(v.to_string().as_bytes()).unwrap();
        let mut merged = fields(before);
        merged.merge_patch(&fields(patch));
        let mut object = merged.known;
        for (key, value) in merged.extra {
            object.insert(key, serde_json::from_str(value.get()).unwrap());
        }
        Value::Object(object)
    }

    #[test]
    fn a_patch_between_two_documents_turns_one_into_the_other() {
        let cases = [
            (json!({}), json!({"title": "A", "tags": ["x"]})),
            (
                json!({"title": "A", "rating": 5, "extra": {"a": 1, "b": [1]}, "x": 1}),
                json!({"title": "B", "extra": {"a": 1, "c": 2}, "genres": ["RPG"], "x": [1]}),
            ),
            (json!({"title": "A"}), json!({"title": "A"})),
        ];
        let patch_of = |before: &Value, after: &Value| -> Value {
            let (before, after) = (before.to_string(), after.to_string());
            let before = StoredDocument::parse(&before).unwrap();
            let text = StoredDocument::parse(&after)
                .unwrap()
                .merge_patch_from(Some(&before))
                .unwrap();
            serde_json::from_str(text.get()).unwrap()
        };
        for (before, after) in cases {
            let patch = patch_of(&before, &after);
            assert_eq!(
                patched(&before, &patch),
                after,
                "{before} -> {after} by {patch}"
            );
        }
        assert_eq!(
            patch_of(&json!({"a": 1, "b": 2}), &json!({"a": 1, "c": 3})),
            json!({"b": null, "c": 3})
        );
        let whole = StoredDocument::parse(r#" {"title":"A","x":[1]}"#)
            .unwrap()
            .merge_patch_from(None)
            .unwrap();
        assert_eq!(
            whole.get(),
            r#"{"title":"A","x":[1]}"#,
            "from nothing: the document"
        );
        assert!(StoredDocument::parse("{not json").is_err());
    }

    #[test]
    fn authors_read_back_as_written() {
        for author in [Author::key("alice:ops"), Author::ingest("uploads/a.csv#1")] {
            assert_eq!(Author::from_text(&author.to_text()), Some(author));
        }
        assert_eq!(Author::from_text("someone"), None);
    }
}
