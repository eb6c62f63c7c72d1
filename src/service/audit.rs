//! Reading a subscriber's audit log: newest first, paged by cursor.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{ServiceError, ServiceResult};
use crate::clock::rfc3339;
use crate::store::{AuditEntry, Millis, Store, StoreError};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
/// The cursor's form, as the OpenAPI document states it: the (time, id)
/// position of the last entry of the page before.
pub const CURSOR_PATTERN: &str = r"^[0-9]{1,15}\.[A-Za-z0-9_]{1,64}$";

/// One recorded change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: String,
    /// When the change was committed (RFC 3339, UTC).
    pub time: String,
    /// Who made it: `operator`, `api_key:<key id>`, `user:<console user id>`
    /// or `system:<what>`.
    #[schema(example = "api_key:key_0123456789abcdef")]
    pub actor: String,
    /// What was done, dotted: `key.create`, `decision.label`, `customer.status`, …
    #[schema(example = "decision.label")]
    pub action: String,
    /// What it was done to: `keys/<key id>`, `decisions/<id>`, `customers/<user id>`, …
    #[schema(example = "decisions/dec_0123456789abcdef01234567")]
    pub target: String,
    /// What changed (never a secret nor a full card number).
    #[schema(value_type = Object)]
    pub summary: Value,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn view(entry: AuditEntry) -> ServiceResult<AuditEntryView> {
    let summary = serde_json::from_str(&entry.summary)
        .map_err(|e| StoreError::Corrupt(format!("audit summary: {e}")))?;
    Ok(AuditEntryView {
        id: entry.id,
        time: rfc3339(entry.at),
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        summary,
    })
}

/// `limit`: 1 to 200 (default 50).
pub fn parse_limit(limit: Option<&str>) -> ServiceResult<i64> {
    let Some(text) = limit else {
        return Ok(DEFAULT_LIMIT);
    };
    let invalid = || ServiceError::invalid("limit", "expected a whole number from 1 to 200");
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(invalid)
}

/// `cursor`: `<millis>.<entry id>`, as a page's `next_cursor` gives it.
pub fn parse_cursor(cursor: Option<&str>) -> ServiceResult<Option<(Millis, String)>> {
    let Some(text) = cursor else {
        return Ok(None);
    };
    let invalid = || ServiceError::invalid("cursor", "expected the next_cursor of a page");
    let (at, id) = text.split_once('.').ok_or_else(invalid)?;
    let at_ok = (1..=15).contains(&at.len()) && at.bytes().all(|b| b.is_ascii_digit());
    let id_ok =
        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !at_ok || !id_ok {
        return Err(invalid());
    }
    let at = at.parse::<Millis>().map_err(|_| invalid())?;
    Ok(Some((at, id.to_owned())))
}

/// The subscriber's audit entries older than `cursor`, newest first.
pub async fn audit_log(
    store: &dyn Store,
    subscriber_id: &str,
    limit: i64,
    cursor: Option<(Millis, String)>,
) -> ServiceResult<AuditPage> {
    super::operator::existing(store, subscriber_id).await?;
    // One more than asked: whether a next page exists, without an empty last page.
    let mut rows = store.audit_log(subscriber_id, cursor, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = more
        .then(|| rows.last().map(|last| format!("{}.{}", last.at, last.id)))
        .flatten();
    let entries = rows.into_iter().map(view).collect::<ServiceResult<_>>()?;
    Ok(AuditPage {
        entries,
        next_cursor,
    })
}
