//! The decision core: from a score request's transaction, the cached device
//! signals, the velocity counters and the customer's profile to a score, a
//! level, an action and the rules that fired.
//!
//! Pure and synchronous, and free of I/O: the service layer gathers the
//! pieces and hands them in, so the core can be benchmarked
//! (`benches/decision.rs`), fuzzed and replayed alone. It imports nothing
//! from the rest of the crate; the cache and the velocity counters convert
//! into its types.
//!
//! `risk_score = clamp(risk_score_from_cache + Σ weights of the rules that hit,
//! 0, 1)`, rounded to 4 decimals; `risk_level` is `low` below the review
//! threshold, `medium` below the block threshold, `high` from it on; `action`
//! is the stricter of the level's (allow / review / block) and every action a
//! hit rule forces, unless a hit rule's forced action is `final`: then a final
//! `block` wins over everything, else a final `allow` does (an allow-list
//! beats the blocking rules, a final block-list beats the allow-list). The
//! score and level are reported as computed either way.

pub mod device;
pub mod features;
pub mod gateways;
pub mod lists;
pub mod reference;
pub mod replay;
pub mod rules;
pub mod scrub;
pub mod signals;
pub mod transaction;
pub mod velocity;

use serde::{Deserialize, Serialize};

pub use self::device::{device_risk, DeviceEvidence, DeviceSource};
pub use self::features::{CustomerInput, DeviceInput, Input, VelocityInput};
pub use self::rules::{Action, CompiledRuleSet, RuleFault, RuleSet};
pub use self::signals::{DeviceSignals, ProviderVelocity};
pub use self::transaction::{parse, parse_request, RequestError, Transaction};
pub use self::velocity::{VelocityEvent, VelocitySnapshot, WindowCounts};

/// One rule that hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleHit {
    pub rule: String,
    pub weight: f64,
    /// The action the rule forces, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The forced action overrides the others (see [`decide`]).
    #[serde(default, rename = "final", skip_serializing_if = "rules::is_false")]
    pub is_final: bool,
}

/// One rule that could not be evaluated on this input (it did not hit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleError {
    pub rule: String,
    pub error: String,
}

/// A decision's `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub risk_score: f64,
    /// `low`, `medium` or `high`.
    pub risk_level: String,
    pub action: Action,
    pub rule_hits: Vec<RuleHit>,
    /// Rules that failed on this input (a missing field compared with a
    /// number, …); they count as not hit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_errors: Vec<RuleError>,
    /// The rule-set version that decided (0 = the default pack).
    pub rules_version: i64,
}

/// The velocity event a transaction counts as. The card is BIN + last4 (never
/// a full number), and only when both are known; the device is the visitor id
/// of its signals; the IP is the merchant's, else the device's. A stored
/// decision's input gives the same event again (see [`replay_event`]).
pub fn velocity_event(
    input: &Input,
    visitor_id: Option<&str>,
    device_ip: Option<&str>,
    event_id: String,
) -> VelocityEvent {
    VelocityEvent {
        user: input.user_id.clone(),
        card: match (&input.bin, &input.last4) {
            (Some(bin), Some(last4)) => Some(format!("{bin}:{last4}")),
            _ => None,
        },
        device: visitor_id.map(str::to_owned),
        ip: input
            .ip_address
            .clone()
            .or_else(|| device_ip.map(str::to_owned)),
        amount_minor: input.amount_minor,
        event_id,
    }
}

/// The velocity event of a stored decision's input, as
/// [`velocity_event`] made it when it was scored; `None` when the stored
/// input does not read back.
pub fn replay_event(stored_input: &str, event_id: String) -> Option<VelocityEvent> {
    let input: Input = serde_json::from_str(stored_input).ok()?;
    Some(velocity_event(
        &input,
        input.device.visitor_id.as_deref(),
        input.device.ip_address.as_deref(),
        event_id,
    ))
}

