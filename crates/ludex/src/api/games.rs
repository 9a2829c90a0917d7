//! `/games`: list, read, create, replace, patch (JSON Merge Patch), delete.

use super::error::{ApiError, ApiResult};
use super::extract::{GamePath, Query};
use super::{AppState, CanRead, CanWrite, content_type_is, json_response, read_body};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ludex_domain::{
    Author, FieldError, Game, GameId, ListQuery, Rating, RecordError, RecordFields, Sort,
    StoreError, StoredGame,
};
use serde::Deserialize;
use serde_json::Value;

const JSON_TYPES: [&str; 2] = ["application/json", "application/merge-patch+json"];

/// Query parameters of `GET /games`, all read as text so errors can name the parameter.
/// Their schemas in the OpenAPI document come from the domain's rules (`openapi::parameter`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only games on this platform (case-insensitive exact match).
    platform: Option<String>,
    /// Only games of this genre (case-insensitive exact match).
    genre: Option<String>,
    /// Released in or after this year.
    #[param(value_type = Option<u16>)]
    year_from: Option<String>,
    /// Released in or before this year.
    #[param(value_type = Option<u16>)]
    year_to: Option<String>,
    /// Rated at least this.
    #[param(value_type = Option<f64>)]
    min_rating: Option<String>,
    /// Title search: every word must start a word of the title. At most 200 characters and 8
    /// distinct words of at most 40 characters (repeats, and words that start another word of
    /// the search, are dropped first).
    q: Option<String>,
    /// A field to sort by, with `-` in front for descending.
    sort: Option<String>,
    /// Games per page (default 20).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page, with the same filters and sort.
    cursor: Option<String>,
}

fn parse_param<T: std::str::FromStr>(
    name: &str,
    raw: Option<&str>,
    what: &str,
) -> ApiResult<Option<T>> {
    raw.map(|r| {
        r.trim()
            .parse::<T>()
            .map_err(|_| ApiError::bad_parameter(name, format!("{r:?} is not {what}")))
    })
    .transpose()
}

impl ListParams {
    /// Whether the parameters say how to page (sort, limit, cursor) as well as what to list.
    pub fn orders(&self) -> bool {
        self.sort.is_some() || self.limit.is_some() || self.cursor.is_some()
    }

    pub fn query(&self) -> ApiResult<ListQuery> {
        use ludex_domain::fields::limits::{YEAR_MAX, YEAR_MIN};
        let year = |name: &str, raw: Option<&str>| -> ApiResult<Option<u16>> {
            let year = parse_param::<u16>(name, raw, "a year")?;
            match year {
                Some(y) if !(YEAR_MIN..=YEAR_MAX).contains(&y) => Err(ApiError::bad_parameter(
                    name,
                    format!("{y} is outside {YEAR_MIN}–{YEAR_MAX}"),
                )),
                other => Ok(other),
            }
        };
        let limit = parse_param::<u32>("limit", self.limit.as_deref(), "a whole number")?
            .unwrap_or(ListQuery::DEFAULT_LIMIT);
        if !(1..=ListQuery::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_parameter(
                "limit",
                format!("{limit} is outside 1–{}", ListQuery::MAX_LIMIT),
            ));
        }
        let sort = match &self.sort {
            Some(raw) => Sort::parse(raw).map_err(|e| ApiError::bad_parameter("sort", e))?,
            None => Sort::default(),
        };
        let min_rating = self
            .min_rating
            .as_deref()
            .map(Rating::parse)
            .transpose()
            .map_err(|e| ApiError::bad_parameter("min_rating", e))?;
        ListQuery {
            platform: self.platform.clone(),
            genre: self.genre.clone(),
            year_from: year("year_from", self.year_from.as_deref())?,
            year_to: year("year_to", self.year_to.as_deref())?,
            min_rating,
            q: self.q.clone(),
            sort,
            limit,
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
        }
        .bounded()
        .map_err(ApiError::bad_query)
    }
}

