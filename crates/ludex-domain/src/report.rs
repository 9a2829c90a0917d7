//! What an ingest tells its caller and keeps in the ledger: rejects with their positions, and
//! one [`IngestRecord`] per distinct upload (key + content fingerprint).

use crate::game::FieldError;
use crate::upload::Position;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One record that did not land, with where it was and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    #[serde(flatten)]
    pub position: Position,
    /// The record's id when it had a readable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.position)?;
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    /// Stored in the bucket's uploads and waiting for the ingest to pick it up.
    Queued,
    /// Started and not finished: still running, or the process died (a rerun completes it).
    Running,
    /// Every record landed.
    Succeeded,
    /// Some records landed, some were rejected.
    PartiallyFailed,
    /// The file could not be read as a whole, or no record landed.
    Failed,
}

impl IngestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::PartiallyFailed => "partially_failed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::PartiallyFailed,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Whether the ingest has ended (well or not); queued and running ones have not.
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The status a finished ingest ends with.
    pub fn finished(accepted: u64, rejected: u64, file_error: bool) -> Self {
        match (file_error, accepted, rejected) {
            (true, _, _) => Self::Failed,
            (false, _, 0) => Self::Succeeded,
            (false, 0, _) => Self::Failed,
            (false, _, _) => Self::PartiallyFailed,
        }
    }
}

impl fmt::Display for IngestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one ingest of an upload key: the content it brought and the entry it follows. A
/// replay of what the key last brought finds that entry again; content the key had before
/// (A → B → A) is a new entry, because it follows another one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IngestId(String);

impl IngestId {
    pub fn for_upload(key: &str, fingerprint: &str) -> Self {
        Self::of(&[key, fingerprint])
    }

    /// The first 20 hex digits of the BLAKE3 hash of `parts`, one per line.
    fn of(parts: &[&str]) -> Self {
        let mut hasher = blake3::Hasher::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                hasher.update(b"\n");
            }
            hasher.update(part.as_bytes());
        }
        Self(hasher.finalize().to_hex()[..Self::DIGITS].to_owned())
    }

    /// The entry an upload of `fingerprint` under `key`, read as `mapping` tells
    /// ([`UploadOptions::reading`](crate::upload::UploadOptions::reading); `None`: as it was
    /// before, or plainly), belongs to, given the key's newest entry:
    /// that entry when it holds the same content read the same way (a replay, or a retry of an
    /// ingest that did not finish), else a new one that follows it. A key's first entry without
    /// a mapping has the id [`for_upload`](Self::for_upload) gives, as entries written before
    /// this rule have.
    pub fn for_upload_after(
        key: &str,
        fingerprint: &str,
        mapping: Option<&str>,
        latest: Option<&IngestRecord>,
    ) -> Self {
        let same_reading = |latest: &IngestRecord| {
            latest.fingerprint == fingerprint
                && mapping.is_none_or(|m| latest.reading().as_deref() == Some(m))
        };
        match (latest, mapping) {
            (None, None) => Self::for_upload(key, fingerprint),
            (None, Some(mapping)) => Self::of(&[key, fingerprint, mapping]),
            (Some(latest), _) if same_reading(latest) => latest.id.clone(),
            (Some(latest), mapping) => Self::of(&[
                key,
                fingerprint,
                latest.id.as_str(),
                mapping.unwrap_or_default(),
            ]),
        }
    }

    /// The entry of the revert of `entry`: one per entry, so that a revert run again (after an
    /// interruption) goes on with the same entry, and its writes have the same author.
    pub fn revert_of(entry: &IngestId) -> Self {
        Self::of(&["revert", entry.as_str()])
    }

    /// The number of lowercase hex digits of an id.
    pub const DIGITS: usize = 20;

    /// The pattern [`IngestId::parse`] checks.
    pub fn pattern() -> String {
        format!("^[0-9a-f]{{{}}}$", Self::DIGITS)
    }

    /// Checks an id given by a client (20 lowercase hex digits).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() == Self::DIGITS && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "{raw:?} is not an ingest id ({} hexadecimal digits)",
                Self::DIGITS
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IngestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One ledger entry: what happened to one upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestRecord {
    pub id: IngestId,
    /// The bucket key of the upload (`uploads/…`), or `file://…` for a local file.
    pub key: String,
    pub size: u64,
    /// A hash of the content: the bucket's ETag where it is content-derived, else BLAKE3.
    pub fingerprint: String,
    pub status: IngestStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Records that landed: new, changed, or identical to what was stored.
    pub accepted: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// The bucket key of the rejects report, when anything was rejected.
    pub rejects_key: Option<String>,
    /// Why the file failed as a whole, or why the ingest was interrupted.
    pub error: Option<String>,
    /// True when the ingest was interrupted by a fault of the store or bucket rather than by
    /// the file: replaying the same upload then runs it again instead of reporting this entry.
    #[serde(default)]
    pub retryable: bool,
    /// The attempt running the ingest now, while it runs: no other attempt takes the upload
    /// before the lease expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The column mapping a CSV upload was read with (`Name=title,Systems=platforms`), when one
    /// was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    /// True when the upload's records were merged into existing games instead of replacing
    /// them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge: bool,
    /// On the entry of a revert: the entry whose writes it undoes. A revert's `inserted` are
    /// the games it brought back, `updated` the games it put back to their content before, and
    /// `deleted` the games it deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_of: Option<IngestId>,
    /// Who asked for a revert: `key:NAME`, or `cli` for the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Games a revert deleted: those its upload had created.
    #[serde(default)]
    pub deleted: u64,
    /// Games a revert left as they are because someone changed them after its upload did.
    #[serde(default)]
    pub conflicts: u64,
}

