//! Backtests in the pure core: a candidate rule set replayed over stored
//! decisions, and what it would have changed, measured against the labels.
//!
//! Replay is point-in-time by construction: a stored decision's `input` is
//! every feature its rules saw at that moment (the device signals and
//! `risk_score_from_cache`, the velocity counters with that transaction
//! counted, the customer's profile as it stood just before it), so deciding
//! on it again gives the candidate's answer at that moment. Nothing here
//! reads later data; the caller only has to hand in stored decisions.
//!
//! "Live" is what happened: the action recorded on each decision and the
//! rules that hit then. "Candidate" is the replay.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::{Action, CompiledRuleSet};
use super::{decide, Input, Outcome};

/// How many changed decisions a result lists.
pub const CHANGED_SAMPLE: usize = 50;

/// What a label says about a decision: `fraud` and `chargeback` are fraud,
/// `legit` is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    Fraud,
    Good,
}

/// One stored decision, as the store reads it back.
#[derive(Debug, Clone, Copy)]
pub struct StoredDecision<'a> {
    pub id: &'a str,
    /// The features it was decided on (an [`Input`], JSON).
    pub input: &'a str,
    /// The outcome given (an [`Outcome`], JSON).
    pub result: &'a str,
    /// The action recorded.
    pub action: &'a str,
    /// Its label, if it has one.
    pub truth: Option<Truth>,
}

/// The candidate's outcome on a stored input, as it would have been at that
/// moment; `None` when the input does not read back.
pub fn replay(rules: &CompiledRuleSet, stored_input: &str) -> Option<(Input, Outcome)> {
    let input: Input = serde_json::from_str(stored_input).ok()?;
    let outcome = decide(rules, &input);
    Some((input, outcome))
}

/// The parts of a stored result a backtest reads.
#[derive(Deserialize)]
struct LiveResult<'a> {
    #[serde(default, borrow)]
    rule_hits: Vec<Named<'a>>,
    #[serde(default, borrow)]
    rule_errors: Vec<Named<'a>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    rule: Cow<'a, str>,
}

/// Decisions by action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = BacktestActionCounts)]
pub struct ActionCounts {
    pub allow: u64,
    pub review: u64,
    pub block: u64,
}

impl ActionCounts {
    fn add(&mut self, action: Action) {
        match action {
            Action::Allow => self.allow += 1,
            Action::Review => self.review += 1,
            Action::Block => self.block += 1,
        }
    }
}

/// A confusion matrix of labelled decisions for one notion of "positive"
/// (flagged: review or block; blocked: block), with its precision and
/// recall. Unlabelled decisions are not in the matrix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Confusion {
    /// Fraud, positive.
    pub tp: u64,
    /// Good, positive.
    pub fp: u64,
    /// Good, negative.
    pub tn: u64,
    /// Fraud, negative.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Unlabelled decisions that were positive.
    pub unlabelled_positive: u64,
    /// `tp / (tp + fp)`, to 4 decimals; null without a labelled positive.
    pub precision: Option<f64>,
    /// `tp / (tp + fn)`, to 4 decimals; null without a labelled fraud.
    pub recall: Option<f64>,
}

impl Confusion {
    fn add(&mut self, positive: bool, truth: Option<Truth>) {
        match (truth, positive) {
            (Some(Truth::Fraud), true) => self.tp += 1,
            (Some(Truth::Good), true) => self.fp += 1,
            (Some(Truth::Good), false) => self.tn += 1,
            (Some(Truth::Fraud), false) => self.fn_ += 1,
            (None, true) => self.unlabelled_positive += 1,
            (None, false) => {}
        }
    }

    fn finish(&mut self) {
        self.precision = ratio(self.tp, self.tp + self.fp);
        self.recall = ratio(self.tp, self.tp + self.fn_);
    }
}

/// One rule's record over the replayed decisions. Named apart in the
/// OpenAPI document: `RuleStats` is the rule statistics' (`rules/stats`), and
/// two schemas of one name would silently become one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = BacktestRuleStats)]
pub struct RuleStats {
    pub rule: String,
    pub hits: u64,
    /// Hits on labelled decisions.
    pub labelled_hits: u64,
    /// The share of fraud (`fraud` or `chargeback`) among the labelled
    /// hits, to 4 decimals; null without a labelled hit.
    pub precision: Option<f64>,
    /// Decisions on which the rule could not be evaluated (it did not hit).
    pub errors: u64,
    #[serde(skip)]
    fraud_hits: u64,
}

