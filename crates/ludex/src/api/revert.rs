//! `POST /ingests/{id}/revert`: undoes what one ingest wrote, a step at a time (see
//! [`crate::revert`]).

use super::error::{ApiError, ApiResult};
use super::extract::Path;
use super::games::read_json;
use super::rate::ClientAddr;
use super::{AppState, CanWrite, json_response};
use crate::revert::{self, RevertError, RevertStep};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ludex_domain::query_limits::CURSOR_MAX_CHARS;
use ludex_domain::report::IngestId;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A step of a revert.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertRequest {
    /// The `next_cursor` of the previous step; absent for the first.
    #[serde(default)]
    #[schema(format = "ludex-cursor")]
    cursor: Option<String>,
    /// Tell what the revert would do; write nothing.
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/ingests/{ingest_id}/revert", operation_id = "revert_ingest", tag = "ingests",
    params(("ingest_id" = String, Path, description = "The ingest to revert (a revert's own id reverts the revert: the upload applies again)")),
    request_body(content = RevertRequest, content_type = "application/json"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One step: what it did (or would do), the conflicts it left, and the cursor of the next step (absent when done)", body = RevertStep),
        (status = 400, description = "A malformed id, body or cursor", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ingest", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ingest has not finished, was reverted already, or another request runs a step of its revert now", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn revert(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    address: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id = IngestId::parse(&id).map_err(|e| ApiError::bad_parameter("ingest_id", e))?;
    let json = (&["application/json"][..], "the revert step");
    let bytes = read_json(&headers, body, state.config.max_json_bytes, json).await?;
    // An object: serde would take a struct from an array too.
    let request: RevertRequest = serde_json::from_slice::<Map<String, Value>>(&bytes)
        .and_then(|object| serde_json::from_value(Value::Object(object)))
        .map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be {{}} for the first step, or {{\"cursor\": …}} with the \
                 next_cursor of the previous one (and \"dry_run\": true to write nothing): {e}"
            ))
        })?;
    if let Some(chars) = request
        .cursor
        .as_deref()
        .map(|c| c.chars().count())
        .filter(|n| *n > CURSOR_MAX_CHARS)
    {
        return Err(ApiError::bad_parameter(
            "cursor",
            format!(
                "{chars} characters; a cursor this service issued has at most {CURSOR_MAX_CHARS}"
            ),
        ));
    }
    let address = address.map(|Extension(a)| a);
    // Every write of a step counts against the key; the request was the first.
    let mut admit = || match state.config.rate_limiters.admit_more(&headers, address, 1) {
        Ok(()) => Ok(()),
        Err(ApiError::TooManyRequests { retry_after, .. }) => Err(retry_after),
        Err(_) => Err(1),
    };
    let step = revert::step(
        &state.stores,
        &id,
        request.cursor.as_deref(),
        request.dry_run,
        &author.to_text(),
        &mut admit,
    )
    .await
    .map_err(|e| match e {
        RevertError::NotFound(_) => ApiError::NotFound(e.to_string()),
        RevertError::NotFinished(..) | RevertError::AlreadyReverted(_) | RevertError::Busy(_) => {
            ApiError::Conflict(e.to_string())
        }
        RevertError::Store(e) => e.into(),
    })?;
    let body = serde_json::to_string(&step).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}
