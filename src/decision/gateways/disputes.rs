//! Disputes and fraud reports from payment gateways (`POST
//! /risk/feedback/gateway`): which payment they are about, and whether they
//! report a chargeback or fraud.
//!
//! | gateway | accepted | kind | payment named by |
//! |---|---|---|---|
//! | Stripe | `charge.dispute.created` event, or a bare `dispute` object | chargeback | `charge`, `payment_intent` |
//! | Stripe | `radar.early_fraud_warning.*` event, or a bare `radar.early_fraud_warning` object | fraud | `charge`, `payment_intent` |
//! | Adyen | Standard webhook (`notificationItems`) with a `CHARGEBACK` item, or that item bare | chargeback | `originalReference` (the payment's pspReference), `merchantReference` |
//!
//! `charge` and `payment_intent` may be ids or expanded objects (their `id`
//! is used). A webhook with several `CHARGEBACK` items is read for its first.
//!
//! Pure: no I/O. The input is whatever a caller sent: nothing here panics or
//! indexes without looking.

use serde_json::{Map, Value};

use super::{json_kind, push_reference, reference, GatewayError};

/// What the gateway reports about a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A dispute or chargeback: the cardholder's bank took the money back.
    Chargeback,
    /// An issuer's fraud report (Stripe's early fraud warning), before any
    /// dispute.
    Fraud,
}

/// A recognized dispute or fraud report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `stripe` or `adyen`.
    pub gateway: &'static str,
    pub kind: ReportKind,
    /// What was sent: `charge.dispute.created`, `dispute`,
    /// `radar.early_fraud_warning.created`, `radar.early_fraud_warning`,
    /// `CHARGEBACK`.
    pub event: String,
    /// The report's own id: Stripe's `dp_…` or `issfr_…`, the pspReference of
    /// Adyen's chargeback notification.
    pub id: Option<String>,
    /// The payment's references, most specific first; never empty.
    pub references: Vec<String>,
    /// Why, as the gateway says it: Stripe's `reason` or `fraud_type`, Adyen's
    /// chargeback reason code and text.
    pub reason: Option<String>,
}

const EXPECTED: &str = "expected a Stripe charge.dispute.created or radar.early_fraud_warning \
                        event, a Stripe dispute or radar.early_fraud_warning object, or an Adyen \
                        CHARGEBACK notification";

fn unrecognized(got: impl std::fmt::Display) -> GatewayError {
    GatewayError(format!("unrecognized event: {EXPECTED}; got {got}"))
}

/// Recognizes a dispute or fraud report and the payment it names.
pub fn parse(event: &Value) -> Result<Report, GatewayError> {
    let Value::Object(obj) = event else {
        return Err(unrecognized(json_kind(event)));
    };
    if obj.contains_key("notificationItems")
        || obj.contains_key("NotificationRequestItem")
        || obj.contains_key("eventCode")
    {
        return adyen(obj);
    }
    match obj.get("object").and_then(Value::as_str) {
        Some("event") => stripe_event(obj),
        Some(kind @ ("dispute" | "radar.early_fraud_warning")) => stripe_object(obj, kind, kind),
        Some(other) => Err(unrecognized(format_args!(
            "a Stripe {:?} object",
            clip(other)
        ))),
        None => Err(unrecognized(format_args!(
            "an object with keys [{}]",
            keys(obj)
        ))),
    }
}

fn stripe_event(obj: &Map<String, Value>) -> Result<Report, GatewayError> {
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let data = super::path(obj, &["data", "object"]).and_then(Value::as_object);
    let object = data.and_then(|d| d.get("object")).and_then(Value::as_str);
    let expected_object = if kind == "charge.dispute.created" {
        "dispute"
    } else if kind.starts_with("radar.early_fraud_warning.") {
        "radar.early_fraud_warning"
    } else if kind.is_empty() {
        return Err(unrecognized("a Stripe event without a type"));
    } else {
        return Err(unrecognized(format_args!(
            "a Stripe {:?} event",
            clip(kind)
        )));
    };
    match data {
        Some(data) if object == Some(expected_object) => {
            let mut report = stripe_object(data, expected_object, kind)?;
            // The event's id when the object has none (it always has one).
            if report.id.is_none() {
                report.id = obj.get("id").and_then(reference);
            }
            Ok(report)
        }
        _ => Err(GatewayError(format!(
            "Stripe {} event without a {expected_object} in data.object: {EXPECTED}",
            clip(kind)
        ))),
    }
}

