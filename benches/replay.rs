//! Backtest replay in the pure core, per decision: a stored decision's
//! `input` read back and decided by a candidate rule set, and the outcome
//! counted against the live action and the label. No I/O; the end-to-end
//! figure, reading from the store included, is `examples/bench_backtest.rs`.
//!
//! ```text
//! cargo bench --bench replay
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use riskgate::decision::replay::{Replay, StoredDecision, Truth};
use riskgate::decision::rules::{compile, default_rule_set, CompiledRuleSet, Rule};
use riskgate::decision::{self, Input};
use rust_decimal::Decimal;

/// Stored decisions as scoring writes them: varied amounts, cards,
/// velocity and customers, decided by the default pack.
fn stored(n: usize) -> Vec<(String, String, String, Option<Truth>)> {
    let live = compile(default_rule_set().unwrap(), 0).unwrap();
    (0..n)
        .map(|i| {
            let mut input: Input = decision::sample_input();
            input.request_id = format!("req-{i}");
            input.amount = Decimal::new(1_000 + (i as i64 * 7_919) % 400_000, 2);
            input.transaction_amount = input.amount;
            input.user_id = Some(format!("user-{}", i % 300));
            input.velocity.card.count_1h = (i % 7) as u64;
            input.velocity.card.count_24h = (i % 13) as u64;
            input.customer.age_days = (i % 90) as f64;
            input.device.vpn = i % 11 == 0;
            let outcome = decision::decide(&live, &input);
            let truth = match i % 20 {
                0 => Some(Truth::Fraud),
                1..=4 => Some(Truth::Good),
                _ => None,
            };
            (
                serde_json::to_string(&input).unwrap(),
                serde_json::to_string(&outcome).unwrap(),
                outcome.action.as_str().to_owned(),
                truth,
            )
        })
        .collect()
}

/// The default pack with one stricter rule: what a backtest typically tries.
fn candidate() -> CompiledRuleSet {
    let mut set = default_rule_set().unwrap().clone();
    set.rules.push(Rule {
        name: "Card velocity".into(),
        expression: "velocity.card.count_1h >= 3 and amount > 500".into(),
        weight: 0.4,
        action: Some(decision::Action::Review),
        is_final: false,
        description: None,
        enabled: true,
    });
    compile(&set, 9).unwrap()
}

fn bench(c: &mut Criterion) {
    riskgate::decision::reference::init().unwrap();
    let decisions = stored(1_000);
    let rules = candidate();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(decisions.len() as u64));
    group.bench_function(
        "1000 stored decisions: read input + default pack + 1 rule + tally",
        |b| {
            b.iter(|| {
                let mut replay = Replay::new(&rules);
                for (i, (input, result, action, truth)) in decisions.iter().enumerate() {
                    let id = if i == 0 { "dec_first" } else { "dec_other" };
                    replay.add(
                        &rules,
                        &StoredDecision {
                            id,
                            input,
                            result,
                            action,
                            truth: *truth,
                        },
                    );
                }
                black_box(replay.finish())
            })
        },
    );
    group.bench_function("1000 stored inputs: read back only", |b| {
        b.iter(|| {
            for (input, ..) in &decisions {
                black_box(serde_json::from_str::<Input>(input).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
