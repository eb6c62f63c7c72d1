//! Versioned rule sets, one history per subscriber, and what each version's
//! rules did on the decisions it made (or, as the shadow, would have made).
//!
//! A version is stored as a `draft`, or published at once by a `PUT`. One
//! version at a time is `live` (it decides), at most one is the `shadow`
//! (evaluated beside the live one on every decision, never acting); a live
//! version another one replaced is `retired`. Version numbers grow by one
//! and are never reused. Every change writes its audit entry in its own
//! transaction.

use async_trait::async_trait;
use serde::Serialize;

use super::{Actor, Millis, StoreResult};

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// Stored, never acting.
    Draft,
    /// The version that decides.
    Live,
    /// Evaluated beside the live version; its outcome is stored, never acts.
    Shadow,
    /// Was live, and another version replaced it.
    Retired,
}

impl RuleStatus {
    pub const ALL: [RuleStatus; 4] = [Self::Draft, Self::Live, Self::Shadow, Self::Retired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Live => "live",
            Self::Shadow => "shadow",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

impl TryFrom<String> for RuleStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("rule set status {s:?}"))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleSetRow {
    pub subscriber_id: String,
    pub version: i64,
    /// The validated rule set, JSON.
    pub body: String,
    pub created_at: Millis,
    #[sqlx(try_from = "String")]
    pub status: RuleStatus,
    /// Who stored it ([`Actor::to_text`]).
    pub author: String,
    pub note: Option<String>,
    /// When it last became live; `None` if it never was.
    pub published_at: Option<Millis>,
}

/// A version to store.
#[derive(Debug, Clone, Copy)]
pub struct NewRuleSet<'a> {
    /// The validated rule set, JSON.
    pub body: &'a str,
    pub note: Option<&'a str>,
    /// How many rules it has (for the audit summary).
    pub rules: usize,
}

/// The versions that act on a subscriber's decisions, read together.
#[derive(Debug, Clone, Default)]
pub struct ActiveRuleSets {
    pub live: Option<RuleSetRow>,
    pub shadow: Option<RuleSetRow>,
}

/// What a change of status did.
#[derive(Debug, Clone)]
pub enum RuleTransition {
    /// Done: the version as it is now, and the version that lost the status
    /// it took (the previous live one for a publish, the previous shadow for
    /// a shadow), if any.
    Done {
        row: RuleSetRow,
        replaced: Option<i64>,
    },
    /// No such version (for stopping the shadow: no shadow runs).
    Missing,
    /// The version's status does not allow it; nothing changed.
    Refused(RuleStatus),
}

/// One decision as the rule statistics read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleOutcomeRow {
    pub id: String,
    pub created_at: Millis,
    pub rules_version: i64,
    pub action: String,
    /// The decision's result JSON (its `rule_hits`).
    pub result: String,
    pub shadow: Option<String>,
    pub label: Option<String>,
}