/// A Stripe `dispute` or `radar.early_fraud_warning`.
fn stripe_object(
    obj: &Map<String, Value>,
    kind: &str,
    event: &str,
) -> Result<Report, GatewayError> {
    let mut references = Vec::new();
    for field in ["charge", "payment_intent"] {
        // An id, or the expanded object (`expand[]=charge`).
        let named = obj.get(field).and_then(|v| match v {
            Value::Object(expanded) => expanded.get("id").and_then(reference),
            other => reference(other),
        });
        push_reference(&mut references, named);
    }
    if references.is_empty() {
        return Err(GatewayError(format!(
            "Stripe {kind} names no payment: expected its \"charge\" or \"payment_intent\" id"
        )));
    }
    let (report, reason) = if kind == "dispute" {
        (ReportKind::Chargeback, "reason")
    } else {
        (ReportKind::Fraud, "fraud_type")
    };
    Ok(Report {
        gateway: "stripe",
        kind: report,
        event: event.to_owned(),
        id: obj.get("id").and_then(reference),
        references,
        reason: obj.get(reason).and_then(reference),
    })
}

fn adyen(obj: &Map<String, Value>) -> Result<Report, GatewayError> {
    let item = if let Some(items) = obj.get("notificationItems") {
        let Some(items) = items.as_array() else {
            return Err(GatewayError(format!(
                "Adyen notificationItems is {}: expected an array of \
                 {{\"NotificationRequestItem\": {{…}}}}",
                json_kind(items)
            )));
        };
        let items: Vec<&Map<String, Value>> = items
            .iter()
            .filter_map(|i| i.get("NotificationRequestItem"))
            .filter_map(Value::as_object)
            .collect();
        match items.iter().find(|i| event_code(i) == Some("CHARGEBACK")) {
            Some(item) => *item,
            None => {
                let codes: Vec<String> = items
                    .iter()
                    .take(8)
                    .map(|i| format!("{:?}", clip(event_code(i).unwrap_or(""))))
                    .collect();
                return Err(unrecognized(format_args!(
                    "an Adyen notification with eventCode [{}]",
                    codes.join(", ")
                )));
            }
        }
    } else if let Some(item) = obj.get("NotificationRequestItem") {
        item.as_object().ok_or_else(|| {
            GatewayError(format!(
                "Adyen NotificationRequestItem is {}: expected an object",
                json_kind(item)
            ))
        })?
    } else {
        obj
    };
    match event_code(item) {
        Some("CHARGEBACK") => {}
        Some(other) => {
            return Err(unrecognized(format_args!(
                "an Adyen {:?} notification",
                clip(other)
            )))
        }
        None => return Err(unrecognized("an Adyen notification item without eventCode")),
    }
    let mut references = Vec::new();
    push_reference(
        &mut references,
        item.get("originalReference").and_then(reference),
    );
    push_reference(
        &mut references,
        item.get("merchantReference").and_then(reference),
    );
    if references.is_empty() {
        return Err(GatewayError(
            "Adyen CHARGEBACK names no payment: expected its \"originalReference\" (the \
             payment's pspReference) or \"merchantReference\""
                .to_owned(),
        ));
    }
    let code = super::path(item, &["additionalData", "chargebackReasonCode"]).and_then(reference);
    let text = item.get("reason").and_then(reference);
    let reason = match (code, text) {
        (Some(code), Some(text)) => Some(format!("{code} {text}")),
        (code, text) => code.or(text),
    };
    Ok(Report {
        gateway: "adyen",
        kind: ReportKind::Chargeback,
        event: "CHARGEBACK".to_owned(),
        id: item.get("pspReference").and_then(reference),
        references,
        reason,
    })
}

fn event_code(item: &Map<String, Value>) -> Option<&str> {
    item.get("eventCode").and_then(Value::as_str)
}

