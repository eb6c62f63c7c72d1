//! What both backends share: the column lists, the decoding of the rows that
//! need a conversion, the unique constraints and what a client may hear about
//! them, and [`store_impls!`], the queries themselves.
//!
//! Both schemas (`migrations/sqlite`, `migrations/postgres`) use the same
//! column names and compatible types (BIGINT milliseconds, TEXT JSON), and
//! every query is written in the common subset of both dialects with `$n`
//! parameters. The macro compiles that one text against each native driver,
//! so the two backends cannot drift apart; what differs (the pools, how a
//! write transaction begins, the row-lock clauses) each backend module says
//! for itself.

use super::{DecisionRow, Label, StoreError};

pub(super) const SUBSCRIBER_COLUMNS: &str =
    "id, name, status, webhook_secret_sealed, created_at, updated_at, \
     previous_webhook_secret_sealed, previous_secret_expires_at, signing_scheme, \
     signing_key_sealed, signing_public_key, previous_signing_key_sealed, \
     previous_signing_key_expires_at, previous_scheme_expires_at";
pub(super) const API_KEY_COLUMNS: &str =
    "key_id, subscriber_id, name, key_hash, created_at, revoked_at";
pub(super) const PROVIDER_COLUMNS: &str =
    "subscriber_id, provider, sealed, settings, created_at, updated_at";
pub(super) const JOB_COLUMNS: &str =
    "id, kind, subscriber_id, dedupe_key, payload, state, attempts, run_at, \
     lease_expires_at, result, last_error, created_at, updated_at, finished_at";
pub(super) const DECISION_COLUMNS: &str =
    "id, subscriber_id, request_id, idempotency_key, request_hash, \
     input, result, risk_score, risk_level, action, rules_version, callback_url, user_id, \
     duration_us, created_at, label, labeled_at, final_input, final_result, final_at, shadow";
pub(super) const CALLBACK_ATTEMPT_COLUMNS: &str =
    "decision_id, attempt, at, status_code, error, duration_ms, webhook_id";
pub(super) const CUSTOMER_COLUMNS: &str = "subscriber_id, user_id, status, first_seen, last_seen, \
     decisions_allow, decisions_review, decisions_block, amount_count, amount_total, amount_max, \
     fraud_labels, status_updated_at";

/// A `decisions` row as stored; the label is text.
#[derive(sqlx::FromRow)]
pub(super) struct DecisionRecord {
    id: String,
    subscriber_id: String,
    request_id: String,
    idempotency_key: Option<String>,
    request_hash: String,
    input: String,
    result: String,
    risk_score: f64,
    risk_level: String,
    action: String,
    rules_version: i64,
    callback_url: Option<String>,
    user_id: Option<String>,
    duration_us: i64,
    created_at: i64,
    label: Option<String>,
    labeled_at: Option<i64>,
    final_input: Option<String>,
    final_result: Option<String>,
    final_at: Option<i64>,
    shadow: Option<String>,
}

impl TryFrom<DecisionRecord> for DecisionRow {
    type Error = StoreError;

    fn try_from(r: DecisionRecord) -> Result<Self, StoreError> {
        let label = r
            .label
            .map(|l| Label::parse(&l).ok_or_else(|| StoreError::Corrupt(format!("label {l:?}"))))
            .transpose()?;
        Ok(DecisionRow {
            id: r.id,
            subscriber_id: r.subscriber_id,
            request_id: r.request_id,
            idempotency_key: r.idempotency_key,
            request_hash: r.request_hash,
            input: r.input,
            result: r.result,
            risk_score: r.risk_score,
            risk_level: r.risk_level,
            action: r.action,
            rules_version: r.rules_version,
            callback_url: r.callback_url,
            user_id: r.user_id,
            duration_us: r.duration_us,
            created_at: r.created_at,
            label,
            labeled_at: r.labeled_at,
            final_input: r.final_input,
            final_result: r.final_result,
            final_at: r.final_at,
            shadow: r.shadow,
        })
    }
}

/// A customer with the number of its devices and cards.
#[derive(sqlx::FromRow)]
pub(super) struct CustomerTotals {
    #[sqlx(flatten)]
    pub customer: super::CustomerRow,
    pub devices_total: i64,
    pub cards_total: i64,
}

/// Every unique constraint a write can run into, by name, with the fixed
/// description a client may hear (`Conflict: <description>`). The database's
/// own message never leaves the store: it names tables and may quote values.
///
/// PostgreSQL reports the constraint's name: the primary keys carry its
/// default name, `<table>_pkey`, the partial unique indexes theirs.
const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    ("settings_pkey", "setting already exists"),
    ("subscribers_pkey", "subscriber already exists"),
    ("api_keys_pkey", "API key already exists"),
    (
        "provider_credentials_pkey",
        "provider credentials already exist",
    ),
    ("rule_sets_pkey", "rule set version already exists"),
    ("jobs_pkey", "job already exists"),
    ("jobs_live", "a live job with the same key exists"),
    ("decisions_pkey", "decision already exists"),
    ("decisions_idempotency", "idempotency key already used"),
    (
        "callback_attempts_pkey",
        "callback attempt already recorded",
    ),
    ("customers_pkey", "customer already exists"),
    ("customer_devices_pkey", "customer device already exists"),
    ("customer_cards_pkey", "customer card already exists"),
];

/// The conflict for a unique violation of `constraint` (`None`: unnamed).
pub(super) fn conflict(constraint: Option<&str>) -> StoreError {
    let described = constraint.and_then(|name| {
        UNIQUE_CONSTRAINTS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, description)| *description)
    });
    StoreError::Conflict(described.unwrap_or("duplicate row").to_owned())
}

/// The job inserted as pending, as the caller described it: nothing of it
/// needs reading back.
pub(super) fn pending_job(job: &super::NewJob, now: i64) -> super::JobRow {
    super::JobRow {
        id: job.id.clone(),
        kind: job.kind.clone(),
        subscriber_id: job.subscriber_id.clone(),
        dedupe_key: job.dedupe_key.clone(),
        payload: job.payload.clone(),
        state: super::JobState::Pending,
        attempts: 0,
        run_at: job.run_at.unwrap_or(now),
        lease_expires_at: None,
        result: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    }
}

/// The decision as inserted: every column is the caller's, or unset.
pub(super) fn inserted_decision(d: &super::NewDecision) -> DecisionRow {
    DecisionRow {
        id: d.id.clone(),
        subscriber_id: d.subscriber_id.clone(),
        request_id: d.request_id.clone(),
        idempotency_key: d.idempotency_key.clone(),
        request_hash: d.request_hash.clone(),
        input: d.input.to_string(),
        result: d.result.to_string(),
        risk_score: d.risk_score,
        risk_level: d.risk_level.clone(),
        action: d.action.clone(),
        rules_version: d.rules_version,
        callback_url: d.callback_url.clone(),
        user_id: d.user_id.clone(),
        duration_us: d.duration_us,
        created_at: d.created_at,
        label: None,
        labeled_at: None,
        final_input: None,
        final_result: None,
        final_at: None,
        shadow: d.shadow.as_deref().map(str::to_owned),
    }
}

/// Prepared statements kept per connection: room for every statement, the
/// multi-row ones in each of their sizes.
pub(super) const STATEMENT_CACHE: usize = 512;

