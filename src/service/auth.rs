//! The credentials riskgate checks: subscribers' API keys, looked up through
//! a short-lived cache, and the operator's admin token.

use crate::secrets::{new_admin_token, sha256_hex, verify_hash};
use crate::store::{KeyAuthRow, Store, StoreResult};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

pub const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

const KEY_CACHE_MAX: usize = 10_000;

/// API-key lookups by key id, fresh to within [`LOOKUP_TTL`]: a revocation
/// or suspension made elsewhere takes effect within that bound.
pub struct KeyCache(TtlCache<KeyAuthRow>);

impl Default for KeyCache {
    fn default() -> Self {
        Self(TtlCache::new(LOOKUP_TTL, KEY_CACHE_MAX))
    }
}

impl KeyCache {
    pub async fn lookup(&self, store: &dyn Store, key_id: &str) -> StoreResult<Option<KeyAuthRow>> {
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

    pub async fn verify(&self, store: &dyn Store, presented: &str) -> StoreResult<bool> {
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
