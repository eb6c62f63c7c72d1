//! Key-value settings (the admin token's hash, the secrets key check, each
//! subscriber's rate limit).

use async_trait::async_trait;

use super::StoreResult;

/// Small named values the service keeps for itself.
#[async_trait]
pub trait Settings: Send + Sync {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores `value` unless the key exists; answers whether it was stored.
    async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Removes the key if present.
    async fn delete_setting(&self, key: &str) -> StoreResult<()>;
}