/// Assembles every feature of the decision: the transaction's, and the
/// device, velocity and customer parts.
pub fn build_input(
    tx: Transaction,
    device: Option<&DeviceEvidence<'_>>,
    velocity: &VelocitySnapshot,
    customer: CustomerInput,
) -> Input {
    let (device_input, risk_score_from_cache, device_status) = DeviceInput::from_evidence(device);
    let mut input = tx.input;
    input.ip_country = device_input.ip_country.clone();
    input.risk_score_from_cache = risk_score_from_cache;
    input.device_status = features::Code::Borrowed(device_status);
    input.device_source = device.map(|d| features::Code::Borrowed(d.source.as_str()));
    input.device_request_id = device.map(|d| d.request_id.to_owned());
    input.device = device_input;
    input.velocity = VelocityInput::from_snapshot(velocity, tx.exponent);
    input.customer = customer;
    input
}

/// Rounds to 4 decimals.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Runs the rules over the input and scores it.
pub fn decide(rules: &CompiledRuleSet, input: &Input) -> Outcome {
    let evaluation = rules.evaluate_input(input);
    let mut sum = 0.0;
    let mut forced = Action::Allow;
    // The strictest final action of the hits, if any.
    let mut overriding: Option<Action> = None;
    let mut rule_hits = Vec::with_capacity(evaluation.hits.len());
    for index in evaluation.hits {
        let Some(rule) = rules.rules.get(index) else {
            continue;
        };
        sum += rule.weight;
        if let Some(action) = rule.action {
            forced = forced.max(action);
            if rule.is_final {
                overriding = Some(overriding.map_or(action, |o| o.max(action)));
            }
        }
        rule_hits.push(RuleHit {
            rule: rule.name.clone(),
            weight: rule.weight,
            action: rule.action,
            is_final: rule.is_final,
        });
    }
    let rule_errors = evaluation
        .faults
        .into_iter()
        .filter_map(|(index, fault)| {
            rules.rules.get(index).map(|rule| RuleError {
                rule: rule.name.clone(),
                error: fault.to_string(),
            })
        })
        .collect();
    let base = if input.risk_score_from_cache.is_finite() {
        input.risk_score_from_cache
    } else {
        0.0
    };
    let risk_score = round4((base + sum).clamp(0.0, 1.0));
    let (risk_level, level_action) = if risk_score < rules.review_threshold {
        ("low", Action::Allow)
    } else if risk_score < rules.block_threshold {
        ("medium", Action::Review)
    } else {
        ("high", Action::Block)
    };
    Outcome {
        risk_score,
        risk_level: risk_level.to_owned(),
        action: overriding.unwrap_or(level_action.max(forced)),
        rule_hits,
        rule_errors,
        rules_version: rules.version,
    }
}

/// What the shadow rule set would have decided on a decision's input. It is
/// stored beside the decision and never acts: not in the answer, not in the
/// callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowOutcome {
    /// The shadow's rule-set version.
    pub version: i64,
    pub risk_score: f64,
    pub risk_level: String,
    pub action: Action,
    pub rule_hits: Vec<RuleHit>,
}

impl From<Outcome> for ShadowOutcome {
    fn from(o: Outcome) -> Self {
        Self {
            version: o.rules_version,
            risk_score: o.risk_score,
            risk_level: o.risk_level,
            action: o.action,
            rule_hits: o.rule_hits,
        }
    }
}

/// Decides with the live rules and, when a shadow set runs, evaluates it on
/// the same input: its outcome costs only its own rules' evaluation.
pub fn decide_with_shadow(
    live: &CompiledRuleSet,
    shadow: Option<&CompiledRuleSet>,
    input: &Input,
) -> (Outcome, Option<ShadowOutcome>) {
    let outcome = decide(live, input);
    let shadow = shadow.map(|set| ShadowOutcome::from(decide(set, input)));
    (outcome, shadow)
}

