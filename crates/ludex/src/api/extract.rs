//! Query and path extractors whose rejections are problem+json like every other error.

use super::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use ludex_domain::GameId;

/// `axum::extract::Query`, rejecting with a 400 problem.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path`, rejecting with a 400 problem.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(format!(
            "the query string is not valid: {}",
            rejection.body_text()
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(format!("the path is not valid: {}", rejection.body_text()))
    }
}

/// The game a `/games/{id}…` path names, 400 when it is not an id.
///
/// `/games/batch` is a route of its own for `POST` (`POST /games/batch`); its other methods
/// read and write the game whose id is `batch` like any other, through this extractor, which
/// finds no `{id}` on that route and takes the path's own word.
pub struct GamePath(pub GameId);

/// The id `/games/batch` names for the methods other than `POST`.
pub const BATCH_SEGMENT: &str = "batch";

impl<S: Send + Sync> FromRequestParts<S> for GamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::bad_request(format!("the path is not valid: {}", e.body_text()))
            })?;
        let raw = params
            .iter()
            .find_map(|(name, value)| (name == "id").then_some(value))
            .unwrap_or(BATCH_SEGMENT);
        game_id(raw).map(Self)
    }
}

/// A game id as sent in a path or a batch operation, 400 naming `id` when it is not one.
pub fn game_id(raw: &str) -> Result<GameId, ApiError> {
    GameId::parse(raw).map_err(|e| ApiError::bad_parameter("id", e))
}
