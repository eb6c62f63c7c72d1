//! A subscriber's lists: the API's reads and changes, and the in-memory copy
//! the score path matches against ([`ListBook`]).
//!
//! Scoring never queries a list. Each subscriber's lists are read whole into
//! a [`ListIndex`] once, and read again only after they change:
//! - a change in this process takes effect at once (the copy is dropped in the
//!   same task that commits the change, so a client that hangs up cannot
//!   leave it stale);
//! - on a store that counts other processes' writes (SQLite: the CLI), after
//!   such a write;
//! - elsewhere, the subscriber's list revision (one primary-key read) is
//!   checked at most once per [`LOOKUP_TTL`], and the lists read again only
//!   when it moved, so another process's change shows within that time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{ServiceError, ServiceResult};
use crate::clock::rfc3339;
use crate::decision::lists::{is_list_name, normalize, ListIndex, ListKind, MAX_VALUE};
use crate::decision::scrub::masked_id;
use crate::fields::{optional, optional_text, required};
use crate::store::{
    now_millis, Actor, AddEntry, ExpireEntry, ListEntryRow, ListRow, Millis, NewListEntry, PutList,
    RemoveEntry, Store, StoreError,
};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

/// Lists one subscriber may have.
pub const MAX_LISTS: i64 = 100;
/// Entries one subscriber's lists may hold together (each is kept in memory
/// by every scoring process).
pub const MAX_ENTRIES: i64 = 100_000;
/// Entries one page shows by default, and at most.
pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 1000;
const MAX_DESCRIPTION: usize = 1024;
const MAX_REASON: usize = 1024;
const MAX_SUBSCRIBERS: usize = 100_000;

struct Cached {
    revision: i64,
    index: Arc<ListIndex>,
}

/// Each subscriber's lists, in memory, for the score path.
pub struct ListBook {
    current: TtlCache<Arc<Cached>>,
    /// The store's count of foreign writes when `current` was last exact.
    foreign_writes: AtomicU64,
    /// Counts invalidations, so a read that raced one is not kept.
    epoch: AtomicU64,
}

impl Default for ListBook {
    fn default() -> Self {
        Self::new()
    }
}

impl ListBook {
    pub fn new() -> Self {
        Self {
            current: TtlCache::new(LOOKUP_TTL, MAX_SUBSCRIBERS),
            foreign_writes: AtomicU64::new(u64::MAX),
            epoch: AtomicU64::new(0),
        }
    }

