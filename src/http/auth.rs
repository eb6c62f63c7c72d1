//! Who is calling: the subscriber behind an `X-API-Key`, or the operator
//! holding the admin token. Both are extractors, so a handler that names one
//! cannot run unauthenticated.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::error::ApiError;
use crate::app::AppState;
use crate::secrets::{key_id_of, new_admin_token, sha256_hex, verify_hash};
use crate::store::{KeyAuthRow, Store, StoreResult, SubscriberStatus};
use crate::ttl_cache::TtlCache;
use crate::ttl_cache::LOOKUP_TTL;

pub const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

const KEY_CACHE_MAX: usize = 10_000;

/// The authenticated subscriber of a request.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: String,
    pub key_id: String,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

/// API-key lookups by key id, fresh to within [`LOOKUP_TTL`]: a revocation
/// or suspension made elsewhere takes effect within that bound.
pub struct KeyCache(TtlCache<KeyAuthRow>);

impl Default for KeyCache {
    fn default() -> Self {
        Self(TtlCache::new(LOOKUP_TTL, KEY_CACHE_MAX))
    }
}

impl KeyCache {
    async fn lookup(&self, store: &dyn Store, key_id: &str) -> StoreResult<Option<KeyAuthRow>> {
        if let Some(row) = self.0.get(key_id) {
            return Ok(Some(row));
        }
        let found = store.find_key_for_auth(key_id).await?;
        if let Some(row) = &found {
            self.0.put(key_id, row.clone());
        }
        Ok(found)
    }

    /// Drops a key at once (this process revoked it).
    pub fn forget(&self, key_id: &str) {
        self.0.remove_where(|id, _| id == key_id);
    }

    /// Drops every key of a subscriber whose status changed.
    pub fn forget_subscriber(&self, subscriber_id: &str) {
        self.0
            .remove_where(|_, row| row.subscriber_id == subscriber_id);
    }
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
        Ok(Subscriber {
            id: row.subscriber_id,
            key_id: key_id.to_owned(),
        })
    }
}

/// Where the admin token's hash comes from.
#[derive(Debug, Clone)]
pub enum AdminAuth {
    /// `--admin-token` was given: its hash, kept in memory only.
    Fixed(String),
    /// The hash stored in the database at first start (read per request, so a
    /// rotation with `riskgate admin-token rotate` takes effect at once).
    Stored,
}

impl AdminAuth {
    /// Resolves the admin token at start-up: the flag's, or the stored one, or a
    /// new one that is stored hashed and returned so it can be printed once.
    pub async fn init(
        store: &dyn Store,
        flag: Option<&str>,
    ) -> StoreResult<(Self, Option<String>)> {
        if let Some(token) = flag {
            return Ok((Self::Fixed(sha256_hex(token)), None));
        }
        if store.get_setting(ADMIN_TOKEN_SETTING).await?.is_some() {
            return Ok((Self::Stored, None));
        }
        let token = new_admin_token();
        let stored = store
            .insert_setting_if_absent(ADMIN_TOKEN_SETTING, &sha256_hex(&token))
            .await?;
        // Another process that started at the same moment won: its token stands.
        Ok((Self::Stored, stored.then_some(token)))
    }

    async fn verify(&self, store: &dyn Store, presented: &str) -> StoreResult<bool> {
        Ok(match self {
            Self::Fixed(hash) => verify_hash(presented, hash),
            Self::Stored => match store.get_setting(ADMIN_TOKEN_SETTING).await? {
                Some(hash) => verify_hash(presented, &hash),
                None => false,
            },
        })
    }
}

/// Replaces the stored admin token and returns the new one.
pub async fn rotate_admin_token(store: &dyn Store) -> StoreResult<String> {
    let token = new_admin_token();
    store
        .put_setting(ADMIN_TOKEN_SETTING, &sha256_hex(&token))
        .await?;
    Ok(token)
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
