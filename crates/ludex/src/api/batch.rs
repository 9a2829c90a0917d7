//! `POST /games/batch`: up to [`MAX_OPERATIONS`] creates, replaces, patches and deletes in one
//! request, answered with one result per operation, in order, each with the status and body it
//! would have had as a request of its own. Operations are independent: one that fails (a 412, a
//! 422, a malformed operation) does not stop the others, and none is rolled back.

use super::error::{ApiError, ApiResult, Problem};
use super::extract::game_id;
use super::games::{
    Precondition, create_game, delete_game, object_fields, patch_game, read_json, replace_game,
};
use super::rate::ClientAddr;
use super::{AppState, CanWrite, json_response};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use ludex_domain::{Author, GameId, RecordFields, StoredGame};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::fmt;

/// Operations in one batch.
pub const MAX_OPERATIONS: usize = 1000;

/// The largest batch body: under the 6 MB a Lambda function may receive, so that a batch that
/// works with `ludex serve` works on AWS too.
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// Operations applied at once when no two of them name the same game and none creates one (a
/// create's id may come from its title); any other batch is applied one operation after
/// another, in order.
const CONCURRENCY: usize = 8;

/// The body: `{"operations": [...]}`, each operation kept as its JSON text until it is read on
/// its own, so that a malformed one fails alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<'a> {
    #[serde(borrow, deserialize_with = "at_most_max_operations")]
    operations: Vec<&'a RawValue>,
}

/// Reads the list of operations, refusing the batch at operation `MAX_OPERATIONS + 1` rather
/// than after reading them all.
fn at_most_max_operations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<&'de RawValue>, D::Error> {
    struct Bounded;
    impl<'de> Visitor<'de> for Bounded {
        type Value = Vec<&'de RawValue>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {MAX_OPERATIONS} operations")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut operations = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(operation) = seq.next_element()? {
                if operations.len() == MAX_OPERATIONS {
                    return Err(de::Error::custom(format!(
                        "a batch holds at most {MAX_OPERATIONS} operations"
                    )));
                }
                operations.push(operation);
            }
            Ok(operations)
        }
    }
    deserializer.deserialize_seq(Bounded)
}

/// One operation as sent; which fields it may have depends on `op` ([`RawOperation::check`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation<'a> {
    op: &'a str,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    if_match: Option<String>,
    #[serde(borrow, default)]
    game: Option<&'a RawValue>,
    #[serde(borrow, default)]
    patch: Option<&'a RawValue>,
}

impl RawOperation<'_> {
    /// Whether the operation has the fields its `op` needs and no other, with `game` and
    /// `patch` JSON objects: the shape the OpenAPI document gives it.
    fn check(&self) -> Result<(), String> {
        let (required, optional): (&[&str], &[&str]) = match self.op {
            "create" => (&["game"], &[]),
            "replace" => (&["id", "game"], &["if_match"]),
            "patch" => (&["id", "patch"], &["if_match"]),
            "delete" => (&["id"], &["if_match"]),
            other => {
                return Err(format!(
                    "\"op\" must be create, replace, patch or delete, not {other:?}"
                ));
            }
        };
        let given = [
            ("id", self.id.is_some()),
            ("if_match", self.if_match.is_some()),
            ("game", self.game.is_some()),
            ("patch", self.patch.is_some()),
        ];
        for (name, present) in given {
            if present && !required.contains(&name) && !optional.contains(&name) {
                return Err(format!("a {:?} operation takes no {name:?}", self.op));
            }
            if !present && required.contains(&name) {
                return Err(format!("a {:?} operation needs {name:?}", self.op));
            }
        }
        for (name, value) in [("game", self.game), ("patch", self.patch)] {
            if value.is_some_and(|v| !v.get().starts_with('{')) {
                return Err(format!("{name:?} must be a JSON object"));
            }
        }
        Ok(())
    }
}

/// An operation read and checked, ready to apply.
enum Operation {
    Create(RecordFields),
    Replace(GameId, Precondition, RecordFields),
    Patch(GameId, Precondition, RecordFields),
    Delete(GameId, Precondition),
}

impl Operation {
    /// The game an operation names, when it names one (a create's id may come from its title).
    fn target(&self) -> Option<&GameId> {
        match self {
            Self::Create(_) => None,
            Self::Replace(id, ..) | Self::Patch(id, ..) | Self::Delete(id, _) => Some(id),
        }
    }

