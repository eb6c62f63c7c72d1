//! Fingerprint (FingerprintJS Pro) Server API answers → [`DeviceSignals`].
//!
//! - v4 `GET /v4/events/{event_id}`: one flat snake_case event
//!   (`identification.visitor_id`, `bot`, `vpn`, `ip_info.v4…`, `velocity`, …).
//!   The v4 webhook body is the same event.
//! - v3 `GET /events/{request_id}`: `{"products": {"<product>": {"data": …}}}`
//!   where any product may carry `{"error": {"code", "message"}}` instead of
//!   `data` although the call answered 200. What is present is mapped; each
//!   product error is listed in [`DeviceSignals::partial_errors`] as
//!   `"<product>: <code>"`. The v3 webhook body (the same products inlined at
//!   the top level, without `data`) is read too.
//!
//! Parsing is deliberately tolerant: fields are picked from a
//! [`serde_json::Value`], so unknown fields, unknown enum values and
//! malformed fields we do not use (the SDKs' `linkedId`-is-an-object negative
//! test) never fail a mapping. Only a body that is not a JSON object, or one
//! with nothing that looks like an event, is a [`MappingError`]. A body of
//! the other version's shape is read as that version (a subscriber set to
//! the wrong `api_version` still gets signals).
//!
//! Mapping (v4 field / v3 product field → `DeviceSignals`):
//!
//! | DeviceSignals | v4 | v3 |
//! |---|---|---|
//! | `visitor_id` | `identification.visitor_id` | `identification.data.visitorId` |
//! | `confidence` | `identification.confidence.score` | `identification.data.confidence.score` |
//! | `bot` | `bot` (`not_detected`/`good`/`bad`, others kept) | `botd.data.bot.result` (`notDetected` → `not_detected`) |
//! | `bot_type` | `bot_type`, else `bot_info.name` | `botd.data.bot.type` (snake_cased) |
//! | `vpn` / `proxy` | `vpn` / `proxy` | `vpn.data.result` / `proxy.data.result` |
//! | `tor` | `tor`, else `ip_blocklist.tor_node` | `tor.data.result` |
//! | `incognito` | `incognito` | `incognito.data.result`, else `identification.data.incognito` |
//! | `tampering` | `tampering` | `tampering.data.result` |
//! | `virtual_machine` | `virtual_machine` | `virtualMachine.data.result` |
//! | `emulator` | `emulator` or `simulator` (iOS) | `emulator.data.result` |
//! | `jailbroken` / `rooted` | `jailbroken` / `root_apps` | `jailbroken.data.result` / `rootApps.data.result` |
//! | `frida` / `mitm_attack` | `frida` / `mitm_attack` | `frida.data.result` / `mitmAttack.data.result` |
//! | `ip_address` | `ip_address`, else `ip_info.v4/v6.address` | `identification.data.ip`, else `ipInfo.data.v4/v6.address` |
//! | `ip_country` | `ip_info.*.geolocation.country_code` | `ipInfo.data.*.geolocation.country.code`, else `identification.data.ipLocation.country.code` |
//! | `ip_asn` / `ip_asn_name` | `ip_info.*.asn` / `asn_name` | `ipInfo.data.*.asn.asn` / `asn.name` |
//! | `ip_datacenter` | `ip_info.*.datacenter_result` | `ipInfo.data.*.datacenter.result` |
//! | `ip_blocklisted` | `ip_blocklist.email_spam` or `attack_source` | `ipBlocklist.data.result` (or its `details`) |
//! | `suspect_score` | `suspect_score` / 40, capped at 1 | `suspectScore.data.result` / 40, capped at 1 |
//! | `provider_verdict` | `rule_action.type` (ruleset evaluation) | — |
//! | `verdict_reasons` | `rule_action.rule_id` | — |
//! | `marked_suspect` | `suspect` | `identification.data.suspect` |
//! | `velocity.events_*` | `velocity.events.{5_minutes,1_hour,24_hours}` | `velocity.data.events.intervals.{5m,1h,24h}` |
//! | `velocity.distinct_ip_*` | `velocity.distinct_ip.{1_hour,24_hours}` | `velocity.data.distinctIp.intervals.{1h,24h}` |
//! | `velocity.distinct_country_*` | `velocity.distinct_country.{1_hour,24_hours}` | `velocity.data.distinctCountry.intervals.{1h,24h}` |
//! | `event_time` | `timestamp` | `identification.data.timestamp` |
//! | `partial_errors` | — | every `products.<name>.error.code` |
//!
//! `ip_info.*`: the entry whose `address` is the event's IP, else `v4`, else `v6`.

