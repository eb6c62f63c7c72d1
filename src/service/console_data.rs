//! What the console's pages show, read for one subscriber at a time: the
//! overview's aggregates, the review queue, the decision search, one
//! decision explained, a customer with its decisions. The console's HTML
//! layer renders these and calls nothing below this module.

use std::collections::HashMap;

use serde_json::Value;

use super::scoring::DecisionDetail;
use super::{ServiceError, ServiceResult};
use crate::decision::lists::{normalize, ListKind};
use crate::metrics::Metrics;
use crate::providers::Provider;
use crate::store::{now_millis, CustomerProfile, DecisionFilter, DecisionRow, Millis, Store};

pub const PAGE_SIZE: i64 = 50;
/// Review items carry four forms each: a shorter page stays light.
pub const REVIEW_PAGE: i64 = 25;
/// How many of the latest decisions the overview's latency and top rules
/// are computed over.
pub const OVERVIEW_SAMPLE: i64 = 2_000;
/// The widest time window a search that reads inside the stored JSON may
/// scan (a rule hit without a user, card, device, IP or email domain to
/// narrow it by index): without a `from`, it starts
/// this long before `to` (or now): 12 hours of a subscriber making 14,000
/// decisions a day are read in about 30 ms.
pub const JSON_SCAN_WINDOW: Millis = 12 * 3600 * 1000;

/// The overview's time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Day,
    Week,
}