/// Who runs an upload's ingest, and until when unless they renew it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The attempt: host, process and a random part, as its logs name it.
    pub holder: String,
    /// RFC 3339 UTC with milliseconds, so that it sorts as time.
    pub until: String,
}

/// How an upload is read and applied, as one text (`Name=title,Notes= (merge)`): `None` for
/// the plain reading. Two entries of one file read differently have different ids.
pub fn reading_of(mapping: Option<&str>, merge: bool) -> Option<String> {
    match (mapping, merge) {
        (None, false) => None,
        (mapping, merge) => Some(format!(
            "{}{}",
            mapping.unwrap_or_default(),
            if merge { " (merge)" } else { "" }
        )),
    }
}

impl IngestRecord {
    /// How the entry's upload was read and applied ([`reading_of`]).
    pub fn reading(&self) -> Option<String> {
        reading_of(self.mapping.as_deref(), self.merge)
    }

    /// The entry of an upload that has not produced an outcome yet: nothing counted, nothing
    /// finished.
    pub fn new(
        id: IngestId,
        key: String,
        size: u64,
        fingerprint: String,
        status: IngestStatus,
        started_at: String,
    ) -> Self {
        Self {
            id,
            key,
            size,
            fingerprint,
            status,
            started_at,
            finished_at: None,
            accepted: 0,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            rejected: 0,
            rejects_key: None,
            error: None,
            retryable: false,
            lease: None,
            mapping: None,
            merge: false,
            revert_of: None,
            requested_by: None,
            deleted: 0,
            conflicts: 0,
        }
    }