    /// The subscriber's lists as they stand.
    pub async fn current(
        &self,
        store: &dyn Store,
        subscriber_id: &str,
    ) -> Result<Arc<ListIndex>, StoreError> {
        let fresh = match store.foreign_writes() {
            Some(count) => {
                if self.foreign_writes.swap(count, Ordering::AcqRel) != count {
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    self.current.remove_where(|_, _| true);
                }
                self.current.get_stale(subscriber_id)
            }
            None => self.current.get(subscriber_id),
        };
        if let Some(cached) = fresh {
            return Ok(cached.index.clone());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let previous = self.current.get_stale(subscriber_id);
        let cached = match previous {
            Some(previous) if store.lists_revision(subscriber_id).await? == previous.revision => {
                previous
            }
            _ => {
                let snapshot = store.list_snapshot(subscriber_id).await?;
                let mut by_list: std::collections::HashMap<&str, Vec<(&str, Option<Millis>)>> =
                    std::collections::HashMap::new();
                for (list, value, expiry) in &snapshot.entries {
                    by_list
                        .entry(list.as_str())
                        .or_default()
                        .push((value.as_str(), *expiry));
                }
                let mut index = ListIndex::new();
                for (name, kind) in &snapshot.lists {
                    let entries = by_list.remove(name.as_str()).unwrap_or_default();
                    index.add_list(name, kind, entries);
                }
                Arc::new(Cached {
                    revision: snapshot.revision,
                    index: Arc::new(index),
                })
            }
        };
        self.current.put(subscriber_id, cached.clone());
        if self.epoch.load(Ordering::Acquire) != epoch {
            self.current.remove_where(|id, _| id == subscriber_id);
        }
        Ok(cached.index.clone())
    }

    /// Makes the next decision of the subscriber read its lists again.
    pub fn invalidate(&self, subscriber_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.current.remove_where(|id, _| id == subscriber_id);
    }
}

/// The kinds of list, each matched with one value of a transaction.
#[derive(ToSchema)]
#[schema(as = ListKind, rename_all = "snake_case")]
#[allow(dead_code)] // documents the enum; the service reads the text
pub enum ListKindName {
    Email,
    EmailDomain,
    Ip,
    Bin,
    Card,
    Device,
    User,
    Country,
}

/// A list, without its entries.
#[derive(Serialize, ToSchema)]
pub struct ListView {
    #[schema(pattern = "^[a-z0-9_]{1,64}$", example = "blocked_cards")]
    name: String,
    #[schema(value_type = ListKindName)]
    kind: String,
    description: Option<String>,
    /// How many entries it holds, expired ones included.
    entries_total: i64,
    created_at: String,
    updated_at: String,
}

/// One entry of a list.
#[derive(Serialize, ToSchema)]
pub struct ListEntryView {
    /// Normalized for the list's kind (a card as `bin6:last4`). Percent-encode
    /// it to name the entry in `DELETE …/entries/{value}`.
    #[schema(example = "411111:1111")]
    value: String,
    reason: Option<String>,
    /// When it stops matching; `null`: never.
    expires_at: Option<String>,
    /// Who added it: `operator`, `api_key:<key id>` or `user:<id>`.
    author: String,
    created_at: String,
    #[serde(skip)]
    expires_at_ms: Option<Millis>,
    #[serde(skip)]
    created_at_ms: Millis,
}

/// A list with a page of its entries, by value.
#[derive(Serialize, ToSchema)]
pub struct ListDetail {
    #[serde(flatten)]
    list: ListView,
    entries: Vec<ListEntryView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// The subscriber's lists.
#[derive(Serialize, ToSchema)]
pub struct ListsPage {
    lists: Vec<ListView>,
}

/// Read access for the console, which renders the same views as HTML.
impl ListView {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    pub fn entries_total(&self) -> i64 {
        self.entries_total
    }
}

impl ListEntryView {
    pub fn value(&self) -> &str {
        &self.value
    }
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    pub fn author(&self) -> &str {
        &self.author
    }
    /// When it stops matching (Unix milliseconds); `None`: never.
    pub fn expires_at_ms(&self) -> Option<Millis> {
        self.expires_at_ms
    }
    pub fn created_at_ms(&self) -> Millis {
        self.created_at_ms
    }
}

impl ListDetail {
    pub fn list(&self) -> &ListView {
        &self.list
    }
    pub fn entries(&self) -> &[ListEntryView] {
        &self.entries
    }
    pub fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }
}

impl ListsPage {
    pub fn lists(&self) -> &[ListView] {
        &self.lists
    }
}

fn list_view(row: ListRow) -> ListView {
    ListView {
        name: row.name,
        kind: row.kind,
        description: row.description,
        entries_total: row.entries,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

fn entry_view(row: ListEntryRow) -> ListEntryView {
    ListEntryView {
        value: row.value,
        reason: row.reason,
        expires_at: row.expires_at.map(rfc3339),
        author: row.author,
        created_at: rfc3339(row.created_at),
        expires_at_ms: row.expires_at,
        created_at_ms: row.created_at,
    }
}

fn list_name(name: &str) -> ServiceResult<&str> {
    if is_list_name(name) {
        Ok(name)
    } else {
        Err(ServiceError::invalid(
            "name",
            "expected 1-64 characters from [a-z0-9_]",
        ))
    }
}

fn no_list(name: &str) -> ServiceError {
    ServiceError::not_found(format!("List '{name}' not found"))
}

/// Runs a change and drops the subscriber's copy in one task, so the copy
/// cannot outlive a committed change even if the caller goes away.
async fn change<T: Send + 'static>(
    book: &Arc<ListBook>,
    subscriber: &str,
    work: impl std::future::Future<Output = ServiceResult<T>> + Send + 'static,
) -> ServiceResult<T> {
    let (book, subscriber) = (book.clone(), subscriber.to_owned());
    tokio::spawn(async move {
        let out = work.await;
        book.invalidate(&subscriber);
        out
    })
    .await
    .map_err(|_| ServiceError::internal("list change task"))?
}

pub async fn all(store: &dyn Store, subscriber: &str) -> ServiceResult<ListsPage> {
    let lists = store.lists(subscriber).await?;
    Ok(ListsPage {
        lists: lists.into_iter().map(list_view).collect(),
    })
}

/// Creates the list (`true`) or updates it.
pub async fn put(
    store: &Arc<dyn Store>,
    book: &Arc<ListBook>,
    subscriber: &str,
    name: &str,
    body: &Map<String, Value>,
    actor: Actor,
) -> ServiceResult<(bool, ListView)> {
    let name = list_name(name)?.to_owned();
    let kind = required(body, "kind")?
        .as_str()
        .and_then(ListKind::parse)
        .ok_or_else(|| {
            ServiceError::invalid(
                "kind",
                "expected email, email_domain, ip, bin, card, device, user or country",
            )
        })?;
    let description =
        optional_text(body, "description", MAX_DESCRIPTION)?.map(|d| masked_id(d).into_owned());
    let (store, sub) = (store.clone(), subscriber.to_owned());
    let put = change(book, subscriber, async move {
        Ok(store
            .put_list(
                &sub,
                &name,
                kind.as_str(),
                description.as_deref(),
                MAX_LISTS,
                &actor,
            )
            .await?)
    })
    .await?;
    match put {
        PutList::Created(row) => Ok((true, list_view(row))),
        PutList::Updated(row) => Ok((false, list_view(row))),
        PutList::TooMany => Err(ServiceError::conflict(format!(
            "A subscriber may have at most {MAX_LISTS} lists"
        ))),
        PutList::KindInUse(row) => Err(ServiceError::conflict(format!(
            "List '{}' holds {} entries of kind '{}': remove them or delete the list to change its kind",
            row.name, row.entries, row.kind
        ))),
    }
}

pub async fn delete(
    store: &Arc<dyn Store>,
    book: &Arc<ListBook>,
    subscriber: &str,
    name: &str,
    actor: Actor,
) -> ServiceResult<()> {
    let name = list_name(name)?.to_owned();
    let (store, sub, n) = (store.clone(), subscriber.to_owned(), name.clone());
    let deleted = change(book, subscriber, async move {
        Ok(store.delete_list(&sub, &n, &actor).await?)
    })
    .await?;
    if deleted {
        Ok(())
    } else {
        Err(no_list(&name))
    }
}

/// A page cursor: the last value shown, hex-encoded (values may hold any
/// character).
fn cursor_value(cursor: &str) -> ServiceResult<String> {
    hex::decode(cursor)
        .ok()
        .filter(|bytes| !bytes.is_empty() && bytes.len() <= 1024)
        // Pages resume after whatever the cursor spells: one this API did
        // not give still names a place in the order.
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .ok_or_else(|| ServiceError::invalid("cursor", "expected the next_cursor of a page"))
}

/// A page size: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
pub fn page_limit(limit: Option<&str>) -> ServiceResult<i64> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ServiceError::invalid("limit", "expected a whole number from 1 to 1000")
            }),
    }
}

