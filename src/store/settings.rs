//! Key-value settings (the admin token's hash, the secrets key check, each
//! subscriber's rate limit).

use async_trait::async_trait;

use super::{NewAudit, StoreResult};

/// Small named values the service keeps for itself.
#[async_trait]
pub trait Settings: Send + Sync {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores `value` unless the key exists; answers whether it was stored.
    async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Removes the key if present.
    async fn delete_setting(&self, key: &str) -> StoreResult<()>;
    /// Stores (`Some`) or removes (`None`) a setting that is a change of a
    /// subscriber's (its rate limit), writing `audit` in the same
    /// transaction; a removal of an absent key changes nothing and writes no
    /// entry. Answers whether it changed something.
    async fn change_setting(
        &self,
        key: &str,
        value: Option<&str>,
        audit: &NewAudit,
    ) -> StoreResult<bool>;
}
