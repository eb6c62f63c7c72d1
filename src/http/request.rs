//! Reading request bodies the way the wire contract says: any Content-Type, a
//! JSON object or `400 Invalid JSON: …`, at most 1 MiB or `413`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::fields::parse_object;

pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The request body as a JSON object, whatever Content-Type the client sent
/// (curl's default `application/x-www-form-urlencoded` included).
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // A body declared too large is refused before it is waited for: the
        // limit would otherwise only trip once a megabyte had arrived, or the
        // body timeout once the client gave up sending it.
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            } else {
                ApiError::bad_request("Invalid JSON: the request body could not be read")
            }
        })?;
        parse_object(&bytes).map(JsonObject).map_err(ApiError::from)
    }
}