impl RuleStats {
    fn named(rule: &str) -> Self {
        Self {
            rule: rule.to_owned(),
            ..Self::default()
        }
    }

    fn hit(&mut self, truth: Option<Truth>) {
        self.hits += 1;
        if let Some(truth) = truth {
            self.labelled_hits += 1;
            if truth == Truth::Fraud {
                self.fraud_hits += 1;
            }
        }
    }

    fn finish(&mut self) {
        self.precision = ratio(self.fraud_hits, self.labelled_hits);
    }
}

/// What one rule set (the live actions, or the candidate's) did over the
/// replayed decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SideResult {
    pub actions: ActionCounts,
    /// Positive: review or block.
    pub flagged: Confusion,
    /// Positive: block.
    pub blocked: Confusion,
    /// The amount of the fraud it flagged (review or block), by currency,
    /// in major units.
    #[schema(value_type = BTreeMap<String, f64>)]
    pub fraud_amount_caught: BTreeMap<String, f64>,
    /// The amount of the good decisions it blocked, by currency, in major
    /// units.
    #[schema(value_type = BTreeMap<String, f64>)]
    pub good_amount_declined: BTreeMap<String, f64>,
    /// For the candidate, each of its enabled rules in order; for the live
    /// side, each rule that hit or failed, most hits first.
    pub rules: Vec<RuleStats>,
}

/// The labels of the replayed decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LabelCounts {
    /// `fraud` or `chargeback`.
    pub fraud: u64,
    /// `legit`.
    pub good: u64,
    pub unlabelled: u64,
}

/// A decision whose action the candidate changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangedDecision {
    pub decision_id: String,
    pub live: Action,
    pub candidate: Action,
}

/// The decisions whose action the candidate changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Changes {
    pub count: u64,
    /// The first 50 of them, in the order they were made.
    pub sample: Vec<ChangedDecision>,
}

/// A backtest's `result`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BacktestResult {
    /// Decisions replayed.
    pub decisions: u64,
    /// Stored decisions in the window whose input or action no longer reads
    /// back (not replayed, not counted anywhere else).
    pub skipped: u64,
    pub labels: LabelCounts,
    /// What happened: the actions recorded on the decisions.
    pub live: SideResult,
    /// What the candidate rule set decides on the same inputs.
    pub candidate: SideResult,
    pub changed: Changes,
}

/// The running sums of one side, before they are reported.
#[derive(Default)]
struct Sums {
    actions: ActionCounts,
    flagged: Confusion,
    blocked: Confusion,
    fraud_caught: BTreeMap<String, Decimal>,
    good_declined: BTreeMap<String, Decimal>,
}

impl Sums {
    fn add(&mut self, action: Action, truth: Option<Truth>, input: &Input) {
        self.actions.add(action);
        let flagged = action >= Action::Review;
        let blocked = action == Action::Block;
        self.flagged.add(flagged, truth);
        self.blocked.add(blocked, truth);
        let amount = match (truth, flagged, blocked) {
            (Some(Truth::Fraud), true, _) => Some(&mut self.fraud_caught),
            (Some(Truth::Good), _, true) => Some(&mut self.good_declined),
            _ => None,
        };
        if let Some(sums) = amount {
            let total = match sums.get_mut(&*input.currency) {
                Some(total) => total,
                None => sums.entry(input.currency.to_string()).or_default(),
            };
            *total = total.saturating_add(input.amount);
        }
    }

    fn finish(mut self, rules: Vec<RuleStats>) -> SideResult {
        self.flagged.finish();
        self.blocked.finish();
        let amounts = |sums: BTreeMap<String, Decimal>| {
            sums.into_iter()
                .map(|(currency, amount)| (currency, amount.to_f64().unwrap_or(0.0)))
                .collect()
        };
        SideResult {
            actions: self.actions,
            flagged: self.flagged,
            blocked: self.blocked,
            fraud_amount_caught: amounts(self.fraud_caught),
            good_amount_declined: amounts(self.good_declined),
            rules,
        }
    }
}

/// A backtest in progress: feed it stored decisions with [`Replay::add`],
/// in any number of pages, then [`Replay::finish`].
pub struct Replay {
    decisions: u64,
    skipped: u64,
    labels: LabelCounts,
    live: Sums,
    candidate: Sums,
    live_rules: HashMap<String, RuleStats>,
    candidate_rules: Vec<RuleStats>,
    changed: Changes,
}