/// Every stored version of a subscriber's rules.
#[async_trait]
pub trait RuleSets: Send + Sync {
    /// Stores a new version and makes it live at once (the previous live one
    /// is retired), with its audit entry (`rules.publish`).
    async fn put_rule_set(
        &self,
        subscriber_id: &str,
        new: NewRuleSet<'_>,
        actor: &Actor,
    ) -> StoreResult<(RuleSetRow, Option<i64>)>;
    /// Stores a new version as a draft, with its audit entry (`rules.draft`).
    async fn draft_rule_set(
        &self,
        subscriber_id: &str,
        new: NewRuleSet<'_>,
        actor: &Actor,
    ) -> StoreResult<RuleSetRow>;
    /// The live version (`None`: the default pack decides).
    async fn current_rule_set(&self, subscriber_id: &str) -> StoreResult<Option<RuleSetRow>>;
    /// One stored version of the subscriber's rule set.
    async fn rule_set_version(
        &self,
        subscriber_id: &str,
        version: i64,
    ) -> StoreResult<Option<RuleSetRow>>;
    /// The live and the shadow version, in one query.
    async fn active_rule_sets(&self, subscriber_id: &str) -> StoreResult<ActiveRuleSets>;
    /// Every version, newest first.
    async fn list_rule_sets(&self, subscriber_id: &str) -> StoreResult<Vec<RuleSetRow>>;
    /// Makes a draft, shadow or retired version live; the previous live one
    /// is retired (publishing the shadow stops the shadow).
    async fn publish_rule_set(
        &self,
        subscriber_id: &str,
        version: i64,
        actor: &Actor,
    ) -> StoreResult<RuleTransition>;
    /// Makes a draft or retired version the shadow; a previous shadow goes
    /// back to what it was (retired if it was ever live, else draft).
    async fn shadow_rule_set(
        &self,
        subscriber_id: &str,
        version: i64,
        actor: &Actor,
    ) -> StoreResult<RuleTransition>;
    /// Stops the shadow: it goes back to retired (if it was ever live) or
    /// draft. [`RuleTransition::Missing`] when none runs.
    async fn stop_shadow(&self, subscriber_id: &str, actor: &Actor) -> StoreResult<RuleTransition>;
    /// Up to `limit` of the subscriber's decisions created in `[from, to)`
    /// that `live_version` decided or that carry a shadow outcome, ordered
    /// by (created_at, id), strictly after the `after` position: keyset
    /// paging for the rule statistics.
    async fn rule_outcomes(
        &self,
        subscriber_id: &str,
        live_version: i64,
        window: (Millis, Millis),
        after: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<RuleOutcomeRow>>;
}

/// The number of rules in a stored body (for audit summaries).
pub fn stored_rule_count(body: &str) -> Option<usize> {
    #[derive(serde::Deserialize)]
    struct Count {
        rules: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Count>(body)
        .ok()
        .map(|c| c.rules.len())
}

/// The rule-set queries, compiled against each backend's driver (see
/// [`store_impls`](super::shared)), which provides `db_err`, `begin_write`
/// and `record_audit_on` (from `audit_impls!`).
macro_rules! rule_versions_impls {
    ($store:ident, $db:ty, $conn:ty) => {
        const RULE_SET_COLUMNS: &str =
            "subscriber_id, version, body, created_at, status, author, note, published_at";

        /// Serializes the subscriber's rule changes: the row lock on
        /// PostgreSQL, the write lock (already held) on SQLite.
        async fn lock_rules_on(
            conn: &mut $conn,
            subscriber_id: &str,
        ) -> $crate::store::StoreResult<()> {
            sqlx::query(&format!(
                "SELECT id FROM subscribers WHERE id = $1 {}",
                $store::LOCK_ROW
            ))
            .bind(subscriber_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
            Ok(())
        }

        async fn rule_set_on(
            conn: &mut $conn,
            subscriber_id: &str,
            version: i64,
        ) -> $crate::store::StoreResult<Option<$crate::store::RuleSetRow>> {
            sqlx::query_as(&format!(
                "SELECT {RULE_SET_COLUMNS} FROM rule_sets WHERE subscriber_id = $1 AND version = $2"
            ))
            .bind(subscriber_id)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)
        }

        async fn rule_set_with_status_on(
            conn: &mut $conn,
            subscriber_id: &str,
            status: $crate::store::RuleStatus,
        ) -> $crate::store::StoreResult<Option<$crate::store::RuleSetRow>> {
            sqlx::query_as(&format!(
                "SELECT {RULE_SET_COLUMNS} FROM rule_sets WHERE subscriber_id = $1 AND status = $2"
            ))
            .bind(subscriber_id)
            .bind(status.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)
        }

        /// Sets a version's status; a version becoming live gets its
        /// `published_at`.
        async fn set_rule_status_on(
            conn: &mut $conn,
            subscriber_id: &str,
            version: i64,
            status: $crate::store::RuleStatus,
            now: i64,
        ) -> $crate::store::StoreResult<$crate::store::RuleSetRow> {
            let published = (status == $crate::store::RuleStatus::Live).then_some(now);
            sqlx::query_as(&format!(
                "UPDATE rule_sets SET status = $3, published_at = COALESCE($4, published_at) \
                 WHERE subscriber_id = $1 AND version = $2 RETURNING {RULE_SET_COLUMNS}"
            ))
            .bind(subscriber_id)
            .bind(version)
            .bind(status.as_str())
            .bind(published)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)
        }

        /// What a shadow goes back to when it stops: retired if it was
        /// ever live, else a draft.
        fn after_shadow(row: &$crate::store::RuleSetRow) -> $crate::store::RuleStatus {
            if row.published_at.is_some() {
                $crate::store::RuleStatus::Retired
            } else {
                $crate::store::RuleStatus::Draft
            }
        }

        /// Retires the live version, if any; answers its number.
        async fn retire_live_on(
            conn: &mut $conn,
            subscriber_id: &str,
            now: i64,
        ) -> $crate::store::StoreResult<Option<i64>> {
            let live =
                rule_set_with_status_on(conn, subscriber_id, $crate::store::RuleStatus::Live)
                    .await?;
            if let Some(live) = &live {
                set_rule_status_on(
                    conn,
                    subscriber_id,
                    live.version,
                    $crate::store::RuleStatus::Retired,
                    now,
                )
                .await?;
            }
            Ok(live.map(|l| l.version))
        }

        async fn insert_rule_set_on(
            conn: &mut $conn,
            subscriber_id: &str,
            new: &$crate::store::NewRuleSet<'_>,
            status: $crate::store::RuleStatus,
            actor: &$crate::store::Actor,
            now: i64,
        ) -> $crate::store::StoreResult<$crate::store::RuleSetRow> {
            // MAX + 1 under the subscriber's lock: consecutive, never reused
            // (versions are never deleted).
            let published = (status == $crate::store::RuleStatus::Live).then_some(now);
            sqlx::query_as(&format!(
                "INSERT INTO rule_sets ({RULE_SET_COLUMNS}) \
                 SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7 \
                 FROM rule_sets WHERE subscriber_id = $1 RETURNING {RULE_SET_COLUMNS}"
            ))
            .bind(subscriber_id)
            .bind(new.body)
            .bind(now)
            .bind(status.as_str())
            .bind(actor.to_text())
            .bind(new.note)
            .bind(published)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)
        }

        #[async_trait::async_trait]
        impl $crate::store::RuleSets for $store {
            async fn put_rule_set(
                &self,
                subscriber_id: &str,
                new: $crate::store::NewRuleSet<'_>,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<($crate::store::RuleSetRow, Option<i64>)> {
                let now = $crate::store::now_millis();
                let mut tx = begin_write(self.writes()).await?;
                lock_rules_on(&mut tx, subscriber_id).await?;
                let previous = retire_live_on(&mut tx, subscriber_id, now).await?;
                let row = insert_rule_set_on(
                    &mut tx,
                    subscriber_id,
                    &new,
                    $crate::store::RuleStatus::Live,
                    actor,
                    now,
                )
                .await?;
                record_audit_on(
                    &mut tx,
                    &$crate::store::NewAudit::new(
                        subscriber_id,
                        actor,
                        "rules.publish",
                        format!("rules/{}", row.version),
                        serde_json::json!({
                            "version": row.version,
                            "rules": new.rules,
                            "previous_live": previous,
                            "note": new.note,
                            "stored_as": "live",
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok((row, previous))
            }

            async fn draft_rule_set(
                &self,
                subscriber_id: &str,
                new: $crate::store::NewRuleSet<'_>,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<$crate::store::RuleSetRow> {
                let now = $crate::store::now_millis();
                let mut tx = begin_write(self.writes()).await?;
                lock_rules_on(&mut tx, subscriber_id).await?;
                let row = insert_rule_set_on(
                    &mut tx,
                    subscriber_id,
                    &new,
                    $crate::store::RuleStatus::Draft,
                    actor,
                    now,
                )
                .await?;
                record_audit_on(
                    &mut tx,
                    &$crate::store::NewAudit::new(
                        subscriber_id,
                        actor,
                        "rules.draft",
                        format!("rules/{}", row.version),
                        serde_json::json!({
                            "version": row.version,
                            "rules": new.rules,
                            "note": new.note,
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(row)
            }

            async fn current_rule_set(
                &self,
                subscriber_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::RuleSetRow>> {
                let mut conn = self.reads().acquire().await.map_err(db_err)?;
                rule_set_with_status_on(&mut conn, subscriber_id, $crate::store::RuleStatus::Live)
                    .await
            }

            async fn rule_set_version(
                &self,
                subscriber_id: &str,
                version: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::RuleSetRow>> {
                let mut conn = self.reads().acquire().await.map_err(db_err)?;
                rule_set_on(&mut conn, subscriber_id, version).await
            }

            async fn active_rule_sets(
                &self,
                subscriber_id: &str,
            ) -> $crate::store::StoreResult<$crate::store::ActiveRuleSets> {
                let rows: Vec<$crate::store::RuleSetRow> = sqlx::query_as(&format!(
                    "SELECT {RULE_SET_COLUMNS} FROM rule_sets \
                     WHERE subscriber_id = $1 AND status IN ('live', 'shadow')"
                ))
                .bind(subscriber_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)?;
                let mut active = $crate::store::ActiveRuleSets::default();
                for row in rows {
                    match row.status {
                        $crate::store::RuleStatus::Live => active.live = Some(row),
                        _ => active.shadow = Some(row),
                    }
                }
                Ok(active)
            }

            async fn list_rule_sets(
                &self,
                subscriber_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::RuleSetRow>> {
                sqlx::query_as(&format!(
                    "SELECT {RULE_SET_COLUMNS} FROM rule_sets WHERE subscriber_id = $1 \
                     ORDER BY version DESC"
                ))
                .bind(subscriber_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn publish_rule_set(
                &self,
                subscriber_id: &str,
                version: i64,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<$crate::store::RuleTransition> {
                use $crate::store::{RuleStatus, RuleTransition};
                let now = $crate::store::now_millis();
                let mut tx = begin_write(self.writes()).await?;
                lock_rules_on(&mut tx, subscriber_id).await?;
                let Some(target) = rule_set_on(&mut tx, subscriber_id, version).await? else {
                    return Ok(RuleTransition::Missing);
                };
                if target.status == RuleStatus::Live {
                    return Ok(RuleTransition::Refused(target.status));
                }
                let previous = retire_live_on(&mut tx, subscriber_id, now).await?;
                let row =
                    set_rule_status_on(&mut tx, subscriber_id, version, RuleStatus::Live, now)
                        .await?;
                record_audit_on(
                    &mut tx,
                    &$crate::store::NewAudit::new(
                        subscriber_id,
                        actor,
                        "rules.publish",
                        format!("rules/{version}"),
                        serde_json::json!({
                            "version": version,
                            "rules": $crate::store::stored_rule_count(&row.body),
                            "previous_live": previous,
                            "was": target.status.as_str(),
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(RuleTransition::Done {
                    row,
                    replaced: previous,
                })
            }

            async fn shadow_rule_set(
                &self,
                subscriber_id: &str,
                version: i64,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<$crate::store::RuleTransition> {
                use $crate::store::{RuleStatus, RuleTransition};
                let now = $crate::store::now_millis();
                let mut tx = begin_write(self.writes()).await?;
                lock_rules_on(&mut tx, subscriber_id).await?;
                let Some(target) = rule_set_on(&mut tx, subscriber_id, version).await? else {
                    return Ok(RuleTransition::Missing);
                };
                if matches!(target.status, RuleStatus::Live | RuleStatus::Shadow) {
                    return Ok(RuleTransition::Refused(target.status));
                }
                let previous =
                    rule_set_with_status_on(&mut tx, subscriber_id, RuleStatus::Shadow).await?;
                if let Some(previous) = &previous {
                    set_rule_status_on(
                        &mut tx,
                        subscriber_id,
                        previous.version,
                        after_shadow(previous),
                        now,
                    )
                    .await?;
                }
                let previous = previous.map(|p| p.version);
                let row =
                    set_rule_status_on(&mut tx, subscriber_id, version, RuleStatus::Shadow, now)
                        .await?;
                record_audit_on(
                    &mut tx,
                    &$crate::store::NewAudit::new(
                        subscriber_id,
                        actor,
                        "rules.shadow.start",
                        format!("rules/{version}"),
                        serde_json::json!({
                            "version": version,
                            "rules": $crate::store::stored_rule_count(&row.body),
                            "previous_shadow": previous,
                            "was": target.status.as_str(),
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(RuleTransition::Done {
                    row,
                    replaced: previous,
                })
            }

            async fn stop_shadow(
                &self,
                subscriber_id: &str,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<$crate::store::RuleTransition> {
                use $crate::store::{RuleStatus, RuleTransition};
                let now = $crate::store::now_millis();
                let mut tx = begin_write(self.writes()).await?;
                lock_rules_on(&mut tx, subscriber_id).await?;
                let Some(shadow) =
                    rule_set_with_status_on(&mut tx, subscriber_id, RuleStatus::Shadow).await?
                else {
                    return Ok(RuleTransition::Missing);
                };
                let back = after_shadow(&shadow);
                let row = set_rule_status_on(&mut tx, subscriber_id, shadow.version, back, now)
                    .await?;
                record_audit_on(
                    &mut tx,
                    &$crate::store::NewAudit::new(
                        subscriber_id,
                        actor,
                        "rules.shadow.stop",
                        format!("rules/{}", shadow.version),
                        serde_json::json!({
                            "version": shadow.version,
                            "status": back.as_str(),
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(RuleTransition::Done {
                    row,
                    replaced: None,
                })
            }

            async fn rule_outcomes(
                &self,
                subscriber_id: &str,
                live_version: i64,
                (from, to): ($crate::store::Millis, $crate::store::Millis),
                after: Option<($crate::store::Millis, String)>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::RuleOutcomeRow>> {
                let limit = limit.clamp(1, 10_000);
                // Without a position, (from - 1, "") is before every row.
                let (after_at, after_id) =
                    after.unwrap_or((from.saturating_sub(1), String::new()));
                sqlx::query_as(
                    "SELECT id, created_at, rules_version, action, result, shadow, label \
                     FROM decisions WHERE subscriber_id = $1 AND created_at >= $2 \
                     AND created_at < $3 AND (rules_version = $4 OR shadow IS NOT NULL) \
                     AND (created_at > $5 OR (created_at = $5 AND id > $6)) \
                     ORDER BY created_at, id LIMIT $7",
                )
                .bind(subscriber_id)
                .bind(from)
                .bind(to)
                .bind(live_version)
                .bind(after_at)
                .bind(after_id)
                .bind(limit)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }
        }
    };
}

pub(super) use rule_versions_impls;