/// Rows per multi-row statement: few distinct statement texts (each is
/// prepared once per connection and cached), far below either backend's
/// parameter limit.
pub(super) const ROWS_PER_STATEMENT: usize = 32;

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` parameters.
pub(super) fn values(rows: usize, columns: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    tuples.join(", ")
}

/// The store traits and the group committer over one native driver.
///
/// The backend module provides: `$store` with `fn reads(&self)` and
/// `fn writes(&self)` (its pools), a `commits: GroupCommit` field and the
/// consts `LOCK_ROW` (`FOR UPDATE` or nothing) and `SKIP_LOCKED`, and
/// `fn memory(&self) -> Option<&Arc<CustomerMemory>>` (the copy of customer
/// features it keeps, if any), `fn ingested(&self) -> Option<&IngestedIds>`
/// (the request ids it knows were ingested, if it knows all); `$committer` with a `pool` and a `memory:
/// Option<Arc<CustomerMemory>>` field (the same copy); and the functions
/// `db_err` and `begin_write` (a write transaction on a pool).
macro_rules! store_impls {
    ($store:ident, $committer:ident, $db:ty, $conn:ty) => {
        use $crate::store::customer_memory::CustomerMemory;
        use $crate::store::ingested::IngestedIds;
        use $crate::store::group_commit::{Committer, Done, Op, Touches};
        use $crate::store::shared::{
            pending_job, values, CustomerTotals, DecisionRecord, ROWS_PER_STATEMENT,
            API_KEY_COLUMNS, CALLBACK_ATTEMPT_COLUMNS, CUSTOMER_COLUMNS, DECISION_COLUMNS,
            JOB_COLUMNS, PROVIDER_COLUMNS, SUBSCRIBER_COLUMNS,
        };
        use $crate::store::*;

        /// Binds a decision's columns in the order of the inserts' column lists: one
        /// list for the single and the multi-row insert.
        fn bind_decision<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            decision: &'q NewDecision,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            query
                .bind(&decision.id)
                .bind(&decision.subscriber_id)
                .bind(&decision.request_id)
                .bind(decision.idempotency_key.as_deref())
                .bind(&decision.request_hash)
                .bind(&*decision.input)
                .bind(&*decision.result)
                .bind(decision.risk_score)
                .bind(&decision.risk_level)
                .bind(&decision.action)
                .bind(decision.rules_version)
                .bind(decision.callback_url.as_deref())
                .bind(decision.user_id.as_deref())
                .bind(decision.duration_us)
                .bind(decision.created_at)
                .bind(decision.shadow.as_deref())
                .bind(decision.ip_address.as_deref())
                .bind(decision.email_domain.as_deref())
        }

        #[async_trait::async_trait]
        impl Committer for $committer {
            type Tx = sqlx::Transaction<'static, $db>;

            async fn begin(&self) -> StoreResult<Self::Tx> {
                begin_write(self.pool()).await
            }

            async fn apply(&self, tx: &mut Self::Tx, op: &Op) -> StoreResult<Done> {
                match op {
                    Op::Enqueue { job, done_since } => enqueue_on(tx, job, *done_since)
                        .await
                        .map(|e| Done::Enqueued(Box::new(e))),
                    Op::Finish { job_id, outcome } => finish_jobs_on(tx, &[(job_id, outcome)])
                        .await
                        .map(|finished| Done::Finished(!finished.is_empty())),
                    Op::Decision {
                        decision,
                        idempotent_since,
                    } => record_decision_on(tx, decision, *idempotent_since)
                        .await
                        .map(|d| Done::Decision(Box::new(d))),
                    Op::Touch { .. } => Ok(Done::Touched),
                }
            }

            async fn finish_jobs(
                &self,
                tx: &mut Self::Tx,
                jobs: &[(&str, &JobOutcome)],
            ) -> StoreResult<Vec<String>> {
                finish_jobs_on(tx, jobs).await
            }

            async fn insert_decisions(
                &self,
                tx: &mut Self::Tx,
                decisions: &[&NewDecision],
            ) -> StoreResult<()> {
                insert_decisions_on(tx, decisions).await
            }

            async fn insert_jobs(&self, tx: &mut Self::Tx, jobs: &[&NewJob]) -> StoreResult<()> {
                insert_jobs_on(tx, jobs).await
            }

            async fn insert_refs(
                &self,
                tx: &mut Self::Tx,
                refs: &[$crate::store::gateway_refs::RefRow<'_>],
            ) -> StoreResult<()> {
                insert_refs_on(tx, refs).await
            }

            async fn touch(&self, tx: &mut Self::Tx, touches: &Touches<'_>) -> StoreResult<()> {
                touch_customers_on(tx, touches).await
            }

            async fn count_decisions(
                &self,
                tx: &mut Self::Tx,
                counts: &[$crate::store::decision_counts::HourCount<'_>],
            ) -> StoreResult<()> {
                count_decisions_on(tx, counts).await
            }

            async fn commit(&self, tx: Self::Tx) -> StoreResult<()> {
                tx.commit().await.map_err(db_err)
            }

            fn memory(&self) -> Option<&CustomerMemory> {
                self.memory.as_deref()
            }
        }

        #[async_trait::async_trait]
        impl Settings for $store {
            async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
                sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(self.reads())
                    .await
                    .map_err(db_err)
            }

            async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn delete_setting(&self, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM settings WHERE key = $1")
                    .bind(key)
                    .execute(self.writes())
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn change_setting(
                &self,
                key: &str,
                value: Option<&str>,
                audit: &NewAudit,
            ) -> StoreResult<bool> {
                let mut tx = begin_write(self.writes()).await?;
                let changed = match value {
                    Some(value) => {
                        sqlx::query(
                            "INSERT INTO settings (key, value) VALUES ($1, $2) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        )
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        true
                    }
                    None => {
                        sqlx::query("DELETE FROM settings WHERE key = $1")
                            .bind(key)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?
                            .rows_affected()
                            > 0
                    }
                };
                if changed {
                    record_audit_on(&mut tx, audit).await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(changed)
            }
        }

        #[async_trait::async_trait]
        impl Subscribers for $store {
            async fn create_subscriber(&self, row: &SubscriberRow, actor: &Actor) -> StoreResult<()> {
                let mut tx = begin_write(self.writes()).await?;
                sqlx::query(
                    "INSERT INTO subscribers (id, name, status, webhook_secret_sealed, created_at, \
                     updated_at, previous_webhook_secret_sealed, previous_secret_expires_at, \
                     signing_scheme, signing_key_sealed, signing_public_key, \
                     previous_signing_key_sealed, previous_signing_key_expires_at, \
                     previous_scheme_expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&row.id)
                .bind(&row.name)
                .bind(row.status.as_str())
                .bind(&row.webhook_secret_sealed)
                .bind(row.created_at)
                .bind(row.updated_at)
                .bind(row.previous_webhook_secret_sealed.as_deref())
                .bind(row.previous_secret_expires_at)
                .bind(row.signing_scheme.as_str())
                .bind(row.signing_key_sealed.as_deref())
                .bind(row.signing_public_key.as_deref())
                .bind(row.previous_signing_key_sealed.as_deref())
                .bind(row.previous_signing_key_expires_at)
                .bind(row.previous_scheme_expires_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        &row.id,
                        actor,
                        "subscriber.create",
                        format!("subscribers/{}", row.id),
                        serde_json::json!({
                            "name": row.name,
                            "status": row.status.as_str(),
                            "signing_scheme": row.signing_scheme.as_str(),
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)
            }

            async fn get_subscriber(&self, id: &str) -> StoreResult<Option<SubscriberRow>> {
                sqlx::query_as(&format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRow>> {
                sqlx::query_as(&format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers ORDER BY created_at, id"
                ))
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn update_subscriber(
                &self,
                id: &str,
                name: Option<&str>,
                status: Option<SubscriberStatus>,
                actor: &Actor,
            ) -> StoreResult<Option<SubscriberRow>> {
                let mut tx = begin_write(self.writes()).await?;
                let Some(before) = subscriber_for_update_on(&mut tx, id).await? else {
                    return Ok(None);
                };
                let row: SubscriberRow = sqlx::query_as(&format!(
                    "UPDATE subscribers SET name = COALESCE($2, name), \
                     status = COALESCE($3, status), updated_at = $4 \
                     WHERE id = $1 RETURNING {SUBSCRIBER_COLUMNS}"
                ))
                .bind(id)
                .bind(name)
                .bind(status.map(SubscriberStatus::as_str))
                .bind(now_millis())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                let mut summary = serde_json::Map::new();
                if before.name != row.name {
                    summary.insert(
                        "name".into(),
                        serde_json::json!({"from": before.name, "to": row.name}),
                    );
                }
                if before.status != row.status {
                    summary.insert(
                        "status".into(),
                        serde_json::json!({
                            "from": before.status.as_str(),
                            "to": row.status.as_str(),
                        }),
                    );
                }
                if !summary.is_empty() {
                    let action = if before.status != row.status {
                        "subscriber.status"
                    } else {
                        "subscriber.update"
                    };
                    record_audit_on(
                        &mut tx,
                        &NewAudit::new(
                            id,
                            actor,
                            action,
                            format!("subscribers/{id}"),
                            serde_json::Value::Object(summary),
                        ),
                    )
                    .await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(Some(row))
            }

            async fn rotate_webhook_secret(
                &self,
                subscriber_id: &str,
                new_sealed: &str,
                previous_expires_at: Millis,
                actor: &Actor,
            ) -> StoreResult<Option<SubscriberRow>> {
                let mut tx = begin_write(self.writes()).await?;
                // One statement, so atomic: SET expressions read the row as it
                // was before the update (SQL semantics on both backends).
                let row: Option<SubscriberRow> = sqlx::query_as(&format!(
                    "UPDATE subscribers SET \
                     previous_webhook_secret_sealed = webhook_secret_sealed, \
                     previous_secret_expires_at = $3, webhook_secret_sealed = $2, updated_at = $4 \
                     WHERE id = $1 RETURNING {SUBSCRIBER_COLUMNS}"
                ))
                .bind(subscriber_id)
                .bind(new_sealed)
                .bind(previous_expires_at)
                .bind(now_millis())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                if row.is_some() {
                    record_audit_on(
                        &mut tx,
                        &NewAudit::new(
                            subscriber_id,
                            actor,
                            "webhook_secret.rotate",
                            format!("subscribers/{subscriber_id}/webhook-secret"),
                            serde_json::json!({
                                "previous_valid_until": $crate::clock::rfc3339(previous_expires_at),
                            }),
                        ),
                    )
                    .await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(row)
            }

            async fn set_signing_scheme(
                &self,
                subscriber_id: &str,
                scheme: SigningScheme,
                new_key: Option<(&str, &str)>,
                previous_scheme_expires_at: Millis,
                actor: &Actor,
            ) -> StoreResult<Option<SubscriberRow>> {
                let mut tx = begin_write(self.writes()).await?;
                let Some(before) = subscriber_for_update_on(&mut tx, subscriber_id).await? else {
                    return Ok(None);
                };
                // The CASE reads the scheme as it was, and two concurrent first
                // switches keep one key pair, not a mix.
                let row: SubscriberRow = sqlx::query_as(&format!(
                    "UPDATE subscribers SET \
                     previous_scheme_expires_at = CASE WHEN signing_scheme = $2 \
                     THEN previous_scheme_expires_at ELSE $5 END, \
                     signing_scheme = $2, \
                     signing_public_key = CASE WHEN signing_key_sealed IS NULL \
                     THEN $4 ELSE signing_public_key END, \
                     signing_key_sealed = COALESCE(signing_key_sealed, $3), updated_at = $6 \
                     WHERE id = $1 RETURNING {SUBSCRIBER_COLUMNS}"
                ))
                .bind(subscriber_id)
                .bind(scheme.as_str())
                .bind(new_key.map(|(sealed, _)| sealed))
                .bind(new_key.map(|(_, public)| public))
                .bind(previous_scheme_expires_at)
                .bind(now_millis())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                let key_made = before.signing_public_key.is_none() && row.signing_public_key.is_some();
                if before.signing_scheme != row.signing_scheme || key_made {
                    let previous_until = (before.signing_scheme != row.signing_scheme)
                        .then(|| $crate::clock::rfc3339(previous_scheme_expires_at));
                    record_audit_on(
                        &mut tx,
                        &NewAudit::new(
                            subscriber_id,
                            actor,
                            "signing_scheme.set",
                            format!("subscribers/{subscriber_id}/signing-scheme"),
                            serde_json::json!({
                                "from": before.signing_scheme.as_str(),
                                "to": row.signing_scheme.as_str(),
                                "public_key": row.signing_public_key,
                                "key_pair_created": key_made,
                                "previous_scheme_valid_until": previous_until,
                            }),
                        ),
                    )
                    .await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(Some(row))
            }

            async fn rotate_signing_key(
                &self,
                subscriber_id: &str,
                new_sealed: &str,
                new_public_key: &str,
                previous_expires_at: Millis,
                actor: &Actor,
            ) -> StoreResult<Option<SubscriberRow>> {
                let mut tx = begin_write(self.writes()).await?;
                let row: Option<SubscriberRow> = sqlx::query_as(&format!(
                    "UPDATE subscribers SET \
                     previous_signing_key_sealed = signing_key_sealed, \
                     previous_signing_key_expires_at = CASE WHEN signing_key_sealed IS NULL \
                     THEN NULL ELSE $4 END, \
                     signing_key_sealed = $2, signing_public_key = $3, updated_at = $5 \
                     WHERE id = $1 RETURNING {SUBSCRIBER_COLUMNS}"
                ))
                .bind(subscriber_id)
                .bind(new_sealed)
                .bind(new_public_key)
                .bind(previous_expires_at)
                .bind(now_millis())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                if let Some(row) = &row {
                    record_audit_on(
                        &mut tx,
                        &NewAudit::new(
                            subscriber_id,
                            actor,
                            "signing_key.rotate",
                            format!("subscribers/{subscriber_id}/signing-key"),
                            serde_json::json!({
                                // The public key only: the private one never leaves the seal.
                                "public_key": new_public_key,
                                "previous_valid_until": row
                                    .previous_signing_key_expires_at
                                    .map($crate::clock::rfc3339),
                            }),
                        ),
                    )
                    .await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(row)
            }

            async fn create_api_key(&self, row: &ApiKeyRow, actor: &Actor) -> StoreResult<()> {
                let mut tx = begin_write(self.writes()).await?;
                sqlx::query(
                    "INSERT INTO api_keys \
                     (key_id, subscriber_id, name, key_hash, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&row.key_id)
                .bind(&row.subscriber_id)
                .bind(row.name.as_deref())
                .bind(&row.key_hash)
                .bind(row.created_at)
                .bind(row.revoked_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        &row.subscriber_id,
                        actor,
                        "key.create",
                        format!("keys/{}", row.key_id),
                        serde_json::json!({"key_id": row.key_id, "name": row.name}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)
            }

            async fn list_api_keys(&self, subscriber_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
                sqlx::query_as(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE subscriber_id = $1 \
                     ORDER BY created_at, key_id"
                ))
                .bind(subscriber_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn revoke_api_key(
                &self,
                subscriber_id: &str,
                key_id: &str,
                actor: &Actor,
            ) -> StoreResult<Option<ApiKeyRow>> {
                let mut tx = begin_write(self.writes()).await?;
                // Only a live key is revoked (and audited); a revoked one keeps
                // its first revocation time.
                let revoked: Option<ApiKeyRow> = sqlx::query_as(&format!(
                    "UPDATE api_keys SET revoked_at = $3 \
                     WHERE subscriber_id = $1 AND key_id = $2 AND revoked_at IS NULL \
                     RETURNING {API_KEY_COLUMNS}"
                ))
                .bind(subscriber_id)
                .bind(key_id)
                .bind(now_millis())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                let row = match revoked {
                    Some(row) => {
                        record_audit_on(
                            &mut tx,
                            &NewAudit::new(
                                subscriber_id,
                                actor,
                                "key.revoke",
                                format!("keys/{key_id}"),
                                serde_json::json!({"key_id": key_id, "name": row.name}),
                            ),
                        )
                        .await?;
                        Some(row)
                    }
                    None => sqlx::query_as(&format!(
                        "SELECT {API_KEY_COLUMNS} FROM api_keys \
                         WHERE subscriber_id = $1 AND key_id = $2"
                    ))
                    .bind(subscriber_id)
                    .bind(key_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?,
                };
                tx.commit().await.map_err(db_err)?;
                Ok(row)
            }

            async fn find_key_for_auth(&self, key_id: &str) -> StoreResult<Option<KeyAuthRow>> {
                sqlx::query_as(
                    "SELECT k.key_hash, k.subscriber_id, k.revoked_at IS NOT NULL AS revoked, \
                     s.status AS subscriber_status \
                     FROM api_keys k JOIN subscribers s ON s.id = k.subscriber_id \
                     WHERE k.key_id = $1",
                )
                .bind(key_id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn put_provider_credentials(
                &self,
                row: &ProviderCredentialRow,
                actor: &Actor,
            ) -> StoreResult<()> {
                let mut tx = begin_write(self.writes()).await?;
                // Replacing credentials keeps `created_at`, so the default
                // provider (the first configured) does not change when its
                // secret is rotated.
                sqlx::query(&format!(
                    "INSERT INTO provider_credentials ({PROVIDER_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (subscriber_id, provider) DO UPDATE SET \
                     sealed = excluded.sealed, settings = excluded.settings, \
                     updated_at = excluded.updated_at"
                ))
                .bind(&row.subscriber_id)
                .bind(&row.provider)
                .bind(&row.sealed)
                .bind(&row.settings)
                .bind(row.created_at)
                .bind(row.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                // The non-secret settings only; the sealed secret is never logged.
                let settings: serde_json::Value =
                    serde_json::from_str(&row.settings).unwrap_or(serde_json::Value::Null);
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        &row.subscriber_id,
                        actor,
                        "provider.credentials.put",
                        format!("providers/{}", row.provider),
                        serde_json::json!({"provider": row.provider, "settings": settings}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)
            }

            async fn list_provider_credentials(
                &self,
                subscriber_id: &str,
            ) -> StoreResult<Vec<ProviderCredentialRow>> {
                sqlx::query_as(&format!(
                    "SELECT {PROVIDER_COLUMNS} FROM provider_credentials \
                     WHERE subscriber_id = $1 ORDER BY created_at, provider"
                ))
                .bind(subscriber_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }
        }

        /// The subscriber's row, locked for the transaction's update
        /// (PostgreSQL; SQLite's write lock serializes writers).
        async fn subscriber_for_update_on(
            conn: &mut $conn,
            id: &str,
        ) -> StoreResult<Option<SubscriberRow>> {
            sqlx::query_as(&format!(
                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = $1 {}",
                $store::LOCK_ROW
            ))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)
        }

        #[async_trait::async_trait]
        impl Jobs for $store {
            async fn enqueue_unique(&self, job: &NewJob, done_since: Millis) -> StoreResult<Enqueued> {
                if let Some(ingested) = self.ingested() {
                    if job.kind == JobKind::DeviceFetch.as_str() {
                        ingested.insert(&job.subscriber_id, &job.dedupe_key);
                    }
                }
                self.commits.enqueue(job.clone(), done_since).await
            }

            async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<Vec<JobRow>> {
                sqlx::query_as(&format!(
                    // The casts let PostgreSQL type a parameter that is only
                    // compared with NULL.
                    "SELECT {JOB_COLUMNS} FROM jobs \
                     WHERE (CAST($1 AS TEXT) IS NULL OR subscriber_id = $1) \
                     AND (CAST($2 AS TEXT) IS NULL OR kind = $2) \
                     AND (CAST($3 AS TEXT) IS NULL OR state = $3) \
                     ORDER BY created_at DESC, id DESC LIMIT $4"
                ))
                .bind(filter.subscriber_id.as_deref())
                .bind(filter.kind.as_deref())
                .bind(filter.state.map(JobState::as_str))
                .bind(filter.limit.clamp(1, 1000))
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn latest_job(
                &self,
                subscriber_id: &str,
                kind: &str,
                dedupe_key: &str,
            ) -> StoreResult<Option<JobRow>> {
                if let Some(ingested) = self.ingested() {
                    if kind == JobKind::DeviceFetch.as_str()
                        && !ingested.may_contain(subscriber_id, dedupe_key)
                    {
                        return Ok(None);
                    }
                }
                let mut conn = self.reads().acquire().await.map_err(db_err)?;
                latest_job_on(&mut conn, subscriber_id, kind, dedupe_key).await
            }

            async fn job_counts(&self) -> StoreResult<Vec<(String, JobState, i64)>> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state",
                )
                .fetch_all(self.reads())
                .await
                .map_err(db_err)?;
                rows.into_iter()
                    .map(|(kind, state, n)| {
                        let state = JobState::try_from(state).map_err(StoreError::Corrupt)?;
                        Ok((kind, state, n))
                    })
                    .collect()
            }

            async fn claim_jobs(
                &self,
                kind: &str,
                limit: i64,
                now: Millis,
                lease_until: Millis,
            ) -> StoreResult<Vec<JobRow>> {
                // SQLite has one writer; PostgreSQL processes skip the rows
                // another process is claiming instead of waiting for them.
                sqlx::query_as(&format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, \
                     lease_expires_at = $4, updated_at = $3 WHERE id IN (SELECT id FROM jobs \
                     WHERE kind = $1 AND ((state = 'pending' AND run_at <= $3) \
                     OR (state = 'running' AND lease_expires_at < $3)) \
                     ORDER BY run_at LIMIT $2 {}) RETURNING {JOB_COLUMNS}",
                    Self::SKIP_LOCKED
                ))
                .bind(kind)
                .bind(limit.max(0))
                .bind(now)
                .bind(lease_until)
                .fetch_all(self.writes())
                .await
                .map_err(db_err)
            }

            async fn renew_leases(&self, job_ids: &[String], lease_until: Millis) -> StoreResult<()> {
                if job_ids.is_empty() {
                    return Ok(());
                }
                let mut tx = begin_write(self.writes()).await?;
                // Only a running job holds a lease: one that finished or went
                // back to the queue meanwhile is left alone.
                for id in job_ids {
                    sqlx::query(
                        "UPDATE jobs SET lease_expires_at = $2 \
                         WHERE id = $1 AND state = 'running'",
                    )
                    .bind(id)
                    .bind(lease_until)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)
            }

            async fn release_leases(&self, now: Millis) -> StoreResult<u64> {
                // The attempt `claim_jobs` counted never finished: refund it,
                // as `retry_job` does for a run that never reached its target.
                let done = sqlx::query(
                    "UPDATE jobs SET state = 'pending', run_at = $1, lease_expires_at = NULL, \
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                     updated_at = $1 WHERE state = 'running'",
                )
                .bind(now)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected())
            }

            async fn retry_job(
                &self,
                job_id: &str,
                run_at: Millis,
                error: &str,
                refund: bool,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE jobs SET state = 'pending', run_at = $2, last_error = $3, \
                     lease_expires_at = NULL, \
                     attempts = CASE WHEN $4 AND attempts > 0 THEN attempts - 1 ELSE attempts END, \
                     updated_at = $5 WHERE id = $1 AND state = 'running'",
                )
                .bind(job_id)
                .bind(run_at)
                .bind(error)
                .bind(refund)
                .bind(now_millis())
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn next_due(&self, kind: &str) -> StoreResult<Option<Millis>> {
                sqlx::query_scalar(
                    "SELECT MIN(run_at) FROM jobs WHERE kind = $1 AND state = 'pending'",
                )
                .bind(kind)
                .fetch_one(self.reads())
                .await
                .map_err(db_err)
            }

            async fn oldest_live_job(&self, kind: &str) -> StoreResult<Option<Millis>> {
                sqlx::query_scalar(
                    "SELECT MIN(created_at) FROM jobs \
                     WHERE kind = $1 AND state IN ('pending', 'running')",
                )
                .bind(kind)
                .fetch_one(self.reads())
                .await
                .map_err(db_err)
            }

            async fn requeue_failed_job(
                &self,
                kind: &str,
                subscriber_id: &str,
                dedupe_key: &str,
                run_at: Millis,
            ) -> StoreResult<Requeued> {
                let mut tx = begin_write(self.writes()).await?;
                let Some(latest) = latest_job_on(&mut tx, subscriber_id, kind, dedupe_key).await?
                else {
                    return Ok(Requeued::Missing);
                };
                if latest.state != JobState::Failed {
                    return Ok(Requeued::NotFailed(latest));
                }
                // `state = 'failed'` settles a race with a concurrent requeue
                // (PostgreSQL): the loser waits for the winner's commit, then
                // matches no row and reports the job as it is now.
                let requeued: Option<JobRow> = sqlx::query_as(&format!(
                    "UPDATE jobs SET state = 'pending', run_at = $2, attempts = 0, \
                     lease_expires_at = NULL, result = NULL, finished_at = NULL, updated_at = $3 \
                     WHERE id = $1 AND state = 'failed' RETURNING {JOB_COLUMNS}"
                ))
                .bind(&latest.id)
                .bind(run_at)
                .bind(now_millis())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                let outcome = match requeued {
                    Some(row) => Requeued::Requeued(row),
                    None => Requeued::NotFailed(
                        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                            .bind(&latest.id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_err)?,
                    ),
                };
                tx.commit().await.map_err(db_err)?;
                Ok(outcome)
            }

            async fn finish_job(&self, job_id: &str, outcome: &JobOutcome) -> StoreResult<bool> {
                self.commits.finish(job_id, outcome).await
            }
        }

        #[async_trait::async_trait]
        impl Decisions for $store {
            async fn record_decision(
                &self,
                decision: &NewDecision,
                idempotent_since: Millis,
            ) -> StoreResult<DecisionRecorded> {
                self.commits
                    .record_decision(decision, idempotent_since)
                    .await
            }

            async fn find_decision_by_idempotency(
                &self,
                subscriber_id: &str,
                key: &str,
                since: Millis,
            ) -> StoreResult<Option<DecisionRow>> {
                let mut conn = self.reads().acquire().await.map_err(db_err)?;
                let row = decision_by_key_on(&mut conn, subscriber_id, key).await?;
                Ok(row.filter(|row| row.created_at >= since))
            }

            async fn get_decision(
                &self,
                subscriber_id: &str,
                id: &str,
            ) -> StoreResult<Option<DecisionRow>> {
                let record: Option<DecisionRecord> = sqlx::query_as(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions WHERE subscriber_id = $1 AND id = $2"
                ))
                .bind(subscriber_id)
                .bind(id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)?;
                record.map(DecisionRow::try_from).transpose()
            }

            async fn get_decision_by_id(&self, decision_id: &str) -> StoreResult<Option<DecisionRow>> {
                let record: Option<DecisionRecord> =
                    sqlx::query_as(&format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1"))
                        .bind(decision_id)
                        .fetch_optional(self.reads())
                        .await
                        .map_err(db_err)?;
                record.map(DecisionRow::try_from).transpose()
            }

            async fn set_decision_final(
                &self,
                decision_id: &str,
                final_input: &str,
                final_result: &str,
                at: Millis,
            ) -> StoreResult<bool> {
                // `final_at IS NULL` settles concurrent writers: on PostgreSQL
                // the second waits for the first's commit, then matches no row.
                let done = sqlx::query(
                    "UPDATE decisions SET final_input = $2, final_result = $3, final_at = $4 \
                     WHERE id = $1 AND final_at IS NULL",
                )
                .bind(decision_id)
                .bind(final_input)
                .bind(final_result)
                .bind(at)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO callback_attempts ({CALLBACK_ATTEMPT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (decision_id, attempt) DO UPDATE SET at = excluded.at, \
                     status_code = excluded.status_code, error = excluded.error, \
                     duration_ms = excluded.duration_ms, webhook_id = excluded.webhook_id"
                ))
                .bind(&attempt.decision_id)
                .bind(attempt.attempt)
                .bind(attempt.at)
                .bind(attempt.status_code)
                .bind(attempt.error.as_deref())
                .bind(attempt.duration_ms)
                .bind(&attempt.webhook_id)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn callback_attempts(&self, decision_id: &str) -> StoreResult<Vec<CallbackAttempt>> {
                sqlx::query_as(&format!(
                    "SELECT {CALLBACK_ATTEMPT_COLUMNS} FROM callback_attempts \
                     WHERE decision_id = $1 ORDER BY attempt"
                ))
                .bind(decision_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn label_decision(
                &self,
                subscriber_id: &str,
                id: &str,
                label: Label,
                at: Millis,
                actor: &Actor,
                context: serde_json::Value,
            ) -> StoreResult<Option<DecisionRow>> {
                let Some(memory) = self.memory() else {
                    return label_decision_on(
                        self.writes(),
                        None,
                        subscriber_id,
                        id,
                        label,
                        at,
                        actor,
                        &context,
                    )
                    .await;
                };
                // On a task of its own, which runs to its end: a caller going
                // away mid-commit must not leave the copy behind the file.
                let (pool, memory) = (self.writes().clone(), memory.clone());
                let (subscriber_id, id) = (subscriber_id.to_owned(), id.to_owned());
                let actor = actor.clone();
                finish_task(
                    tokio::spawn(async move {
                        label_decision_on(
                            &pool,
                            Some(&memory),
                            &subscriber_id,
                            &id,
                            label,
                            at,
                            &actor,
                            &context,
                        )
                        .await
                    })
                    .await,
                )
            }

            async fn decisions_since(
                &self,
                since: Millis,
                after: Option<(Millis, String)>,
                limit: i64,
            ) -> StoreResult<Vec<DecisionReplay>> {
                let limit = limit.clamp(1, 10_000);
                // Without a position, (since - 1, "") is before every row.
                let (after_at, after_id) = after.unwrap_or((since.saturating_sub(1), String::new()));
                sqlx::query_as(
                    "SELECT id, subscriber_id, created_at, input, idempotency_key FROM decisions \
                     WHERE created_at >= $1 \
                     AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
                     ORDER BY created_at, id LIMIT $4",
                )
                .bind(since)
                .bind(after_at)
                .bind(after_id)
                .bind(limit)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }
        }

        #[async_trait::async_trait]
        impl Customers for $store {
            async fn touch_customer(
                &self,
                subscriber_id: &str,
                touch: &CustomerTouch,
                at: Millis,
            ) -> StoreResult<()> {
                self.commits.touch_customer(subscriber_id, touch, at).await
            }

            async fn get_customer(
                &self,
                subscriber_id: &str,
                user_id: &str,
            ) -> StoreResult<Option<CustomerProfile>> {
                let totals: Option<CustomerTotals> = sqlx::query_as(&format!(
                    "SELECT {CUSTOMER_COLUMNS}, \
                     (SELECT COUNT(*) FROM customer_devices d \
                      WHERE d.subscriber_id = $1 AND d.user_id = $2) AS devices_total, \
                     (SELECT COUNT(*) FROM customer_cards k \
                      WHERE k.subscriber_id = $1 AND k.user_id = $2) AS cards_total \
                     FROM customers WHERE subscriber_id = $1 AND user_id = $2"
                ))
                .bind(subscriber_id)
                .bind(user_id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)?;
                let Some(totals) = totals else {
                    return Ok(None);
                };
                let devices = sqlx::query_as(
                    "SELECT visitor_id, first_seen, last_seen FROM customer_devices \
                     WHERE subscriber_id = $1 AND user_id = $2 \
                     ORDER BY last_seen DESC, visitor_id LIMIT $3",
                )
                .bind(subscriber_id)
                .bind(user_id)
                .bind(PROFILE_LIST_LIMIT)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)?;
                let cards = sqlx::query_as(
                    "SELECT bin, last4, first_seen, last_seen FROM customer_cards \
                     WHERE subscriber_id = $1 AND user_id = $2 \
                     ORDER BY last_seen DESC, bin, last4 LIMIT $3",
                )
                .bind(subscriber_id)
                .bind(user_id)
                .bind(PROFILE_LIST_LIMIT)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)?;
                Ok(Some(CustomerProfile {
                    customer: totals.customer,
                    devices,
                    cards,
                    devices_total: totals.devices_total,
                    cards_total: totals.cards_total,
                }))
            }

            async fn set_customer_status(
                &self,
                subscriber_id: &str,
                user_id: &str,
                status: CustomerStatus,
                at: Millis,
                actor: &Actor,
            ) -> StoreResult<CustomerRow> {
                let Some(memory) = self.memory() else {
                    return set_customer_status_on(
                        self.writes(),
                        None,
                        subscriber_id,
                        user_id,
                        status,
                        at,
                        actor,
                    )
                    .await;
                };
                // Its own task, as for labels: the commit and the copy go together.
                let (pool, memory) = (self.writes().clone(), memory.clone());
                let (subscriber_id, user_id) = (subscriber_id.to_owned(), user_id.to_owned());
                let actor = actor.clone();
                finish_task(
                    tokio::spawn(async move {
                        set_customer_status_on(
                            &pool,
                            Some(&memory),
                            &subscriber_id,
                            &user_id,
                            status,
                            at,
                            &actor,
                        )
                        .await
                    })
                    .await,
                )
            }

            async fn customer_features(
                &self,
                subscriber_id: &str,
                user_id: &str,
                visitor_id: Option<&str>,
                card: Option<(&str, &str)>,
            ) -> StoreResult<Option<CustomerFeatures>> {
                if let Some(memory) = self.memory() {
                    return Ok(memory.features(subscriber_id, user_id, visitor_id, card));
                }
                // Unknown device or card: NULL parameters match no row. The
                // casts let PostgreSQL type a parameter that may be NULL.
                sqlx::query_as(
                    "SELECT c.status, c.first_seen, c.last_seen, c.decisions_allow, \
                     c.decisions_review, c.decisions_block, c.amount_count, c.amount_total, \
                     c.amount_max, c.fraud_labels, \
                     (SELECT COUNT(*) FROM customer_devices d \
                      WHERE d.subscriber_id = c.subscriber_id AND d.user_id = c.user_id) AS devices, \
                     (SELECT COUNT(*) FROM customer_cards k \
                      WHERE k.subscriber_id = c.subscriber_id AND k.user_id = c.user_id) AS cards, \
                     EXISTS (SELECT 1 FROM customer_devices d \
                      WHERE d.subscriber_id = c.subscriber_id AND d.user_id = c.user_id \
                      AND d.visitor_id = CAST($3 AS TEXT)) AS known_device, \
                     EXISTS (SELECT 1 FROM customer_cards k \
                      WHERE k.subscriber_id = c.subscriber_id AND k.user_id = c.user_id \
                      AND k.bin = CAST($4 AS TEXT) AND k.last4 = CAST($5 AS TEXT)) AS known_card \
                     FROM customers c WHERE c.subscriber_id = $1 AND c.user_id = $2",
                )
                .bind(subscriber_id)
                .bind(user_id)
                .bind(visitor_id)
                .bind(card.map(|(bin, _)| bin))
                .bind(card.map(|(_, last4)| last4))
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }
        }

        /// Labels a decision and keeps its customer's fraud count; with a
        /// memory, in write order and updating it after the commit. The same
        /// label again changes nothing (neither `labeled_at` nor the count)
        /// and records no audit entry.
        #[allow(clippy::too_many_arguments)]
        async fn label_decision_on(
            pool: &sqlx::Pool<$db>,
            memory: Option<&CustomerMemory>,
            subscriber_id: &str,
            id: &str,
            label: Label,
            at: Millis,
            actor: &Actor,
            context: &serde_json::Value,
        ) -> StoreResult<Option<DecisionRow>> {
            let _order = match memory {
                Some(memory) => Some(memory.write_order().await),
                None => None,
            };
            let mut tx = begin_write(pool).await?;
            let old: Option<DecisionRecord> = sqlx::query_as(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions \
                 WHERE subscriber_id = $1 AND id = $2 {}",
                $store::LOCK_ROW
            ))
            .bind(subscriber_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let Some(old) = old.map(DecisionRow::try_from).transpose()? else {
                return Ok(None);
            };
            if old.label == Some(label) {
                return Ok(Some(old));
            }
            let was_fraud = old.label.is_some_and(Label::is_fraud_like);
            let (user_id, created_at) = (old.user_id.clone(), old.created_at);
            let labeled: DecisionRecord = sqlx::query_as(&format!(
                "UPDATE decisions SET label = $3, labeled_at = $4 \
                 WHERE subscriber_id = $1 AND id = $2 RETURNING {DECISION_COLUMNS}"
            ))
            .bind(subscriber_id)
            .bind(id)
            .bind(label.as_str())
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            let delta = i64::from(label.is_fraud_like()) - i64::from(was_fraud);
            let fraud_change = user_id.filter(|_| delta != 0);
            if let Some(user_id) = &fraud_change {
                // A customer first known from this label is dated by its decision.
                sqlx::query(
                    "INSERT INTO customers \
                     (subscriber_id, user_id, first_seen, last_seen, fraud_labels) \
                     VALUES ($1, $2, $3, $3, $4) \
                     ON CONFLICT (subscriber_id, user_id) DO UPDATE SET fraud_labels = \
                     CASE WHEN customers.fraud_labels + $5 < 0 THEN 0 \
                     ELSE customers.fraud_labels + $5 END",
                )
                .bind(subscriber_id)
                .bind(user_id)
                .bind(created_at)
                .bind(delta.max(0))
                .bind(delta)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            let mut summary = serde_json::json!({
                "label": label.as_str(),
                "previous": old.label.map(Label::as_str),
            });
            if let (Some(summary), Some(context)) = (summary.as_object_mut(), context.as_object()) {
                for (k, v) in context {
                    summary.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            let mut entry =
                NewAudit::new(subscriber_id, actor, "decision.label", format!("decisions/{id}"), summary);
            entry.at = at;
            record_audit_on(&mut tx, &entry).await?;
            tx.commit().await.map_err(db_err)?;
            if let (Some(memory), Some(user_id)) = (memory, &fraud_change) {
                memory.labeled(subscriber_id, user_id, created_at, delta);
            }
            DecisionRow::try_from(labeled).map(Some)
        }

        /// A store task's answer; its panic is the caller's.
        fn finish_task<T>(
            joined: Result<StoreResult<T>, tokio::task::JoinError>,
        ) -> StoreResult<T> {
            match joined {
                Ok(answer) => answer,
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                // The runtime is shutting down.
                Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
            }
        }

        async fn set_customer_status_on(
            pool: &sqlx::Pool<$db>,
            memory: Option<&CustomerMemory>,
            subscriber_id: &str,
            user_id: &str,
            status: CustomerStatus,
            at: Millis,
            actor: &Actor,
        ) -> StoreResult<CustomerRow> {
            let _order = match memory {
                Some(memory) => Some(memory.write_order().await),
                None => None,
            };
            let mut tx = begin_write(pool).await?;
            let previous: Option<String> = sqlx::query_scalar(&format!(
                "SELECT status FROM customers WHERE subscriber_id = $1 AND user_id = $2 {}",
                $store::LOCK_ROW
            ))
            .bind(subscriber_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let row: CustomerRow = sqlx::query_as(&format!(
                "INSERT INTO customers (subscriber_id, user_id, status, first_seen, last_seen, \
                 status_updated_at) VALUES ($1, $2, $3, $4, $4, $4) \
                 ON CONFLICT (subscriber_id, user_id) DO UPDATE SET status = excluded.status, \
                 status_updated_at = excluded.status_updated_at RETURNING {CUSTOMER_COLUMNS}"
            ))
            .bind(subscriber_id)
            .bind(user_id)
            .bind(status.as_str())
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            if previous.as_deref() != Some(status.as_str()) {
                let mut entry = NewAudit::new(
                    subscriber_id,
                    actor,
                    "customer.status",
                    format!("customers/{user_id}"),
                    serde_json::json!({"status": status.as_str(), "previous": previous}),
                );
                entry.at = at;
                record_audit_on(&mut tx, &entry).await?;
            }
            tx.commit().await.map_err(db_err)?;
            if let Some(memory) = memory {
                memory.status_set(subscriber_id, user_id, status, at);
            }
            Ok(row)
        }

        async fn latest_job_on(
            conn: &mut $conn,
            subscriber_id: &str,
            kind: &str,
            dedupe_key: &str,
        ) -> StoreResult<Option<JobRow>> {
            sqlx::query_as(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs \
                 WHERE subscriber_id = $1 AND kind = $2 AND dedupe_key = $3 \
                 ORDER BY created_at DESC, id DESC LIMIT 1"
            ))
            .bind(subscriber_id)
            .bind(kind)
            .bind(dedupe_key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)
        }

        /// Records `job` unless a live or fresh one exists; see
        /// [`Jobs::enqueue_unique`].
        async fn enqueue_on(
            conn: &mut $conn,
            job: &NewJob,
            done_since: Millis,
        ) -> StoreResult<Enqueued> {
            // The partial unique index `jobs_live` settles races with other
            // processes: a losing insert writes no row, and the next look
            // finds the winner.
            for _ in 0..3 {
                if let Some(latest) =
                    latest_job_on(conn, &job.subscriber_id, &job.kind, &job.dedupe_key).await?
                {
                    match latest.state {
                        JobState::Pending | JobState::Running => {
                            return Ok(Enqueued::InFlight(latest))
                        }
                        JobState::Succeeded if latest.finished_at.unwrap_or(0) >= done_since => {
                            return Ok(Enqueued::Done(latest))
                        }
                        _ => {}
                    }
                }
                if let Some(row) = insert_job_on(conn, job).await? {
                    return Ok(Enqueued::Queued(row));
                }
            }
            Err(StoreError::Conflict(format!(
                "job {} is contended",
                job.dedupe_key
            )))
        }

        /// Inserts `job` as pending; `None` when a live job has its key.
        async fn insert_job_on(conn: &mut $conn, job: &NewJob) -> StoreResult<Option<JobRow>> {
            let now = now_millis();
            let row = pending_job(job, now);
            let done = sqlx::query(
                "INSERT INTO jobs (id, kind, subscriber_id, dedupe_key, payload, state, \
                 attempts, run_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $7, $6, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&row.id)
            .bind(&row.kind)
            .bind(&row.subscriber_id)
            .bind(&row.dedupe_key)
            .bind(&row.payload)
            .bind(now)
            .bind(row.run_at)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
            Ok((done.rows_affected() == 1).then_some(row))
        }

        async fn decision_by_key_on(
            conn: &mut $conn,
            subscriber_id: &str,
            key: &str,
        ) -> StoreResult<Option<DecisionRow>> {
            let record: Option<DecisionRecord> = sqlx::query_as(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions \
                 WHERE subscriber_id = $1 AND idempotency_key = $2"
            ))
            .bind(subscriber_id)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
            record.map(DecisionRow::try_from).transpose()
        }

        /// Records a decision with an idempotency key (not its callback job
        /// nor its customer update: the group committer inserts those for the
        /// whole batch); see [`Decisions::record_decision`].
        async fn record_decision_on(
            conn: &mut $conn,
            decision: &NewDecision,
            idempotent_since: Millis,
        ) -> StoreResult<DecisionRecorded> {
            // The partial unique index `decisions_idempotency` settles races
            // with other batches and processes: a losing insert waits for the
            // winner's commit, writes no row, and the next look finds the winner.
            for _ in 0..3 {
                if let Some(key) = &decision.idempotency_key {
                    if let Some(existing) =
                        decision_by_key_on(conn, &decision.subscriber_id, key).await?
                    {
                        if existing.created_at >= idempotent_since {
                            return Ok(DecisionRecorded::Existing(existing));
                        }
                        // Out of the window: the key is free again.
                        sqlx::query(
                            "UPDATE decisions SET idempotency_key = NULL \
                             WHERE subscriber_id = $1 AND id = $2 AND idempotency_key = $3",
                        )
                        .bind(&decision.subscriber_id)
                        .bind(&existing.id)
                        .bind(key)
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err)?;
                    }
                }
                let inserted = bind_decision(
                    sqlx::query(
                    "INSERT INTO decisions (id, subscriber_id, request_id, idempotency_key, \
                     request_hash, input, result, risk_score, risk_level, action, rules_version, \
                     callback_url, user_id, duration_us, created_at, shadow, ip_address, \
                     email_domain) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17, $18) \
                     ON CONFLICT (subscriber_id, idempotency_key) \
                     WHERE idempotency_key IS NOT NULL DO NOTHING",
                    ),
                    decision,
                )
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                if inserted.rows_affected() == 1 {
                    return Ok(DecisionRecorded::Inserted(
                        $crate::store::shared::inserted_decision(decision),
                    ));
                }
            }
            Err(StoreError::Conflict(format!(
                "idempotency key of decision {} is contended",
                decision.id
            )))
        }

        /// Finishes those of `jobs` (distinct ids) that are live,
        /// `ROWS_PER_STATEMENT` to a statement; answers their ids. VALUES
        /// columns are `column1`, `column2`, … on both backends.
        async fn finish_jobs_on(
            conn: &mut $conn,
            jobs: &[(&str, &JobOutcome)],
        ) -> StoreResult<Vec<String>> {
            let now = now_millis();
            let mut finished = Vec::with_capacity(jobs.len());
            for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
                if !$store::LOCK_ROW.is_empty() {
                    // Row locks in id order, as every batch takes them: an
                    // UPDATE … FROM locks in whatever order its join runs.
                    let ids: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
                    let sql = format!(
                        "SELECT id FROM jobs WHERE id IN ({}) ORDER BY id {}",
                        ids.join(", "),
                        $store::LOCK_ROW
                    );
                    let mut lock = sqlx::query(&sql);
                    for (job_id, _) in chunk {
                        lock = lock.bind(*job_id);
                    }
                    lock.execute(&mut *conn).await.map_err(db_err)?;
                }
                let sql = format!(
                    "UPDATE jobs SET state = v.column2, result = v.column3, \
                     last_error = v.column4, finished_at = v.column5, updated_at = v.column5, \
                     lease_expires_at = NULL FROM (VALUES {}) AS v \
                     WHERE jobs.id = v.column1 AND jobs.state IN ('pending', 'running') \
                     RETURNING jobs.id",
                    values(chunk.len(), 5)
                );
                let mut query = sqlx::query_scalar(&sql);
                for (job_id, outcome) in chunk {
                    let (state, result, error) = match outcome {
                        JobOutcome::Succeeded { result } => {
                            (JobState::Succeeded, Some(result.as_str()), None)
                        }
                        JobOutcome::Failed { error } => {
                            (JobState::Failed, None, Some(error.as_str()))
                        }
                    };
                    query = query
                        .bind(*job_id)
                        .bind(state.as_str())
                        .bind(result)
                        .bind(error)
                        .bind(now);
                }
                let ids: Vec<String> = query.fetch_all(&mut *conn).await.map_err(db_err)?;
                finished.extend(ids);
            }
            Ok(finished)
        }

        /// Inserts jobs as pending, `ROWS_PER_STATEMENT` to a statement.
        async fn insert_jobs_on(conn: &mut $conn, jobs: &[&NewJob]) -> StoreResult<()> {
            let now = now_millis();
            for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO jobs (id, kind, subscriber_id, dedupe_key, payload, state, \
                     attempts, run_at, created_at, updated_at) VALUES {}",
                    values(chunk.len(), 10)
                );
                let mut query = sqlx::query(&sql);
                for job in chunk {
                    query = query
                        .bind(&job.id)
                        .bind(&job.kind)
                        .bind(&job.subscriber_id)
                        .bind(&job.dedupe_key)
                        .bind(&job.payload)
                        .bind(JobState::Pending.as_str())
                        .bind(0_i64)
                        .bind(job.run_at.unwrap_or(now))
                        .bind(now)
                        .bind(now);
                }
                query.execute(&mut *conn).await.map_err(db_err)?;
            }
            Ok(())
        }

        /// Inserts decisions, `ROWS_PER_STATEMENT` to a statement.
        async fn insert_decisions_on(
            conn: &mut $conn,
            decisions: &[&NewDecision],
        ) -> StoreResult<()> {
            for chunk in decisions.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO decisions (id, subscriber_id, request_id, idempotency_key, \
                     request_hash, input, result, risk_score, risk_level, action, rules_version, \
                     callback_url, user_id, duration_us, created_at, shadow, ip_address, \
                     email_domain) VALUES {}",
                    values(chunk.len(), 18)
                );
                let mut query = sqlx::query(&sql);
                for decision in chunk {
                    query = bind_decision(query, decision);
                }
                query.execute(&mut *conn).await.map_err(db_err)?;
            }
            Ok(())
        }

        /// Upserts the batch's customers, then their devices and cards: first
        /// seen is the earliest time, last seen the latest; counts and amounts
        /// add up. Every key appears once (the batch's touches are merged), as
        /// PostgreSQL requires of one upsert statement.
        async fn touch_customers_on(conn: &mut $conn, touches: &Touches<'_>) -> StoreResult<()> {
            for chunk in touches.customers.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO customers (subscriber_id, user_id, status, first_seen, \
                     last_seen, decisions_allow, decisions_review, decisions_block, amount_count, \
                     amount_total, amount_max) VALUES {} \
                     ON CONFLICT (subscriber_id, user_id) DO UPDATE SET \
                     first_seen = CASE WHEN excluded.first_seen < customers.first_seen \
                       THEN excluded.first_seen ELSE customers.first_seen END, \
                     last_seen = CASE WHEN excluded.last_seen > customers.last_seen \
                       THEN excluded.last_seen ELSE customers.last_seen END, \
                     decisions_allow = customers.decisions_allow + excluded.decisions_allow, \
                     decisions_review = customers.decisions_review + excluded.decisions_review, \
                     decisions_block = customers.decisions_block + excluded.decisions_block, \
                     amount_count = customers.amount_count + excluded.amount_count, \
                     amount_total = customers.amount_total + excluded.amount_total, \
                     amount_max = CASE WHEN excluded.amount_max IS NULL THEN customers.amount_max \
                       WHEN customers.amount_max IS NULL \
                         OR excluded.amount_max > customers.amount_max \
                       THEN excluded.amount_max ELSE customers.amount_max END",
                    values(chunk.len(), 11)
                );
                let mut query = sqlx::query(&sql);
                for c in chunk {
                    query = query
                        .bind(c.subscriber_id)
                        .bind(c.user_id)
                        .bind(CustomerStatus::Normal.as_str())
                        .bind(c.first_seen)
                        .bind(c.last_seen)
                        .bind(c.decisions_allow)
                        .bind(c.decisions_review)
                        .bind(c.decisions_block)
                        .bind(c.amount_count)
                        .bind(c.amount_total)
                        .bind(c.amount_max);
                }
                query.execute(&mut *conn).await.map_err(db_err)?;
            }
            for chunk in touches.devices.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO customer_devices \
                     (subscriber_id, user_id, visitor_id, first_seen, last_seen) VALUES {} \
                     ON CONFLICT (subscriber_id, user_id, visitor_id) DO UPDATE SET \
                     first_seen = CASE WHEN excluded.first_seen < customer_devices.first_seen \
                       THEN excluded.first_seen ELSE customer_devices.first_seen END, \
                     last_seen = CASE WHEN excluded.last_seen > customer_devices.last_seen \
                       THEN excluded.last_seen ELSE customer_devices.last_seen END",
                    values(chunk.len(), 5)
                );
                let mut query = sqlx::query(&sql);
                for d in chunk {
                    query = query
                        .bind(d.subscriber_id)
                        .bind(d.user_id)
                        .bind(d.key)
                        .bind(d.first_seen)
                        .bind(d.last_seen);
                }
                query.execute(&mut *conn).await.map_err(db_err)?;
            }
            for chunk in touches.cards.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO customer_cards \
                     (subscriber_id, user_id, bin, last4, first_seen, last_seen) VALUES {} \
                     ON CONFLICT (subscriber_id, user_id, bin, last4) DO UPDATE SET \
                     first_seen = CASE WHEN excluded.first_seen < customer_cards.first_seen \
                       THEN excluded.first_seen ELSE customer_cards.first_seen END, \
                     last_seen = CASE WHEN excluded.last_seen > customer_cards.last_seen \
                       THEN excluded.last_seen ELSE customer_cards.last_seen END",
                    values(chunk.len(), 6)
                );
                let mut query = sqlx::query(&sql);
                for k in chunk {
                    query = query
                        .bind(k.subscriber_id)
                        .bind(k.user_id)
                        .bind(k.key.0)
                        .bind(k.key.1)
                        .bind(k.first_seen)
                        .bind(k.last_seen);
                }
                query.execute(&mut *conn).await.map_err(db_err)?;
            }
            Ok(())
        }

        /// Adds to the hourly decision counters, `ROWS_PER_STATEMENT` to a
        /// statement; every key appears once (the batch's counts are merged).
        async fn count_decisions_on(
            conn: &mut $conn,
            counts: &[$crate::store::decision_counts::HourCount<'_>],
        ) -> StoreResult<()> {
            for chunk in counts.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO decision_counts (subscriber_id, hour, action, shard, count) \
                     VALUES {} ON CONFLICT (subscriber_id, hour, action, shard) DO UPDATE SET \
                     count = decision_counts.count + excluded.count",
                    values(chunk.len(), 5)
                );
                let mut query = sqlx::query(&sql);
                for c in chunk {
                    query = query
                        .bind(c.subscriber_id)
                        .bind(c.hour)
                        .bind(c.action)
                        .bind(c.shard)
                        .bind(c.count);
                }
                query.execute(&mut *conn).await.map_err(db_err)?;
            }
            Ok(())
        }
    };
}

pub(super) use store_impls;
