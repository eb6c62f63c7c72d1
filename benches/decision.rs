//! The decision core alone: reading the transaction (validation, card-number
//! scrubbing, BIN lookup), assembling the features, building the rules'
//! context and running the default rule pack. No I/O: the device signals,
//! velocity counters and customer profile are given, as the endpoint would
//! have fetched them.
//!
//! ```text
//! cargo bench --bench decision
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use riskgate::decision::rules::{compile, default_rule_set};
use riskgate::decision::DeviceSignals;
use riskgate::decision::{self, CustomerInput, DeviceEvidence, DeviceSource};
use riskgate::decision::{VelocitySnapshot, WindowCounts};
use serde_json::{json, Map, Value};

fn payload_body() -> Map<String, Value> {
    let Value::Object(body) = json!({
        "request_id": "1708102555327.NLOjmg", "subscriber_id": "12",
        "payload": {"transaction_amount": 499.99, "currency": "USD", "bin": "411111",
                    "last4": "1111", "user_id": "user-42", "session_id": "sess-42",
                    "external_transaction_number": "order-1001",
                    "email": "jane@example.com", "ip_address": "203.0.113.7",
                    "billing_country": "US", "shipping_country": "US"}
    }) else {
        unreachable!()
    };
    body
}

fn gateway_body() -> Map<String, Value> {
    let event: Value = serde_json::from_str(include_str!(
        "../fixtures/gateways/stripe/event_charge_succeeded.json"
    ))
    .unwrap();
    let Value::Object(body) = json!({
        "request_id": "1708102555327.NLOjmg", "subscriber_id": "12",
        "gateway_event": event, "payload": {"user_id": "user-42"}
    }) else {
        unreachable!()
    };
    body
}

fn signals() -> DeviceSignals {
    DeviceSignals {
        visitor_id: Some("Ibk1527CUFmcnjLwIs4A9".into()),
        confidence: Some(0.97),
        bot: Some("not_detected".into()),
        vpn: Some(false),
        proxy: Some(true),
        ip_address: Some("203.0.113.7".into()),
        ip_country: Some("US".into()),
        ip_datacenter: Some(true),
        ..Default::default()
    }
}

fn device(signals: &DeviceSignals) -> DeviceEvidence<'_> {
    DeviceEvidence {
        request_id: "1708102555327.NLOjmg",
        provider: "fingerprint",
        status: "ready",
        signals: Some(signals),
        source: DeviceSource::Request,
    }
}

fn velocity() -> VelocitySnapshot {
    let c = WindowCounts {
        count_5m: 2,
        amount_5m: 60_000,
        count_1h: 3,
        amount_1h: 90_000,
        count_24h: 7,
        amount_24h: 210_000,
    };
    VelocitySnapshot {
        user: Some(c),
        card: Some(c),
        device: Some(c),
        ip: Some(c),
        distinct_cards_per_device: Some(1),
        distinct_cards_per_user: Some(2),
        distinct_devices_per_user: Some(1),
    }
}

fn customer() -> CustomerInput {
    CustomerInput {
        known: true,
        age_days: 41.5,
        decisions: 12,
        allows: 11,
        reviews: 1,
        amount_count: 12,
        avg_amount: 120.0,
        max_amount: 480.0,
        devices: 2,
        cards: 2,
        known_device: true,
        known_card: true,
        ..CustomerInput::default()
    }
}

fn bench(c: &mut Criterion) {
    riskgate::decision::reference::init().unwrap();
    let rules = compile(default_rule_set().unwrap(), 0).unwrap();
    let signals = signals();
    let (device, velocity) = (device(&signals), velocity());
    let payload = payload_body();
    let gateway = gateway_body();

    let mut group = c.benchmark_group("decision");
    group.bench_function("payload: parse + BIN + features + default pack", |b| {
        b.iter_batched(
            || payload.clone(),
            |body| {
                let tx = decision::parse(body).unwrap();
                let input = decision::build_input(tx, Some(&device), &velocity, customer());
                black_box(decision::decide(&rules, &input))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function(
        "stripe charge event: extract + BIN + features + default pack",
        |b| {
            b.iter_batched(
                || gateway.clone(),
                |body| {
                    let tx = decision::parse(body).unwrap();
                    let input = decision::build_input(tx, Some(&device), &velocity, customer());
                    black_box(decision::decide(&rules, &input))
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
    let tx = decision::parse(payload.clone()).unwrap();
    let input = decision::build_input(tx, Some(&device), &velocity, customer());
    group.bench_function("rules only: context + default pack", |b| {
        b.iter(|| black_box(decision::decide(&rules, black_box(&input))))
    });
    // Lists: one of each kind, 10 000 entries each (IP ranges of 8 prefix
    // lengths), matched as the score path does, in memory.
    let mut index = riskgate::decision::lists::ListIndex::new();
    let kinds = [
        "email",
        "email_domain",
        "bin",
        "card",
        "device",
        "user",
        "country",
    ];
    for kind in kinds {
        let values: Vec<String> = (0..10_000).map(|i| format!("{kind}-{i}")).collect();
        index.add_list(kind, kind, values.iter().map(|v| (v.as_str(), None)));
    }
    let nets: Vec<String> = (0..10_000)
        .map(|i| format!("10.{}.{}.0/{}", i % 256, i / 256, 17 + i % 8))
        .collect();
    index.add_list("nets", "ip", nets.iter().map(|v| (v.as_str(), None)));
    group.bench_function("lists only: 8 lists of 10 000 entries", |b| {
        b.iter(|| black_box(index.hits(black_box(&input), 0)))
    });
    let mut with_lists = default_rule_set().unwrap().clone();
    let Value::Object(extra) = json!({"rules": [
        {"name": "Stolen card", "expression": "lists.card", "weight": 0.5, "action": "block"},
        {"name": "Trusted", "expression": "lists.user", "weight": 0, "action": "allow", "final": true},
        {"name": "Sanctioned", "expression": "lists.country", "weight": 0, "action": "block", "final": true}
    ]}) else {
        unreachable!()
    };
    with_lists.rules.extend(
        riskgate::decision::rules::parse_rule_set(&extra)
            .unwrap()
            .rules,
    );
    let with_lists = compile(&with_lists, 1).unwrap();
    assert!(with_lists.runs_directly());
    group.bench_function("rules only: default pack + 3 list rules", |b| {
        b.iter(|| black_box(decision::decide(&with_lists, black_box(&input))))
    });
    group.bench_function("context only (every feature)", |b| {
        b.iter(|| black_box(black_box(&input).to_variable()))
    });
    group.bench_function("context only (what the default pack reads)", |b| {
        b.iter(|| black_box(black_box(&input).context(&rules.uses)))
    });
    group.bench_function("parse only (validation, scrubbing, BIN lookup)", |b| {
        b.iter_batched(
            || payload.clone(),
            |body| black_box(decision::parse(body).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
