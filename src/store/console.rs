//! The analyst console's storage: its users and their sessions, and the
//! reads its pages need beyond the other aggregates' (the review queue, the
//! decision search, the overview's aggregates).
//!
//! Sessions are stored by the SHA-256 of their token only: a copy of the
//! database signs nobody in.

use async_trait::async_trait;

use super::{Actor, DecisionRow, Millis, StoreResult};

/// A subscriber's console user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsoleUser {
    pub id: String,
    pub subscriber_id: String,
    pub email: String,
    /// `analyst` or `admin`.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_sign_in_at: Option<Millis>,
}

/// A signed-in browser.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsoleSession {
    pub token_hash: String,
    /// `None` for the operator.
    pub user_id: Option<String>,
    /// The subscriber whose data the session sees; `None` for an operator
    /// who has not picked one yet.
    pub subscriber_id: Option<String>,
    /// `analyst`, `admin` or `operator`.
    pub role: String,
    pub csrf_token: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
}

/// What the decision search filters on; every field narrows. Text filters
/// on the stored input (card, device) and on the rule hits are exact matches
/// of the JSON value; IP and email domain are exact matches of the columns
/// written with the decision (see [`NewDecision::ip_address`]). A card or
/// device search finds the decisions of customers (`user_id`) seen with that
/// card or device.
///
/// [`NewDecision::ip_address`]: crate::store::NewDecision::ip_address
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub action: Option<String>,
    pub level: Option<String>,
    pub label: Option<String>,
    /// `true`: only unlabelled decisions.
    pub unlabelled: bool,
    pub user_id: Option<String>,
    pub rule: Option<String>,
    pub bin: Option<String>,
    pub last4: Option<String>,
    pub device: Option<String>,
    pub ip: Option<String>,
    pub email_domain: Option<String>,
}

impl DecisionFilter {
    /// Whether a filter can only be checked by reading each decision's
    /// stored JSON in the time range (a bounded scan): a rule hit with
    /// nothing indexed beside it. A card or a device is looked up through
    /// the customers seen with it, an IP or an email domain by its column.
    pub fn reads_json(&self) -> bool {
        let indexed = self.user_id.is_some()
            || self.bin.is_some()
            || self.last4.is_some()
            || self.device.is_some()
            || self.ip.is_some()
            || self.email_domain.is_some();
        !indexed && self.rule.is_some()
    }
}

/// Decisions per time bucket and action.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActionBucket {
    /// The bucket's start.
    pub bucket: Millis,
    pub action: String,
    pub count: i64,
}

