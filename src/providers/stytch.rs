//! Stytch Device Fingerprinting `POST /v1/fingerprint/lookup` → [`DeviceSignals`].
//!
//! Stytch answers with identifiers (`fingerprints`), a recommendation
//! (`verdict.action` ALLOW / CHALLENGE / BLOCK) and its warning flags
//! (`verdict.reasons`), plus the network it saw (`properties`). It has no
//! confidence, bot probability, suspect score or velocity: those stay `None`.
//!
//! Mapping:
//!
//! | DeviceSignals | Stytch field |
//! |---|---|
//! | `visitor_id` | `fingerprints.visitor_fingerprint` (cookie-less, survives cleared storage), else `fingerprints.visitor_id` |
//! | `provider_verdict` | `verdict.action`, lowercased (`allow` / `challenge` / `block`; unknown values kept) |
//! | `verdict_reasons` | `verdict.reasons`, verbatim |
//! | `device_type` | `verdict.detected_device_type` |
//! | `tampering` | `not verdict.is_authentic_device` (false when hardware or browser deception is detected), or a `…DECEPTION…`/`…SPOOF…` reason |
//! | `bot` = `bad`, `bot_type` | a reason with an `AUTOMATION`, `BOT` or `HEADLESS` word (`HEADLESS_BROWSER_AUTOMATION` → `bot_type` `headless_browser_automation`) |
//! | `virtual_machine` | reason `VIRTUAL_MACHINE` |
//! | `emulator` | a reason with an `EMULATOR` / `SIMULATOR` word |
//! | `tor` | a reason with a `TOR` word |
//! | `vpn` | `properties.network_properties.is_vpn`, or a reason with a `VPN` word |
//! | `proxy` | `properties.network_properties.is_proxy`, or a reason with a `PROXY` word |
//! | `ip_datacenter` | a reason with a `DATACENTER` / `HOSTING` word |
//! | `ip_address` | `properties.network_properties.ip_address` |
//! | `ip_asn` / `ip_asn_name` | `properties.network_properties.asn.asn` / `.asn.name` |
//! | `ip_country` | `properties.network_properties.ip_geolocation.country` (uppercased) |
//! | `event_time` | `created_at` (RFC 3339) in Unix milliseconds |
//!
//! Reasons only ever set a flag to `true`: the absence of a warning flag is
//! not a "no" from Stytch, so it leaves the flag unknown. `network_info`
//! is read as an alias of `network_properties` (older integrations call it so).
//! Unknown reasons are kept in `verdict_reasons` and never fail the mapping.

use std::time::UNIX_EPOCH;

use serde_json::Value;

use super::errors::MappingError;
use super::signals::pick::{self, any, at, flag, text, word};
use super::DeviceSignals;

const NAME: &str = "stytch";