    /// Whether a replay of the upload has nothing left to do: the ingest ended, and not by a
    /// fault of the machinery.
    pub fn is_settled(&self) -> bool {
        self.status.is_finished() && !self.retryable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_serialise_with_their_position_flattened() {
        let reject = Reject {
            position: Position::Line(3),
            id: Some("g1".into()),
            errors: vec![FieldError::field("rating", "11.5 is above the maximum 10")],
        };
        let json = serde_json::to_string(&reject).unwrap();
        assert_eq!(
            json,
            r#"{"line":3,"id":"g1","errors":[{"field":"rating","reason":"11.5 is above the maximum 10"}]}"#
        );
        assert_eq!(serde_json::from_str::<Reject>(&json).unwrap(), reject);
        assert_eq!(
            reject.to_string(),
            "line 3: rating: 11.5 is above the maximum 10"
        );
    }

    #[test]
    fn status_follows_the_counts() {
        assert_eq!(IngestStatus::finished(5, 0, false), IngestStatus::Succeeded);
        assert_eq!(
            IngestStatus::finished(5, 1, false),
            IngestStatus::PartiallyFailed
        );
        assert_eq!(IngestStatus::finished(0, 1, false), IngestStatus::Failed);
        assert_eq!(IngestStatus::finished(0, 0, false), IngestStatus::Succeeded);
        assert_eq!(IngestStatus::finished(5, 0, true), IngestStatus::Failed);
    }

    #[test]
    fn ingest_ids_depend_on_key_and_content() {
        let a = IngestId::for_upload("uploads/a.json", "f1");
        assert_eq!(a, IngestId::for_upload("uploads/a.json", "f1"));
        assert_ne!(a, IngestId::for_upload("uploads/a.json", "f2"));
        assert_ne!(a, IngestId::for_upload("uploads/b.json", "f1"));
        assert_eq!(IngestId::parse(a.as_str()).unwrap(), a);
        assert!(IngestId::parse("nope").is_err());
    }

    #[test]
    fn content_a_key_had_before_is_a_new_entry_and_its_replay_is_not() {
        let key = "uploads/a.json";
        let entry = |id: &IngestId, fingerprint: &str| {
            IngestRecord::new(
                id.clone(),
                key.into(),
                1,
                fingerprint.into(),
                IngestStatus::Succeeded,
                "2026-01-01T00:00:00.000Z".into(),
            )
        };
        let a = IngestId::for_upload_after(key, "fa", None, None);
        assert_eq!(a, IngestId::for_upload(key, "fa"));
        let a_entry = entry(&a, "fa");
        assert_eq!(
            IngestId::for_upload_after(key, "fa", None, Some(&a_entry)),
            a
        );
        let b = IngestId::for_upload_after(key, "fb", None, Some(&a_entry));
        assert_ne!(b, IngestId::for_upload(key, "fb"));
        let b_entry = entry(&b, "fb");
        let a_again = IngestId::for_upload_after(key, "fa", None, Some(&b_entry));
        assert_ne!(a_again, a, "A after B follows B");
        assert_eq!(
            IngestId::for_upload_after(key, "fa", None, Some(&entry(&a_again, "fa"))),
            a_again
        );
    }

    #[test]
    fn the_same_content_read_with_another_mapping_is_a_new_entry() {
        let key = "uploads/a.csv";
        let read_as = |mapping: Option<&str>| IngestRecord {
            mapping: mapping.map(str::to_owned),
            ..IngestRecord::new(
                IngestId::for_upload_after(key, "fa", mapping, None),
                key.into(),
                1,
                "fa".into(),
                IngestStatus::Failed,
                "2026-01-01T00:00:00.000Z".into(),
            )
        };
        let plain = read_as(None);
        let mapped = IngestId::for_upload_after(key, "fa", Some("Game=title"), Some(&plain));
        assert_ne!(mapped, plain.id, "a mapping reads the file anew");
        let mapped_entry = IngestRecord {
            id: mapped.clone(),
            ..read_as(Some("Game=title"))
        };
        assert_eq!(
            IngestId::for_upload_after(key, "fa", Some("Game=title"), Some(&mapped_entry)),
            mapped,
            "the same mapping again is a replay"
        );
        assert_eq!(
            IngestId::for_upload_after(key, "fa", None, Some(&mapped_entry)),
            mapped,
            "no mapping: read as the entry was (the watcher picking up a queued upload)"
        );
        assert_ne!(
            IngestId::for_upload_after(key, "fa", Some("Game=title,X="), Some(&mapped_entry)),
            mapped
        );
    }
}
