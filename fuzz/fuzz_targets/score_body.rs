//! A `POST /risk/bin/score` body, from its bytes to the decision, through the
//! same pure steps the service takes: `fields::parse_object`,
//! `decision::parse_request`, `build_input`, `decide` with the default pack.
//!
//! Invariants: a refused body is a 400 or 422 with a message (the types allow
//! nothing else; the message must not be empty nor hold a card number); an
//! accepted one yields an input and a result that serialize (what the service
//! stores: a failure there is its only 500), hold no card number in the clear,
//! read back as the velocity event they were counted as, and a score in
//! [0, 1] whose level and action follow the thresholds.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use riskgate::decision::rules::{compile, default_rule_set};
use riskgate::decision::{
    build_input, decide, parse_request, replay_event, velocity_event, Action, CompiledRuleSet,
    CustomerInput, DeviceEvidence, DeviceSignals, DeviceSource, RequestError, VelocitySnapshot,
    WindowCounts,
};
use riskgate::fields::parse_object;
use riskgate_fuzz::{clear_card_numbers, clear_in_text, clear_in_value};

static PACK: LazyLock<CompiledRuleSet> = LazyLock::new(|| {
    let set = default_rule_set().unwrap_or_else(|e| panic!("{e}"));
    compile(set, 0).unwrap_or_else(|e| panic!("{e}"))
});

fuzz_target!(|data: &[u8]| {
    // The first byte picks the request's circumstances; the rest is the body.
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let body = match parse_object(bytes) {
        Ok(body) => body,
        Err(err) => {
            assert!(err.0.starts_with("Invalid JSON"), "{err}");
            return;
        }
    };
    let fingerprint = flags & 1 == 1;
    let tx = match parse_request(body, fingerprint) {
        Ok(tx) => tx,
        Err(RequestError::Invalid(m) | RequestError::Unprocessable(m)) => {
            assert!(!m.trim().is_empty());
            assert!(
                clear_card_numbers(&m).is_empty(),
                "card number in error: {m}"
            );
            return;
        }
    };
    if fingerprint || tx.callback_url.is_some() {
        let canonical: serde_json::Value =
            serde_json::from_str(tx.fingerprint()).expect("the fingerprint is JSON");
        let clear = clear_in_value(&canonical);
        assert!(
            clear.is_empty(),
            "card numbers in the fingerprint: {clear:?}"
        );
    }
    let payload_subscriber_id = tx.payload_subscriber_id.clone();
    let exponent = tx.exponent;
    assert!(exponent <= 4, "exponent {exponent}");

    let signals = DeviceSignals {
        visitor_id: Some("v1".into()),
        confidence: Some(0.9),
        vpn: Some(flags & 4 == 4),
        ip_address: Some("198.51.100.7".into()),
        ip_country: Some("DE".into()),
        ..Default::default()
    };
    let evidence = DeviceEvidence {
        request_id: "fuzz",
        provider: "fingerprint",
        status: "ready",
        signals: Some(&signals),
        source: DeviceSource::Session,
    };
    let counts = WindowCounts {
        count_5m: 3,
        amount_5m: i64::from(flags) * 1000,
        count_1h: 9,
        amount_1h: 90_000,
        count_24h: 40,
        amount_24h: 4_000_000,
    };
    let velocity = if flags & 8 == 8 {
        VelocitySnapshot {
            user: Some(counts),
            card: Some(counts),
            device: None,
            ip: Some(counts),
            distinct_cards_per_device: Some(4),
            distinct_cards_per_user: None,
            distinct_devices_per_user: Some(2),
        }
    } else {
        VelocitySnapshot::default()
    };
    let customer = CustomerInput {
        known: flags & 16 == 16,
        age_days: 2.0,
        decisions: 5,
        ..CustomerInput::default()
    };
    let device = (flags & 2 == 2).then_some(&evidence);
    let input = build_input(tx, device, &velocity, customer);
    let outcome = decide(&PACK, &input);

    assert!(
        (0.0..=1.0).contains(&outcome.risk_score),
        "score {}",
        outcome.risk_score
    );
    let level_action = match outcome.risk_level.as_str() {
        "low" => {
            assert!(outcome.risk_score < PACK.review_threshold);
            Action::Allow
        }
        "medium" => {
            assert!(outcome.risk_score >= PACK.review_threshold);
            assert!(outcome.risk_score < PACK.block_threshold);
            Action::Review
        }
        "high" => {
            assert!(outcome.risk_score >= PACK.block_threshold);
            Action::Block
        }
        other => panic!("risk_level {other}"),
    };
    assert!(outcome.action >= level_action);
    for hit in &outcome.rule_hits {
        if let Some(forced) = hit.action {
            assert!(outcome.action >= forced, "{hit:?} but {:?}", outcome.action);
        }
    }

    // What the service stores; its only 500 on this path is a failure here.
    let input_json = serde_json::to_string(&input).expect("the input serializes");
    let result_json = serde_json::to_string(&outcome).expect("the outcome serializes");
    for json in [&input_json, &result_json] {
        let value: serde_json::Value = serde_json::from_str(json).expect("stored JSON parses");
        let clear = clear_in_text(&value);
        assert!(clear.is_empty(), "card numbers stored: {clear:?}");
    }
    if let Some(claim) = payload_subscriber_id {
        // Checked against the key's subscriber like the top-level one: reads
        // as an id or is refused with a 400, never anything else.
        let _ = riskgate::fields::subscriber_id(&claim, "subscriber_id");
    }
    let _ = riskgate::fields::subscriber_id(&input.subscriber_id, "subscriber_id");

    // A stored input reads back as the event it was counted as (the velocity
    // rebuild after a restart relies on it).
    let scored = velocity_event(
        &input,
        input.device.visitor_id.as_deref(),
        input.device.ip_address.as_deref(),
        "dec_fuzz".into(),
    );
    let replayed = replay_event(&input_json, "dec_fuzz".into()).expect("stored input reads back");
    assert_eq!(replayed, scored);
});