/// Maps a fingerprint lookup response.
pub fn parse_lookup(body: &[u8]) -> Result<DeviceSignals, MappingError> {
    let root = pick::object(body, NAME)?;
    let recognizable = root.get("fingerprints").is_some_and(Value::is_object)
        || root.get("verdict").is_some_and(Value::is_object)
        || root.get("telemetry_id").is_some_and(Value::is_string);
    if !recognizable {
        return Err(if root.get("error_type").is_some() {
            MappingError("stytch answered an error body instead of a fingerprint".into())
        } else {
            MappingError("stytch answer holds no fingerprint lookup".into())
        });
    }

    let reasons: Vec<String> = match at(&root, &["verdict", "reasons"]) {
        Some(Value::Array(items)) => items.iter().filter_map(|r| text(r, &[])).take(64).collect(),
        _ => Vec::new(),
    };
    let has_word = |words: &[&str]| -> Option<bool> {
        reasons
            .iter()
            .any(|r| {
                r.to_ascii_uppercase()
                    .split('_')
                    .any(|w| words.contains(&w))
            })
            .then_some(true)
    };
    let automation = reasons.iter().find(|r| {
        r.to_ascii_uppercase()
            .split('_')
            .any(|w| ["AUTOMATION", "BOT", "HEADLESS"].contains(&w))
    });

    let network = at(&root, &["properties", "network_properties"])
        .filter(|v| v.is_object())
        .or_else(|| at(&root, &["properties", "network_info"]));
    let net_text = |path: &[&str]| network.and_then(|n| text(n, path));
    let net_flag = |path: &[&str]| network.and_then(|n| flag(n, path));

    let authentic = flag(&root, &["verdict", "is_authentic_device"]);
    Ok(DeviceSignals {
        visitor_id: text(&root, &["fingerprints", "visitor_fingerprint"])
            .or_else(|| text(&root, &["fingerprints", "visitor_id"])),
        provider_verdict: word(&root, &["verdict", "action"]),
        device_type: text(&root, &["verdict", "detected_device_type"]),
        tampering: any(&[
            authentic.map(|a| !a),
            has_word(&["DECEPTION", "SPOOF", "SPOOFING", "TAMPERING"]),
        ]),
        bot: automation.map(|_| "bad".to_owned()),
        bot_type: automation.map(|r| r.to_ascii_lowercase()),
        virtual_machine: reasons
            .iter()
            .any(|r| r.to_ascii_uppercase().contains("VIRTUAL_MACHINE"))
            .then_some(true),
        emulator: has_word(&["EMULATOR", "SIMULATOR"]),
        tor: has_word(&["TOR"]),
        vpn: any(&[net_flag(&["is_vpn"]), has_word(&["VPN"])]),
        proxy: any(&[net_flag(&["is_proxy"]), has_word(&["PROXY"])]),
        ip_datacenter: has_word(&["DATACENTER", "HOSTING"]),
        ip_address: net_text(&["ip_address"]),
        ip_asn: net_text(&["asn", "asn"]),
        ip_asn_name: net_text(&["asn", "name"]),
        ip_country: net_text(&["ip_geolocation", "country"]).map(|c| c.to_ascii_uppercase()),
        event_time: text(&root, &["created_at"]).and_then(|t| unix_millis(&t)),
        verdict_reasons: reasons,
        ..Default::default()
    })
}

