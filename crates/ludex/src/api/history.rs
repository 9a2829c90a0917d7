//! `/games/{id}/history` and `/games/{id}/restore`: every version of a game, and any of them
//! made current again.

use super::error::{ApiError, ApiResult};
use super::extract::{GamePath, Query};
use super::games::{
    Precondition, game_response, parse_game, read_json, replace_with, with_path_id,
};
use super::ingests::{PageLimit, limit_param};
use super::{AppState, CanRead, CanWrite, json_response};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ludex_domain::history::StoredDocument;
use ludex_domain::{Author, GameId, GameVersion, HistoryQuery, RecordFields};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// `limit` of `GET /games/{id}/history`.
pub(crate) const HISTORY_LIMIT: PageLimit = PageLimit {
    default: HistoryQuery::DEFAULT_LIMIT,
    max: HistoryQuery::MAX_LIMIT,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Versions per page (default 20, at most 100).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One version as `GET /games/{id}/history` shows it.
#[derive(Serialize)]
struct VersionView {
    version: u64,
    changed_at: String,
    /// `None` for versions written before history was kept.
    author: Option<Author>,
    deleted: bool,
    /// The JSON Merge Patch from the version before (from nothing for the first one, and for
    /// the first after a deletion); `None` for a deletion.
    change: Option<Box<RawValue>>,
}

#[derive(Serialize)]
struct HistoryPage {
    items: Vec<VersionView>,
    next_cursor: Option<String>,
}

/// A version number any store can hold: 1 to 2^63 − 1 (PostgreSQL's `bigint`).
pub(crate) fn storable(version: u64) -> Option<u64> {
    (1..=i64::MAX as u64).contains(&version).then_some(version)
}

/// The cursor of a history page: the version the next page starts below.
fn cursor_param(raw: &str) -> ApiResult<u64> {
    raw.parse::<u64>().ok().and_then(storable).ok_or_else(|| {
        ApiError::bad_parameter("cursor", format!("{raw:?} is not a cursor of this history"))
    })
}

#[utoipa::path(get, path = "/games/{id}/history", operation_id = "game_history", tag = "games",
    params(("id" = String, Path, description = "The game's id"), HistoryParams),
    responses(
        (status = 200, description = "The game's versions, newest first: the current one (unless the game is deleted), every one a change replaced, and each deletion (`deleted`, no change). `change` is the JSON Merge Patch from the version before.", body = super::openapi::HistoryPageDoc),
        (status = 400, description = "A malformed id, limit or cursor", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No game ever had this id", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    _: CanRead,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Response> {
    let limit = limit_param(params.limit.as_deref(), HISTORY_LIMIT)?;
    let before = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(cursor_param)
        .transpose()?;
    // One more than the page: the version before the page's last, for that one's change.
    let query = HistoryQuery {
        limit: limit + 1,
        before,
    };
    let page = state.stores.catalog.history(&id, &query).await?;
    if page.items.is_empty() && before.is_none() {
        return Err(ApiError::NotFound(format!("no game ever had the id {id}")));
    }
    let shown = page.items.len().min(limit as usize);
    let broken = |version: &GameVersion, e: serde_json::Error| {
        ApiError::Internal(format!("stored version {}: {e}", version.version))
    };
    // Each document read once, though it serves two changes; each version's change is from
    // the one below it (the page's extra version serves the last).
    let changes = {
        let documents = page
            .items
            .iter()
            .map(|v| {
                v.content
                    .as_deref()
                    .map(StoredDocument::parse)
                    .transpose()
                    .map_err(|e| broken(v, e))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        (0..shown)
            .map(|i| {
                let Some(after) = &documents[i] else {
                    return Ok(None);
                };
                let before = documents.get(i + 1).and_then(Option::as_ref);
                after
                    .merge_patch_from(before)
                    .map(Some)
                    .map_err(|e| broken(&page.items[i], e))
            })
            .collect::<ApiResult<Vec<_>>>()?
    };
    let more = page.items.len() > shown || page.next_cursor.is_some();
    let items = page
        .items
        .into_iter()
        .zip(changes)
        .map(|(version, change)| VersionView {
            version: version.version,
            changed_at: version.changed_at,
            author: version.author,
            deleted: version.content.is_none(),
            change,
        })
        .collect::<Vec<_>>();
    let next_cursor = items.last().filter(|_| more).map(|v| v.version.to_string());
    let body = serde_json::to_string(&HistoryPage { items, next_cursor })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

/// The body of `POST /games/{id}/restore`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The version whose content becomes the game's (a new version; the history keeps all).
    /// A whole number; JSON Schema counts `3.0` as one too.
    #[schema(value_type = u64, minimum = 1, maximum = 9_223_372_036_854_775_807_u64)]
    version: serde_json::Number,
}

impl RestoreRequest {
    fn version(&self) -> ApiResult<u64> {
        let whole = self.version.as_u64().or_else(|| {
            self.version
                .as_f64()
                .filter(|v| v.fract() == 0.0 && (1.0..9.0e15).contains(v))
                .map(|v| v as u64)
        });
        whole.and_then(storable).ok_or_else(|| {
            ApiError::bad_parameter("version", format!("{} is not a version", self.version))
        })
    }
}

/// Version `version` of a game, or 404.
async fn version_of(state: &AppState, id: &GameId, version: u64) -> ApiResult<GameVersion> {
    let query = HistoryQuery {
        limit: 1,
        before: version.checked_add(1),
    };
    let page = state.stores.catalog.history(id, &query).await?;
    page.items
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| ApiError::NotFound(format!("{id} has no version {version}")))
}

#[utoipa::path(post, path = "/games/{id}/restore", operation_id = "restore_game", tag = "games",
    params(("id" = String, Path, description = "The game's id"),
        ("If-Match" = Option<String>, Header, description = "Restore only if the game is at this version (for a deleted game: the version of its deletion)")),
    request_body = RestoreRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The game now has the content of that version, as a new version (the same one when the content is already that)", body = super::openapi::GameDoc),
        (status = 201, description = "The deleted game is back, with the content of that version", body = super::openapi::GameDoc),
        (status = 400, description = "A malformed id or body", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such game or version", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "The game changed since you read it; nothing was written", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "That version is a deletion, or its content no longer passes validation", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn restore(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let json = (&["application/json"][..], "the version to restore");
    let bytes = read_json(&headers, body, state.config.max_json_bytes, json).await?;
    // An object: serde would take a struct from an array too.
    let request: RestoreRequest = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes)
        .and_then(|object| serde_json::from_value(Value::Object(object)))
        .map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be {{\"version\": N}} with the version to restore: {e}"
            ))
        })?;
    let version = request.version()?;
    let wanted = version_of(&state, &id, version).await?;
    let Some(content) = wanted.content else {
        return Err(ApiError::Validation(vec![ludex_domain::FieldError::field(
            "version",
            format!("version {version} is the deletion of the game; restore a version before it"),
        )]));
    };
    let fields = RecordFields::parse(content.as_bytes())
        .map_err(|e| ApiError::Internal(format!("stored version {version}: {e}")))?;
    let game = parse_game(with_path_id(fields, &id)?)?;
    let precondition = Precondition::from_headers(&headers);
    if state.stores.catalog.get(&id).await?.is_some() {
        let stored = replace_with(&state, &author, &id, &precondition, game).await?;
        return Ok(game_response(StatusCode::OK, &stored));
    }
    // A deleted game: its newest version is the deletion.
    let newest = state
        .stores
        .catalog
        .history(
            &id,
            &HistoryQuery {
                limit: 1,
                before: None,
            },
        )
        .await?;
    if let Some(deletion) = newest.items.first() {
        precondition.check(deletion.version)?;
    }
    let stored = state.stores.catalog.create(&game, &author).await?;
    Ok(game_response(StatusCode::CREATED, &stored))
}
