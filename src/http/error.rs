//! The HTTP error contract: every rejection is `{"error": "<message>"}`.
//!
//! Handlers return [`ApiError`]; the services' [`ServiceError`] converts into
//! it, each kind to its status. Unexpected failures are logged with their cause and answer
//! a generic 500 that carries no detail a client could misuse.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::fields::FieldError;
use crate::service::ServiceError;
use crate::store::StoreError;

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "Missing API key")]
    pub error: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header, on a refusal that may pass later.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn missing(field: &str) -> Self {
        Self::bad_request(format!("Missing '{field}' in request body"))
    }

    pub fn invalid(field: &str, why: &str) -> Self {
        Self::bad_request(format!("Invalid '{field}': {why}"))
    }

    /// A body's `subscriber_id` names another subscriber than the API key's.
    pub fn subscriber_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "subscriber_id does not match API key",
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

/// What a `503` tells a client to wait, in seconds: the backends are probed
/// about every half second, so a retry a second later usually finds them back.
pub const RETRY_AFTER_SECS: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = error_response(self.status, &self.message);
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The body was refused unread: what is left of it would be taken
            // for the next request, so the connection ends with this answer,
            // and says so, or a client would send its next request into it.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl From<StoreError> for ApiError {
    #[track_caller]
    fn from(err: StoreError) -> Self {
        let location = std::panic::Location::caller();
        match err {
            StoreError::Conflict(what) => Self::conflict(format!("Conflict: {what}")),
            StoreError::Unavailable(ref source) => {
                tracing::error!(error = %source, %location, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Database unavailable, try again",
                )
            }
            other => {
                tracing::error!(error = ?other, %location, "storage failure");
                Self::internal()
            }
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        Self::bad_request(err.0)
    }
}

impl From<ServiceError> for ApiError {
    #[track_caller]
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(message) => Self::bad_request(message),
            ServiceError::Forbidden(message) => Self::new(StatusCode::FORBIDDEN, message),
            ServiceError::NotFound(message) => Self::not_found(message),
            ServiceError::Conflict(message) => Self::conflict(message),
            ServiceError::Unprocessable(message) => Self::unprocessable(message),
            ServiceError::RateLimited {
                message,
                retry_after,
            } => Self {
                retry_after: Some(retry_after),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
            },
            ServiceError::Store(err) => err.into(),
            ServiceError::Internal(what) => {
                let location = std::panic::Location::caller();
                tracing::error!(what, %location, "internal failure");
                Self::internal()
            }
        }
    }
}
