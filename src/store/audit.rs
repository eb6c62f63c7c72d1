//! The audit log: who changed what, and when, for each subscriber.
//!
//! Every change is written in the same transaction as the change itself, so
//! the log can never miss a committed change nor show one that rolled back.
//! A store method that changes something takes the [`Actor`] and writes its
//! [`NewAudit`] with `record_audit_on` inside its own transaction.

use async_trait::async_trait;
use serde::Serialize;

use super::{Millis, StoreResult};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The operator, with the admin token.
    Operator,
    /// A subscriber's backend, with one of its API keys.
    ApiKey(String),
    /// A console user of the subscriber.
    User(String),
    /// riskgate itself (a gateway's dispute event, a job).
    System(String),
}

impl Actor {
    /// The stored form: `operator`, `api_key:<id>`, `user:<id>`, `system:<what>`.
    pub fn to_text(&self) -> String {
        match self {
            Self::Operator => "operator".into(),
            Self::ApiKey(id) => format!("api_key:{id}"),
            Self::User(id) => format!("user:{id}"),
            Self::System(what) => format!("system:{what}"),
        }
    }
}

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub subscriber_id: String,
    pub at: Millis,
    pub actor: Actor,
    /// What was done, dotted: `rules.publish`, `list.entry.add`, `key.revoke`.
    pub action: String,
    /// What it was done to: `rules/3`, `lists/blocked_cards`, `keys/key_…`.
    pub target: String,
    /// A summary of the change. Never a secret, never a full card number.
    pub summary: serde_json::Value,
}

impl NewAudit {
    pub fn new(
        subscriber_id: &str,
        actor: &Actor,
        action: &str,
        target: impl Into<String>,
        summary: serde_json::Value,
    ) -> Self {
        Self {
            subscriber_id: subscriber_id.to_owned(),
            at: super::now_millis(),
            actor: actor.clone(),
            action: action.to_owned(),
            target: target.into(),
            summary,
        }
    }
}

/// A recorded change, as operators read it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: String,
    pub subscriber_id: String,
    pub at: Millis,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON text of the summary.
    #[serde(skip)]
    pub summary: String,
}

#[async_trait]
pub trait Audit: Send + Sync {
    /// Up to `limit` entries of the subscriber, newest first, strictly older
    /// than the `before` (at, id) position when given (keyset paging).
    async fn audit_log(
        &self,
        subscriber_id: &str,
        before: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>>;
}

/// A new entry's id. The log reads newest first by (time, id): ids this
/// process makes grow with each entry (a sequence number, then randomness
/// for uniqueness across processes), so changes made within one millisecond
/// keep the order they were made in.
pub(super) fn entry_id() -> String {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("aud_{n:016x}{}", crate::secrets::random_id(12))
}

/// The audit queries, compiled against each backend's driver (see
/// [`store_impls`](super::shared)); also defines `record_audit_on`, which
/// every changing method calls inside its own transaction.
macro_rules! audit_impls {
    ($store:ident, $db:ty, $conn:ty) => {
        /// Writes one audit entry on the change's own connection (its
        /// transaction).
        #[allow(dead_code)]
        pub(super) async fn record_audit_on(
            conn: &mut $conn,
            entry: &$crate::store::NewAudit,
        ) -> $crate::store::StoreResult<()> {
            sqlx::query(
                "INSERT INTO audit_log (id, subscriber_id, at, actor, action, target, summary) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind($crate::store::audit::entry_id())
            .bind(&entry.subscriber_id)
            .bind(entry.at)
            .bind(entry.actor.to_text())
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(entry.summary.to_string())
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl $crate::store::Audit for $store {
            async fn audit_log(
                &self,
                subscriber_id: &str,
                before: Option<($crate::store::Millis, String)>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::AuditEntry>> {
                // No position: every entry is older than the end of time.
                let (at, id) = before.unwrap_or((i64::MAX, String::new()));
                sqlx::query_as(
                    "SELECT id, subscriber_id, at, actor, action, target, summary FROM audit_log \
                     WHERE subscriber_id = $1 AND (at < $2 OR (at = $2 AND id < $3)) \
                     ORDER BY at DESC, id DESC LIMIT $4",
                )
                .bind(subscriber_id)
                .bind(at)
                .bind(&id)
                .bind(limit)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }
        }
    };
}

pub(super) use audit_impls;
