//! Rule-set versions as analysts handle them: drafts, publishing and rolling
//! back, the shadow, and what each rule of the live and shadow versions did
//! on the decisions of a window, against their labels.
//!
//! Every change goes through the store in one transaction with its audit
//! entry; the caller makes the rule book forget the subscriber afterwards
//! (see [`RuleBook::invalidate`](super::RuleBook::invalidate)).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::operator::{existing, RuleSetView};
use super::ServiceError;
use crate::clock::rfc3339;
use crate::decision::rules::{compile, default_rule_set, parse_rule_set, Action, Rule, RuleSet};
use crate::decision::scrub::masked_id;
use crate::fields::optional_text;
use crate::store::{
    now_millis, stored_rule_count, Actor, Label, Millis, NewRuleSet, RuleSetRow, RuleStatus,
    RuleTransition, Store, StoreError,
};

/// The longest note a version may carry.
pub const NOTE_MAX: usize = 1024;
/// The window of the statistics when `from` is not given.
pub const DEFAULT_STATS_WINDOW_MS: Millis = 30 * 24 * 3600 * 1000;
/// Decisions read per page of the statistics scan.
const STATS_PAGE: i64 = 5000;

/// A version as the list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionSummary {
    pub subscriber_id: String,
    pub version: i64,
    #[schema(value_type = RuleVersionStatus)]
    pub status: RuleStatus,
    /// Who stored it: `operator`, or `user:<id>` for a console user.
    pub author: String,
    pub note: Option<String>,
    pub created_at: String,
    /// When it last became live; `null` if it never was.
    pub published_at: Option<String>,
    /// How many rules it has (disabled ones included).
    pub rules_count: usize,
}

/// `draft`, `live` (decides), `shadow` (evaluated beside the live version,
/// never acting) or `retired` (was live, replaced).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the status values
pub enum RuleVersionStatus {
    Draft,
    Live,
    Shadow,
    Retired,
}

/// One version with its rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionView {
    #[serde(flatten)]
    pub summary: RuleVersionSummary,
    #[serde(flatten)]
    pub rule_set: RuleSet,
    /// Rules that compile but fail or give no boolean on a sample
    /// transaction (often a misspelt feature name); only when stored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionList {
    /// Newest first.
    pub versions: Vec<RuleVersionSummary>,
}

fn parsed(row: &RuleSetRow) -> Result<RuleSet, StoreError> {
    serde_json::from_str(&row.body).map_err(|e| StoreError::Corrupt(format!("rule set: {e}")))
}

fn summary(row: &RuleSetRow) -> RuleVersionSummary {
    RuleVersionSummary {
        subscriber_id: row.subscriber_id.clone(),
        version: row.version,
        status: row.status,
        author: row.author.clone(),
        note: row.note.clone(),
        created_at: rfc3339(row.created_at),
        published_at: row.published_at.map(rfc3339),
        rules_count: stored_rule_count(&row.body).unwrap_or(0),
    }
}

fn view(row: &RuleSetRow, warnings: Vec<String>) -> Result<RuleVersionView, ServiceError> {
    Ok(RuleVersionView {
        summary: summary(row),
        rule_set: parsed(row)?,
        warnings,
    })
}

/// A validated rule set from a request body, stored JSON, its note and the
/// warnings of a sample run: every expression compiles before anything is
/// stored, so what serves keeps serving when one does not.
pub struct Validated {
    pub rule_set: RuleSet,
    pub stored: String,
    pub note: Option<String>,
    pub warnings: Vec<String>,
}