    /// The operation of a well-formed [`RawOperation`], or the error its own request would
    /// have had (a malformed id, a game over the size limit).
    fn read(raw: &RawOperation<'_>, max_json_bytes: usize) -> ApiResult<Self> {
        let object = |value: Option<&RawValue>, name: &str| -> ApiResult<RecordFields> {
            let text = value.map_or("{}", RawValue::get);
            if text.len() > max_json_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "{name:?} is larger than the limit of {max_json_bytes} bytes"
                )));
            }
            object_fields(text.as_bytes())
        };
        let id = || game_id(raw.id.as_deref().unwrap_or_default());
        let precondition = || {
            raw.if_match
                .as_deref()
                .map(Precondition::parse)
                .unwrap_or_default()
        };
        Ok(match raw.op {
            "create" => Self::Create(object(raw.game, "game")?),
            "replace" => Self::Replace(id()?, precondition(), object(raw.game, "game")?),
            "patch" => Self::Patch(id()?, precondition(), object(raw.patch, "patch")?),
            _ => Self::Delete(id()?, precondition()),
        })
    }

    async fn apply(
        self,
        state: &AppState,
        author: &Author,
    ) -> ApiResult<(StatusCode, Option<StoredGame>)> {
        Ok(match self {
            Self::Create(fields) => (
                StatusCode::CREATED,
                Some(create_game(state, author, fields).await?),
            ),
            Self::Replace(id, precondition, fields) => (
                StatusCode::OK,
                Some(replace_game(state, author, &id, &precondition, fields).await?),
            ),
            Self::Patch(id, precondition, patch) => (
                StatusCode::OK,
                Some(patch_game(state, author, &id, &precondition, &patch).await?),
            ),
            Self::Delete(id, precondition) => {
                delete_game(state, author, &id, &precondition).await?;
                (StatusCode::NO_CONTENT, None)
            }
        })
    }
}

/// One operation's outcome, as its own request would have had it.
#[derive(Serialize)]
struct Outcome {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    game: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<Problem>,
}

impl Outcome {
    fn of(result: ApiResult<(StatusCode, Option<StoredGame>)>) -> Self {
        match result {
            Ok((status, stored)) => Self {
                status: status.as_u16(),
                // A stored game's JSON is always valid JSON.
                game: stored.and_then(|s| RawValue::from_string(s.to_json()).ok()),
                problem: None,
            },
            Err(error) => {
                let (problem, _, _) = error.problem();
                Self {
                    status: problem.status,
                    game: None,
                    problem: Some(problem),
                }
            }
        }
    }
}

#[derive(Serialize)]
struct Results {
    results: Vec<Outcome>,
}

#[utoipa::path(post, path = "/games/batch", operation_id = "batch_games", tag = "games",
    request_body(content = super::openapi::BatchRequest, content_type = "application/json"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One result per operation, in order, with the status each would have had alone", body = super::openapi::BatchResults),
        (status = 400, description = "Not JSON, not a batch, or more than 1,000 operations", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 5 MiB", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "More operations than the key's writes left this minute", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn apply(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    address: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let json = (&["application/json"][..], "the batch");
    let bytes = read_json(&headers, body, MAX_BATCH_BYTES, json).await?;
    let batch: Batch<'_> = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("not a batch: {e}")))?;
    // A malformed operation makes a malformed request: refused whole, before anything is
    // written. What is left to fail is each operation's own business.
    let mut raw = Vec::with_capacity(batch.operations.len());
    for (i, text) in batch.operations.iter().enumerate() {
        let operation: RawOperation<'_> = serde_json::from_str(text.get())
            .map_err(|e| ApiError::bad_request(format!("operations[{i}]: {e}")))?;
        operation
            .check()
            .map_err(|reason| ApiError::bad_request(format!("operations[{i}]: {reason}")))?;
        raw.push(operation);
    }
    // The request itself counted as one write; each further operation counts as another.
    state.config.rate_limiters.admit_more(
        &headers,
        address.map(|Extension(a)| a),
        raw.len().saturating_sub(1),
    )?;
    let max = state.config.max_json_bytes;
    let operations: Vec<ApiResult<Operation>> =
        raw.iter().map(|r| Operation::read(r, max)).collect();
    let mut targets = HashSet::new();
    let distinct = operations
        .iter()
        .filter_map(|o| o.as_ref().ok().and_then(Operation::target))
        .all(|id| targets.insert(id.clone()))
        && !operations
            .iter()
            .any(|o| matches!(o, Ok(Operation::Create(_))));
    let concurrency = if distinct { CONCURRENCY } else { 1 };
    let results = futures::stream::iter(operations)
        .map(|operation| {
            let (state, author) = (&state, &author);
            async move {
                match operation {
                    Ok(operation) => Outcome::of(operation.apply(state, author).await),
                    Err(error) => Outcome::of(Err(error)),
                }
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let body = serde_json::to_string(&Results { results })
        .map_err(|e| ApiError::Internal(format!("serialising batch results: {e}")))?;
    Ok(json_response(StatusCode::OK, body))
}