use serde_json::Value;

use super::errors::MappingError;
use super::signals::pick::{self, any, flag, int, number, text, unit, word};
use super::{DeviceSignals, ProviderVelocity};

const NAME: &str = "fingerprint";

/// Maps a Server API v4 event (`GET /v4/events/{event_id}` or a v4 webhook).
pub fn parse_v4(body: &[u8]) -> Result<DeviceSignals, MappingError> {
    let root = pick::object(body, NAME)?;
    if is_v4_event(&root) {
        Ok(map_v4(&root))
    } else if is_v3_event(&root) {
        Ok(map_v3(&root))
    } else {
        Err(no_event(&root))
    }
}

/// Maps a Server API v3 answer (`GET /events/{request_id}` or a v3 webhook).
pub fn parse_v3(body: &[u8]) -> Result<DeviceSignals, MappingError> {
    let root = pick::object(body, NAME)?;
    if is_v3_event(&root) {
        Ok(map_v3(&root))
    } else if is_v4_event(&root) {
        Ok(map_v4(&root))
    } else {
        Err(no_event(&root))
    }
}

fn no_event(root: &Value) -> MappingError {
    if root.get("error").is_some() {
        MappingError("fingerprint answered an error body instead of an event".into())
    } else {
        MappingError("fingerprint answer holds no identification event".into())
    }
}

fn is_v4_event(root: &Value) -> bool {
    ["event_id", "identification", "ip_info", "bot_info"]
        .iter()
        .any(|k| root.get(*k).is_some_and(|v| !v.is_null()))
}

fn is_v3_event(root: &Value) -> bool {
    root.get("products").is_some_and(Value::is_object)
        || ["requestId", "visitorId"]
            .iter()
            .any(|k| root.get(*k).is_some_and(Value::is_string))
}

/// The `ip_info` / `ipInfo` entry for the event's IP: the one whose address
/// matches, else `v4`, else `v6`.
fn ip_entry<'a>(info: Option<&'a Value>, ip: Option<&str>) -> Option<&'a Value> {
    let info = info?;
    let entries: Vec<&Value> = [info.get("v4"), info.get("v6")]
        .into_iter()
        .flatten()
        .filter(|e| e.is_object())
        .collect();
    let matching = entries
        .iter()
        .find(|e| ip.is_some() && text(e, &["address"]).as_deref() == ip);
    matching.or(entries.first()).copied()
}

fn map_v4(root: &Value) -> DeviceSignals {
    let mut s = DeviceSignals {
        visitor_id: text(root, &["identification", "visitor_id"]),
        confidence: unit(root, &["identification", "confidence", "score"]),
        bot: word(root, &["bot"]),
        bot_type: word(root, &["bot_type"]).or_else(|| text(root, &["bot_info", "name"])),
        vpn: flag(root, &["vpn"]),
        proxy: flag(root, &["proxy"]),
        tor: flag(root, &["tor"]).or_else(|| flag(root, &["ip_blocklist", "tor_node"])),
        incognito: flag(root, &["incognito"]),
        tampering: flag(root, &["tampering"]),
        virtual_machine: flag(root, &["virtual_machine"]),
        emulator: any(&[flag(root, &["emulator"]), flag(root, &["simulator"])]),
        jailbroken: flag(root, &["jailbroken"]),
        rooted: flag(root, &["root_apps"]),
        frida: flag(root, &["frida"]),
        mitm_attack: flag(root, &["mitm_attack"]),
        ip_blocklisted: any(&[
            flag(root, &["ip_blocklist", "email_spam"]),
            flag(root, &["ip_blocklist", "attack_source"]),
        ]),
        suspect_score: number(root, &["suspect_score"]).map(pick::suspect_score),
        marked_suspect: flag(root, &["suspect"]),
        event_time: int(root, &["timestamp"]),
        velocity: velocity(
            root.get("velocity"),
            &["5_minutes", "1_hour", "24_hours"],
            false,
        ),
        ..Default::default()
    };

    let info = root.get("ip_info");
    let top_ip = text(root, &["ip_address"]);
    let entry = ip_entry(info, top_ip.as_deref());
    s.ip_address = top_ip.or_else(|| entry.and_then(|e| text(e, &["address"])));
    if let Some(e) = entry {
        s.ip_country = text(e, &["geolocation", "country_code"]);
        s.ip_asn = text(e, &["asn"]);
        s.ip_asn_name = text(e, &["asn_name"]);
        s.ip_datacenter = flag(e, &["datacenter_result"]);
    }

    // A ruleset evaluation (`?ruleset_id=`) is Fingerprint's own recommendation.
    if let Some(action) = root.get("rule_action").filter(|v| v.is_object()) {
        s.provider_verdict = word(action, &["type"]);
        s.verdict_reasons.extend(text(action, &["rule_id"]));
    }
    s
}