pub fn validate(body: &Map<String, Value>) -> Result<Validated, ServiceError> {
    let rule_set = parse_rule_set(body).map_err(ServiceError::bad_request)?;
    let note = optional_text(body, "note", NOTE_MAX)?.map(|n| masked_id(n).into_owned());
    let compiled = compile(&rule_set, 0).map_err(ServiceError::bad_request)?;
    let warnings = crate::decision::sample_faults(&compiled)
        .into_iter()
        .map(|(rule, fault)| format!("Rule '{rule}' fails on a sample transaction: {fault}"))
        .collect();
    let stored =
        serde_json::to_string(&rule_set).map_err(|_| ServiceError::internal("rule versions"))?;
    Ok(Validated {
        rule_set,
        stored,
        note,
        warnings,
    })
}

impl Validated {
    pub fn new_rule_set(&self) -> NewRuleSet<'_> {
        NewRuleSet {
            body: &self.stored,
            note: self.note.as_deref(),
            rules: self.rule_set.rules.len(),
        }
    }
}

/// Stores a validated draft; it acts on nothing until published or shadowed.
pub async fn create_draft(
    store: &dyn Store,
    subscriber_id: &str,
    body: &Map<String, Value>,
    actor: &Actor,
) -> Result<RuleVersionView, ServiceError> {
    existing(store, subscriber_id).await?;
    let valid = validate(body)?;
    let row = store
        .draft_rule_set(subscriber_id, valid.new_rule_set(), actor)
        .await?;
    tracing::info!(%subscriber_id, version = row.version, "rule set drafted");
    Ok(RuleVersionView {
        summary: summary(&row),
        rule_set: valid.rule_set,
        warnings: valid.warnings,
    })
}

pub async fn list_versions(
    store: &dyn Store,
    subscriber_id: &str,
) -> Result<RuleVersionList, ServiceError> {
    existing(store, subscriber_id).await?;
    let rows = store.list_rule_sets(subscriber_id).await?;
    Ok(RuleVersionList {
        versions: rows.iter().map(summary).collect(),
    })
}

fn unknown_version(version: i64) -> ServiceError {
    ServiceError::not_found(format!("Rule set version {version} not found"))
}

pub async fn get_version(
    store: &dyn Store,
    subscriber_id: &str,
    version: i64,
) -> Result<RuleVersionView, ServiceError> {
    existing(store, subscriber_id).await?;
    let row = store
        .rule_set_version(subscriber_id, version)
        .await?
        .ok_or_else(|| unknown_version(version))?;
    view(&row, Vec::new())
}

/// Makes a version live; the previous live one is retired. Rolling back is
/// publishing an older version; publishing the shadow stops the shadow.
pub async fn publish(
    store: &dyn Store,
    subscriber_id: &str,
    version: i64,
    actor: &Actor,
) -> Result<RuleVersionView, ServiceError> {
    existing(store, subscriber_id).await?;
    match store
        .publish_rule_set(subscriber_id, version, actor)
        .await?
    {
        RuleTransition::Done { row, replaced } => {
            tracing::info!(%subscriber_id, version, previous = ?replaced, "rule set published");
            view(&row, Vec::new())
        }
        RuleTransition::Missing => Err(unknown_version(version)),
        RuleTransition::Refused(_) => Err(ServiceError::conflict(format!(
            "Rule set version {version} is already live"
        ))),
    }
}

/// Makes a version the shadow (replacing the previous shadow, if any).
pub async fn start_shadow(
    store: &dyn Store,
    subscriber_id: &str,
    version: i64,
    actor: &Actor,
) -> Result<RuleVersionView, ServiceError> {
    existing(store, subscriber_id).await?;
    match store.shadow_rule_set(subscriber_id, version, actor).await? {
        RuleTransition::Done { row, replaced } => {
            tracing::info!(%subscriber_id, version, previous = ?replaced, "shadow started");
            view(&row, Vec::new())
        }
        RuleTransition::Missing => Err(unknown_version(version)),
        RuleTransition::Refused(RuleStatus::Live) => Err(ServiceError::conflict(format!(
            "Rule set version {version} is live; only another version can be the shadow"
        ))),
        RuleTransition::Refused(_) => Err(ServiceError::conflict(format!(
            "Rule set version {version} is already the shadow"
        ))),
    }
}