/// RFC 3339 in UTC as Stytch sends it (`2021-12-29T12:33:09Z`, fractions
/// allowed) → Unix milliseconds; anything else is unknown.
fn unix_millis(rfc3339: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(rfc3339)
        .or_else(|_| humantime::parse_rfc3339(rfc3339))
        .ok()?;
    i64::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/fixtures/providers/stytch/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn allow_lookup() {
        let s = parse_lookup(&fixture("lookup_200.json")).unwrap();
        assert_eq!(
            s.visitor_id.as_deref(),
            Some("visitor-fingerprint-2c9a5e8b-1f7d-4b3e-8a60-4e1d7c9b2f05")
        );
        assert_eq!(s.provider_verdict.as_deref(), Some("allow"));
        assert_eq!(s.verdict_reasons, vec!["KNOWN_DEVICE".to_owned()]);
        assert_eq!(s.device_type.as_deref(), Some("MAC_OS_ARM64"));
        assert_eq!(s.tampering, Some(false));
        assert_eq!(s.bot, None);
        assert_eq!(s.virtual_machine, None);
        assert_eq!(s.vpn, Some(false));
        assert_eq!(s.proxy, Some(false));
        assert_eq!(s.ip_address.as_deref(), Some("203.0.113.42"));
        assert_eq!(s.ip_asn.as_deref(), Some("7922"));
        assert_eq!(s.ip_asn_name.as_deref(), Some("COMCAST-7922"));
        assert_eq!(s.ip_country.as_deref(), Some("US"));
        assert_eq!(s.event_time, Some(1_772_460_309_000));
        assert_eq!(s.confidence, None);
        assert_eq!(s.velocity, None);
        assert!(s.partial_errors.is_empty());
    }

    #[test]
    fn block_lookup() {
        let s = parse_lookup(&fixture("lookup_200_block.json")).unwrap();
        assert_eq!(s.provider_verdict.as_deref(), Some("block"));
        assert_eq!(
            s.verdict_reasons,
            [
                "HEADLESS_BROWSER_AUTOMATION",
                "USER_AGENT_DECEPTION",
                "VIRTUAL_MACHINE"
            ]
        );
        assert_eq!(s.bot.as_deref(), Some("bad"));
        assert_eq!(s.bot_type.as_deref(), Some("headless_browser_automation"));
        assert_eq!(s.virtual_machine, Some(true));
        assert_eq!(s.tampering, Some(true));
        assert_eq!(s.device_type.as_deref(), Some("UNKNOWN"));
        assert_eq!(s.vpn, Some(true));
        assert_eq!(s.proxy, Some(false));
        assert_eq!(s.tor, None);
        assert_eq!(s.ip_country.as_deref(), Some("DE"));
        assert_eq!(s.ip_asn_name.as_deref(), Some("AMAZON-02"));
    }

    #[test]
    fn challenge_lookup() {
        let s = parse_lookup(&fixture("lookup_200_challenge.json")).unwrap();
        assert_eq!(s.provider_verdict.as_deref(), Some("challenge"));
        assert_eq!(
            s.verdict_reasons,
            ["VIRTUAL_MACHINE", "SMART_RATE_LIMIT_WARNING"]
        );
        assert_eq!(s.virtual_machine, Some(true));
        assert_eq!(s.bot, None);
        assert_eq!(s.tampering, Some(false));
        assert_eq!(s.ip_country.as_deref(), Some("DE"));
    }

    #[test]
    fn error_body_is_not_a_lookup() {
        let err = parse_lookup(&fixture("error_404_telemetry_id_not_found.json")).unwrap_err();
        assert!(err.0.contains("error body"), "{err}");
        for body in [&b"<html>"[..], b"[]", b"{}", b"null"] {
            assert!(parse_lookup(body).is_err());
        }
    }

    #[test]
    fn tolerates_unknown_reasons_aliases_and_odd_types() {
        let body = br#"{
            "telemetry_id": "t",
            "fingerprints": {"visitor_id": "visitor-1"},
            "verdict": {"action": "SOMETHING_NEW", "reasons": ["TOR_EXIT_NODE", 7, "PUBLIC_PROXY", "NEW_FLAG"],
                        "is_authentic_device": "yes"},
            "properties": {"network_info": {"ip_address": "192.0.2.1", "ip_geolocation": {"country": "fr"}}},
            "created_at": "not a time",
            "extra": {"deep": [1, 2]}
        }"#;
        let s = parse_lookup(body).unwrap();
        assert_eq!(s.visitor_id.as_deref(), Some("visitor-1"));
        assert_eq!(s.provider_verdict.as_deref(), Some("something_new"));
        assert_eq!(
            s.verdict_reasons,
            ["TOR_EXIT_NODE", "7", "PUBLIC_PROXY", "NEW_FLAG"]
        );
        assert_eq!(s.tor, Some(true));
        assert_eq!(s.proxy, Some(true));
        assert_eq!(s.vpn, None);
        assert_eq!(s.tampering, None);
        assert_eq!(s.bot, None);
        assert_eq!(s.ip_address.as_deref(), Some("192.0.2.1"));
        assert_eq!(s.ip_country.as_deref(), Some("FR"));
        assert_eq!(s.event_time, None);
    }

    #[test]
    fn timestamps_with_fractions_and_offsets() {
        assert_eq!(unix_millis("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(unix_millis("2021-12-29T12:33:09Z"), Some(1_640_781_189_000));
        assert_eq!(unix_millis("yesterday"), None);
    }
}