impl Range {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("7d") => Self::Week,
            _ => Self::Day,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    /// (span, bucket) in milliseconds.
    fn spans(self) -> (Millis, Millis) {
        const HOUR: Millis = 3600 * 1000;
        match self {
            Self::Day => (24 * HOUR, HOUR),
            Self::Week => (7 * 24 * HOUR, 6 * HOUR),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProviderHealth {
    pub provider: &'static str,
    pub circuit_open: bool,
    /// Calls since start by outcome: ready, retry, failed, held back.
    pub ready: u64,
    pub retry: u64,
    pub failed: u64,
    pub held: u64,
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub range: Range,
    pub from: Millis,
    pub bucket_ms: Millis,
    /// Each bucket's start and its (allow, review, block) counts, oldest
    /// first, empty buckets included.
    pub buckets: Vec<(Millis, [i64; 3])>,
    pub totals: [i64; 3],
    pub p50_us: Option<i64>,
    pub p99_us: Option<i64>,
    pub sampled: usize,
    /// Rule names and hit counts among the sampled decisions, most hit first.
    pub top_rules: Vec<(String, i64)>,
    pub queue_depth: i64,
    pub callback_backlog: i64,
    pub providers: Vec<ProviderHealth>,
}

fn action_index(action: &str) -> Option<usize> {
    match action {
        "allow" => Some(0),
        "review" => Some(1),
        "block" => Some(2),
        _ => None,
    }
}

/// The rule names a stored result hit, as `(name, weight)`.
pub fn rule_hits(result: &Value) -> Vec<(String, f64)> {
    result["rule_hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|h| Some((h["rule"].as_str()?.to_owned(), h["weight"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

/// How long an overview is reused: its aggregates read every decision of
/// the range, which a page view every few seconds need not repeat.
pub const OVERVIEW_TTL: std::time::Duration = std::time::Duration::from_secs(15);

pub type OverviewCache = crate::ttl_cache::TtlCache<std::sync::Arc<Overview>>;

pub fn overview_cache() -> OverviewCache {
    crate::ttl_cache::TtlCache::new(OVERVIEW_TTL, 10_000)
}

/// The overview, computed at most every [`OVERVIEW_TTL`] per subscriber
/// and range.
pub async fn overview_cached(
    cache: &OverviewCache,
    store: &dyn Store,
    metrics: &Metrics,
    subscriber: &str,
    range: Range,
) -> ServiceResult<std::sync::Arc<Overview>> {
    let key = format!("{}|{subscriber}", range.as_str());
    if let Some(hit) = cache.get(&key) {
        return Ok(hit);
    }
    let fresh = std::sync::Arc::new(overview(store, metrics, subscriber, range).await?);
    cache.put(&key, fresh.clone());
    Ok(fresh)
}

pub async fn overview(
    store: &dyn Store,
    metrics: &Metrics,
    subscriber: &str,
    range: Range,
) -> ServiceResult<Overview> {
    let (span, bucket_ms) = range.spans();
    let now = now_millis();
    // Buckets aligned to the bucket size, the last one holding now.
    let from = (now - span) / bucket_ms * bucket_ms + bucket_ms;
    let (buckets, samples, queue_depth, callback_backlog) = tokio::try_join!(
        store.action_buckets(subscriber, from, bucket_ms),
        store.recent_samples(subscriber, from, OVERVIEW_SAMPLE),
        store.review_queue_depth(subscriber),
        store.callback_backlog(subscriber),
    )?;
    let n = usize::try_from((now - from) / bucket_ms + 1).unwrap_or(0);
    let mut series: Vec<(Millis, [i64; 3])> = (0..n)
        .map(|i| (from + i as Millis * bucket_ms, [0; 3]))
        .collect();
    let mut totals = [0; 3];
    for b in buckets {
        let (Some(a), Ok(i)) = (
            action_index(&b.action),
            usize::try_from((b.bucket - from) / bucket_ms),
        ) else {
            continue;
        };
        if let Some(slot) = series.get_mut(i) {
            slot.1[a] += b.count;
            totals[a] += b.count;
        }
    }
    let mut durations: Vec<i64> = samples.iter().map(|s| s.duration_us).collect();
    durations.sort_unstable();
    let mut hits: HashMap<String, i64> = HashMap::new();
    for sample in &samples {
        if let Ok(result) = serde_json::from_str::<Value>(&sample.result) {
            for (rule, _) in rule_hits(&result) {
                *hits.entry(rule).or_default() += 1;
            }
        }
    }
    let mut top_rules: Vec<(String, i64)> = hits.into_iter().collect();
    top_rules.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_rules.truncate(8);
    let providers = Provider::ALL
        .into_iter()
        .map(|p| {
            let name = p.as_str();
            let count = |outcome: &str| {
                metrics
                    .provider_attempts
                    .with_label_values(&[name, outcome])
                    .get()
            };
            ProviderHealth {
                provider: name,
                circuit_open: metrics.breaker_open.with_label_values(&[name]).get() > 0,
                ready: count("ready"),
                retry: count("retry"),
                failed: count("failed"),
                held: count("circuit_open"),
            }
        })
        .collect();
    Ok(Overview {
        range,
        from,
        bucket_ms,
        buckets: series,
        totals,
        p50_us: percentile(&durations, 0.50),
        p99_us: percentile(&durations, 0.99),
        sampled: durations.len(),
        top_rules,
        queue_depth,
        callback_backlog,
        providers,
    })
}

/// A decision as a list shows it: the reason at a glance.
#[derive(Debug, Clone)]
pub struct DecisionSummary {
    pub id: String,
    pub created_at: Millis,
    pub action: String,
    pub risk_level: String,
    pub risk_score: f64,
    pub label: Option<&'static str>,
    pub user_id: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// BIN and last4, `411111…1111`.
    pub card: Option<String>,
    pub country: Option<String>,
    /// The heaviest rule hits first (at most three).
    pub top_rules: Vec<(String, f64)>,
    /// What of it may go on a list (card, device, email, email domain).
    pub list_values: Vec<ListValue>,
}

/// A value of a decision that a list of `kind` can hold, as the list keeps
/// it (`value`) and as the console shows it (`shown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListValue {
    pub kind: ListKind,
    pub value: String,
    pub shown: String,
}

/// The decision's card (BIN and last4 as stored), device (visitor id), email
/// and email domain, each normalized as its list kind keeps it; a value that
/// would not fit its kind is left out.
pub fn list_values(input: &Value) -> Vec<ListValue> {
    let mut out = Vec::new();
    let mut push = |kind: ListKind, raw: Option<String>, shown: Option<String>| {
        if let Some(raw) = raw {
            if let Ok(value) = normalize(kind, &raw) {
                let shown = shown.unwrap_or_else(|| value.clone());
                out.push(ListValue { kind, value, shown });
            }
        }
    };
    if let (Some(bin), Some(last4)) = (text(&input["bin"]), text(&input["last4"])) {
        push(
            ListKind::Card,
            Some(format!("{bin}:{last4}")),
            Some(format!("{bin}…{last4}")),
        );
    }
    push(ListKind::Device, text(&input["device"]["visitor_id"]), None);
    push(ListKind::Email, text(&input["email"]), None);
    push(ListKind::EmailDomain, text(&input["email_domain"]), None);
    out
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn summary(row: &DecisionRow) -> DecisionSummary {
    let input: Value = serde_json::from_str(&row.input).unwrap_or(Value::Null);
    let result: Value = serde_json::from_str(&row.result).unwrap_or(Value::Null);
    let mut top_rules = rule_hits(&result);
    top_rules.sort_by(|a, b| b.1.total_cmp(&a.1));
    top_rules.truncate(3);
    let card = match (text(&input["bin"]), text(&input["last4"])) {
        (Some(bin), Some(last4)) => Some(format!("{bin}…{last4}")),
        (Some(bin), None) => Some(format!("{bin}…")),
        (None, Some(last4)) => Some(format!("…{last4}")),
        _ => None,
    };
    DecisionSummary {
        id: row.id.clone(),
        created_at: row.created_at,
        action: row.action.clone(),
        risk_level: row.risk_level.clone(),
        risk_score: row.risk_score,
        label: row.label.map(|l| l.as_str()),
        user_id: row.user_id.clone(),
        amount: text(&input["transaction_amount"]),
        currency: text(&input["currency"]),
        card,
        country: text(&input["billing_country"])
            .or_else(|| text(&input["ip_country"]))
            .or_else(|| text(&input["card_country"])),
        top_rules,
        list_values: list_values(&input),
    }
}

/// A page of a list and the cursor of the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// `<millis>.<id>`, the position after (or before) a row.
pub fn parse_cursor(cursor: Option<&str>) -> ServiceResult<Option<(Millis, String)>> {
    super::audit::parse_cursor(cursor.filter(|c| !c.is_empty()))
}

fn page(mut rows: Vec<DecisionRow>, limit: i64) -> Page<DecisionSummary> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| rows.last().map(|r| format!("{}.{}", r.created_at, r.id)))
        .flatten();
    Page {
        items: rows.iter().map(summary).collect(),
        next,
    }
}

pub async fn review_queue(
    store: &dyn Store,
    subscriber: &str,
    after: Option<(Millis, String)>,
) -> ServiceResult<(Page<DecisionSummary>, i64)> {
    let (rows, depth) = tokio::try_join!(
        store.review_queue(subscriber, after, REVIEW_PAGE + 1),
        store.review_queue_depth(subscriber),
    )?;
    Ok((page(rows, REVIEW_PAGE), depth))
}

/// Parses the search form: every field optional, each checked.
pub fn search_filter(q: &HashMap<String, String>) -> ServiceResult<DecisionFilter> {
    let get = |k: &str| {
        q.get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let bounded = |k: &str, v: Option<String>| -> ServiceResult<Option<String>> {
        match v {
            Some(v) if v.chars().count() > 256 || v.chars().any(char::is_control) => Err(
                ServiceError::invalid(k, "at most 256 characters, no control characters"),
            ),
            other => Ok(other),
        }
    };
    let time = |k: &str| -> ServiceResult<Option<Millis>> {
        get(k)
            .map(|v| {
                parse_time(&v).ok_or_else(|| {
                    ServiceError::invalid(k, "expected a date and time like 2025-01-31T09:30")
                })
            })
            .transpose()
    };
    let one_of = |k: &str, allowed: &[&str]| -> ServiceResult<Option<String>> {
        match get(k) {
            Some(v) if !allowed.contains(&v.as_str()) => Err(ServiceError::invalid(
                k,
                &format!("expected one of {}", allowed.join(", ")),
            )),
            other => Ok(other),
        }
    };
    let mut filter = DecisionFilter {
        from: time("from")?,
        to: time("to")?,
        action: one_of("action", &["allow", "review", "block"])?,
        level: one_of("level", &["low", "medium", "high"])?,
        label: None,
        unlabelled: false,
        user_id: bounded("user", get("user"))?,
        rule: bounded("rule", get("rule"))?,
        bin: None,
        last4: None,
        device: bounded("device", get("device"))?,
        ip: bounded("ip", get("ip"))?,
        email_domain: bounded("email_domain", get("email_domain"))?.map(|d| d.to_lowercase()),
    };
    match one_of("label", &["fraud", "legit", "chargeback", "none"])?.as_deref() {
        Some("none") => filter.unlabelled = true,
        Some(l) => filter.label = Some(l.to_owned()),
        None => {}
    }
    if let Some(card) = get("card") {
        // `411111`, `411111…1111`, `411111 1111`, `…1111`: digits before a
        // separator are the BIN, a last group of four the last4.
        let groups: Vec<&str> = card
            .split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .collect();
        let invalid = || ServiceError::invalid("card", "expected a BIN, a last4, or BIN and last4");
        match groups.as_slice() {
            [bin, last4] if (6..=8).contains(&bin.len()) && last4.len() == 4 => {
                filter.bin = Some((*bin).to_owned());
                filter.last4 = Some((*last4).to_owned());
            }
            [one]
                if one.len() == 4
                    && !card.trim_start().starts_with(|c: char| c.is_ascii_digit()) =>
            {
                filter.last4 = Some((*one).to_owned());
            }
            [one] if (6..=8).contains(&one.len()) => filter.bin = Some((*one).to_owned()),
            [one] if one.len() == 4 => filter.last4 = Some((*one).to_owned()),
            _ => return Err(invalid()),
        }
    }
    if filter.reads_json() && filter.from.is_none() {
        filter.from = Some(filter.to.unwrap_or_else(now_millis) - JSON_SCAN_WINDOW);
    }
    if let Some(from) = filter.from {
        let to = filter.to.unwrap_or_else(now_millis);
        if filter.reads_json() && to - from > JSON_SCAN_WINDOW {
            return Err(ServiceError::invalid(
                "from",
                "a search by rule alone spans at most 12 hours",
            ));
        }
    }
    Ok(filter)
}

/// `2025-01-31T09:30`, with optional seconds and `Z`, read as UTC (what a
/// `datetime-local` input sends).
pub fn parse_time(s: &str) -> Option<Millis> {
    let s = s.trim().trim_end_matches('Z');
    let full = if s.len() == 16 {
        format!("{s}:00")
    } else {
        s.to_owned()
    };
    let t = humantime::parse_rfc3339_weak(&full).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

pub async fn search(
    store: &dyn Store,
    subscriber: &str,
    filter: &DecisionFilter,
    before: Option<(Millis, String)>,
) -> ServiceResult<Page<DecisionSummary>> {
    let rows = store
        .search_decisions(subscriber, filter, before, PAGE_SIZE + 1)
        .await?;
    Ok(page(rows, PAGE_SIZE))
}

/// One decision with what explains it.
pub struct Explained {
    pub detail: DecisionDetail,
    pub input: Value,
    pub result: Value,
    /// The device risk the score started from.
    pub device_risk: f64,
    /// Each rule hit and its weight.
    pub hits: Vec<(String, f64, Option<String>)>,
    /// Device risk plus the weights, before clamping to [0, 1].
    pub raw_sum: f64,
}

pub fn explain(detail: DecisionDetail) -> Explained {
    let input: Value = serde_json::from_str(&detail.row.input).unwrap_or(Value::Null);
    let result: Value = serde_json::from_str(&detail.row.result).unwrap_or(Value::Null);
    let device_risk = input["risk_score_from_cache"]
        .as_f64()
        .filter(|x| x.is_finite())
        .unwrap_or(0.0);
    let hits: Vec<(String, f64, Option<String>)> = result["rule_hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|h| {
                    Some((
                        h["rule"].as_str()?.to_owned(),
                        h["weight"].as_f64()?,
                        h["action"].as_str().map(str::to_owned),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let raw_sum = device_risk + hits.iter().map(|h| h.1).sum::<f64>();
    Explained {
        detail,
        input,
        result,
        device_risk,
        hits,
        raw_sum,
    }
}

/// A customer's page: the profile and its latest decisions.
pub struct CustomerPage {
    pub profile: Option<CustomerProfile>,
    pub decisions: Page<DecisionSummary>,
}

pub async fn customer(
    store: &dyn Store,
    subscriber: &str,
    user_id: &str,
    before: Option<(Millis, String)>,
) -> ServiceResult<CustomerPage> {
    let filter = DecisionFilter {
        user_id: Some(user_id.to_owned()),
        ..DecisionFilter::default()
    };
    let (profile, rows) = tokio::try_join!(
        store.get_customer(subscriber, user_id),
        store.search_decisions(subscriber, &filter, before, PAGE_SIZE + 1),
    )?;
    if profile.is_none() && rows.is_empty() {
        return Err(ServiceError::not_found(format!(
            "Customer '{user_id}' not found"
        )));
    }
    Ok(CustomerPage {
        profile,
        decisions: page(rows, PAGE_SIZE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(parse_time("1970-01-01T00:01"), Some(60_000));
        assert_eq!(parse_time("1970-01-01T00:00:02Z"), Some(2_000));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn cards_split_into_bin_and_last4() {
        let q = |card: &str| {
            let mut m = HashMap::new();
            m.insert("card".to_owned(), card.to_owned());
            search_filter(&m)
        };
        let f = q("411111…1111").unwrap();
        assert_eq!(
            (f.bin.as_deref(), f.last4.as_deref()),
            (Some("411111"), Some("1111"))
        );
        let f = q("…4242").unwrap();
        assert_eq!((f.bin, f.last4.as_deref()), (None, Some("4242")));
        assert!(f.from.is_none(), "a card is found by index, in any range");
        let one = |k: &str, v: &str| {
            let mut m = HashMap::new();
            m.insert(k.to_owned(), v.to_owned());
            search_filter(&m).unwrap()
        };
        assert!(
            one("ip", "10.0.0.1").from.is_none(),
            "an IP is found by index, in any range"
        );
        assert!(one("email_domain", "example.com").from.is_none());
        assert!(
            one("rule", "New device").from.is_some(),
            "a rule alone is bounded in time"
        );
        assert!(q("12").is_err());
    }

    #[test]
    fn a_decisions_list_values_are_kept_as_their_lists_keep_them() {
        let input = serde_json::json!({"bin": "41111111", "last4": "1111",
            "email": "Ann@Example.com", "email_domain": "example.com",
            "device": {"visitor_id": "v-1"}});
        let got: Vec<(ListKind, String)> = list_values(&input)
            .into_iter()
            .map(|v| (v.kind, v.value))
            .collect();
        assert_eq!(
            got,
            [
                (ListKind::Card, "411111:1111".to_owned()),
                (ListKind::Device, "v-1".to_owned()),
                (ListKind::Email, "ann@example.com".to_owned()),
                (ListKind::EmailDomain, "example.com".to_owned()),
            ]
        );
        assert!(list_values(&serde_json::json!({"bin": "4111", "last4": "1"})).is_empty());
    }

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
