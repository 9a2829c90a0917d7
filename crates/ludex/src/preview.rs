//! Dry runs: what an ingest of an upload would do — new, changed, unchanged and rejected
//! records, and the field-level differences of the changed ones — found by the same parser
//! and validation as [`crate::ingest`], without writing anything: no game, no ledger entry, no
//! rejects report.
//!
//! Each valid record is compared with the stored game of its id (read in batches, a few at a
//! time). Ids seen earlier in the file are rejected as the ingest rejects them, so the ids of
//! the file are kept in memory while it is read: about 50 bytes a record.

use crate::ingest::{IngestConfig, IngestError, Item, Parser, duplicate, merge_batch, read_stored};
use crate::store::Stores;
use ludex_domain::report::Reject;
use ludex_domain::upload::{Position, UploadError, UploadOptions};
use ludex_domain::{GameId, RecordFields, StagedGame};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

/// Changed records and rejects listed in a preview; all are counted.
pub const SHOWN: usize = 100;

/// What an ingest would do.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// Records read, good or bad.
    pub records: u64,
    /// Valid records whose id is not in the catalog.
    pub new: u64,
    /// Valid records that would change their game.
    pub changed: u64,
    /// Valid records equal to their stored game.
    pub unchanged: u64,
    pub rejected: u64,
    /// The first [`SHOWN`] changed records with their differences, in file order.
    pub changes: Vec<Change>,
    /// The first [`SHOWN`] rejects, in file order.
    #[schema(value_type = Vec<crate::api::openapi::RejectDoc>)]
    pub rejects: Vec<Reject>,
    /// Why the file could not be read to its end, if it could not (records before that count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A record that would change a stored game: its id and where it is in the file (`line`, or
/// `index` in a JSON array).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub id: String,
    #[serde(flatten)]
    #[schema(value_type = crate::api::openapi::PositionDoc)]
    pub position: Position,
    /// The stored game's version the change would replace.
    pub version: u64,
    pub fields: Vec<FieldChange>,
}

/// One field's value before and after; absent (`null` in JSON) when the field is not there.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub field: String,
    #[schema(value_type = Option<serde_json::Value>)]
    pub from: Option<Box<RawValue>>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub to: Option<Box<RawValue>>,
}

/// What `POST /uploads?dry_run=true` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// Always true: nothing was written.
    pub dry_run: bool,
    pub preview: Preview,
}

/// Reads `reader` as an upload and tells what ingesting it into `stores` would do.
pub async fn preview(
    stores: &Stores,
    reader: Box<dyn Read + Send>,
    config: IngestConfig,
    options: UploadOptions,
) -> Result<Preview, IngestError> {
    let merge = options.merge;
    let Parser {
        mut rx,
        thread,
        meter,
    } = Parser::start(reader, config, options);
    let mut preview = Preview::default();
    let mut seen: HashMap<GameId, Position> = HashMap::new();
    let compared = async {
        while let Some(batch) = rx.recv().await {
            let batch = if merge {
                merge_batch(stores, batch).await?
            } else {
                batch
            };
            let mut valid: Vec<StagedGame> = Vec::with_capacity(batch.len());
            let mut slots: Vec<Result<usize, Reject>> = Vec::with_capacity(batch.len());
            for item in batch {
                match item {
                    Item::Valid(game) => match seen.get(&game.game.id) {
                        Some(first) => {
                            slots.push(Err(duplicate(game.position, &game.game.id, *first)));
                        }
                        None => {
                            seen.insert(game.game.id.clone(), game.position);
                            slots.push(Ok(valid.len()));
                            valid.push(game);
                        }
                    },
                    Item::Rejected(reject) => slots.push(Err(*reject)),
                    Item::Patch(patch) => slots.push(Err(patch.unmerged())),
                }
            }
            let ids = valid.iter().map(|g| g.game.id.clone()).collect();
            let stored = read_stored(stores, ids).await?;
            for slot in slots {
                preview.records += 1;
                match slot {
                    Err(reject) => {
                        preview.rejected += 1;
                        if preview.rejects.len() < SHOWN {
                            preview.rejects.push(reject);
                        }
                    }
                    Ok(i) => match (&valid[i], &stored[i]) {
                        (_, None) => preview.new += 1,
                        (game, Some(current)) if game.content == current.content => {
                            preview.unchanged += 1;
                        }
                        (game, Some(current)) => {
                            preview.changed += 1;
                            if preview.changes.len() < SHOWN {
                                preview.changes.push(Change {
                                    id: game.game.id.to_string(),
                                    position: game.position,
                                    version: current.version,
                                    fields: differences(&current.content, &game.content),
                                });
                            }
                        }
                    },
                }
            }
        }
        Ok::<(), IngestError>(())
    }
    .await;
    drop(rx);
    let (parsed, _) = thread
        .await
        .map_err(|e| IngestError::Parser(e.to_string()))?;
    compared?;
    let broken = meter.broken.lock().ok().and_then(|mut b| b.take());
    if let Some(reason) = broken {
        return Err(IngestError::Bucket(crate::bucket::BucketError::Io(
            std::io::Error::other(format!("reading the upload failed: {reason}")),
        )));
    }
    match parsed {
        Ok(_) => {}
        Err(UploadError::File(e)) => preview.error = Some(e.to_string()),
        Err(UploadError::Stopped) => {
            return Err(IngestError::Parser("the record channel closed".into()));
        }
    }
    Ok(preview)
}

/// The fields whose values differ between two stored documents, in field-name order, each
/// value as its JSON text.
fn differences(before: &str, after: &str) -> Vec<FieldChange> {
    let values = |content: &str| -> BTreeMap<String, String> {
        let Ok(RecordFields { known, extra }) = RecordFields::parse(content.as_bytes()) else {
            return BTreeMap::new();
        };
        known
            .into_iter()
            .map(|(field, value)| (field, value.to_string()))
            .chain(
                extra
                    .into_iter()
                    .map(|(field, value)| (field, value.get().to_owned())),
            )
            .collect()
    };
    let (mut before, mut after) = (values(before), values(after));
    let fields: BTreeSet<String> = before.keys().chain(after.keys()).cloned().collect();
    let raw = |text: Option<String>| text.and_then(|t| RawValue::from_string(t).ok());
    fields
        .into_iter()
        .filter_map(|field| {
            let (from, to) = (before.remove(&field), after.remove(&field));
            (from != to).then(|| FieldChange {
                field,
                from: raw(from),
                to: raw(to),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::differences;

    #[test]
    fn differences_name_changed_added_and_removed_fields_with_exact_values() {
        let changes = differences(
            r#"{"title":"Hades","rating":9.0,"tags":["roguelike"],"big":18446744073709551616}"#,
            r#"{"title":"Hades","rating":9.5,"developer":"Supergiant","big":18446744073709551616}"#,
        );
        let shown: Vec<(String, Option<String>, Option<String>)> = changes
            .iter()
            .map(|c| {
                (
                    c.field.clone(),
                    c.from.as_ref().map(|v| v.get().to_owned()),
                    c.to.as_ref().map(|v| v.get().to_owned()),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("developer".into(), None, Some("\"Supergiant\"".into())),
                ("rating".into(), Some("9.0".into()), Some("9.5".into())),
                ("tags".into(), Some("[\"roguelike\"]".into()), None),
            ]
        );
    }
}
