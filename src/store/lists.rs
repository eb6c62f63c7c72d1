//! A subscriber's lists and their entries (values already normalized for the
//! list's kind by the service), with a revision per subscriber that every
//! change bumps, so a process keeping the lists in memory reads them again
//! only after a change.
//!
//! Every change writes its audit entry in its own transaction.

use async_trait::async_trait;

use super::{Actor, Millis, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListRow {
    pub subscriber_id: String,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    /// How many entries it holds (expired ones included).
    pub entries: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListEntryRow {
    pub list_name: String,
    pub value: String,
    pub reason: Option<String>,
    pub expires_at: Option<Millis>,
    /// The actor that added it, in its stored form ([`Actor::to_text`]).
    pub author: String,
    pub created_at: Millis,
}

/// An entry to add; `value` is normalized for the list's kind.
#[derive(Debug, Clone)]
pub struct NewListEntry {
    pub value: String,
    pub reason: Option<String>,
    pub expires_at: Option<Millis>,
}

/// What `put_list` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutList {
    Created(ListRow),
    Updated(ListRow),
    /// The subscriber has `max_lists` lists already.
    TooMany,
    /// The list holds entries of another kind: its kind cannot change.
    KindInUse(ListRow),
}

/// What `add_list_entry` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddEntry {
    /// Added, or replaced the entry with the same value.
    Added(ListEntryRow),
    NoList,
    /// The subscriber's lists hold `max_entries` entries already.
    Full,
}

/// What `remove_list_entry` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveEntry {
    Removed,
    NoList,
    NoEntry,
}

/// What `expire_list_entry` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireEntry {
    /// The entry as it now stands (its expiry at the time asked, or the
    /// earlier one it had).
    Expired(ListEntryRow),
    NoList,
    NoEntry,
}

/// All of a subscriber's lists with every entry, as a process keeps them.
#[derive(Debug, Clone, Default)]
pub struct ListSnapshot {
    /// The revision the snapshot is at least as new as.
    pub revision: i64,
    /// `(name, kind)` of each list.
    pub lists: Vec<(String, String)>,
    /// `(list name, value, expires_at)` of each entry.
    pub entries: Vec<(String, String, Option<Millis>)>,
}

#[async_trait]
pub trait Lists: Send + Sync {
    /// The subscriber's lists, by name.
    async fn lists(&self, subscriber_id: &str) -> StoreResult<Vec<ListRow>>;
    async fn get_list(&self, subscriber_id: &str, name: &str) -> StoreResult<Option<ListRow>>;
    /// Creates the list or sets its kind and description.
    async fn put_list(
        &self,
        subscriber_id: &str,
        name: &str,
        kind: &str,
        description: Option<&str>,
        max_lists: i64,
        actor: &Actor,
    ) -> StoreResult<PutList>;
    /// Deletes the list and its entries; `false` when there was none.
    async fn delete_list(
        &self,
        subscriber_id: &str,
        name: &str,
        actor: &Actor,
    ) -> StoreResult<bool>;
    /// Up to `limit` entries of the list by value, after `after` when given.
    async fn list_entries(
        &self,
        subscriber_id: &str,
        name: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ListEntryRow>>;
    /// Adds the entry (replacing one with the same value) unless the
    /// subscriber's lists hold `max_entries` already.
    async fn add_list_entry(
        &self,
        subscriber_id: &str,
        name: &str,
        entry: &NewListEntry,
        max_entries: i64,
        actor: &Actor,
    ) -> StoreResult<AddEntry>;
    async fn remove_list_entry(
        &self,
        subscriber_id: &str,
        name: &str,
        value: &str,
        actor: &Actor,
    ) -> StoreResult<RemoveEntry>;
    /// Makes the entry stop matching at `at` (kept, with its author and
    /// reason, so the list still shows it; an earlier expiry stays).
    async fn expire_list_entry(
        &self,
        subscriber_id: &str,
        name: &str,
        value: &str,
        at: Millis,
        actor: &Actor,
    ) -> StoreResult<ExpireEntry>;
    /// The subscriber's list revision (0 before any change).
    async fn lists_revision(&self, subscriber_id: &str) -> StoreResult<i64>;
    /// Every list and entry of the subscriber.
    async fn list_snapshot(&self, subscriber_id: &str) -> StoreResult<ListSnapshot>;
}

/// The list queries, compiled against each backend's driver (see
/// [`store_impls`](super::shared)); expanded after `audit_impls!`, whose
/// `record_audit_on` it calls.
macro_rules! lists_impls {
    ($store:ident, $db:ty, $conn:ty) => {
        const LIST_COLUMNS: &str =
            "subscriber_id, name, kind, description, entries, created_at, updated_at";
        const LIST_ENTRY_COLUMNS: &str =
            "list_name, value, reason, expires_at, author, created_at";

        /// Bumps the subscriber's list revision; on PostgreSQL the row lock
        /// also serializes the subscriber's list changes.
        async fn bump_list_revision(conn: &mut $conn, subscriber_id: &str) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO list_revisions (subscriber_id, revision) VALUES ($1, 1) \
                 ON CONFLICT (subscriber_id) DO UPDATE SET revision = list_revisions.revision + 1",
            )
            .bind(subscriber_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
            Ok(())
        }

        async fn list_on(
            conn: &mut $conn,
            subscriber_id: &str,
            name: &str,
        ) -> StoreResult<Option<ListRow>> {
            sqlx::query_as(&format!(
                "SELECT {LIST_COLUMNS} FROM lists WHERE subscriber_id = $1 AND name = $2"
            ))
            .bind(subscriber_id)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)
        }

