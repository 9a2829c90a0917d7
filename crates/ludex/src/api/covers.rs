//! `/games/{id}/cover`: a cover is uploaded once, checked and made into its sizes there, and
//! read in any size (see `crate::covers` for the sizes and where they are kept).

use super::error::{ApiError, ApiResult};
use super::extract::{GamePath, Query};
use super::games::{Precondition, game_response, stored, update};
use super::{AppState, CanRead, CanWrite, read_body};
use crate::covers::{self, CoverError, Size, Variant};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ludex_domain::GameId;
use ludex_domain::fields::CoverKey;
use serde::Deserialize;

/// How long a browser keeps a cover whose URL names its version: a year, the most HTTP caches
/// honour.
const IMMUTABLE: &str = "max-age=31536000, immutable";

/// Query parameters of `GET /games/{id}/cover`, read as text so errors can name them. Their
/// schemas in the OpenAPI document are declared in `openapi::parameter`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CoverParams {
    /// `thumb` (fits 90×128), `small` (264×374) or `big` (1080 on the long side), as WebP;
    /// without it, the original.
    size: Option<String>,
    /// `2` for the size at twice the pixels (a `srcset`'s `2x`); default `1`. Ignored without
    /// `size`.
    #[param(value_type = Option<u8>)]
    dpr: Option<String>,
    /// The cover's version, as the web UI's URLs carry it: when it names the current cover the
    /// answer may be cached for a year (`immutable`); another version gets the current cover,
    /// revalidated each time (`no-cache`).
    v: Option<String>,
}

impl CoverParams {
    /// The version asked for, if it is one (`covers::VERSION_PATTERN`).
    fn version(&self) -> ApiResult<Option<&str>> {
        match self.v.as_deref() {
            Some(v) if !covers::is_version(v) => Err(ApiError::bad_parameter(
                "v",
                format!("{v:?} is not a cover version: 16 lowercase hex digits"),
            )),
            v => Ok(v),
        }
    }

    /// The size asked for; `None` for the original.
    fn variant(&self) -> ApiResult<Option<Variant>> {
        let density = match self.dpr.as_deref() {
            None | Some("1") => 1,
            Some("2") => 2,
            Some(other) => {
                return Err(ApiError::bad_parameter(
                    "dpr",
                    format!("{other:?} is not 1 or 2"),
                ));
            }
        };
        self.size
            .as_deref()
            .map(|name| {
                let size = Size::parse(name).ok_or_else(|| {
                    ApiError::bad_parameter(
                        "size",
                        format!("{name:?} is not a size: thumb, small or big"),
                    )
                })?;
                Ok(Variant { size, density })
            })
            .transpose()
    }
}

impl From<CoverError> for ApiError {
    fn from(e: CoverError) -> Self {
        match e {
            CoverError::Encoding(_) => ApiError::Internal(e.to_string()),
            refused => ApiError::UnprocessableImage(refused.to_string()),
        }
    }
}

/// Cover work on the blocking pool, one of a bounded few at a time (`covers::run`).
async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CoverError> + Send + 'static,
) -> ApiResult<T> {
    covers::run(work)
        .await
        .map_err(|e| ApiError::Internal(format!("cover work did not finish: {e}")))?
        .map_err(ApiError::from)
}

#[utoipa::path(put, path = "/games/{id}/cover", operation_id = "put_cover", tag = "games",
    params(("id" = String, Path, description = "The game's id"),
        ("If-Match" = Option<String>, Header, description = "Write only if the game is at this version")),
    request_body(description = "A JPEG, PNG or WebP image (recognised by its first bytes) of at most 20 MiB and 40 megapixels",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/webp"))),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The game with its new cover_image", body = super::openapi::GameDoc, headers(("ETag" = String))),
        (status = 400, description = "A malformed id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such game", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "The game changed since you read it", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a JPEG, PNG or WebP image", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "An image that cannot be decoded (malformed, truncated) or has more than 40 megapixels; the detail says which", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_cover(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = read_body(body, state.config.max_cover_bytes).await?;
    if covers::image_type(&bytes).is_none() {
        return Err(ApiError::UnsupportedMediaType(
            "a cover must be a JPEG, PNG or WebP image".into(),
        ));
    }
    // Checked before the image is processed and written, so that a missing game or a stale
    // version costs nothing; `update` checks again against the version it replaces.
    let precondition = Precondition::from_headers(&headers);
    precondition.check(stored(&state, &id).await?.version)?;
    let processed = {
        let id = id.clone();
        run(move || covers::process(&id, bytes)).await?
    };
    let cover = CoverKey::parse(&processed.key).map_err(ApiError::Internal)?;
    // The sizes before the original, so that every cover a game names has its sizes.
    for (key, size) in processed.sizes {
        state.bucket.put(&key, size).await?;
    }
    state.bucket.put(&processed.key, processed.original).await?;
    let mut previous = None;
    let written = update(&state, &author, &id, &precondition, |current| {
        let mut game = current
            .game()
            .map_err(|e| ApiError::Internal(format!("stored game {id}: {e:?}")))?;
        previous = game.cover_image.replace(cover.clone());
        Ok(game)
    })
    .await;
    let stored = match written {
        Ok(stored) => stored,
        Err(refused) => {
            // Nothing names what was written, unless the same image won a race (a second
            // click): then it stays.
            let named = stored(&state, &id)
                .await
                .ok()
                .and_then(|current| current.game().ok())
                .and_then(|game| game.cover_image);
            if named.as_ref() != Some(&cover) {
                remove(&state, &id, &cover).await?;
            }
            return Err(refused);
        }
    };
    if let Some(old) = previous.filter(|old| *old != cover) {
        remove(&state, &id, &old).await?;
    }
    Ok(game_response(StatusCode::OK, &stored))
}