/// A typical transaction (known customer, ready device, a few counters), for
/// checking new rules before they are stored.
pub fn sample_input() -> Input {
    let body = serde_json::json!({
        "request_id": "sample", "subscriber_id": "sample",
        "payload": {"transaction_amount": 120.5, "currency": "USD", "bin": "411111",
                    "last4": "1111", "user_id": "u1", "session_id": "s1",
                    "email": "jane@example.com", "ip_address": "192.0.2.10",
                    "billing_country": "US", "shipping_country": "US"}
    });
    let serde_json::Value::Object(body) = body else {
        unreachable!("a JSON object literal")
    };
    let tx = match parse(body) {
        Ok(tx) => tx,
        // The literal above is valid; parse cannot refuse it.
        Err(_) => unreachable!("the sample transaction is valid"),
    };
    let signals = DeviceSignals {
        visitor_id: Some("v1".into()),
        confidence: Some(0.99),
        bot: Some("notDetected".into()),
        vpn: Some(false),
        ip_address: Some("192.0.2.10".into()),
        ip_country: Some("US".into()),
        ..Default::default()
    };
    let evidence = DeviceEvidence {
        request_id: "sample",
        provider: "fingerprint",
        status: "ready",
        signals: Some(&signals),
        source: DeviceSource::Request,
    };
    let counts = WindowCounts {
        count_5m: 1,
        amount_5m: 12050,
        count_1h: 2,
        amount_1h: 20000,
        count_24h: 3,
        amount_24h: 30000,
    };
    let velocity = VelocitySnapshot {
        user: Some(counts),
        card: Some(counts),
        device: Some(counts),
        ip: Some(counts),
        distinct_cards_per_device: Some(1),
        distinct_cards_per_user: Some(1),
        distinct_devices_per_user: Some(1),
    };
    let customer = CustomerInput {
        known: true,
        age_days: 30.0,
        decisions: 3,
        allows: 3,
        amount_count: 3,
        avg_amount: 80.0,
        max_amount: 150.0,
        devices: 1,
        cards: 1,
        known_device: true,
        known_card: true,
        ..CustomerInput::default()
    };
    build_input(tx, Some(&evidence), &velocity, customer)
}