/// Stops the shadow; answers the version as it is now (draft or retired).
pub async fn stop_shadow(
    store: &dyn Store,
    subscriber_id: &str,
    actor: &Actor,
) -> Result<RuleVersionView, ServiceError> {
    existing(store, subscriber_id).await?;
    match store.stop_shadow(subscriber_id, actor).await? {
        RuleTransition::Done { row, .. } => {
            tracing::info!(%subscriber_id, version = row.version, "shadow stopped");
            view(&row, Vec::new())
        }
        RuleTransition::Missing | RuleTransition::Refused(_) => Err(ServiceError::conflict(
            "No shadow rule set is running".to_owned(),
        )),
    }
}

// ---- statistics -----------------------------------------------------------

/// One rule's numbers over a set of decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct HitStats {
    /// Decisions in this set.
    pub decisions: u64,
    /// Decisions on which the rule hit.
    pub hits: u64,
    /// `hits / decisions`; `null` without decisions.
    pub hit_rate: Option<f64>,
    /// Hits on labelled decisions.
    pub labelled_hits: u64,
    /// Hits on decisions labelled `fraud` or `chargeback`.
    pub fraud_hits: u64,
    /// `fraud_hits / labelled_hits`; `null` without a labelled hit.
    pub precision: Option<f64>,
}

/// [`HitStats`] per action of the decision (for the shadow: the action the
/// shadow would have taken).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ByAction {
    pub allow: HitStats,
    pub review: HitStats,
    pub block: HitStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RuleStats {
    pub rule: String,
    /// A disabled rule never hits.
    pub enabled: bool,
    #[serde(flatten)]
    pub stats: HitStats,
    pub by_action: ByAction,
}

/// Decisions per action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ActionCounts {
    pub allow: u64,
    pub review: u64,
    pub block: u64,
}

/// What one version's rules did in the window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VersionStats {
    /// 0 is the default pack.
    pub version: i64,
    /// Decisions of the window this version decided (live) or evaluated
    /// (shadow).
    pub decisions: u64,
    /// Of those, the labelled ones.
    pub labelled: u64,
    /// Of those, the ones labelled `fraud` or `chargeback`.
    pub fraud: u64,
    /// The decisions per action (for the shadow: its own action).
    pub actions: ActionCounts,
    /// Every rule of the version, in its order.
    pub rules: Vec<RuleStats>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleStatsView {
    pub subscriber_id: String,
    /// The window, `[from, to)`.
    pub from: String,
    pub to: String,
    pub live: VersionStats,
    /// `null` while no shadow runs.
    pub shadow: Option<VersionStats>,
}

#[derive(Default)]
struct Tally {
    hits: u64,
    labelled_hits: u64,
    fraud_hits: u64,
}

