//! FingerprintIQ `GET /v1/events/{requestId}` → [`DeviceSignals`].
//!
//! The event carries top-level scores (`confidence`, `botProbability`,
//! `suspectScore`), boolean `verdicts.*.result` and the server-side network
//! signals (`signals.server.asn`, `.geo`). The smaller
//! `GET /v1/identify/{visitorId}` answer (visitor id, confidence, bot
//! probability, `ipLocation`) is read by the same function.
//!
//! Mapping:
//!
//! | DeviceSignals | FingerprintIQ field |
//! |---|---|
//! | `visitor_id` | `visitorId` |
//! | `confidence` | `confidence` (0–1) |
//! | `bot_probability` | `botProbability`, else `verdicts.bot.probability` |
//! | `bot` | `verdicts.bot.result` or `verdicts.headless.result`: any true → `bad`, both known false → `not_detected` (FingerprintIQ does not tell good bots apart) |
//! | `bot_type` | `headless` when `verdicts.headless.result` is true |
//! | `vpn` | `verdicts.vpn.result`, else `signals.server.vpnDetection.verdict` (`detected` / `not_detected`) |
//! | `tor` / `proxy` / `incognito` / `tampering` | `verdicts.{tor,proxy,incognito,tampering}.result` |
//! | `virtual_machine` | `verdicts.virtualMachine.result` |
//! | `ip_blocklisted` | `verdicts.ipBlocklist.result` |
//! | `ip_address` | `ip` |
//! | `ip_country` | `signals.server.geo.country`, else `ipLocation.country` (uppercased) |
//! | `ip_asn` / `ip_asn_name` | `signals.server.asn.asn` / `.org` |
//! | `ip_datacenter` | `signals.server.asn.isDatacenter`, else true when `.category` says `DATACENTER`/`HOSTING` |
//! | `suspect_score` | `suspectScore`: a value ≤ 1 is taken as a fraction, a larger one as a 0–100 score (÷ 100, capped at 1); the page does not state the scale |
//! | `marked_suspect` | `suspect` (the merchant's own flag) |
//! | `velocity.*` | `verdicts.velocity.{events,distinctIp,distinctCountry}.{5m,1h,24h}` |
//! | `event_time` | `timestamp` (Unix ms) |
//!
//! Tolerant like the other adapters: unknown fields and wrongly typed ones
//! are ignored; only a non-object or a body with no visitor, request id or
//! verdicts is a [`MappingError`].

use serde_json::Value;

use super::errors::MappingError;
use super::signals::pick::{self, any, at, flag, int, number, text, unit};
use super::{DeviceSignals, ProviderVelocity};

const NAME: &str = "fingerprintiq";

/// Maps an event (or identify) answer.
pub fn parse_event(body: &[u8]) -> Result<DeviceSignals, MappingError> {
    let root = pick::object(body, NAME)?;
    let recognizable = ["visitorId", "requestId"]
        .iter()
        .any(|k| root.get(*k).is_some_and(Value::is_string))
        || root.get("verdicts").is_some_and(Value::is_object);
    if !recognizable {
        return Err(if root.get("error").is_some() {
            MappingError("fingerprintiq answered an error body instead of an event".into())
        } else {
            MappingError("fingerprintiq answer holds no event".into())
        });
    }

    let verdict = |name: &str| flag(&root, &["verdicts", name, "result"]);
    let headless = verdict("headless");
    let bot = any(&[verdict("bot"), headless]).map(|b| if b { "bad" } else { "not_detected" });
    let server = at(&root, &["signals", "server"]).filter(|v| v.is_object());
    let server_text = |path: &[&str]| server.and_then(|v| text(v, path));
    let vpn_detection = server_text(&["vpnDetection", "verdict"]).and_then(|v| {
        match v.to_ascii_lowercase().as_str() {
            "detected" => Some(true),
            "not_detected" => Some(false),
            _ => None,
        }
    });
    let category_datacenter = server_text(&["asn", "category"]).and_then(|c| {
        let c = c.to_ascii_uppercase();
        (c.contains("DATACENTER") || c.contains("HOSTING")).then_some(true)
    });

    Ok(DeviceSignals {
        visitor_id: text(&root, &["visitorId"]),
        confidence: unit(&root, &["confidence"]),
        bot_probability: unit(&root, &["botProbability"])
            .or_else(|| unit(&root, &["verdicts", "bot", "probability"])),
        bot: bot.map(str::to_owned),
        bot_type: (headless == Some(true)).then(|| "headless".to_owned()),
        vpn: verdict("vpn").or(vpn_detection),
        tor: verdict("tor"),
        proxy: verdict("proxy"),
        incognito: verdict("incognito"),
        tampering: verdict("tampering"),
        virtual_machine: verdict("virtualMachine"),
        ip_blocklisted: verdict("ipBlocklist"),
        ip_address: text(&root, &["ip"]),
        ip_country: server_text(&["geo", "country"])
            .or_else(|| text(&root, &["ipLocation", "country"]))
            .map(|c| c.to_ascii_uppercase()),
        ip_asn: server_text(&["asn", "asn"]),
        ip_asn_name: server_text(&["asn", "org"]),
        ip_datacenter: server
            .and_then(|v| flag(v, &["asn", "isDatacenter"]))
            .or(category_datacenter),
        suspect_score: number(&root, &["suspectScore"]).map(normalize_suspect_score),
        marked_suspect: flag(&root, &["suspect"]),
        velocity: velocity(&root),
        event_time: int(&root, &["timestamp"]),
        ..Default::default()
    })
}

