//! Every error the API returns is `application/problem+json` (RFC 9457) with a stable `type`.
//! Internal errors are logged with the request's id and never echoed to the client.
//!
//! The request id and trace id on these lines come from the request context (see
//! `telemetry`), set for every request by the `observe` middleware.

use crate::bucket::BucketError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ludex_domain::{FieldError, StoreError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed: bad JSON, a bad query parameter, a bad cursor.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Well-formed, but the game it describes is not valid.
    #[error("the game is not valid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the game is at version {current}; reload it and apply your change again")]
    PreconditionFailed { current: u64 },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("this endpoint does not support that method; the Allow header lists those it does")]
    MethodNotAllowed,
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An image of a supported type that cannot be a cover: malformed, truncated, or over the
    /// pixel or memory limits; the reason says which.
    #[error("{0}")]
    UnprocessableImage(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client stopped sending the request body for longer than the body timeout.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    /// Over a rate limit; `retry_after` seconds until the next request is let through.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u64 },
    /// A listing ran past its timeout and was stopped (503, and the client is told why).
    #[error("{0}")]
    ListingTimedOut(String),
    /// Logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A request body that could not be read: `what` it was, and why. A client that paused
    /// longer than the body timeout gets a 408; any other failure is a 400.
    pub fn unreadable_body(what: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        let detail = format!("{what}: {error}");
        let stalled = std::iter::successors(Some(error), |e| e.source())
            .any(|e| e.is::<tower_http::timeout::TimeoutError>());
        if stalled {
            Self::RequestTimeout(detail)
        } else {
            Self::bad_request(detail)
        }
    }

    /// A bad query or path parameter, reported as a field error.
    /// A query over its bounds: every field error, and their sentences joined as the detail.
    pub fn bad_query(errors: Vec<FieldError>) -> Self {
        Self::BadRequest {
            detail: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            errors,
        }
    }

    pub fn bad_parameter(field: &str, reason: impl Into<String>) -> Self {
        let error = FieldError::field(field, reason);
        Self::BadRequest {
            detail: error.to_string(),
            errors: vec![error],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "The game is not valid",
            ),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::PreconditionFailed { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "version-mismatch",
                "The game changed since you read it",
            ),
            Self::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "An API key is required",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::UnprocessableImage(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable-image",
                "The image cannot be used as a cover",
            ),
            Self::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The request body is too large",
            ),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            Self::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "The request body stopped arriving",
            ),
            Self::Unavailable(_) | Self::ListingTimedOut(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }
}

/// The problem document, as served and as described in the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Field errors, worded as in ingest rejects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<crate::api::openapi::FieldErrorDoc>)]
    pub errors: Vec<FieldError>,
    /// The stored version, on a version mismatch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `Retry-After` of every 503 (the store or the key source unreachable or throttled, or a
/// listing stopped at its timeout, often for the same reason): about how long a database
/// restart or a failover takes to be noticed by the pool.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

/// The problem sent with a response, kept in its extensions for the access log.
#[derive(Clone, Debug)]
pub struct ProblemLogged {
    /// The problem type, e.g. `validation`.
    pub kind: &'static str,
    /// The detail as sent to the client (never an internal error's cause).
    pub detail: String,
}

impl ApiError {
    /// The problem document that answers this error, what the access log keeps of it, and
    /// the seconds of its `Retry-After`, if any. Internal causes are logged here, never sent.
    pub fn problem(self) -> (Problem, ProblemLogged, Option<u64>) {
        let (status, kind, title) = self.parts();
        let detail = match &self {
            Self::Internal(message) => {
                tracing::error!(error = %message, "request failed");
                "Something went wrong on our side; the error is logged with this request's id (x-request-id).".to_owned()
            }
            Self::Unavailable(message) => {
                tracing::warn!(error = %message, "store unavailable");
                "The catalog is temporarily unavailable; try again shortly.".to_owned()
            }
            other => other.to_string(),
        };
        let retry_after = match &self {
            Self::TooManyRequests { retry_after, .. } => Some(*retry_after),
            Self::Unavailable(_) | Self::ListingTimedOut(_) => {
                Some(UNAVAILABLE_RETRY_AFTER_SECONDS)
            }
            _ => None,
        };
        let (errors, current_version) = match self {
            Self::BadRequest { errors, .. } | Self::Validation(errors) => (errors, None),
            Self::PreconditionFailed { current } => (Vec::new(), Some(current)),
            _ => (Vec::new(), None),
        };
        let logged = ProblemLogged {
            kind,
            detail: detail.clone(),
        };
        let problem = Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            current_version,
        };
        (problem, logged, retry_after)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (problem, logged, retry_after) = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.extensions_mut().insert(logged);
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ludex\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => Self::NotFound(format!("no game with the id {id}")),
            StoreError::AlreadyExists(id) => {
                Self::Conflict(format!("a game with the id {id} already exists"))
            }
            StoreError::VersionMismatch { current } => Self::PreconditionFailed { current },
            StoreError::InvalidCursor(reason) => Self::bad_parameter("cursor", reason),
            StoreError::Unavailable(reason) => Self::Unavailable(reason),
            StoreError::Internal(reason) => Self::Internal(reason),
        }
    }
}

impl From<super::ListFailure> for ApiError {
    fn from(e: super::ListFailure) -> Self {
        match e {
            super::ListFailure::Store(e) => e.into(),
            timed_out @ super::ListFailure::TimedOut(_) => {
                Self::ListingTimedOut(timed_out.to_string())
            }
        }
    }
}

/// The API keys could not be fetched (an SSM parameter on Lambda): the request may be retried.
impl From<crate::keys::KeyError> for ApiError {
    fn from(e: crate::keys::KeyError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<BucketError> for ApiError {
    fn from(e: BucketError) -> Self {
        match e {
            BucketError::NotFound(key) => Self::NotFound(format!("no object {key}")),
            BucketError::Refused(reason) => {
                // A link or special file in the bucket folder: not served, and not described.
                tracing::warn!(reason, "refused to serve an object");
                Self::NotFound("no such object".into())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}
