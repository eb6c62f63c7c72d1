//! Who is asking: the `X-API-Key` of a subscriber or the operator's bearer
//! token, as extractors that answer `401` with the contract's messages.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::error::ApiError;
use crate::secrets::{key_id_of, verify_hash};
use crate::state::AppState;
use crate::store::SubscriberStatus;

/// The authenticated subscriber of a request.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: String,
    pub key_id: String,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

impl FromRequestParts<AppState> for Subscriber {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get("x-api-key") else {
            return Err(unauthorized("Missing API key"));
        };
        if header.as_bytes().iter().all(u8::is_ascii_whitespace) {
            return Err(unauthorized("Missing API key"));
        }
        let invalid = || unauthorized("Invalid API key");
        let presented = header.to_str().map_err(|_| invalid())?.trim();
        let key_id = key_id_of(presented).ok_or_else(invalid)?;
        let row = app
            .key_cache
            .lookup(app.store.as_ref(), key_id)
            .await?
            .ok_or_else(invalid)?;
        // The hash is checked before anything else about the row, so a guessed
        // key id alone tells an attacker nothing (not even "revoked").
        if !verify_hash(presented, &row.key_hash)
            || row.revoked
            || row.subscriber_status != SubscriberStatus::Active
        {
            return Err(invalid());
        }
        // Counted once the key is known good: a stranger's guesses never use
        // up a subscriber's limit.
        app.rate_limits.check(&row.subscriber_id).await?;
        Ok(Subscriber {
            id: row.subscriber_id,
            key_id: key_id.to_owned(),
        })
    }
}

/// Proof that the request carries the operator's admin token.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(unauthorized("Missing admin token"));
        };
        let invalid = || unauthorized("Invalid admin token");
        let value = header.to_str().map_err(|_| invalid())?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(invalid)?;
        if app.admin.verify(app.store.as_ref(), token).await? {
            Ok(Operator)
        } else {
            Err(invalid())
        }
    }
}
