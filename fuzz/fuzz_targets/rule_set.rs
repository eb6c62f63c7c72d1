//! Rule sets, from a `PUT` body's bytes through `rules::parse_rule_set` and
//! `rules::compile` to an evaluation on the sample transaction (what the
//! service does before it stores a set, and for every decision after).
//!
//! A body that is not a JSON object is taken as one rule's expression, so the
//! expression language gets fuzzed directly too.
//!
//! Invariants: parsing and compiling never panic, and refuse with a message
//! naming the rule (or the field); a compiled set evaluates without panicking,
//! each rule hitting, missing or faulting exactly once, with the same result
//! as that rule compiled alone (one combined program runs all rules); the
//! score stays in [0, 1].

#![no_main]

use libfuzzer_sys::fuzz_target;
use riskgate::decision::rules::{compile, parse_rule_set};
use riskgate::decision::{decide, sample_input};
use serde_json::{json, Value};

/// libFuzzer's panic hook aborts at every panic, even one the code under
/// test catches; riskgate catches the expression engine's panics on purpose
/// (the rule faults, the request goes on). With the hook silenced, a caught
/// panic is what the product does, and one that escapes still aborts: the
/// harness around each input treats an unwinding input as a crash.
static QUIET_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let body = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(body)) => body,
        _ => {
            let Ok(expression) = std::str::from_utf8(data) else {
                return;
            };
            let body = json!({"rules": [
                {"name": "fuzzed", "expression": expression, "weight": 0.5},
                {"name": "big", "expression": "amount > 100", "weight": 0.1}
            ]});
            let Value::Object(body) = body else {
                unreachable!("an object literal")
            };
            body
        }
    };
    let set = match parse_rule_set(&body) {
        Ok(set) => set,
        Err(message) => {
            assert!(
                message.starts_with("Invalid") || message.starts_with("Missing"),
                "{message}"
            );
            return;
        }
    };
    let compiled = match compile(&set, 1) {
        Ok(compiled) => compiled,
        Err(message) => {
            assert!(message.starts_with("Invalid rule '"), "{message}");
            return;
        }
    };
    let enabled: Vec<_> = set.rules.iter().filter(|r| r.enabled).collect();
    assert_eq!(compiled.rules.len(), enabled.len());

    let input = sample_input();
    let evaluation = compiled.evaluate(&input.context(&compiled.uses));
    let mut seen = vec![0u8; compiled.rules.len()];
    for &i in evaluation
        .hits
        .iter()
        .chain(evaluation.faults.iter().map(|(i, _)| i))
    {
        seen[i] += 1;
    }
    assert!(
        seen.iter().all(|&n| n <= 1),
        "a rule reported twice: {seen:?}"
    );

    // Each rule alone decides as it does among the others.
    for (index, rule) in enabled.iter().enumerate() {
        let mut alone = set.clone();
        alone.rules = vec![(*rule).clone()];
        let alone = compile(&alone, 1).expect("a rule of a compiled set compiles alone");
        let own = alone.evaluate(&input.context(&alone.uses));
        let hit_together = evaluation.hits.contains(&index);
        let fault_together = evaluation.faults.iter().any(|(i, _)| *i == index);
        assert_eq!(
            (own.hits == [0], !own.faults.is_empty()),
            (hit_together, fault_together),
            "rule {:?} alone: {own:?}; together: {evaluation:?}",
            rule.expression
        );
    }

    let outcome = decide(&compiled, &input);
    assert!(
        (0.0..=1.0).contains(&outcome.risk_score),
        "{}",
        outcome.risk_score
    );
    assert_eq!(outcome.rules_version, 1);
});