impl Tally {
    fn hit(&mut self, label: Option<Label>) {
        self.hits += 1;
        if let Some(label) = label {
            self.labelled_hits += 1;
            if label.is_fraud_like() {
                self.fraud_hits += 1;
            }
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn stats(&self, decisions: u64) -> HitStats {
        let ratio = |n: u64, d: u64| (d > 0).then(|| round4(n as f64 / d as f64));
        HitStats {
            decisions,
            hits: self.hits,
            hit_rate: ratio(self.hits, decisions),
            labelled_hits: self.labelled_hits,
            fraud_hits: self.fraud_hits,
            precision: ratio(self.fraud_hits, self.labelled_hits),
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn action_index(action: Action) -> usize {
    match action {
        Action::Allow => 0,
        Action::Review => 1,
        Action::Block => 2,
    }
}

/// Counts one version's rule hits over decisions, one at a time (pure).
pub struct StatsTally {
    version: i64,
    rules: Vec<(String, bool)>,
    index: HashMap<String, usize>,
    /// Per rule: overall, then per action.
    tallies: Vec<[Tally; 4]>,
    decisions: [u64; 3],
    labelled: u64,
    fraud: u64,
}

impl StatsTally {
    pub fn new(version: i64, set: &RuleSet) -> Self {
        let rules: Vec<(String, bool)> = set
            .rules
            .iter()
            .map(|r| (r.name.clone(), r.enabled))
            .collect();
        let index = rules
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        Self {
            version,
            tallies: rules.iter().map(|_| Default::default()).collect(),
            rules,
            index,
            decisions: [0; 3],
            labelled: 0,
            fraud: 0,
        }
    }

    /// One decision: the rules that hit, its action, its label.
    pub fn add<'a>(
        &mut self,
        hits: impl IntoIterator<Item = &'a str>,
        action: Action,
        label: Option<Label>,
    ) {
        let a = action_index(action);
        self.decisions[a] += 1;
        if let Some(label) = label {
            self.labelled += 1;
            if label.is_fraud_like() {
                self.fraud += 1;
            }
        }
        for rule in hits {
            // A name the version does not have cannot come from it; skipped.
            if let Some(&i) = self.index.get(rule) {
                self.tallies[i][0].hit(label);
                self.tallies[i][1 + a].hit(label);
            }
        }
    }

    pub fn finish(self) -> VersionStats {
        let [allow, review, block] = self.decisions;
        let total = allow + review + block;
        let rules = self
            .rules
            .into_iter()
            .zip(self.tallies)
            .map(|((rule, enabled), t)| RuleStats {
                rule,
                enabled,
                stats: t[0].stats(total),
                by_action: ByAction {
                    allow: t[1].stats(allow),
                    review: t[2].stats(review),
                    block: t[3].stats(block),
                },
            })
            .collect();
        VersionStats {
            version: self.version,
            decisions: total,
            labelled: self.labelled,
            fraud: self.fraud,
            actions: ActionCounts {
                allow,
                review,
                block,
            },
            rules,
        }
    }
}

#[derive(Deserialize)]
struct HitName<'a> {
    #[serde(borrow)]
    rule: Cow<'a, str>,
}

/// The parts of a stored result (or shadow outcome) the statistics read.
#[derive(Deserialize)]
struct StoredOutcome<'a> {
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    action: Option<Action>,
    #[serde(borrow, default)]
    rule_hits: Vec<HitName<'a>>,
}

/// A window bound from the query: RFC 3339, else `400` naming the field.
pub fn window_bound(field: &str, value: Option<&str>) -> Result<Option<Millis>, ServiceError> {
    value
        .map(|text| {
            crate::clock::parse_rfc3339(text).ok_or_else(|| {
                ServiceError::invalid(
                    field,
                    "expected an RFC 3339 time such as 2024-05-01T00:00:00Z",
                )
            })
        })
        .transpose()
}

/// For each rule of the live version and of the shadow: hits, hit rate,
/// labelled hits and precision, overall and per action, over the decisions
/// created in `[from, to)` (default: the 30 days before now).
pub async fn rule_stats(
    store: &dyn Store,
    subscriber_id: &str,
    from: Option<Millis>,
    to: Option<Millis>,
) -> Result<RuleStatsView, ServiceError> {
    existing(store, subscriber_id).await?;
    let to = to.unwrap_or_else(now_millis);
    let from = from.unwrap_or(to.saturating_sub(DEFAULT_STATS_WINDOW_MS));
    if from > to {
        return Err(ServiceError::invalid("from", "must not be after 'to'"));
    }
    let active = store.active_rule_sets(subscriber_id).await?;
    let mut live = match &active.live {
        Some(row) => StatsTally::new(row.version, &parsed(row)?),
        None => StatsTally::new(
            0,
            default_rule_set().map_err(|_| ServiceError::internal("default rule pack"))?,
        ),
    };
    let mut shadow = match &active.shadow {
        Some(row) => Some(StatsTally::new(row.version, &parsed(row)?)),
        None => None,
    };
    let mut after = None;
    loop {
        let page = store
            .rule_outcomes(
                subscriber_id,
                live.version,
                (from, to),
                after.clone(),
                STATS_PAGE,
            )
            .await?;
        for row in &page {
            let label = row.label.as_deref().and_then(Label::parse);
            if row.rules_version == live.version {
                let result: StoredOutcome = serde_json::from_str(&row.result)
                    .map_err(|e| StoreError::Corrupt(format!("decision result: {e}")))?;
                if let Some(action) = Action::parse(&row.action) {
                    live.add(result.rule_hits.iter().map(|h| &*h.rule), action, label);
                }
            }
            if let (Some(tally), Some(json)) = (shadow.as_mut(), row.shadow.as_deref()) {
                let outcome: StoredOutcome = serde_json::from_str(json)
                    .map_err(|e| StoreError::Corrupt(format!("decision shadow: {e}")))?;
                if let (Some(version), Some(action)) = (outcome.version, outcome.action) {
                    if version == tally.version {
                        tally.add(outcome.rule_hits.iter().map(|h| &*h.rule), action, label);
                    }
                }
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == STATS_PAGE => {
                after = Some((last.created_at, last.id.clone()));
            }
            _ => break,
        }
    }
    Ok(RuleStatsView {
        subscriber_id: subscriber_id.to_owned(),
        from: rfc3339(from),
        to: rfc3339(to),
        live: live.finish(),
        shadow: shadow.map(StatsTally::finish),
    })
}

/// Validates a rule set and publishes it at once: a new version, live; the
/// previous live one is retired.
pub async fn put_rules(
    store: &dyn Store,
    subscriber_id: &str,
    body: &Map<String, Value>,
    actor: &Actor,
) -> Result<RuleSetView, ServiceError> {
    existing(store, subscriber_id).await?;
    let valid = validate(body)?;
    let (row, previous) = store
        .put_rule_set(subscriber_id, valid.new_rule_set(), actor)
        .await?;
    tracing::info!(%subscriber_id, version = row.version, previous = ?previous,
        rules = valid.rule_set.rules.len(), "rule set published");
    Ok(RuleSetView {
        subscriber_id: row.subscriber_id,
        version: row.version,
        rule_set: valid.rule_set,
        updated_at: Some(rfc3339(row.created_at)),
        warnings: valid.warnings,
    })
}

// ---- checking rule by rule, and comparing versions -------------------------

/// What is wrong with one rule of a rule set, checked on its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleCheck {
    /// Why the rule set would be refused because of this rule.
    pub errors: Vec<String>,
    /// It compiles but fails on a sample transaction (stored all the same).
    pub warnings: Vec<String>,
}

/// Every problem of a rule set at once, each rule's apart: an editor shows
/// each next to its rule rather than the first one [`validate`] stops at.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleSetCheck {
    /// Problems of the set itself (thresholds, note, too many rules).
    pub errors: Vec<String>,
    /// One per item of `rules`, in order.
    pub rules: Vec<RuleCheck>,
}

impl RuleSetCheck {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty() && self.rules.iter().all(|r| r.errors.is_empty())
    }
}