pub async fn show(
    store: &dyn Store,
    subscriber: &str,
    name: &str,
    cursor: Option<&str>,
    limit: i64,
) -> ServiceResult<ListDetail> {
    let name = list_name(name)?;
    let after = cursor.map(cursor_value).transpose()?;
    let list = store
        .get_list(subscriber, name)
        .await?
        .ok_or_else(|| no_list(name))?;
    // One more than the page, to know whether another follows.
    let mut rows = store
        .list_entries(subscriber, name, after.as_deref(), limit + 1)
        .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| rows.last().map(|r| hex::encode(r.value.as_bytes())))
        .flatten();
    Ok(ListDetail {
        list: list_view(list),
        entries: rows.into_iter().map(entry_view).collect(),
        next_cursor,
    })
}

/// RFC 3339 (`2026-01-31T12:00:00Z`, `…+02:00`, fractions of a second, a
/// leap second read as the second before) as Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |at: usize, want: &[u8]| b.get(at).is_some_and(|c| want.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?.min(59));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let first3: String = b[at + 1..at + 1 + digits.min(3)]
            .iter()
            .map(|&c| char::from(c))
            .collect();
        millis = format!("{first3:0<3}").parse::<i64>().ok()?;
        at += 1 + digits;
    }
    let offset_minutes = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = num(at + 1..at + 3)?;
            let minutes = num(at + 4..at + 6)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let sign = if *sign == b'+' { 1 } else { -1 };
            sign * (hours * 60 + minutes)
        }
        _ => return None,
    };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