/// Removes what `id` kept of the cover `key`: its sizes, and the original if it is the game's
/// own (a cover a game only names is never deleted). By name: the API function may not list the
/// bucket.
pub(super) async fn remove(state: &AppState, id: &GameId, key: &CoverKey) -> ApiResult<()> {
    for object in covers::objects_of(id, key) {
        state.bucket.delete(&object).await?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/games/{id}/cover", operation_id = "get_cover", tag = "games",
    params(("id" = String, Path, description = "The game's id"), CoverParams),
    responses(
        (status = 200, description = "The cover: a size as WebP, or the original. A strong ETag; cached for a year when `v` names the current cover", content_type = "image/*", body = Vec<u8>,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "A malformed id, size, dpr or v", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such game, or it has no cover", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A cover stored without sizes that cannot be made into them (made on first request, under the upload's limits)", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_cover(
    _: CanRead,
    State(state): State<AppState>,
    GamePath(id): GamePath,
    Query(params): Query<CoverParams>,
) -> ApiResult<Response> {
    let variant = params.variant()?;
    let asked = params.version()?;
    let game = stored(&state, &id)
        .await?
        .game()
        .map_err(|e| ApiError::Internal(format!("stored game {id}: {e:?}")))?;
    let key = game
        .cover_image
        .ok_or_else(|| ApiError::NotFound(format!("{id} has no cover image")))?;
    let (bytes, content_type) = match variant {
        Some(variant) => (size(&state, &id, &key, variant).await?, "image/webp"),
        None => {
            let bytes = original(&state, &id, &key).await?;
            let content_type =
                covers::image_type(&bytes).map_or("application/octet-stream", |t| t.0);
            (bytes, content_type)
        }
    };
    let versioned = asked == Some(covers::version_of(&id, &key).as_str());
    let cache_control = match (versioned, state.config.reads_require_key) {
        (true, false) => format!("public, {IMMUTABLE}"),
        (true, true) => format!("private, {IMMUTABLE}"),
        (false, _) => "no-cache".to_owned(),
    };
    // Strong: from the bytes themselves. `If-None-Match` is answered by `manners`.
    let etag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..32]);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CACHE_CONTROL, cache_control),
            (header::ETAG, etag),
        ],
        bytes,
    )
        .into_response())
}

/// The original of the cover `key`, read up to the largest cover an upload may be (where the
/// platform limits request bodies, as on Lambda, uploads are limited further; stored covers
/// are not).
async fn original(state: &AppState, id: &GameId, key: &CoverKey) -> ApiResult<Bytes> {
    let limit = covers::MAX_COVER_BYTES;
    let bytes = state
        .bucket
        .get_up_to(key.as_str(), limit as u64)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the cover of {id} is missing")))?;
    if bytes.len() > limit {
        return Err(ApiError::UnprocessableImage(format!(
            "the stored cover of {id} is larger than the limit of {limit} bytes"
        )));
    }
    Ok(bytes)
}

/// One size of the cover `key`. A cover stored before sizes existed, or named by an ingest, has
/// none: they are all made on its first request, under the same limits as an upload, and kept.
async fn size(state: &AppState, id: &GameId, key: &CoverKey, variant: Variant) -> ApiResult<Bytes> {
    let wanted = covers::variant_key(id, key, variant);
    if let Some(bytes) = state.bucket.get(&wanted).await? {
        return Ok(bytes);
    }
    let original = original(state, id, key).await?;
    let sizes = {
        let (id, key) = (id.clone(), key.clone());
        run(move || covers::sizes_of(&id, &key, &original)).await?
    };
    let mut found = None;
    for (size_key, bytes) in sizes {
        if size_key == wanted {
            found = Some(bytes.clone());
        }
        state.bucket.put(&size_key, bytes).await?;
    }
    found.ok_or_else(|| ApiError::Internal(format!("no {wanted} was made")))
}