/// "Invalid rule 'x': the expression …" said next to rule x is "the
/// expression …".
fn about_the_rule(message: String) -> String {
    let rest = message
        .strip_prefix("Invalid rule #1: ")
        .or_else(|| {
            message
                .strip_prefix("Invalid rule '")
                .and_then(|r| r.split_once("': ").map(|(_, m)| m))
        })
        .map(str::to_owned);
    rest.unwrap_or(message)
}

/// Checks a rule-set body as [`validate`] would, reporting every rule's
/// problems (and the set's) instead of the first one.
pub fn check_each(body: &Map<String, Value>) -> RuleSetCheck {
    let mut check = RuleSetCheck::default();
    let mut set_only = body.clone();
    set_only.insert("rules".into(), Value::Array(Vec::new()));
    if let Err(e) = parse_rule_set(&set_only) {
        check.errors.push(e);
    }
    if let Err(e) = optional_text(body, "note", NOTE_MAX) {
        check.errors.push(ServiceError::from(e).to_string());
    }
    let items = match body.get("rules") {
        Some(Value::Array(items)) => items.as_slice(),
        _ => {
            check.errors.push("Missing 'rules' in request body".into());
            return check;
        }
    };
    if items.len() > crate::decision::rules::MAX_RULES {
        check.errors.push(format!(
            "At most {} rules",
            crate::decision::rules::MAX_RULES
        ));
    }
    let mut names = std::collections::HashSet::new();
    for item in items {
        let mut one = RuleCheck::default();
        let mut alone = Map::new();
        alone.insert("rules".into(), Value::Array(vec![item.clone()]));
        match parse_rule_set(&alone) {
            Err(e) => one.errors.push(about_the_rule(e)),
            Ok(set) => {
                if let Some(rule) = set.rules.first() {
                    if !names.insert(rule.name.clone()) {
                        one.errors.push("the name is used twice".into());
                    }
                }
                match compile(&set, 0) {
                    Err(e) => one.errors.push(about_the_rule(e)),
                    Ok(compiled) => {
                        one.warnings = crate::decision::sample_faults(&compiled)
                            .into_iter()
                            .map(|(_, fault)| format!("fails on a sample transaction: {fault}"))
                            .collect();
                    }
                }
            }
        }
        check.rules.push(one);
    }
    check
}