pub async fn add_entry(
    store: &Arc<dyn Store>,
    book: &Arc<ListBook>,
    subscriber: &str,
    name: &str,
    body: &Map<String, Value>,
    actor: Actor,
) -> ServiceResult<ListEntryView> {
    let name = list_name(name)?.to_owned();
    let raw = match required(body, "value")? {
        Value::String(s) if s.chars().count() > MAX_VALUE => {
            return Err(ServiceError::invalid(
                "value",
                &format!("must be at most {MAX_VALUE} characters"),
            ))
        }
        Value::String(s) => s.clone(),
        other => {
            return Err(ServiceError::invalid(
                "value",
                &format!("expected a string, got {}", crate::fields::json_kind(other)),
            ))
        }
    };
    let reason = optional_text(body, "reason", MAX_REASON)?.map(|r| masked_id(r).into_owned());
    let expires_at = match optional(body, "expires_at") {
        None => None,
        Some(Value::String(s)) => Some(parse_rfc3339(s).ok_or_else(|| {
            ServiceError::invalid(
                "expires_at",
                "expected an RFC 3339 time such as 2026-01-31T12:00:00Z",
            )
        })?),
        Some(_) => {
            return Err(ServiceError::invalid(
                "expires_at",
                "expected an RFC 3339 time such as 2026-01-31T12:00:00Z",
            ))
        }
    };
    let list = store
        .get_list(subscriber, &name)
        .await?
        .ok_or_else(|| no_list(&name))?;
    let kind = ListKind::parse(&list.kind)
        .ok_or_else(|| StoreError::Corrupt(format!("list kind '{}'", list.kind)))?;
    let value = normalize(kind, &raw).map_err(|why| {
        ServiceError::invalid(
            "value",
            &format!("not a value for a {} list: {why}", kind.as_str()),
        )
    })?;
    let entry = NewListEntry {
        value,
        reason,
        expires_at,
    };
    let (store, sub, n) = (store.clone(), subscriber.to_owned(), name.clone());
    let added = change(book, subscriber, async move {
        Ok(store
            .add_list_entry(&sub, &n, &entry, MAX_ENTRIES, &actor)
            .await?)
    })
    .await?;
    match added {
        AddEntry::Added(row) => Ok(entry_view(row)),
        AddEntry::NoList => Err(no_list(&name)),
        AddEntry::Full => Err(ServiceError::conflict(format!(
            "A subscriber's lists may hold at most {MAX_ENTRIES} entries together"
        ))),
    }
}

pub async fn remove_entry(
    store: &Arc<dyn Store>,
    book: &Arc<ListBook>,
    subscriber: &str,
    name: &str,
    value: &str,
    actor: Actor,
) -> ServiceResult<()> {
    let name = list_name(name)?.to_owned();
    let list = store
        .get_list(subscriber, &name)
        .await?
        .ok_or_else(|| no_list(&name))?;
    // The value as the entry shows it; another spelling of it (an upper-case
    // email) finds the same entry. One that does not fit is on no list.
    let value = ListKind::parse(&list.kind)
        .and_then(|kind| normalize(kind, value).ok())
        .unwrap_or_else(|| value.to_owned());
    let (store, sub, n) = (store.clone(), subscriber.to_owned(), name.clone());
    let removed = change(book, subscriber, async move {
        Ok(store.remove_list_entry(&sub, &n, &value, &actor).await?)
    })
    .await?;
    match removed {
        RemoveEntry::Removed => Ok(()),
        RemoveEntry::NoList => Err(no_list(&name)),
        RemoveEntry::NoEntry => Err(ServiceError::not_found(format!(
            "No such entry in list '{name}'"
        ))),
    }
}

/// Makes an entry stop matching now; it stays on the list (with its author
/// and reason) until removed.
pub async fn expire_entry(
    store: &Arc<dyn Store>,
    book: &Arc<ListBook>,
    subscriber: &str,
    name: &str,
    value: &str,
    actor: Actor,
) -> ServiceResult<ListEntryView> {
    let name = list_name(name)?.to_owned();
    let list = store
        .get_list(subscriber, &name)
        .await?
        .ok_or_else(|| no_list(&name))?;
    let value = ListKind::parse(&list.kind)
        .and_then(|kind| normalize(kind, value).ok())
        .unwrap_or_else(|| value.to_owned());
    let (store, sub, n) = (store.clone(), subscriber.to_owned(), name.clone());
    let expired = change(book, subscriber, async move {
        Ok(store
            .expire_list_entry(&sub, &n, &value, now_millis(), &actor)
            .await?)
    })
    .await?;
    match expired {
        ExpireEntry::Expired(row) => Ok(entry_view(row)),
        ExpireEntry::NoList => Err(no_list(&name)),
        ExpireEntry::NoEntry => Err(ServiceError::not_found(format!(
            "No such entry in list '{name}'"
        ))),
    }
}