/// A decision's summary row for the overview's samples.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionSample {
    pub duration_us: i64,
    pub result: String,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Creates the user and writes a `console_user.create` audit entry in the
    /// same transaction. An email already used (by any subscriber) is a
    /// conflict.
    async fn create_console_user(
        &self,
        user: &ConsoleUser,
        actor: &Actor,
    ) -> StoreResult<ConsoleUser>;
    /// The subscriber's users, oldest first.
    async fn console_users(&self, subscriber_id: &str) -> StoreResult<Vec<ConsoleUser>>;
    async fn console_user(&self, id: &str) -> StoreResult<Option<ConsoleUser>>;
    async fn console_user_by_email(&self, email: &str) -> StoreResult<Option<ConsoleUser>>;
    /// Sets the status (`active`/`disabled`) of the subscriber's user; a
    /// change writes a `console_user.status` audit entry, and disabling ends
    /// the user's sessions, in the same transaction. `None`: no such user.
    async fn set_console_user_status(
        &self,
        subscriber_id: &str,
        id: &str,
        status: &str,
        at: Millis,
        actor: &Actor,
    ) -> StoreResult<Option<ConsoleUser>>;
    /// Replaces the user's password hash and ends the user's other sessions
    /// (all but `keep`, the session's token hash), with a
    /// `console_user.password` audit entry, in one transaction. `false`: no
    /// such user of the subscriber.
    async fn set_console_user_password(
        &self,
        subscriber_id: &str,
        id: &str,
        password_hash: &str,
        keep: &str,
        at: Millis,
        actor: &Actor,
    ) -> StoreResult<bool>;
    async fn record_console_sign_in(&self, user_id: &str, at: Millis) -> StoreResult<()>;
    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()>;
    /// The session, unless it expired (absolute `expires_at`, or idle since
    /// before `idle_since`).
    async fn console_session(
        &self,
        token_hash: &str,
        now: Millis,
        idle_since: Millis,
    ) -> StoreResult<Option<ConsoleSession>>;
    async fn touch_console_session(&self, token_hash: &str, at: Millis) -> StoreResult<()>;
    async fn set_console_session_subscriber(
        &self,
        token_hash: &str,
        subscriber_id: &str,
    ) -> StoreResult<()>;
    async fn delete_console_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Deletes sessions expired at `now` or idle since before `idle_since`.
    async fn delete_expired_console_sessions(
        &self,
        now: Millis,
        idle_since: Millis,
    ) -> StoreResult<u64>;

    /// Review decisions without a label, oldest first, after the
    /// (created_at, id) position when given.
    async fn review_queue(
        &self,
        subscriber_id: &str,
        after: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DecisionRow>>;
    async fn review_queue_depth(&self, subscriber_id: &str) -> StoreResult<i64>;
    /// The subscriber's decisions matching the filter, newest first, before
    /// the (created_at, id) position when given.
    async fn search_decisions(
        &self,
        subscriber_id: &str,
        filter: &DecisionFilter,
        before: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DecisionRow>>;
    /// Decisions from `from` on, counted per `bucket_ms` and action, from the
    /// hourly counters: `from` is taken down to its hour and `bucket_ms` up
    /// to whole hours.
    async fn action_buckets(
        &self,
        subscriber_id: &str,
        from: Millis,
        bucket_ms: Millis,
    ) -> StoreResult<Vec<ActionBucket>>;
    /// The latest `limit` decisions from `from` on: durations and results.
    async fn recent_samples(
        &self,
        subscriber_id: &str,
        from: Millis,
        limit: i64,
    ) -> StoreResult<Vec<DecisionSample>>;
    /// Callbacks of the subscriber not yet delivered nor failed.
    async fn callback_backlog(&self, subscriber_id: &str) -> StoreResult<i64>;
}

/// The text `"key":"value"` as it appears in compact JSON (the value
/// escaped as JSON escapes it), searched for as an exact substring.
pub(super) fn json_pair(key: &str, value: &str) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    format!("\"{key}\":{json}")
}

