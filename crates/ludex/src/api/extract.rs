//! Query and path extractors whose rejections are problem+json like every other error.

use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{PathRejection, QueryRejection};

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