/// The v3 answer seen the same way whether it is `{"products": …}` (the API:
/// each product's `data`) or a webhook (the products inlined at the top).
struct V3<'a> {
    root: &'a Value,
    products: Option<&'a serde_json::Map<String, Value>>,
}

impl<'a> V3<'a> {
    /// A product's data, or `None` if absent or answered with an error.
    fn data(&self, name: &str) -> Option<&'a Value> {
        let data = match self.products {
            Some(products) => products.get(name)?.get("data")?,
            // Webhook: identification and botd fields sit at the top level.
            None if name == "identification" || name == "botd" => self.root,
            None => self.root.get(name)?,
        };
        (!data.is_null()).then_some(data)
    }

    fn result(&self, name: &str) -> Option<bool> {
        self.data(name).and_then(|d| flag(d, &["result"]))
    }

    /// `"<product>: <code>"` for every product that answered an error, in
    /// product-name order.
    fn errors(&self) -> Vec<String> {
        let Some(products) = self.products else {
            return Vec::new();
        };
        products
            .iter()
            .filter_map(|(name, product)| {
                let error = product.get("error").filter(|e| !e.is_null())?;
                let code = text(error, &["code"])
                    .or_else(|| text(error, &["message"]))
                    .or_else(|| error.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "error".to_owned());
                let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
                Some(format!("{name}: {code}"))
            })
            .take(64)
            .collect()
    }
}

fn map_v3(root: &Value) -> DeviceSignals {
    let v3 = V3 {
        root,
        products: root.get("products").and_then(Value::as_object),
    };
    let id = v3.data("identification");
    let botd = v3.data("botd");
    let mut s = DeviceSignals {
        visitor_id: id.and_then(|d| text(d, &["visitorId"])),
        confidence: id.and_then(|d| unit(d, &["confidence", "score"])),
        event_time: id.and_then(|d| int(d, &["timestamp"])),
        marked_suspect: id.and_then(|d| flag(d, &["suspect"])),
        bot: botd.and_then(|d| word(d, &["bot", "result"])),
        bot_type: botd.and_then(|d| word(d, &["bot", "type"])),
        vpn: v3.result("vpn"),
        proxy: v3.result("proxy"),
        tor: v3.result("tor"),
        // The incognito product is the Smart Signal; identification's own
        // flag is the older, coarser one.
        incognito: v3
            .result("incognito")
            .or_else(|| id.and_then(|d| flag(d, &["incognito"]))),
        tampering: v3.result("tampering"),
        virtual_machine: v3.result("virtualMachine"),
        emulator: v3.result("emulator"),
        jailbroken: v3.result("jailbroken"),
        rooted: v3.result("rootApps"),
        frida: v3.result("frida"),
        mitm_attack: v3.result("mitmAttack"),
        ip_blocklisted: v3.data("ipBlocklist").and_then(|d| {
            flag(d, &["result"]).or_else(|| {
                any(&[
                    flag(d, &["details", "emailSpam"]),
                    flag(d, &["details", "attackSource"]),
                ])
            })
        }),
        suspect_score: v3
            .data("suspectScore")
            .and_then(|d| number(d, &["result"]))
            .map(pick::suspect_score),
        velocity: velocity(v3.data("velocity"), &["5m", "1h", "24h"], true),
        partial_errors: v3.errors(),
        ..Default::default()
    };

    let id_ip = id.and_then(|d| text(d, &["ip"]));
    let entry = ip_entry(v3.data("ipInfo"), id_ip.as_deref());
    s.ip_address = id_ip.or_else(|| entry.and_then(|e| text(e, &["address"])));
    if let Some(e) = entry {
        s.ip_country = text(e, &["geolocation", "country", "code"]);
        s.ip_asn = text(e, &["asn", "asn"]);
        s.ip_asn_name = text(e, &["asn", "name"]);
        s.ip_datacenter = flag(e, &["datacenter", "result"]);
    }
    if s.ip_country.is_none() {
        s.ip_country = id.and_then(|d| text(d, &["ipLocation", "country", "code"]));
    }
    s
}