impl Replay {
    /// A replay of `candidate`; every [`Replay::add`] must pass the same set.
    pub fn new(candidate: &CompiledRuleSet) -> Self {
        Self {
            decisions: 0,
            skipped: 0,
            labels: LabelCounts::default(),
            live: Sums::default(),
            candidate: Sums::default(),
            live_rules: HashMap::new(),
            candidate_rules: candidate
                .rules
                .iter()
                .map(|r| RuleStats::named(&r.name))
                .collect(),
            changed: Changes::default(),
        }
    }

    /// Decisions replayed so far.
    pub fn decisions(&self) -> u64 {
        self.decisions
    }

    /// Replays one stored decision and counts it.
    pub fn add(&mut self, candidate: &CompiledRuleSet, decision: &StoredDecision<'_>) {
        let (Some(live_action), Some((input, outcome))) = (
            Action::parse(decision.action),
            replay(candidate, decision.input),
        ) else {
            self.skipped += 1;
            return;
        };
        let truth = decision.truth;
        self.decisions += 1;
        match truth {
            Some(Truth::Fraud) => self.labels.fraud += 1,
            Some(Truth::Good) => self.labels.good += 1,
            None => self.labels.unlabelled += 1,
        }
        self.live.add(live_action, truth, &input);
        self.candidate.add(outcome.action, truth, &input);
        // The live rules as they were recorded; a result that does not read
        // back still has its action counted above.
        if let Ok(live) = serde_json::from_str::<LiveResult<'_>>(decision.result) {
            for hit in &live.rule_hits {
                self.live_rule(&hit.rule).hit(truth);
            }
            for fault in &live.rule_errors {
                self.live_rule(&fault.rule).errors += 1;
            }
        }
        // Hits and errors come in rule order, as do the candidate's stats.
        let mut at = 0;
        for hit in &outcome.rule_hits {
            if let Some(offset) = self.candidate_rules[at..]
                .iter()
                .position(|r| r.rule == hit.rule)
            {
                at += offset;
                self.candidate_rules[at].hit(truth);
            }
        }
        for fault in &outcome.rule_errors {
            if let Some(stats) = self
                .candidate_rules
                .iter_mut()
                .find(|r| r.rule == fault.rule)
            {
                stats.errors += 1;
            }
        }
        if outcome.action != live_action {
            self.changed.count += 1;
            if self.changed.sample.len() < CHANGED_SAMPLE {
                self.changed.sample.push(ChangedDecision {
                    decision_id: decision.id.to_owned(),
                    live: live_action,
                    candidate: outcome.action,
                });
            }
        }
    }

    fn live_rule(&mut self, name: &str) -> &mut RuleStats {
        self.live_rules
            .entry(name.to_owned())
            .or_insert_with(|| RuleStats::named(name))
    }

    /// The result.
    pub fn finish(self) -> BacktestResult {
        let mut live_rules: Vec<RuleStats> = self.live_rules.into_values().collect();
        live_rules.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.rule.cmp(&b.rule)));
        let mut candidate_rules = self.candidate_rules;
        for rule in live_rules.iter_mut().chain(candidate_rules.iter_mut()) {
            rule.finish();
        }
        BacktestResult {
            decisions: self.decisions,
            skipped: self.skipped,
            labels: self.labels,
            live: self.live.finish(live_rules),
            candidate: self.candidate.finish(candidate_rules),
            changed: self.changed,
        }
    }
}