/// FingerprintIQ's suspect score onto [0, 1] (see the module table).
fn normalize_suspect_score(raw: f64) -> f64 {
    if raw <= 1.0 {
        raw.max(0.0)
    } else {
        (raw / 100.0).min(1.0)
    }
}

fn velocity(root: &Value) -> Option<ProviderVelocity> {
    let count = |name: &str, window: &str| int(root, &["verdicts", "velocity", name, window]);
    let out = ProviderVelocity {
        events_5m: count("events", "5m"),
        events_1h: count("events", "1h"),
        events_24h: count("events", "24h"),
        distinct_ip_1h: count("distinctIp", "1h"),
        distinct_ip_24h: count("distinctIp", "24h"),
        distinct_country_1h: count("distinctCountry", "1h"),
        distinct_country_24h: count("distinctCountry", "24h"),
    };
    (out != ProviderVelocity::default()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/fixtures/providers/fingerprintiq/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn documented_event() {
        let s = parse_event(&fixture("get_event_200.json")).unwrap();
        assert_eq!(
            s.visitor_id.as_deref(),
            Some("iq_01hns3k6tez83695a6t714s6n1")
        );
        assert_eq!(s.confidence, Some(0.97));
        assert_eq!(s.bot_probability, Some(0.05));
        assert_eq!(s.bot.as_deref(), Some("not_detected"));
        assert_eq!(s.bot_type, None);
        assert_eq!(s.vpn, Some(false));
        assert_eq!(s.tor, Some(false));
        assert_eq!(s.proxy, Some(false));
        assert_eq!(s.incognito, Some(false));
        assert_eq!(s.tampering, Some(false));
        assert_eq!(s.virtual_machine, Some(false));
        assert_eq!(s.ip_blocklisted, Some(false));
        assert_eq!(s.ip_address.as_deref(), Some("203.0.113.42"));
        assert_eq!(s.ip_country.as_deref(), Some("US"));
        assert_eq!(s.ip_asn.as_deref(), Some("7922"));
        assert_eq!(s.ip_asn_name.as_deref(), Some("Comcast"));
        assert_eq!(s.ip_datacenter, Some(false));
        assert_eq!(s.suspect_score, Some(0.0));
        assert_eq!(s.marked_suspect, Some(false));
        assert_eq!(s.event_time, Some(1_712_000_003_000));
        assert_eq!(
            s.velocity,
            Some(ProviderVelocity {
                events_5m: Some(1),
                events_1h: Some(3),
                events_24h: Some(15),
                distinct_ip_1h: Some(1),
                distinct_ip_24h: Some(2),
                distinct_country_1h: Some(1),
                distinct_country_24h: Some(1),
            })
        );
        assert_eq!(s.provider_verdict, None);
        assert!(s.partial_errors.is_empty());
    }

    #[test]
    fn identify_sdk_mock_with_fewer_fields() {
        let s = parse_event(&fixture("identify_lookup_200_sdk_test.json")).unwrap();
        assert_eq!(s.visitor_id.as_deref(), Some("iq_abc123"));
        assert_eq!(s.confidence, Some(0.97));
        assert_eq!(s.bot_probability, Some(0.02));
        assert_eq!(s.ip_country.as_deref(), Some("US"));
        assert_eq!(s.bot, None);
        assert_eq!(s.vpn, None);
        assert_eq!(s.velocity, None);
        // `lastSeen` is the visitor's, not an event's time.
        assert_eq!(s.event_time, None);
    }

    #[test]
    fn risky_event_and_unknown_values() {
        let body = br#"{
            "requestId": "req_x", "visitorId": "iq_x", "confidence": 0.3, "suspectScore": 55,
            "verdicts": {"bot": {"result": false}, "headless": {"result": true},
                         "vpn": {"confidence": 0.9}, "tor": {"result": true}, "newThing": {"result": true}},
            "signals": {"server": {"asn": {"asn": "AS16509", "category": "HOSTING_PROVIDER"},
                                   "vpnDetection": {"verdict": "detected"}, "geo": {"country": "de"}}}
        }"#;
        let s = parse_event(body).unwrap();
        assert_eq!(s.bot.as_deref(), Some("bad"));
        assert_eq!(s.bot_type.as_deref(), Some("headless"));
        assert_eq!(s.vpn, Some(true), "from the server-side vpnDetection");
        assert_eq!(s.tor, Some(true));
        assert_eq!(s.ip_datacenter, Some(true));
        assert_eq!(s.ip_asn.as_deref(), Some("AS16509"));
        assert_eq!(s.ip_country.as_deref(), Some("DE"));
        assert_eq!(s.suspect_score, Some(0.55));
        assert_eq!(s.confidence, Some(0.3));
    }

    #[test]
    fn suspect_score_scale() {
        assert_eq!(normalize_suspect_score(0.0), 0.0);
        assert_eq!(normalize_suspect_score(0.4), 0.4);
        assert_eq!(normalize_suspect_score(40.0), 0.4);
        assert_eq!(normalize_suspect_score(250.0), 1.0);
        assert_eq!(normalize_suspect_score(-3.0), 0.0);
    }

    #[test]
    fn error_and_foreign_bodies_are_mapping_errors() {
        let err = parse_event(&fixture("error_404_event_not_found.json")).unwrap_err();
        assert!(err.0.contains("error body"), "{err}");
        for body in [&b"<html>"[..], b"[1]", b"{}", br#"{"visitorId": 5}"#] {
            assert!(
                parse_event(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