fn etag(version: u64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The versions an `If-Match` / `If-None-Match` value names; `None` for `*`.
fn versions_in(value: &str) -> Option<Vec<Option<u64>>> {
    if value.trim() == "*" {
        return None;
    }
    Some(
        value
            .split(',')
            .map(|tag| {
                let tag = tag.trim();
                // Weak tags never match in If-Match; treated as unknown versions.
                tag.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse().ok())
            })
            .collect(),
    )
}

/// The versions a header names, when it is there; `Some(None)` for `*`.
fn versions(headers: &HeaderMap, name: header::HeaderName) -> Option<Option<Vec<Option<u64>>>> {
    let value = headers.get(name)?.to_str().unwrap_or("");
    Some(versions_in(value))
}

/// What a write asks of the stored version (`If-Match`): nothing, that the game exists (`*`),
/// or one of some versions.
#[derive(Clone, Debug, Default)]
pub struct Precondition(Option<Option<Vec<Option<u64>>>>);

impl Precondition {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self(versions(headers, header::IF_MATCH))
    }

    /// An `If-Match` value, e.g. `"3"` (with its quotes), `"3", "4"` or `*`.
    pub fn parse(value: &str) -> Self {
        Self(Some(versions_in(value)))
    }

    /// `If-Match` on exactly this version.
    pub fn version(version: u64) -> Self {
        Self(Some(Some(vec![Some(version)])))
    }

    fn names_versions(&self) -> bool {
        matches!(self.0, Some(Some(_)))
    }

    /// 412 unless the stored version is one of those named.
    pub(crate) fn check(&self, current: u64) -> ApiResult<()> {
        match &self.0 {
            Some(Some(tags)) if !tags.contains(&Some(current)) => {
                Err(ApiError::PreconditionFailed { current })
            }
            _ => Ok(()),
        }
    }
}

/// Writes `change` of the stored game if the game did not change in between, and returns the
/// stored result. When the game did change, a request whose If-Match
/// named versions gets 412; one that named none (no If-Match, or `*`) is applied again on the
/// fresh version, a few times. An invalid change is reported as such, whatever the
/// precondition says.
pub(super) async fn update(
    state: &AppState,
    author: &Author,
    id: &GameId,
    precondition: &Precondition,
    mut change: impl FnMut(&StoredGame) -> ApiResult<Game>,
) -> ApiResult<StoredGame> {
    for attempt in 0..UPDATE_ATTEMPTS {
        if attempt > 0 {
            let backoff = std::time::Duration::from_millis(1 << attempt);
            tokio::time::sleep(crate::store::jittered(backoff)).await;
        }
        let current = stored(state, id).await?;
        let game = change(&current)?;
        precondition.check(current.version)?;
        match state
            .stores
            .catalog
            .replace(&game, Some(current.version), author)
            .await
        {
            Err(StoreError::VersionMismatch { .. }) if !precondition.names_versions() => continue,
            result => return Ok(result?),
        }
    }
    Err(ApiError::Unavailable(format!(
        "{id} kept changing while this change was applied"
    )))
}

/// How often [`update`] reads and applies a change that met concurrent writes, waiting up to
/// 2, 4, … 512 ms (full jitter) before each new attempt: about half a second in all.
const UPDATE_ATTEMPTS: u32 = 10;

/// The stored game with this id, or 404.
pub(super) async fn stored(state: &AppState, id: &GameId) -> ApiResult<StoredGame> {
    state
        .stores
        .catalog
        .get(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.clone()).into())
}

pub fn game_response(status: StatusCode, stored: &StoredGame) -> Response {
    let mut response = json_response(status, stored.to_json());
    response
        .headers_mut()
        .insert(header::ETAG, etag(stored.version));
    response
}

/// Reads a JSON object body: known fields parsed, unknown ones kept as their text.
async fn read_object(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<RecordFields> {
    object_fields(&read_json(headers, body, limit, (&JSON_TYPES, "the game")).await?)
}

/// A JSON request body, up to `limit` bytes; 415, naming `what` is sent, for a content type
/// not in `types`.
pub(crate) async fn read_json(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    (types, what): (&[&str], &str),
) -> ApiResult<bytes::Bytes> {
    if !content_type_is(headers, types) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send {what} as application/json"
        )));
    }
    read_body(body, limit).await
}

