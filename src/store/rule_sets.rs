//! Versioned rule sets, one history per subscriber.

use async_trait::async_trait;

use super::{Millis, StoreResult};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleSetRow {
    pub subscriber_id: String,
    pub version: i64,
    pub body: String,
    pub created_at: Millis,
}

/// Every stored version of a subscriber's rules; the highest is current.
#[async_trait]
pub trait RuleSets: Send + Sync {
    /// Stores a new version of the subscriber's rule set and returns it.
    async fn put_rule_set(&self, subscriber_id: &str, body: &str) -> StoreResult<RuleSetRow>;
    async fn current_rule_set(&self, subscriber_id: &str) -> StoreResult<Option<RuleSetRow>>;
    /// One stored version of the subscriber's rule set.
    async fn rule_set_version(
        &self,
        subscriber_id: &str,
        version: i64,
    ) -> StoreResult<Option<RuleSetRow>>;
}