/// The console queries, compiled against each backend's driver (see
/// [`store_impls`](super::shared)).
macro_rules! console_impls {
    ($store:ident, $db:ty, $conn:ty) => {
        const CONSOLE_USER_COLUMNS: &str = "id, subscriber_id, email, role, status, \
             password_hash, created_at, updated_at, last_sign_in_at";
        const CONSOLE_SESSION_COLUMNS: &str = "token_hash, user_id, subscriber_id, role, \
             csrf_token, created_at, last_seen_at, expires_at";

        fn console_rows(
            records: Vec<$crate::store::shared::DecisionRecord>,
        ) -> $crate::store::StoreResult<Vec<$crate::store::DecisionRow>> {
            records.into_iter().map(TryInto::try_into).collect()
        }

        #[async_trait::async_trait]
        impl $crate::store::ConsoleStore for $store {
            async fn create_console_user(
                &self,
                user: &$crate::store::ConsoleUser,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<$crate::store::ConsoleUser> {
                let mut tx = begin_write(self.writes()).await?;
                let taken: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM console_users WHERE email = $1")
                        .bind(&user.email)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                if taken.is_some() {
                    return Err($crate::store::StoreError::Conflict(
                        "a console user with this email exists".into(),
                    ));
                }
                sqlx::query(&format!(
                    "INSERT INTO console_users ({CONSOLE_USER_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(&user.id)
                .bind(&user.subscriber_id)
                .bind(&user.email)
                .bind(&user.role)
                .bind(&user.status)
                .bind(&user.password_hash)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(user.last_sign_in_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                record_audit_on(
                    &mut *tx,
                    &$crate::store::NewAudit::new(
                        &user.subscriber_id,
                        actor,
                        "console_user.create",
                        format!("users/{}", user.id),
                        serde_json::json!({"email": user.email, "role": user.role}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(user.clone())
            }

            async fn console_users(
                &self,
                subscriber_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::ConsoleUser>> {
                sqlx::query_as(&format!(
                    "SELECT {CONSOLE_USER_COLUMNS} FROM console_users \
                     WHERE subscriber_id = $1 ORDER BY created_at, id"
                ))
                .bind(subscriber_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn console_user(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::ConsoleUser>> {
                sqlx::query_as(&format!(
                    "SELECT {CONSOLE_USER_COLUMNS} FROM console_users WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn console_user_by_email(
                &self,
                email: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::ConsoleUser>> {
                sqlx::query_as(&format!(
                    "SELECT {CONSOLE_USER_COLUMNS} FROM console_users WHERE email = $1"
                ))
                .bind(email)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn set_console_user_status(
                &self,
                subscriber_id: &str,
                id: &str,
                status: &str,
                at: $crate::store::Millis,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<Option<$crate::store::ConsoleUser>> {
                let mut tx = begin_write(self.writes()).await?;
                let old: Option<$crate::store::ConsoleUser> = sqlx::query_as(&format!(
                    "SELECT {CONSOLE_USER_COLUMNS} FROM console_users \
                     WHERE subscriber_id = $1 AND id = $2"
                ))
                .bind(subscriber_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                let Some(mut user) = old else {
                    return Ok(None);
                };
                if user.status == status {
                    return Ok(Some(user));
                }
                sqlx::query("UPDATE console_users SET status = $1, updated_at = $2 WHERE id = $3")
                    .bind(status)
                    .bind(at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if status != "active" {
                    sqlx::query("DELETE FROM console_sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                record_audit_on(
                    &mut *tx,
                    &$crate::store::NewAudit::new(
                        subscriber_id,
                        actor,
                        "console_user.status",
                        format!("users/{id}"),
                        serde_json::json!({"status": status, "previous": user.status}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                user.status = status.to_owned();
                user.updated_at = at;
                Ok(Some(user))
            }

            async fn set_console_user_password(
                &self,
                subscriber_id: &str,
                id: &str,
                password_hash: &str,
                keep: &str,
                at: $crate::store::Millis,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = begin_write(self.writes()).await?;
                let changed = sqlx::query(
                    "UPDATE console_users SET password_hash = $1, updated_at = $2 \
                     WHERE subscriber_id = $3 AND id = $4",
                )
                .bind(password_hash)
                .bind(at)
                .bind(subscriber_id)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                if changed == 0 {
                    return Ok(false);
                }
                let ended = sqlx::query(
                    "DELETE FROM console_sessions WHERE user_id = $1 AND token_hash <> $2",
                )
                .bind(id)
                .bind(keep)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                record_audit_on(
                    &mut *tx,
                    &$crate::store::NewAudit::new(
                        subscriber_id,
                        actor,
                        "console_user.password",
                        format!("users/{id}"),
                        serde_json::json!({"other_sessions_ended": ended}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn record_console_sign_in(
                &self,
                user_id: &str,
                at: $crate::store::Millis,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE console_users SET last_sign_in_at = $1 WHERE id = $2")
                    .bind(at)
                    .bind(user_id)
                    .execute(self.writes())
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn create_console_session(
                &self,
                s: &$crate::store::ConsoleSession,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO console_sessions ({CONSOLE_SESSION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&s.token_hash)
                .bind(s.user_id.as_deref())
                .bind(s.subscriber_id.as_deref())
                .bind(&s.role)
                .bind(&s.csrf_token)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn console_session(
                &self,
                token_hash: &str,
                now: $crate::store::Millis,
                idle_since: $crate::store::Millis,
            ) -> $crate::store::StoreResult<Option<$crate::store::ConsoleSession>> {
                sqlx::query_as(&format!(
                    "SELECT {CONSOLE_SESSION_COLUMNS} FROM console_sessions \
                     WHERE token_hash = $1 AND expires_at > $2 AND last_seen_at >= $3"
                ))
                .bind(token_hash)
                .bind(now)
                .bind(idle_since)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn touch_console_session(
                &self,
                token_hash: &str,
                at: $crate::store::Millis,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .bind(at)
                    .bind(token_hash)
                    .execute(self.writes())
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn set_console_session_subscriber(
                &self,
                token_hash: &str,
                subscriber_id: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE console_sessions SET subscriber_id = $1 WHERE token_hash = $2",
                )
                .bind(subscriber_id)
                .bind(token_hash)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn delete_console_session(
                &self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(self.writes())
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn delete_expired_console_sessions(
                &self,
                now: $crate::store::Millis,
                idle_since: $crate::store::Millis,
            ) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query(
                    "DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at < $2",
                )
                .bind(now)
                .bind(idle_since)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected())
            }

            async fn review_queue(
                &self,
                subscriber_id: &str,
                after: Option<($crate::store::Millis, String)>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::DecisionRow>> {
                let (at, id) = after.unwrap_or((i64::MIN, String::new()));
                let records = sqlx::query_as(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions \
                     WHERE subscriber_id = $1 AND action = 'review' AND label IS NULL \
                     AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
                     ORDER BY created_at, id LIMIT $4"
                ))
                .bind(subscriber_id)
                .bind(at)
                .bind(&id)
                .bind(limit.clamp(1, 500))
                .fetch_all(self.reads())
                .await
                .map_err(db_err)?;
                console_rows(records)
            }

            async fn review_queue_depth(
                &self,
                subscriber_id: &str,
            ) -> $crate::store::StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM decisions \
                     WHERE subscriber_id = $1 AND action = 'review' AND label IS NULL",
                )
                .bind(subscriber_id)
                .fetch_one(self.reads())
                .await
                .map_err(db_err)?;
                Ok(n)
            }

            async fn search_decisions(
                &self,
                subscriber_id: &str,
                filter: &$crate::store::DecisionFilter,
                before: Option<($crate::store::Millis, String)>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::DecisionRow>> {
                use $crate::store::console::json_pair;
                // An exact substring search: memchr-fast, no pattern to escape.
                let contains = if <$db as sqlx::Database>::NAME == "PostgreSQL" {
                    "strpos"
                } else {
                    "instr"
                };
                let (at, id) = before.unwrap_or((i64::MAX, String::new()));
                // The position as one row value, not an OR: SQLite's planner
                // may read an OR through two indexes at once and so miss the
                // one the filters below want (a customer's decisions: 200 ms
                // instead of 1 at 100,000 decisions).
                let mut sql = format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions WHERE subscriber_id = $1 \
                     AND (created_at, id) < ($2, $3)"
                );
                // Each condition's text and its bound value, numbered in order.
                let mut texts: Vec<String> = Vec::new();
                let mut ints: Vec<(usize, i64)> = Vec::new();
                let mut n = 3;
                let mut next = |sql: &mut String, cond: &str| {
                    n += 1;
                    sql.push_str(&cond.replace("$?", &format!("${n}")));
                    n
                };
                if let Some(from) = filter.from {
                    let i = next(&mut sql, " AND created_at >= $?");
                    ints.push((i, from));
                }
                if let Some(to) = filter.to {
                    let i = next(&mut sql, " AND created_at < $?");
                    ints.push((i, to));
                }
                let mut text = |sql: &mut String, cond: &str, value: String| {
                    next(sql, cond);
                    texts.push(value);
                };
                if let Some(v) = &filter.action {
                    text(&mut sql, " AND action = $?", v.clone());
                }
                if let Some(v) = &filter.level {
                    text(&mut sql, " AND risk_level = $?", v.clone());
                }
                if let Some(v) = &filter.label {
                    text(&mut sql, " AND label = $?", v.clone());
                }
                if filter.unlabelled {
                    sql.push_str(" AND label IS NULL");
                }
                if let Some(v) = &filter.user_id {
                    text(&mut sql, " AND user_id = $?", v.clone());
                }
                if let Some(v) = &filter.rule {
                    text(&mut sql, &format!(" AND {contains}(result, $?) > 0"), json_pair("rule", v));
                }
                // A card or a device is found through the customers seen with
                // it (indexed), then matched exactly in the decision's input.
                if filter.bin.is_some() || filter.last4.is_some() {
                    sql.push_str(
                        " AND user_id IN (SELECT user_id FROM customer_cards WHERE subscriber_id = $1",
                    );
                    if let Some(v) = &filter.bin {
                        text(&mut sql, " AND bin = $?", v.clone());
                    }
                    if let Some(v) = &filter.last4 {
                        text(&mut sql, " AND last4 = $?", v.clone());
                    }
                    sql.push(')');
                }
                if let Some(v) = &filter.device {
                    text(
                        &mut sql,
                        " AND user_id IN (SELECT user_id FROM customer_devices \
                         WHERE subscriber_id = $1 AND visitor_id = $?)",
                        v.clone(),
                    );
                }
                if let Some(v) = &filter.ip {
                    text(&mut sql, " AND ip_address = $?", v.clone());
                }
                if let Some(v) = &filter.email_domain {
                    text(&mut sql, " AND email_domain = $?", v.clone());
                }
                for (key, value) in [
                    ("bin", &filter.bin),
                    ("last4", &filter.last4),
                    ("visitor_id", &filter.device),
                ] {
                    if let Some(v) = value {
                        text(&mut sql, &format!(" AND {contains}(input, $?) > 0"), json_pair(key, v));
                    }
                }
                // Found through customers, the decisions are read by the
                // customer index and sorted; SQLite's planner would walk the
                // time index instead (hoping to stop early) unless told not
                // to order by it (`+created_at`).
                let by_customer = filter.bin.is_some()
                    || filter.last4.is_some()
                    || filter.device.is_some();
                let order = if by_customer && <$db as sqlx::Database>::NAME != "PostgreSQL" {
                    "+created_at"
                } else {
                    "created_at"
                };
                sql.push_str(&format!(" ORDER BY {order} DESC, id DESC LIMIT ${}", n + 1));
                // Parameters bind in the order they were numbered: the time
                // bounds first, then the texts.
                let mut query = sqlx::query_as::<_, $crate::store::shared::DecisionRecord>(&sql)
                    .bind(subscriber_id)
                    .bind(at)
                    .bind(id);
                for (_, v) in &ints {
                    query = query.bind(*v);
                }
                for v in texts {
                    query = query.bind(v);
                }
                let records = query
                    .bind(limit.clamp(1, 500))
                    .fetch_all(self.reads())
                    .await
                    .map_err(db_err)?;
                console_rows(records)
            }

            async fn action_buckets(
                &self,
                subscriber_id: &str,
                from: $crate::store::Millis,
                bucket_ms: $crate::store::Millis,
            ) -> $crate::store::StoreResult<Vec<$crate::store::ActionBucket>> {
                // The counters hold whole hours: a bucket starts on one.
                let hour = $crate::store::decision_counts::HOUR;
                let from = from.div_euclid(hour) * hour;
                let bucket_ms = (bucket_ms.max(1) + hour - 1) / hour * hour;
                sqlx::query_as(
                    "SELECT (hour - $2) / $3 * $3 + $2 AS bucket, action, \
                     CAST(SUM(count) AS BIGINT) AS count FROM decision_counts \
                     WHERE subscriber_id = $1 AND hour >= $2 \
                     GROUP BY (hour - $2) / $3, action ORDER BY bucket",
                )
                .bind(subscriber_id)
                .bind(from)
                .bind(bucket_ms)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn recent_samples(
                &self,
                subscriber_id: &str,
                from: $crate::store::Millis,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::DecisionSample>> {
                sqlx::query_as(
                    "SELECT duration_us, result FROM decisions \
                     WHERE subscriber_id = $1 AND created_at >= $2 \
                     ORDER BY created_at DESC LIMIT $3",
                )
                .bind(subscriber_id)
                .bind(from)
                .bind(limit.clamp(1, 100_000))
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn callback_backlog(
                &self,
                subscriber_id: &str,
            ) -> $crate::store::StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM jobs WHERE subscriber_id = $1 \
                     AND kind = $2 AND state IN ('pending', 'running')",
                )
                .bind(subscriber_id)
                .bind($crate::store::JobKind::DecisionCallback.as_str())
                .fetch_one(self.reads())
                .await
                .map_err(db_err)?;
                Ok(n)
            }
        }
    };
}

pub(super) use console_impls;

#[cfg(test)]
mod tests {
    use super::json_pair;

    #[test]
    fn pairs_are_spelled_as_compact_json_spells_them() {
        assert_eq!(json_pair("bin", "411111"), "\"bin\":\"411111\"");
        assert_eq!(json_pair("x", "q\"%"), "\"x\":\"q\\\"%\"");
    }
}