/// A JSON object's fields: known fields parsed, unknown ones kept as their text.
pub fn object_fields(bytes: &[u8]) -> ApiResult<RecordFields> {
    RecordFields::parse(bytes).map_err(|e| match e {
        RecordError::Malformed(e) => ApiError::bad_request(format!(
            "the body is not valid JSON: {e} (byte {})",
            byte_offset(bytes, e.line(), e.column())
        )),
        not_an_object => ApiError::Validation(vec![FieldError::record(not_an_object.to_string())]),
    })
}

/// The byte offset of a 1-based line and column.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = bytes
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    line_start + column.saturating_sub(1)
}

pub(crate) fn parse_game(fields: RecordFields) -> ApiResult<Game> {
    Game::from_record(fields).map_err(ApiError::Validation)
}

/// Puts the path id into a body, refusing a body that names another id.
pub(crate) fn with_path_id(mut fields: RecordFields, id: &GameId) -> ApiResult<RecordFields> {
    if let Some(given) = fields.known.get("id").filter(|v| !v.is_null()) {
        let same = GameId::from_json(given).is_ok_and(|g| &g == id);
        if !same {
            return Err(ApiError::Validation(vec![FieldError::field(
                "id",
                format!("does not match the id in the path ({id})"),
            )]));
        }
    }
    fields
        .known
        .insert("id".into(), Value::String(id.to_string()));
    Ok(fields)
}

#[utoipa::path(get, path = "/games", operation_id = "list_games", tag = "games", params(ListParams),
    responses(
        (status = 200, description = "A page of games", body = super::openapi::GamePage),
        (status = 400, description = "A bad parameter or cursor, or a query over its limits (named in the problem)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The listing ran longer than its timeout and was stopped", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    _: CanRead,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let page = super::list_within(&state, &params.query()?).await?;
    let mut body = String::with_capacity(page.items.len() * 512 + 64);
    body.push_str("{\"items\":[");
    for (i, game) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&game.to_json());
    }
    body.push_str("],\"next_cursor\":");
    body.push_str(&serde_json::to_string(&page.next_cursor).unwrap_or_else(|_| "null".into()));
    body.push('}');
    Ok(json_response(StatusCode::OK, body))
}

#[utoipa::path(get, path = "/games/{id}", operation_id = "get_game", tag = "games",
    params(("id" = String, Path, description = "The game's id")),
    responses(
        (status = 200, description = "The game; ETag is its version", body = super::openapi::GameDoc,
            headers(("ETag" = String, description = "The version, quoted"))),
        (status = 304, description = "Not modified (If-None-Match matched)"),
        (status = 400, description = "A malformed id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such game", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    _: CanRead,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let stored = stored(&state, &id).await?;
    if let Some(tags) = versions(&headers, header::IF_NONE_MATCH)
        && tags.is_none_or(|t| t.contains(&Some(stored.version)))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag(stored.version))],
        )
            .into_response());
    }
    Ok(game_response(StatusCode::OK, &stored))
}