/// How one rule differs between two versions.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleChange<'a> {
    Added(&'a Rule),
    Removed(&'a Rule),
    /// (before, after), with at least one difference.
    Changed(&'a Rule, &'a Rule),
}

/// `after` against `before`, by rule name: the rules of `after` in its
/// order (added or changed), then those only `before` has (removed).
/// Unchanged rules are left out.
pub fn diff<'a>(before: &'a RuleSet, after: &'a RuleSet) -> Vec<RuleChange<'a>> {
    let old: HashMap<&str, &Rule> = before.rules.iter().map(|r| (r.name.as_str(), r)).collect();
    let new: std::collections::HashSet<&str> =
        after.rules.iter().map(|r| r.name.as_str()).collect();
    let mut changes: Vec<RuleChange<'a>> = after
        .rules
        .iter()
        .filter_map(|rule| match old.get(rule.name.as_str()) {
            None => Some(RuleChange::Added(rule)),
            Some(was) if *was != rule => Some(RuleChange::Changed(was, rule)),
            Some(_) => None,
        })
        .collect();
    changes.extend(
        before
            .rules
            .iter()
            .filter(|r| !new.contains(r.name.as_str()))
            .map(RuleChange::Removed),
    );
    changes
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> RuleSet {
        parse_rule_set(
            json!({"rules": [
                {"name": "a", "expression": "amount > 1", "weight": 0.1},
                {"name": "b", "expression": "amount > 2", "weight": 0.1, "enabled": false},
                {"name": "c", "expression": "amount > 3", "weight": 0.1}
            ]})
            .as_object()
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn precision_counts_fraud_and_chargebacks_among_labelled_hits() {
        let mut tally = StatsTally::new(4, &set());
        tally.add(["a"], Action::Block, Some(Label::Fraud));
        tally.add(["a", "c"], Action::Block, Some(Label::Chargeback));
        tally.add(["a"], Action::Review, Some(Label::Legit));
        tally.add(["a", "unknown"], Action::Allow, None);
        tally.add([], Action::Allow, Some(Label::Legit));
        let stats = tally.finish();
        assert_eq!(
            (stats.version, stats.decisions, stats.labelled, stats.fraud),
            (4, 5, 4, 2)
        );
        assert_eq!(
            stats.actions,
            ActionCounts {
                allow: 2,
                review: 1,
                block: 2
            }
        );
        let a = &stats.rules[0];
        assert_eq!((a.rule.as_str(), a.enabled), ("a", true));
        assert_eq!(
            a.stats,
            HitStats {
                decisions: 5,
                hits: 4,
                hit_rate: Some(0.8),
                labelled_hits: 3,
                fraud_hits: 2,
                precision: Some(0.6667),
            }
        );
        assert_eq!(a.by_action.block.precision, Some(1.0));
        assert_eq!(a.by_action.review.precision, Some(0.0));
        assert_eq!(
            (a.by_action.allow.hits, a.by_action.allow.hit_rate),
            (1, Some(0.5))
        );
        assert_eq!(a.by_action.allow.precision, None, "no labelled hit");
        let b = &stats.rules[1];
        assert_eq!(
            (b.enabled, b.stats.hits, b.stats.precision),
            (false, 0, None)
        );
        assert_eq!(stats.rules[2].stats.hits, 1);
        assert_eq!(stats.rules.len(), 3, "unknown names are not rules");
    }

    #[test]
    fn an_empty_window_has_no_rates() {
        let stats = StatsTally::new(1, &set()).finish();
        assert_eq!(stats.decisions, 0);
        assert_eq!(stats.rules[0].stats.hit_rate, None);
        assert_eq!(stats.rules[0].by_action.block.hit_rate, None);
    }

    #[test]
    fn stored_outcomes_read_their_hits_action_and_version() {
        let stored = r#"{"version":3,"risk_score":0.4,"risk_level":"medium","action":"review",
            "rule_hits":[{"rule":"big \"one\"","weight":0.2},{"rule":"b","weight":0.1,"action":"review"}]}"#;
        let outcome: StoredOutcome = serde_json::from_str(stored).unwrap();
        assert_eq!(
            (outcome.version, outcome.action),
            (Some(3), Some(Action::Review))
        );
        let names: Vec<&str> = outcome.rule_hits.iter().map(|h| &*h.rule).collect();
        assert_eq!(names, ["big \"one\"", "b"]);
    }

    #[test]
    fn every_rule_is_checked_on_its_own() {
        let body = json!({"review_threshold": 2, "rules": [
            {"name": "ok", "expression": "amount > 1", "weight": 0.1},
            {"name": "broken", "expression": "amount >", "weight": 0.1},
            {"name": "ok", "expression": "amount > 2", "weight": 0.1},
            {"name": "no weight", "expression": "amount > 3"}
        ]});
        let check = check_each(body.as_object().unwrap());
        assert!(!check.is_valid());
        assert_eq!(check.errors.len(), 1, "{:?}", check.errors);
        assert!(check.errors[0].contains("threshold"), "{:?}", check.errors);
        assert_eq!(check.rules.len(), 4);
        assert!(check.rules[0].errors.is_empty(), "{:?}", check.rules[0]);
        assert!(
            check.rules[1].errors[0].starts_with("the expression does not compile"),
            "{:?}",
            check.rules[1]
        );
        assert_eq!(check.rules[2].errors, ["the name is used twice"]);
        assert_eq!(check.rules[3].errors, ["missing 'weight'"]);
        let fine = json!({"rules": [{"name": "a", "expression": "amount > 1", "weight": 0.1}]});
        assert!(check_each(fine.as_object().unwrap()).is_valid());
    }

    #[test]
    fn a_diff_names_added_removed_and_changed_rules() {
        let before = set();
        let mut after = set();
        after.rules.remove(1);
        after.rules[0].weight = 0.3;
        after.rules.push(after.rules[1].clone());
        after.rules[2].name = "d".into();
        let changes = diff(&before, &after);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(
            matches!(changes[0], RuleChange::Changed(was, now) if was.weight == 0.1 && now.weight == 0.3)
        );
        assert!(matches!(changes[1], RuleChange::Added(r) if r.name == "d"));
        assert!(matches!(changes[2], RuleChange::Removed(r) if r.name == "b"));
        assert!(diff(&before, &before).is_empty());
    }
}