/// The list the console offers to create when a subscriber has no list of
/// a kind yet, so that blocking a card from a decision is one step.
pub fn default_list(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Email => "blocked_emails",
        ListKind::EmailDomain => "blocked_email_domains",
        ListKind::Ip => "blocked_ips",
        ListKind::Bin => "blocked_bins",
        ListKind::Card => "blocked_cards",
        ListKind::Device => "blocked_devices",
        ListKind::User => "blocked_users",
        ListKind::Country => "blocked_countries",
    }
}

/// Adds `value` to the list `name` of `kind`. When the subscriber has no
/// list so named and it is [`default_list`] of the kind, the list is
/// created first (its own audit entry); `true` then.
#[allow(clippy::too_many_arguments)]
pub async fn add_creating_default(
    store: &Arc<dyn Store>,
    book: &Arc<ListBook>,
    subscriber: &str,
    name: &str,
    kind: ListKind,
    value: &str,
    reason: &str,
    actor: Actor,
) -> ServiceResult<(bool, ListEntryView)> {
    let name = list_name(name)?;
    let created = match store.get_list(subscriber, name).await? {
        Some(list) if list.kind != kind.as_str() => {
            return Err(ServiceError::Invalid(format!(
                "List '{name}' holds values of kind '{}', not '{}'",
                list.kind,
                kind.as_str()
            )))
        }
        Some(_) => false,
        None if name == default_list(kind) => {
            let mut body = Map::new();
            body.insert("kind".into(), Value::from(kind.as_str()));
            body.insert(
                "description".into(),
                Value::from("Created from the console's add-to-list step."),
            );
            put(store, book, subscriber, name, &body, actor.clone())
                .await?
                .0
        }
        None => return Err(no_list(name)),
    };
    let mut body = Map::new();
    body.insert("value".into(), Value::from(value));
    body.insert("reason".into(), Value::from(reason));
    let entry = add_entry(store, book, subscriber, name, &body, actor).await?;
    Ok((created, entry))
}

/// One enabled rule of the live rule set that reads `lists.<name>`.
#[derive(Debug, Clone)]
pub struct ListUse {
    pub rule: String,
    pub weight: f64,
    /// The action the rule forces when it hits, if any.
    pub action: Option<&'static str>,
    pub is_final: bool,
}

/// What the subscriber's live rule set (the default pack until one is
/// published) does with each list, by list name: a list means only what
/// the rules that read it make of it.
pub async fn live_uses(
    store: &dyn Store,
    subscriber: &str,
) -> ServiceResult<std::collections::HashMap<String, Vec<ListUse>>> {
    let live = store.active_rule_sets(subscriber).await?.live;
    let parsed;
    let set = match &live {
        Some(row) => {
            parsed = serde_json::from_str::<crate::decision::RuleSet>(&row.body)
                .map_err(|e| StoreError::Corrupt(format!("rule set: {e}")))?;
            &parsed
        }
        None => crate::decision::rules::default_rule_set().map_err(|e| {
            tracing::error!(error = %e, "default rule pack");
            ServiceError::internal("default rule pack")
        })?,
    };
    let mut uses: std::collections::HashMap<String, Vec<ListUse>> =
        std::collections::HashMap::new();
    for rule in set.rules.iter().filter(|r| r.enabled) {
        let mut names = crate::decision::features::list_names(&rule.expression);
        names.sort_unstable();
        names.dedup();
        for name in names {
            uses.entry(name.to_owned()).or_default().push(ListUse {
                rule: rule.name.clone(),
                weight: rule.weight,
                action: rule.action.map(crate::decision::Action::as_str),
                is_final: rule.is_final,
            });
        }
    }
    Ok(uses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_with_their_offset() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5z"), Some(1500));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00-00:30"), Some(1_800_000));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.9Z"), Some(-100));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00.123456Z"),
            Some(1_709_164_800_123)
        );
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            Some(-62_135_596_800_000)
        );
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2016-12-31T23:59:59Z")
        );
        assert_eq!(
            parse_rfc3339("2026-01-31T12:00:00Z"),
            Some(1_769_860_800_000)
        );
        for bad in [
            "2026-01-31",
            "2026-01-31 12:00:00Z",
            "2026-01-31T12:00:00",
            "2026-01-31T12:00:00+1:00",
            "2026-13-31T12:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-01-31T24:00:00Z",
            "2026-01-31T12:00:00.Z",
            "2026-01-31T12:00:00Z ",
            "soon",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