        #[async_trait::async_trait]
        impl $crate::store::Lists for $store {
            async fn lists(&self, subscriber_id: &str) -> StoreResult<Vec<ListRow>> {
                sqlx::query_as(&format!(
                    "SELECT {LIST_COLUMNS} FROM lists WHERE subscriber_id = $1 ORDER BY name"
                ))
                .bind(subscriber_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn get_list(
                &self,
                subscriber_id: &str,
                name: &str,
            ) -> StoreResult<Option<ListRow>> {
                sqlx::query_as(&format!(
                    "SELECT {LIST_COLUMNS} FROM lists WHERE subscriber_id = $1 AND name = $2"
                ))
                .bind(subscriber_id)
                .bind(name)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn put_list(
                &self,
                subscriber_id: &str,
                name: &str,
                kind: &str,
                description: Option<&str>,
                max_lists: i64,
                actor: &Actor,
            ) -> StoreResult<PutList> {
                let mut tx = begin_write(self.writes()).await?;
                bump_list_revision(&mut tx, subscriber_id).await?;
                let now = now_millis();
                let existing = list_on(&mut tx, subscriber_id, name).await?;
                let created = existing.is_none();
                match existing {
                    Some(list) if list.kind != kind && list.entries > 0 => {
                        return Ok(PutList::KindInUse(list));
                    }
                    Some(_) => {
                        sqlx::query(
                            "UPDATE lists SET kind = $3, description = $4, updated_at = $5 \
                             WHERE subscriber_id = $1 AND name = $2",
                        )
                        .bind(subscriber_id)
                        .bind(name)
                        .bind(kind)
                        .bind(description)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                    None => {
                        let count: i64 =
                            sqlx::query_scalar("SELECT COUNT(*) FROM lists WHERE subscriber_id = $1")
                                .bind(subscriber_id)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        if count >= max_lists {
                            return Ok(PutList::TooMany);
                        }
                        sqlx::query(
                            "INSERT INTO lists (subscriber_id, name, kind, description, entries, \
                             created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $5)",
                        )
                        .bind(subscriber_id)
                        .bind(name)
                        .bind(kind)
                        .bind(description)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                }
                let row = list_on(&mut tx, subscriber_id, name)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("list vanished in its transaction".into()))?;
                let action = if created { "list.create" } else { "list.update" };
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        subscriber_id,
                        actor,
                        action,
                        format!("lists/{name}"),
                        serde_json::json!({"kind": kind, "description": description}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(if created {
                    PutList::Created(row)
                } else {
                    PutList::Updated(row)
                })
            }

            async fn delete_list(
                &self,
                subscriber_id: &str,
                name: &str,
                actor: &Actor,
            ) -> StoreResult<bool> {
                let mut tx = begin_write(self.writes()).await?;
                bump_list_revision(&mut tx, subscriber_id).await?;
                let Some(list) = list_on(&mut tx, subscriber_id, name).await? else {
                    return Ok(false);
                };
                sqlx::query("DELETE FROM list_entries WHERE subscriber_id = $1 AND list_name = $2")
                    .bind(subscriber_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query("DELETE FROM lists WHERE subscriber_id = $1 AND name = $2")
                    .bind(subscriber_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        subscriber_id,
                        actor,
                        "list.delete",
                        format!("lists/{name}"),
                        serde_json::json!({"kind": list.kind, "entries": list.entries}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn list_entries(
                &self,
                subscriber_id: &str,
                name: &str,
                after: Option<&str>,
                limit: i64,
            ) -> StoreResult<Vec<ListEntryRow>> {
                // Every value sorts after the empty string.
                sqlx::query_as(&format!(
                    "SELECT {LIST_ENTRY_COLUMNS} FROM list_entries \
                     WHERE subscriber_id = $1 AND list_name = $2 AND value > $3 \
                     ORDER BY value LIMIT $4"
                ))
                .bind(subscriber_id)
                .bind(name)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn add_list_entry(
                &self,
                subscriber_id: &str,
                name: &str,
                entry: &NewListEntry,
                max_entries: i64,
                actor: &Actor,
            ) -> StoreResult<AddEntry> {
                let mut tx = begin_write(self.writes()).await?;
                bump_list_revision(&mut tx, subscriber_id).await?;
                if list_on(&mut tx, subscriber_id, name).await?.is_none() {
                    return Ok(AddEntry::NoList);
                }
                let existing: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM list_entries \
                     WHERE subscriber_id = $1 AND list_name = $2 AND value = $3",
                )
                .bind(subscriber_id)
                .bind(name)
                .bind(&entry.value)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                let existing = (existing > 0).then_some(());
                let now = now_millis();
                let author = actor.to_text();
                if existing.is_none() {
                    let total: Option<i64> = sqlx::query_scalar(
                        "SELECT CAST(SUM(entries) AS BIGINT) FROM lists WHERE subscriber_id = $1",
                    )
                    .bind(subscriber_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if total.unwrap_or(0) >= max_entries {
                        return Ok(AddEntry::Full);
                    }
                    sqlx::query(
                        "UPDATE lists SET entries = entries + 1, updated_at = $3 \
                         WHERE subscriber_id = $1 AND name = $2",
                    )
                    .bind(subscriber_id)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                } else {
                    sqlx::query(
                        "UPDATE lists SET updated_at = $3 WHERE subscriber_id = $1 AND name = $2",
                    )
                    .bind(subscriber_id)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                let row: ListEntryRow = sqlx::query_as(&format!(
                    "INSERT INTO list_entries (subscriber_id, list_name, value, reason, \
                     expires_at, author, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (subscriber_id, list_name, value) DO UPDATE SET \
                     reason = excluded.reason, expires_at = excluded.expires_at, \
                     author = excluded.author, created_at = excluded.created_at \
                     RETURNING {LIST_ENTRY_COLUMNS}"
                ))
                .bind(subscriber_id)
                .bind(name)
                .bind(&entry.value)
                .bind(entry.reason.as_deref())
                .bind(entry.expires_at)
                .bind(&author)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        subscriber_id,
                        actor,
                        "list.entry.add",
                        format!("lists/{name}"),
                        serde_json::json!({
                            "value": entry.value,
                            "reason": entry.reason,
                            "expires_at": entry.expires_at,
                            "replaced": existing.is_some(),
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(AddEntry::Added(row))
            }

            async fn remove_list_entry(
                &self,
                subscriber_id: &str,
                name: &str,
                value: &str,
                actor: &Actor,
            ) -> StoreResult<RemoveEntry> {
                let mut tx = begin_write(self.writes()).await?;
                bump_list_revision(&mut tx, subscriber_id).await?;
                if list_on(&mut tx, subscriber_id, name).await?.is_none() {
                    return Ok(RemoveEntry::NoList);
                }
                let removed = sqlx::query(
                    "DELETE FROM list_entries \
                     WHERE subscriber_id = $1 AND list_name = $2 AND value = $3",
                )
                .bind(subscriber_id)
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                if removed == 0 {
                    return Ok(RemoveEntry::NoEntry);
                }
                sqlx::query(
                    "UPDATE lists SET entries = entries - 1, updated_at = $3 \
                     WHERE subscriber_id = $1 AND name = $2",
                )
                .bind(subscriber_id)
                .bind(name)
                .bind(now_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        subscriber_id,
                        actor,
                        "list.entry.remove",
                        format!("lists/{name}"),
                        serde_json::json!({"value": value}),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(RemoveEntry::Removed)
            }

            async fn expire_list_entry(
                &self,
                subscriber_id: &str,
                name: &str,
                value: &str,
                at: Millis,
                actor: &Actor,
            ) -> StoreResult<ExpireEntry> {
                let mut tx = begin_write(self.writes()).await?;
                bump_list_revision(&mut tx, subscriber_id).await?;
                if list_on(&mut tx, subscriber_id, name).await?.is_none() {
                    return Ok(ExpireEntry::NoList);
                }
                let previous: Option<(Option<Millis>,)> = sqlx::query_as(
                    "SELECT expires_at FROM list_entries \
                     WHERE subscriber_id = $1 AND list_name = $2 AND value = $3",
                )
                .bind(subscriber_id)
                .bind(name)
                .bind(value)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                let Some((previous,)) = previous else {
                    return Ok(ExpireEntry::NoEntry);
                };
                let expires_at = previous.map_or(at, |p| p.min(at));
                let row: ListEntryRow = sqlx::query_as(&format!(
                    "UPDATE list_entries SET expires_at = $4 \
                     WHERE subscriber_id = $1 AND list_name = $2 AND value = $3 \
                     RETURNING {LIST_ENTRY_COLUMNS}"
                ))
                .bind(subscriber_id)
                .bind(name)
                .bind(value)
                .bind(expires_at)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                sqlx::query(
                    "UPDATE lists SET updated_at = $3 WHERE subscriber_id = $1 AND name = $2",
                )
                .bind(subscriber_id)
                .bind(name)
                .bind(now_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        subscriber_id,
                        actor,
                        "list.entry.expire",
                        format!("lists/{name}"),
                        serde_json::json!({
                            "value": value,
                            "expires_at": expires_at,
                            "previous": previous,
                        }),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(ExpireEntry::Expired(row))
            }

            async fn lists_revision(&self, subscriber_id: &str) -> StoreResult<i64> {
                let revision: Option<i64> = sqlx::query_scalar(
                    "SELECT revision FROM list_revisions WHERE subscriber_id = $1",
                )
                .bind(subscriber_id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)?;
                Ok(revision.unwrap_or(0))
            }

            async fn list_snapshot(&self, subscriber_id: &str) -> StoreResult<ListSnapshot> {
                // The revision first: what is read after it is at least as
                // new, so a later change is seen by its higher revision.
                let revision = $crate::store::Lists::lists_revision(self, subscriber_id).await?;
                let lists: Vec<(String, String)> = sqlx::query_as(
                    "SELECT name, kind FROM lists WHERE subscriber_id = $1 ORDER BY name",
                )
                .bind(subscriber_id)
                .fetch_all(self.reads())
                .await
                .map_err(db_err)?;
                let entries: Vec<(String, String, Option<i64>)> = if lists.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_as(
                        "SELECT list_name, value, expires_at FROM list_entries \
                         WHERE subscriber_id = $1",
                    )
                    .bind(subscriber_id)
                    .fetch_all(self.reads())
                    .await
                    .map_err(db_err)?
                };
                Ok(ListSnapshot {
                    revision,
                    lists,
                    entries,
                })
            }
        }
    };
}

pub(super) use lists_impls;