/// The rules that fail (or give no boolean) on [`sample_input`].
pub fn sample_faults(rules: &CompiledRuleSet) -> Vec<(String, self::rules::RuleFault)> {
    let evaluation = rules.evaluate_input(&sample_input());
    evaluation
        .faults
        .into_iter()
        .filter_map(|(i, fault)| rules.rules.get(i).map(|r| (r.name.clone(), fault)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::rules::{compile, default_rule_set, parse_rule_set};
    use super::*;
    use serde_json::json;

    fn rules(body: serde_json::Value) -> CompiledRuleSet {
        compile(&parse_rule_set(body.as_object().unwrap()).unwrap(), 7).unwrap()
    }

    fn input(amount: f64) -> Input {
        let mut input = sample_input();
        input.amount = rust_decimal::Decimal::try_from(amount).unwrap();
        input.risk_score_from_cache = 0.1;
        input
    }

    #[test]
    fn the_default_pack_compiles_and_runs_cleanly_on_a_typical_transaction() {
        let pack = default_rule_set().unwrap();
        assert!(pack.rules.len() >= 20, "{} rules", pack.rules.len());
        let compiled = compile(pack, 0).unwrap();
        assert_eq!(sample_faults(&compiled), vec![]);
        let outcome = decide(&compiled, &sample_input());
        assert_eq!(outcome.action, Action::Allow, "{outcome:?}");
        assert_eq!(outcome.risk_level, "low");
    }

    #[test]
    fn score_is_the_clamped_sum_and_levels_follow_the_thresholds() {
        let set = rules(
            json!({"review_threshold": 0.3, "block_threshold": 0.6, "rules": [
                {"name": "big", "expression": "amount > 100", "weight": 0.25},
                {"name": "huge", "expression": "amount > 1000", "weight": 0.5},
                {"name": "trusted", "expression": "amount > 5000", "weight": -1}
            ]}),
        );
        let low = decide(&set, &input(50.0));
        assert_eq!(
            (low.risk_score, low.risk_level.as_str(), low.action),
            (0.1, "low", Action::Allow)
        );
        let medium = decide(&set, &input(500.0));
        assert_eq!(
            (medium.risk_score, medium.risk_level.as_str(), medium.action),
            (0.35, "medium", Action::Review)
        );
        let high = decide(&set, &input(2000.0));
        assert_eq!(
            (high.risk_score, high.risk_level.as_str(), high.action),
            (0.85, "high", Action::Block)
        );
        let clamped = decide(&set, &input(9000.0));
        assert_eq!(clamped.risk_score, 0.0);
        assert_eq!(clamped.rule_hits.len(), 3);
        assert_eq!(clamped.rules_version, 7);
    }

    #[test]
    fn a_forced_action_wins_when_stricter_and_a_failing_rule_does_not_hit() {
        let set = rules(json!({"rules": [
            {"name": "force", "expression": "currency == 'USD'", "weight": 0, "action": "block"},
            {"name": "broken", "expression": "no_such_field > 5", "weight": 0.9},
            {"name": "not boolean", "expression": "amount", "weight": 0.9},
            {"name": "fine", "expression": "amount > 1", "weight": 0.05}
        ]}));
        let outcome = decide(&set, &input(50.0));
        assert_eq!(outcome.risk_level, "low");
        assert_eq!(outcome.action, Action::Block);
        let hits: Vec<_> = outcome.rule_hits.iter().map(|h| h.rule.as_str()).collect();
        assert_eq!(hits, ["force", "fine"]);
        let errors: Vec<_> = outcome
            .rule_errors
            .iter()
            .map(|e| e.rule.as_str())
            .collect();
        assert_eq!(errors, ["broken", "not boolean"]);
        assert!(outcome.rule_errors[1].error.contains("not a boolean"));
    }

    #[test]
    fn the_shadow_decides_on_the_same_input_without_changing_the_live_outcome() {
        let live = rules(json!({"rules": [
            {"name": "big", "expression": "amount > 100", "weight": 0.25}
        ]}));
        let shadow = compile(
            &parse_rule_set(
                json!({"review_threshold": 0.2, "rules": [
                    {"name": "big", "expression": "amount > 100", "weight": 0.25},
                    {"name": "usd", "expression": "currency == 'USD'", "weight": 0, "action": "block"}
                ]})
                .as_object()
                .unwrap(),
            )
            .unwrap(),
            9,
        )
        .unwrap();
        let alone = decide(&live, &input(500.0));
        let (outcome, seen) = decide_with_shadow(&live, Some(&shadow), &input(500.0));
        assert_eq!(outcome, alone, "the shadow never changes the live outcome");
        let seen = seen.unwrap();
        assert_eq!(seen.version, 9);
        assert_eq!((seen.risk_score, seen.action), (0.35, Action::Block));
        let hits: Vec<_> = seen.rule_hits.iter().map(|h| h.rule.as_str()).collect();
        assert_eq!(hits, ["big", "usd"]);
        assert_eq!(decide_with_shadow(&live, None, &input(500.0)).1, None);
    }

    #[test]
    fn a_final_block_beats_a_final_allow_which_beats_every_other_action() {
        let set = rules(
            json!({"review_threshold": 0.3, "block_threshold": 0.6, "rules": [
                {"name": "risky", "expression": "flag_risky == true", "weight": 0.9},
                {"name": "stolen", "expression": "lists.stolen_cards", "weight": 0.2, "action": "block"},
                {"name": "soft", "expression": "flag_soft == true", "weight": 0, "action": "review"},
                {"name": "mild", "expression": "flag_mild == true", "weight": 0, "action": "allow"},
                {"name": "trusted", "expression": "lists.trusted_users", "weight": 0, "action": "allow", "final": true},
                {"name": "sanctioned", "expression": "lists.sanctioned", "weight": 0, "action": "block", "final": true}
            ]}),
        );
        let case = |flags: &[&str], lists: &[&str]| {
            let mut input = input(50.0);
            for flag in flags {
                input.extra.insert((*flag).to_owned(), json!(true));
            }
            input.lists = lists::ListHits::new(lists.iter().map(|l| (*l).to_owned()));
            decide(&set, &input)
        };
        let outcome = case(&["flag_risky"], &[]);
        assert_eq!(
            (outcome.risk_level.as_str(), outcome.action),
            ("high", Action::Block)
        );
        // An ordinary allow is the mildest action, as it always was.
        assert_eq!(
            case(&["flag_risky", "flag_mild"], &[]).action,
            Action::Block
        );
        assert_eq!(
            case(&["flag_soft", "flag_mild"], &[]).action,
            Action::Review
        );
        assert_eq!(case(&[], &["stolen_cards"]).action, Action::Block);
        // A final allow: whatever the score and the other rules force.
        let trusted = case(
            &["flag_risky", "flag_soft"],
            &["stolen_cards", "trusted_users"],
        );
        assert_eq!(trusted.action, Action::Allow);
        assert_eq!(
            (trusted.risk_score, trusted.risk_level.as_str()),
            (1.0, "high")
        );
        let hit = trusted
            .rule_hits
            .iter()
            .find(|h| h.rule == "trusted")
            .unwrap();
        assert!(hit.is_final);
        assert_eq!(serde_json::to_value(hit).unwrap()["final"], true);
        let plain = trusted
            .rule_hits
            .iter()
            .find(|h| h.rule == "stolen")
            .unwrap();
        assert!(serde_json::to_value(plain).unwrap().get("final").is_none());
        // A final block beats the final allow.
        let sanctioned = case(&[], &["trusted_users", "sanctioned"]);
        assert_eq!(
            (sanctioned.risk_level.as_str(), sanctioned.action),
            ("low", Action::Block)
        );
        // A list no entry names, or that does not exist, reads false.
        assert_eq!(case(&[], &["some_other_list"]).action, Action::Allow);
    }

    #[test]
    fn final_needs_an_allow_or_a_block() {
        for (rule, ok) in [
            (
                json!({"name": "a", "expression": "true", "weight": 0, "action": "block", "final": true}),
                true,
            ),
            (
                json!({"name": "a", "expression": "true", "weight": 0, "action": "allow", "final": true}),
                true,
            ),
            (
                json!({"name": "a", "expression": "true", "weight": 0, "action": "review", "final": true}),
                false,
            ),
            (
                json!({"name": "a", "expression": "true", "weight": 0, "final": true}),
                false,
            ),
            (
                json!({"name": "a", "expression": "true", "weight": 0, "action": "block", "final": "yes"}),
                false,
            ),
            (
                json!({"name": "a", "expression": "true", "weight": 0, "final": false}),
                true,
            ),
        ] {
            let parsed = parse_rule_set(json!({"rules": [rule]}).as_object().unwrap());
            assert_eq!(parsed.is_ok(), ok, "{rule}: {parsed:?}");
            if let Err(err) = parsed {
                assert!(err.starts_with("Invalid rule 'a': 'final'"), "{err}");
            }
        }
    }

    #[test]
    fn rules_read_lists_directly_and_on_the_engine_alike() {
        let set = rules(json!({"rules": [
            {"name": "on", "expression": "lists.blocked_cards", "weight": 0.1},
            {"name": "off", "expression": "lists.missing_list", "weight": 0.1},
            {"name": "not", "expression": "not lists.missing_list and amount > 1", "weight": 0.1},
            {"name": "either", "expression": "lists.blocked_cards or lists . vip", "weight": 0.1}
        ]}));
        assert!(set.runs_directly(), "lists need no engine");
        let mut input = input(50.0);
        input.lists = lists::ListHits::new(["blocked_cards".to_owned()]);
        let direct = set.evaluate_input(&input);
        let engine = set.evaluate(&input.context(&set.uses));
        assert_eq!(direct.hits, vec![0, 2, 3]);
        assert_eq!(engine.hits, direct.hits);
        assert!(engine.faults.is_empty(), "{:?}", engine.faults);
        // The stored input shows only the lists that matched.
        let shown = serde_json::to_value(&input).unwrap();
        assert_eq!(shown["lists"], json!({"blocked_cards": true}));
    }

    #[test]
    fn a_bad_expression_is_refused_naming_the_rule() {
        let set = parse_rule_set(
            json!({"rules": [{"name": "Half", "expression": "amount >", "weight": 0.1}]})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let err = compile(&set, 1).err().unwrap();
        assert!(
            err.starts_with("Invalid rule 'Half': the expression does not compile"),
            "{err}"
        );
    }

    #[test]
    fn rules_read_the_same_names_the_input_shows() {
        let input = sample_input();
        let shown = serde_json::to_value(&input).unwrap();
        let set = rules(json!({"rules": [
            {"name": "a", "expression": "velocity.card.count_24h == 3 and customer.known_device and device.ip_country == 'US'", "weight": 0.1},
            {"name": "b", "expression": "card_brand == 'visa' and email_domain == 'example.com' and amount_minor == 12050", "weight": 0.1}
        ]}));
        assert_eq!(shown["velocity"]["card"]["count_24h"], 3);
        assert_eq!(shown["amount_minor"], 12050);
        let outcome = decide(&set, &input);
        assert_eq!(outcome.rule_hits.len(), 2, "{outcome:?}");
    }

    #[test]
    fn a_stored_input_replays_to_the_event_it_was_counted_as() {
        let input = sample_input();
        let stored = serde_json::to_string(&input).unwrap();
        let replayed = replay_event(&stored, "dec_1".into()).unwrap();
        let scored = velocity_event(
            &input,
            input.device.visitor_id.as_deref(),
            input.device.ip_address.as_deref(),
            "dec_1".into(),
        );
        assert_eq!(replayed, scored);
        assert_eq!(replayed.card.as_deref(), Some("411111:1111"));
        assert_eq!(replayed.device.as_deref(), Some("v1"));
        assert_eq!(replayed.amount_minor, 12050);
    }

    #[test]
    fn a_stored_input_reads_back_as_it_was_written() {
        let input = sample_input();
        let stored = serde_json::to_value(&input).unwrap();
        let read: Input = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&read).unwrap(), stored);
    }

    #[test]
    fn the_input_the_context_and_the_feature_list_name_the_same_features() {
        let input = serde_json::to_value(sample_input()).unwrap();
        let context = sample_input().to_variable().to_value();
        assert_eq!(features::FEATURES.len(), features::CONTEXT_NAMES.len());
        for feature in features::FEATURES {
            assert!(
                input.get(feature.name).is_some(),
                "{} not in input",
                feature.name
            );
            assert!(
                context.get(feature.name).is_some(),
                "{} not in context",
                feature.name
            );
            assert!(!feature.doc.is_empty(), "{} undocumented", feature.name);
        }
    }

    #[test]
    fn the_reference_documents_every_feature() {
        let doc = include_str!("../../docs/features-and-rules.md");
        for feature in features::FEATURES {
            // A part with members (`device`) is documented member by member.
            assert!(
                doc.contains(&format!("`{}`", feature.name))
                    || doc.contains(&format!("`{}.", feature.name)),
                "docs/features-and-rules.md does not name `{}`",
                feature.name
            );
        }
    }
}