/// At most 64 characters of a caller's string, for a message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn keys(obj: &Map<String, Value>) -> String {
    let mut keys: Vec<String> = obj.keys().take(12).map(|k| clip(k)).collect();
    if obj.len() > keys.len() {
        keys.push("…".into());
    }
    keys.join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::MAX_REFERENCE;
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/fixtures/gateways/disputes/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn every_dispute_fixture_names_its_payment() {
        let cases = [
            (
                "event_charge_dispute_created.json",
                "stripe",
                ReportKind::Chargeback,
                "charge.dispute.created",
                Some("dp_00000000000000"),
                vec!["ch_00000000000000"],
            ),
            (
                "stripe_dispute_object_openapi.json",
                "stripe",
                ReportKind::Chargeback,
                "dispute",
                Some("dp_1Pgc71B7WZ01zgkWMevJiAUx"),
                vec!["ch_1PgafuB7WZ01zgkWXYmPNZs8"],
            ),
            (
                "stripe_early_fraud_warning_object_openapi.json",
                "stripe",
                ReportKind::Fraud,
                "radar.early_fraud_warning",
                Some("issfr_1Pgc79B7WZ01zgkWxwDzEIPX"),
                vec!["ch_1234"],
            ),
            (
                "adyen_notification_chargeback.json",
                "adyen",
                ReportKind::Chargeback,
                "CHARGEBACK",
                Some("9915555555555555"),
                vec!["9913333333333333", "XXXXXXXXXX"],
            ),
        ];
        let dir = format!("{}/fixtures/gateways/disputes", env!("CARGO_MANIFEST_DIR"));
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, cases.len(), "every fixture in {dir} has a case");
        for (file, gateway, kind, event, id, refs) in cases {
            let report = parse(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                (
                    report.gateway,
                    report.kind,
                    report.event.as_str(),
                    report.id.as_deref()
                ),
                (gateway, kind, event, id),
                "{file}"
            );
            assert_eq!(report.references, refs, "{file}");
        }
        let adyen = parse(&fixture("adyen_notification_chargeback.json")).unwrap();
        assert_eq!(
            adyen.reason.as_deref(),
            Some("10.4 Other Fraud-Card Absent Environment")
        );
    }

    #[test]
    fn an_early_fraud_warning_event_and_expanded_ids_are_read() {
        let efw = fixture("stripe_early_fraud_warning_object_openapi.json");
        let event = json!({"object": "event", "id": "evt_1", "type": "radar.early_fraud_warning.created",
                           "data": {"object": efw}});
        let report = parse(&event).unwrap();
        assert_eq!(report.kind, ReportKind::Fraud);
        assert_eq!(report.event, "radar.early_fraud_warning.created");
        assert_eq!(report.reason.as_deref(), Some("misc"));
        let expanded = json!({"object": "dispute", "id": "dp_1",
                              "charge": {"id": "ch_9", "object": "charge"}, "payment_intent": "pi_9"});
        assert_eq!(parse(&expanded).unwrap().references, ["ch_9", "pi_9"]);
    }

    #[test]
    fn what_is_not_a_dispute_is_refused_saying_what_was_expected() {
        let payment = {
            let path = format!(
                "{}/fixtures/gateways/stripe/event_charge_succeeded.json",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let cases: Vec<(Value, &str)> = vec![
            (payment, "\"charge.succeeded\" event"),
            (
                json!({"object": "charge", "id": "ch_1"}),
                "\"charge\" object",
            ),
            (json!({"hello": 1}), "keys [hello]"),
            (json!([1, 2]), "got an array"),
            (json!("dispute"), "got a string"),
            (
                json!({"notificationItems": [{"NotificationRequestItem": {"eventCode": "AUTHORISATION"}}]}),
                "eventCode [\"AUTHORISATION\"]",
            ),
            (
                json!({"eventCode": "REFUND", "pspReference": "1"}),
                "\"REFUND\" notification",
            ),
            (
                json!({"object": "event", "type": "charge.dispute.created", "data": {"object": {"object": "charge"}}}),
                "without a dispute",
            ),
            (
                json!({"object": "dispute", "id": "dp_1"}),
                "names no payment",
            ),
            (
                json!({"object": "dispute", "charge": {"object": "charge"}, "payment_intent": null}),
                "names no payment",
            ),
            (
                json!({"eventCode": "CHARGEBACK", "originalReference": "", "merchantReference": 1.5}),
                "names no payment",
            ),
            (json!({"notificationItems": {"a": 1}}), "expected an array"),
            (
                json!({"NotificationRequestItem": [1]}),
                "expected an object",
            ),
            (
                json!({"object": "event", "data": {"object": {}}}),
                "without a type",
            ),
        ];
        for (event, says) in cases {
            let err = parse(&event).unwrap_err();
            assert!(err.0.contains(says), "{event}: {err}");
        }
    }

    #[test]
    fn a_reference_is_bounded_and_printable() {
        let long = "x".repeat(MAX_REFERENCE + 1);
        for bad in [
            json!(long),
            json!("a\nb"),
            json!("  "),
            json!(true),
            json!(1.5),
        ] {
            let event = json!({"object": "dispute", "charge": bad});
            assert!(parse(&event).is_err(), "{event}");
        }
        let event = json!({"object": "dispute", "charge": " ch_1 ", "payment_intent": 42});
        assert_eq!(parse(&event).unwrap().references, ["ch_1", "42"]);
    }
}