/// Velocity counters; v3 nests each under `intervals` and names them in
/// camelCase, v4 does neither. `None` when no counter is present.
fn velocity(v: Option<&Value>, windows: &[&str; 3], v3: bool) -> Option<ProviderVelocity> {
    let v = v?;
    let [m5, h1, h24] = *windows;
    let count = |name_v4: &str, name_v3: &str, window: &str| {
        if v3 {
            int(v, &[name_v3, "intervals", window])
        } else {
            int(v, &[name_v4, window])
        }
    };
    let out = ProviderVelocity {
        events_5m: count("events", "events", m5),
        events_1h: count("events", "events", h1),
        events_24h: count("events", "events", h24),
        distinct_ip_1h: count("distinct_ip", "distinctIp", h1),
        distinct_ip_24h: count("distinct_ip", "distinctIp", h24),
        distinct_country_1h: count("distinct_country", "distinctCountry", h1),
        distinct_country_24h: count("distinct_country", "distinctCountry", h24),
    };
    (out != ProviderVelocity::default()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> Vec<u8> {
        let path = format!(
            "{}/fixtures/providers/fingerprint/{rel}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn v4(name: &str) -> DeviceSignals {
        parse_v4(&fixture(&format!("v4/{name}"))).unwrap_or_else(|e| panic!("v4/{name}: {e}"))
    }

    fn v3(name: &str) -> DeviceSignals {
        parse_v3(&fixture(&format!("v3/{name}"))).unwrap_or_else(|e| panic!("v3/{name}: {e}"))
    }

    fn fixture_velocity() -> ProviderVelocity {
        ProviderVelocity {
            events_5m: Some(1),
            events_1h: Some(5),
            events_24h: Some(5),
            distinct_ip_1h: Some(1),
            distinct_ip_24h: Some(1),
            distinct_country_1h: Some(2),
            distinct_country_24h: Some(2),
        }
    }

    /// What every full device event in the publisher's samples says.
    fn assert_sample_device(s: &DeviceSignals) {
        assert_eq!(s.visitor_id.as_deref(), Some("Ibk1527CUFmcnjLwIs4A9"));
        assert_eq!(s.confidence, Some(0.97));
        assert_eq!(s.ip_address.as_deref(), Some("61.127.217.15"));
        assert_eq!(s.ip_country.as_deref(), Some("CZ"));
        assert_eq!(s.ip_asn.as_deref(), Some("7922"));
        assert_eq!(s.ip_asn_name.as_deref(), Some("COMCAST-7922"));
        assert_eq!(s.ip_datacenter, Some(true));
        assert_eq!(s.vpn, Some(false));
        assert_eq!(s.tor, Some(false));
        assert_eq!(s.ip_blocklisted, Some(false));
        assert_eq!(s.tampering, Some(false));
        assert_eq!(s.emulator, Some(false));
        assert_eq!(s.jailbroken, Some(false));
        assert_eq!(s.rooted, Some(false));
        assert_eq!(s.frida, Some(false));
        assert_eq!(s.mitm_attack, Some(false));
        assert!(s.partial_errors.is_empty(), "{:?}", s.partial_errors);
    }

    // ---- v4 ----

    #[test]
    fn v4_get_event_200() {
        let s = v4("get_event_200.json");
        assert_sample_device(&s);
        assert_eq!(s.bot.as_deref(), Some("not_detected"));
        assert_eq!(s.bot_type, None);
        assert_eq!(s.proxy, Some(true));
        assert_eq!(s.incognito, Some(false));
        assert_eq!(s.virtual_machine, Some(false));
        assert_eq!(s.event_time, Some(1_708_102_555_327));
        assert_eq!(s.velocity, Some(fixture_velocity()));
        assert_eq!(s.suspect_score, None);
        assert_eq!(s.provider_verdict, None);
        assert_eq!(s.marked_suspect, None);
    }

    #[test]
    fn v4_unknown_fields_change_nothing() {
        assert_eq!(
            v4("get_event_200_with_unknown_field.json"),
            v4("get_event_200.json")
        );
    }

    #[test]
    fn v4_good_bot_info() {
        let s = v4("get_event_200_with_bot_info.json");
        assert_sample_device(&s);
        assert_eq!(s.bot.as_deref(), Some("good"));
        assert_eq!(s.bot_type.as_deref(), Some("chatgpt_agent"));
    }

    #[test]
    fn v4_ruleset_action_is_the_provider_verdict() {
        let s = v4("get_event_200_with_ruleset.json");
        assert_sample_device(&s);
        assert_eq!(s.provider_verdict.as_deref(), Some("block"));
        assert_eq!(s.verdict_reasons, vec!["r_uE0af8497PFAOD".to_owned()]);
    }

    #[test]
    fn v4_edge_event_has_network_signals_only() {
        let s = v4("get_event_200_with_edge.json");
        assert_eq!(s.visitor_id, None);
        assert_eq!(s.confidence, None);
        assert_eq!(s.bot, None);
        assert_eq!(s.bot_type.as_deref(), Some("ChatGPT Agent"));
        assert_eq!(s.ip_address.as_deref(), Some("104.210.139.192"));
        assert_eq!(s.ip_country.as_deref(), Some("US"));
        assert_eq!(s.ip_asn.as_deref(), Some("8075"));
        assert_eq!(s.ip_asn_name.as_deref(), Some("Microsoft Corporation"));
        assert_eq!(s.ip_datacenter, Some(true));
        assert_eq!(s.vpn, Some(false));
        assert_eq!(s.proxy, Some(false));
        assert_eq!(s.tor, None);
        assert_eq!(s.velocity, None);
        assert_eq!(s.event_time, Some(1_758_130_560_902));
    }

    #[test]
    fn v4_webhook_event_is_the_same_event() {
        let s = parse_v4(&fixture("v4/webhook_event.json")).unwrap();
        assert_sample_device(&s);
        assert_eq!(s.bot.as_deref(), Some("not_detected"));
        assert_eq!(s.proxy, Some(true));
        assert_eq!(s.velocity, Some(fixture_velocity()));
    }

    #[test]
    fn v4_error_bodies_are_not_events() {
        for name in [
            "error_403_subscription_not_active.json",
            "error_403_wrong_region.json",
            "get_event_400_event_id_invalid.json",
            "get_event_400_ruleset_not_found.json",
            "get_event_403_secret_api_key_not_found.json",
            "get_event_403_secret_api_key_required.json",
            "get_event_404_event_not_found.json",
            "get_event_429_too_many_requests.json",
            "get_event_429_too_many_search_requests.json",
            "get_event_500_internal_server_error.json",
            "get_event_504_search_timeout_exceeded.json",
        ] {
            let err = parse_v4(&fixture(&format!("v4/{name}"))).unwrap_err();
            assert!(err.0.contains("error body"), "{name}: {err}");
        }
    }

    #[test]
    fn v4_snake_case_values_and_suspect_score() {
        let body = serde_json::json!({
            "event_id": "1.a",
            "identification": {"visitor_id": "v", "confidence": {"score": 1.7}},
            "bot": "bad", "bot_type": "headlessChrome", "simulator": true, "emulator": false,
            "suspect_score": 20, "suspect": true, "ip_blocklist": {"attack_source": true},
            "ip_address": "2001:db8::1",
            "ip_info": {
                "v4": {"address": "1.2.3.4", "geolocation": {"country_code": "CZ"}},
                "v6": {"address": "2001:db8::1", "geolocation": {"country_code": "DE"}}
            },
            "velocity": {"events": {"1_hour": 9}}
        });
        let s = parse_v4(body.to_string().as_bytes()).unwrap();
        assert_eq!(s.confidence, Some(1.0));
        assert_eq!(s.bot.as_deref(), Some("bad"));
        assert_eq!(s.bot_type.as_deref(), Some("headless_chrome"));
        assert_eq!(s.emulator, Some(true));
        assert_eq!(s.suspect_score, Some(0.5));
        assert_eq!(s.marked_suspect, Some(true));
        assert_eq!(s.ip_blocklisted, Some(true));
        assert_eq!(
            s.ip_country.as_deref(),
            Some("DE"),
            "the entry of the event's IP"
        );
        assert_eq!(
            s.velocity,
            Some(ProviderVelocity {
                events_1h: Some(9),
                ..Default::default()
            })
        );
    }

    #[test]
    fn v4_wrong_types_are_unknown_not_errors() {
        let body = br#"{"event_id":"x","identification":{"visitor_id":{"a":1},"confidence":"high"},
            "bot":42,"vpn":"maybe","ip_info":[1,2],"velocity":"fast","timestamp":"soon"}"#;
        let s = parse_v4(body).unwrap();
        assert_eq!(s.visitor_id, None);
        assert_eq!(s.confidence, None);
        assert_eq!(s.bot.as_deref(), Some("42"));
        assert_eq!(s.vpn, None);
        assert_eq!(s.ip_country, None);
        assert_eq!(s.velocity, None);
        assert_eq!(s.event_time, None);
    }

    #[test]
    fn only_non_objects_and_non_events_are_mapping_errors() {
        for body in [
            &b"<html>"[..],
            b"",
            b"[]",
            b"\"event\"",
            b"null",
            b"{}",
            br#"{"foo":1}"#,
        ] {
            assert!(
                parse_v4(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert!(
                parse_v3(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn each_parser_reads_the_other_versions_shape() {
        assert_eq!(
            parse_v3(&fixture("v4/get_event_200.json")).unwrap(),
            v4("get_event_200.json")
        );
        assert_eq!(
            parse_v4(&fixture("v3/get_event_200.json")).unwrap(),
            v3("get_event_200.json")
        );
    }

    // ---- v3 ----

    #[test]
    fn v3_get_event_200() {
        let s = v3("get_event_200.json");
        assert_sample_device(&s);
        assert_eq!(s.bot.as_deref(), Some("not_detected"));
        assert_eq!(s.proxy, Some(true));
        // The incognito product (false) wins over identification's flag (true).
        assert_eq!(s.incognito, Some(false));
        assert_eq!(s.virtual_machine, Some(false));
        assert_eq!(s.event_time, Some(1_582_299_576_512));
        assert_eq!(s.velocity, Some(fixture_velocity()));
        assert_eq!(s.suspect_score, None);
    }

    #[test]
    fn v3_latest_spec() {
        let s = v3("get_event_200_latest_spec.json");
        assert_sample_device(&s);
        assert_eq!(s.bot.as_deref(), Some("not_detected"));
        assert_eq!(s.proxy, Some(true));
        assert_eq!(s.virtual_machine, Some(true));
        assert_eq!(s.velocity, Some(fixture_velocity()));
    }

    #[test]
    fn v3_broken_linked_id_does_not_fail() {
        let s = v3("get_event_200_with_broken_format.json");
        assert_sample_device(&s);
        assert_eq!(s.bot.as_deref(), Some("not_detected"));
        assert_eq!(s.proxy, Some(true));
        assert_eq!(s.velocity, None, "this sample has no velocity product");
    }

    #[test]
    fn v3_unknown_fields() {
        let s = v3("get_event_200_with_unknown_field.json");
        assert_sample_device(&s);
        assert_eq!(s.proxy, Some(false));
        assert_eq!(s.velocity, None);
    }

    #[test]
    fn v3_extra_products_are_ignored() {
        let s = v3("get_event_200_extra_fields.json");
        assert_eq!(s.visitor_id.as_deref(), Some("Ibk1527CUFmcnjLwIs4A9"));
        assert_eq!(s.confidence, Some(0.97));
        assert_eq!(s.bot.as_deref(), Some("not_detected"));
        // No incognito product: identification's own flag is used.
        assert_eq!(s.incognito, Some(true));
        assert_eq!(s.ip_address.as_deref(), Some("61.127.217.15"));
        // No ipInfo product: the identification's (deprecated) ipLocation.
        assert_eq!(s.ip_country.as_deref(), Some("DE"));
        assert_eq!(s.vpn, None);
        assert!(s.partial_errors.is_empty());
    }

    #[test]
    fn v3_botd_failed_keeps_identification() {
        let s = v3("get_event_200_botd_failed_error.json");
        assert_eq!(s.visitor_id.as_deref(), Some("Ibk1527CUFmcnjLwIs4A9"));
        assert_eq!(s.confidence, Some(0.97));
        assert_eq!(s.ip_country.as_deref(), Some("DE"));
        assert_eq!(s.bot, None);
        assert_eq!(s.partial_errors, vec!["botd: Failed".to_owned()]);
    }

    #[test]
    fn v3_identification_failed_keeps_the_bad_bot() {
        let s = v3("get_event_200_identification_failed_error.json");
        assert_eq!(s.visitor_id, None);
        assert_eq!(s.confidence, None);
        assert_eq!(s.bot.as_deref(), Some("bad"));
        assert_eq!(s.bot_type.as_deref(), Some("headless_chrome"));
        assert_eq!(s.ip_address, None, "botd's ip is not the identification's");
        assert_eq!(s.partial_errors, vec!["identification: Failed".to_owned()]);
    }

    #[test]
    fn v3_too_many_requests_per_product() {
        let s = v3("get_event_200_too_many_requests_error.json");
        assert_eq!(s.visitor_id, None);
        assert_eq!(s.bot, None);
        assert_eq!(
            s.partial_errors,
            vec![
                "botd: TooManyRequests".to_owned(),
                "identification: 429 Too Many Requests".to_owned(),
            ]
        );
    }

    #[test]
    fn v3_all_errors_map_to_nothing_but_errors() {
        for (name, count) in [
            ("get_event_200_all_errors.json", 24),
            ("get_event_200_all_errors_latest_spec.json", 26),
        ] {
            let s = v3(name);
            assert_eq!(
                DeviceSignals {
                    partial_errors: Vec::new(),
                    ..s.clone()
                },
                DeviceSignals::default(),
                "{name}"
            );
            assert_eq!(
                s.partial_errors.len(),
                count,
                "{name}: {:?}",
                s.partial_errors
            );
            assert!(
                s.partial_errors.iter().all(|e| e.ends_with(": Failed")),
                "{name}"
            );
            for product in [
                "identification: Failed",
                "botd: Failed",
                "vpn: Failed",
                "suspectScore: Failed",
                "velocity: Failed",
            ] {
                assert!(
                    s.partial_errors.iter().any(|e| e == product),
                    "{name}: {product}"
                );
            }
            // rawDeviceAttributes has data (with nested errors), not a product error.
            assert!(!s
                .partial_errors
                .iter()
                .any(|e| e.starts_with("rawDeviceAttributes")));
        }
    }

    #[test]
    fn v3_webhook_flat_shape() {
        let s = v3("webhook.json");
        assert_eq!(s.visitor_id.as_deref(), Some("3HNey93AkBW6CRbxV6xP"));
        assert_eq!(s.confidence, Some(0.97));
        assert_eq!(s.bot.as_deref(), Some("bad"));
        assert_eq!(s.bot_type.as_deref(), Some("selenium"));
        assert_eq!(s.ip_address.as_deref(), Some("216.3.128.12"));
        assert_eq!(s.ip_country.as_deref(), Some("CZ"));
        assert_eq!(s.ip_datacenter, Some(true));
        assert_eq!(s.proxy, Some(true));
        assert_eq!(s.vpn, Some(false));
        assert_eq!(s.tor, Some(false));
        assert_eq!(s.incognito, Some(false));
        assert_eq!(s.suspect_score, Some(0.0));
        assert_eq!(s.velocity, Some(fixture_velocity()));
        assert_eq!(s.event_time, Some(1_554_910_997_788));
    }

    #[test]
    fn v3_error_bodies_are_not_events() {
        for name in [
            "error_403_subscription_not_active.json",
            "error_429_too_many_requests.json",
            "error_429_too_many_requests_plain.json",
            "get_event_403_token_not_found.json",
            "get_event_403_token_required.json",
            "get_event_403_wrong_region.json",
            "get_event_404_request_not_found.json",
        ] {
            let err = parse_v3(&fixture(&format!("v3/{name}"))).unwrap_err();
            assert!(err.0.contains("error body"), "{name}: {err}");
        }
    }

    #[test]
    fn v3_suspect_score_and_blocklist_details() {
        let body = br#"{"products":{
            "identification":{"data":{"visitorId":"v","confidence":{"score":0.5},"ip":"1.1.1.1"}},
            "suspectScore":{"data":{"result":80}},
            "ipBlocklist":{"data":{"details":{"emailSpam":true}}},
            "botd":{"data":{"bot":{"result":"someNewValue"}}},
            "vpn":{"error":{"code":"Failed","message":"x"}},
            "tor":null
        }}"#;
        let s = parse_v3(body).unwrap();
        assert_eq!(s.suspect_score, Some(1.0));
        assert_eq!(s.ip_blocklisted, Some(true));
        assert_eq!(s.bot.as_deref(), Some("some_new_value"));
        assert_eq!(s.vpn, None);
        assert_eq!(s.tor, None);
        assert_eq!(s.partial_errors, vec!["vpn: Failed".to_owned()]);
    }
}