#[utoipa::path(post, path = "/games", operation_id = "create_game", tag = "games",
    request_body(content = super::openapi::GameInput, content_type = "application/json"),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = super::openapi::GameDoc,
            headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid game", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let fields = read_object(&headers, body, state.config.max_json_bytes).await?;
    let stored = create_game(&state, &author, fields).await?;
    let mut response = game_response(StatusCode::CREATED, &stored);
    if let Ok(location) = HeaderValue::from_str(&format!("/games/{}", stored.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(put, path = "/games/{id}", operation_id = "replace_game", tag = "games",
    params(("id" = String, Path, description = "The game's id"),
        ("If-Match" = Option<String>, Header, description = "Write only if the game is at this version (its ETag)")),
    request_body(content = super::openapi::GameReplacement, content_type = "application/json"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Replaced", body = super::openapi::GameDoc, headers(("ETag" = String))),
        (status = 400, description = "Not JSON or a malformed id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such game", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "The game changed since you read it; nothing was written", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid game", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let fields = read_object(&headers, body, state.config.max_json_bytes).await?;
    let precondition = Precondition::from_headers(&headers);
    let stored = replace_game(&state, &author, &id, &precondition, fields).await?;
    Ok(game_response(StatusCode::OK, &stored))
}

#[utoipa::path(patch, path = "/games/{id}", operation_id = "patch_game", tag = "games",
    params(("id" = String, Path, description = "The game's id"),
        ("If-Match" = Option<String>, Header, description = "Write only if the game is at this version (its ETag)")),
    request_body(content = super::openapi::GamePatch, content_type = "application/merge-patch+json"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Patched", body = super::openapi::GameDoc, headers(("ETag" = String))),
        (status = 400, description = "Not JSON or a malformed id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such game", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "The game changed since you read it; nothing was written", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The patched game is not valid", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let patch = read_object(&headers, body, state.config.max_json_bytes).await?;
    let precondition = Precondition::from_headers(&headers);
    let stored = patch_game(&state, &author, &id, &precondition, &patch).await?;
    Ok(game_response(StatusCode::OK, &stored))
}

#[utoipa::path(delete, path = "/games/{id}", operation_id = "delete_game", tag = "games",
    params(("id" = String, Path, description = "The game's id"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the game is at this version")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted, with its cover"),
        (status = 400, description = "A malformed id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such game", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "The game changed since you read it; nothing was deleted", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    delete_game(&state, &author, &id, &Precondition::from_headers(&headers)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// The writes, as `POST /games/batch` applies them too.

/// Creates a game from a JSON object's fields.
pub async fn create_game(
    state: &AppState,
    author: &Author,
    fields: RecordFields,
) -> ApiResult<StoredGame> {
    let game = parse_game(fields)?;
    Ok(state.stores.catalog.create(&game, author).await?)
}

/// Replaces a game with a JSON object's fields (an id in them must be `id`).
pub async fn replace_game(
    state: &AppState,
    author: &Author,
    id: &GameId,
    precondition: &Precondition,
    fields: RecordFields,
) -> ApiResult<StoredGame> {
    let game = parse_game(with_path_id(fields, id)?)?;
    replace_with(state, author, id, precondition, game).await
}

/// Replaces a game with `game`, as `PUT` does.
pub async fn replace_with(
    state: &AppState,
    author: &Author,
    id: &GameId,
    precondition: &Precondition,
    game: Game,
) -> ApiResult<StoredGame> {
    update(state, author, id, precondition, |_| Ok(game.clone())).await
}

/// Applies a JSON Merge Patch to a game.
pub async fn patch_game(
    state: &AppState,
    author: &Author,
    id: &GameId,
    precondition: &Precondition,
    patch: &RecordFields,
) -> ApiResult<StoredGame> {
    update(state, author, id, precondition, |current| {
        let mut fields = current
            .fields()
            .map_err(|e| ApiError::Internal(format!("stored document of {id}: {e:?}")))?;
        fields.merge_patch(patch);
        parse_game(with_path_id(fields, id)?)
    })
    .await
}

/// Deletes a game, its cover's sizes, and the cover itself when it is the game's own.
pub async fn delete_game(
    state: &AppState,
    author: &Author,
    id: &GameId,
    precondition: &Precondition,
) -> ApiResult<()> {
    let current = stored(state, id).await?;
    precondition.check(current.version)?;
    let deleted = state
        .stores
        .catalog
        .delete(id, Some(current.version), author)
        .await?;
    if let Ok(game) = deleted.game()
        && let Some(cover) = game.cover_image
    {
        super::covers::remove(state, id, &cover).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offsets_count_lines() {
        assert_eq!(byte_offset(b"{\n  \"a\": x\n}", 2, 8), 9);
    }
}