/// `part / whole` to 4 decimals; `None` for an empty whole.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (whole > 0).then(|| ((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decision::rules::{compile, default_rule_set, parse_rule_set};
    use crate::decision::sample_input;
    use serde_json::json;

    fn rules(body: serde_json::Value) -> CompiledRuleSet {
        compile(&parse_rule_set(body.as_object().unwrap()).unwrap(), 1).unwrap()
    }

    fn stored(amount: i64, currency: &'static str, vpn: bool) -> (String, Input) {
        let mut input = sample_input();
        input.amount = Decimal::new(amount, 0);
        input.transaction_amount = input.amount;
        input.currency = Cow::Borrowed(currency);
        input.device.vpn = vpn;
        input.velocity.card.count_1h = u64::try_from(amount % 7).unwrap();
        (serde_json::to_string(&input).unwrap(), input)
    }

    #[test]
    fn a_stored_input_replays_to_the_outcome_it_was_given() {
        let pack = compile(default_rule_set().unwrap(), 0).unwrap();
        for amount in [1, 99, 250, 999, 5_000, 40_000] {
            for vpn in [false, true] {
                let (text, input) = stored(amount, "EUR", vpn);
                let (_, replayed) = replay(&pack, &text).unwrap();
                assert_eq!(replayed, decide(&pack, &input), "{amount} {vpn}");
            }
        }
        assert!(replay(&pack, "not json").is_none());
    }

    #[test]
    fn the_tally_counts_actions_matrices_amounts_and_rules() {
        let candidate = rules(json!({"rules": [
            {"name": "Big", "expression": "amount > 500", "weight": 0, "action": "block"},
            {"name": "VPN", "expression": "device.vpn", "weight": 0.4},
            {"name": "Odd", "expression": "no_such > 1", "weight": 0.1}
        ]}));
        let cases = [
            // amount, currency, vpn, live action, truth
            (600, "USD", false, "allow", Some(Truth::Fraud)),
            (700, "EUR", true, "review", Some(Truth::Good)),
            (50, "USD", true, "allow", Some(Truth::Fraud)),
            (40, "USD", false, "block", Some(Truth::Good)),
            (900, "USD", false, "block", None),
        ];
        let live_result = json!({"rule_hits": [{"rule": "Old", "weight": 0.1}],
                                 "rule_errors": []})
        .to_string();
        let mut replay = Replay::new(&candidate);
        let texts: Vec<String> = cases.iter().map(|c| stored(c.0, c.1, c.2).0).collect();
        for (i, (case, text)) in cases.iter().zip(&texts).enumerate() {
            replay.add(
                &candidate,
                &StoredDecision {
                    id: &format!("dec_{i}"),
                    input: text,
                    result: &live_result,
                    action: case.3,
                    truth: case.4,
                },
            );
        }
        replay.add(
            &candidate,
            &StoredDecision {
                id: "dec_bad",
                input: "{",
                result: "{}",
                action: "allow",
                truth: None,
            },
        );
        let result = replay.finish();
        assert_eq!((result.decisions, result.skipped), (5, 1));
        assert_eq!(
            result.labels,
            LabelCounts {
                fraud: 2,
                good: 2,
                unlabelled: 1
            }
        );
        // Candidate: 600 block, 700 block, 50 review (VPN 0.4), 40 allow, 900 block.
        let cand = &result.candidate;
        assert_eq!(
            cand.actions,
            ActionCounts {
                allow: 1,
                review: 1,
                block: 3
            }
        );
        assert_eq!(
            (
                cand.flagged.tp,
                cand.flagged.fp,
                cand.flagged.tn,
                cand.flagged.fn_
            ),
            (2, 1, 1, 0)
        );
        assert_eq!(cand.flagged.unlabelled_positive, 1);
        assert_eq!(
            (cand.flagged.precision, cand.flagged.recall),
            (Some(0.6667), Some(1.0))
        );
        assert_eq!(
            (
                cand.blocked.tp,
                cand.blocked.fp,
                cand.blocked.tn,
                cand.blocked.fn_
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(
            cand.fraud_amount_caught,
            BTreeMap::from([("USD".into(), 650.0)])
        );
        assert_eq!(
            cand.good_amount_declined,
            BTreeMap::from([("EUR".into(), 700.0)])
        );
        let names: Vec<_> = cand
            .rules
            .iter()
            .map(|r| {
                (
                    r.rule.as_str(),
                    r.hits,
                    r.labelled_hits,
                    r.precision,
                    r.errors,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("Big", 3, 2, Some(0.5), 0),
                ("VPN", 2, 2, Some(0.5), 0),
                ("Odd", 0, 0, None, 5)
            ]
        );
        // Live, as recorded: 600 allow, 700 review, 50 allow, 40 block, 900 block.
        let live = &result.live;
        assert_eq!(
            (
                live.flagged.tp,
                live.flagged.fp,
                live.flagged.tn,
                live.flagged.fn_
            ),
            (0, 2, 0, 2)
        );
        assert_eq!(live.flagged.precision, Some(0.0));
        assert_eq!(live.blocked.precision, Some(0.0));
        assert_eq!(
            live.good_amount_declined,
            BTreeMap::from([("USD".into(), 40.0)])
        );
        assert_eq!(live.rules.len(), 1);
        assert_eq!(
            (live.rules[0].rule.as_str(), live.rules[0].hits),
            ("Old", 5)
        );
        let changed: Vec<_> = result
            .changed
            .sample
            .iter()
            .map(|c| (c.decision_id.as_str(), c.live, c.candidate))
            .collect();
        assert_eq!(
            changed,
            [
                ("dec_0", Action::Allow, Action::Block),
                ("dec_1", Action::Review, Action::Block),
                ("dec_2", Action::Allow, Action::Review),
                ("dec_3", Action::Block, Action::Allow),
            ]
        );
        assert_eq!(result.changed.count, 4);
    }
}
