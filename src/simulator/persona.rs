//! Device personas: a request id that spells out the device signals the
//! simulator answers with, so generated traffic (`riskgate simulate-traffic`)
//! can give each transaction its own device, IP and flags without any state
//! in the simulator (a restarted simulator, or a retried fetch, answers the
//! same).
//!
//! A persona id is `p~` followed by `~`-separated tokens, after any behaviour
//! prefix (`slow-p~…` works). Tokens are `key_value` or a bare flag; unknown
//! tokens and malformed values are ignored (so a unique suffix such as
//! `n_s7t42` keeps ids distinct). Only URL-unreserved characters are used, so
//! the id travels unchanged in provider URL paths.
//!
//! | token | meaning |
//! |---|---|
//! | `v_<id>` | visitor (device) id, `[A-Za-z0-9]` |
//! | `ip_<a.b.c.d>` | the device's IPv4 address |
//! | `cc_<XX>` | the IP's country (ISO 3166 alpha-2) |
//! | `asn_<n>`, `an_<name>` | the IP's autonomous system and its name |
//! | `dc` | the IP belongs to a hosting provider (datacenter) |
//! | `bot_<bad\|good>` | bot detection result (else `not_detected`) |
//! | `vpn`, `px`, `tor`, `inc`, `tamp`, `emu`, `vm`, `root`, `jb`, `frida`, `bl` | VPN, proxy, Tor, incognito, tampering, emulator, virtual machine, rooted, jailbroken, Frida, IP blocklisted |
//! | `conf_<0..1>` | identification confidence |
//! | `sus_<n>` | Fingerprint Suspect Score (raw, 0..130) |
//! | `ev_<5m>_<1h>_<24h>` | events the provider saw for the device |
//! | `dip_<1h>_<24h>`, `dcc_<1h>_<24h>` | distinct IPs / countries for the device |
//!
//! Everything a persona does not mention answers clean: no bot, no VPN, no
//! proxy, not a datacenter IP, confidence as in the fixture.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The prefix that marks a persona id (after any behaviour prefix).
pub const PREFIX: &str = "p~";

/// The device one persona id describes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn_name: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub datacenter: bool,
    /// `bad` or `good`; `None` is `not_detected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub vpn: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tor: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub incognito: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tampering: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub emulator: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub virtual_machine: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rooted: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub jailbroken: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub frida: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocklisted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspect_score: Option<u32>,
    /// Events seen for the device over 5 minutes, 1 hour, 24 hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<[u32; 3]>,
    /// Distinct IPs over 1 hour, 24 hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_ip: Option<[u32; 2]>,
    /// Distinct countries over 1 hour, 24 hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_country: Option<[u32; 2]>,
}

fn word_ok(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

fn counts<const N: usize>(value: &str) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    let mut parts = value.split('_');
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

impl Persona {
    /// The persona an id describes, if it is a persona id (`p~…`, possibly
    /// after a behaviour prefix already stripped by the caller).
    pub fn parse(id: &str) -> Option<Self> {
        let rest = id.strip_prefix(PREFIX)?;
        let mut p = Self::default();
        for token in rest.split('~') {
            let (key, value) = token.split_once('_').unwrap_or((token, ""));
            match (key, value) {
                ("v", v) if word_ok(v, &[]) => p.visitor_id = Some(v.to_owned()),
                ("ip", v) if v.parse::<std::net::Ipv4Addr>().is_ok() => p.ip = Some(v.to_owned()),
                ("cc", v) if v.len() == 2 && v.chars().all(|c| c.is_ascii_alphabetic()) => {
                    p.country = Some(v.to_ascii_uppercase());
                }
                ("asn", v) => p.asn = v.parse().ok().or(p.asn),
                ("an", v) if word_ok(v, &['-', '.', '_']) => p.asn_name = Some(v.to_owned()),
                ("dc", "") => p.datacenter = true,
                ("bot", v @ ("bad" | "good")) => p.bot = Some(v.to_owned()),
                ("vpn", "") => p.vpn = true,
                ("px", "") => p.proxy = true,
                ("tor", "") => p.tor = true,
                ("inc", "") => p.incognito = true,
                ("tamp", "") => p.tampering = true,
                ("emu", "") => p.emulator = true,
                ("vm", "") => p.virtual_machine = true,
                ("root", "") => p.rooted = true,
                ("jb", "") => p.jailbroken = true,
                ("frida", "") => p.frida = true,
                ("bl", "") => p.blocklisted = true,
                ("conf", v) => {
                    if let Ok(c) = v.parse::<f64>() {
                        if (0.0..=1.0).contains(&c) {
                            p.confidence = Some(c);
                        }
                    }
                }
                ("sus", v) => p.suspect_score = v.parse().ok().or(p.suspect_score),
                ("ev", v) => p.events = counts(v).or(p.events),
                ("dip", v) => p.distinct_ip = counts(v).or(p.distinct_ip),
                ("dcc", v) => p.distinct_country = counts(v).or(p.distinct_country),
                _ => {}
            }
        }
        Some(p)
    }

    /// The persona as an id: `p~<tokens>~n_<nonce>`. Values that would not
    /// parse back are left out (`nonce` keeps only `[A-Za-z0-9]`).
    pub fn encode(&self, nonce: &str) -> String {
        let mut out = String::from("p");
        let mut push = |token: String| {
            out.push('~');
            out.push_str(&token);
        };
        if let Some(v) = self.visitor_id.as_deref().filter(|v| word_ok(v, &[])) {
            push(format!("v_{v}"));
        }
        if let Some(ip) = &self.ip {
            push(format!("ip_{ip}"));
        }
        if let Some(cc) = &self.country {
            push(format!("cc_{cc}"));
        }
        if let Some(asn) = self.asn {
            push(format!("asn_{asn}"));
        }
        if let Some(name) = self
            .asn_name
            .as_deref()
            .filter(|n| word_ok(n, &['-', '.', '_']))
        {
            push(format!("an_{name}"));
        }
        if let Some(bot) = &self.bot {
            push(format!("bot_{bot}"));
        }
        for (on, flag) in [
            (self.datacenter, "dc"),
            (self.vpn, "vpn"),
            (self.proxy, "px"),
            (self.tor, "tor"),
            (self.incognito, "inc"),
            (self.tampering, "tamp"),
            (self.emulator, "emu"),
            (self.virtual_machine, "vm"),
            (self.rooted, "root"),
            (self.jailbroken, "jb"),
            (self.frida, "frida"),
            (self.blocklisted, "bl"),
        ] {
            if on {
                push(flag.to_owned());
            }
        }
        if let Some(c) = self.confidence {
            push(format!(
                "conf_{}",
                (c.clamp(0.0, 1.0) * 100.0).round() / 100.0
            ));
        }
        if let Some(s) = self.suspect_score {
            push(format!("sus_{s}"));
        }
        if let Some([a, b, c]) = self.events {
            push(format!("ev_{a}_{b}_{c}"));
        }
        if let Some([a, b]) = self.distinct_ip {
            push(format!("dip_{a}_{b}"));
        }
        if let Some([a, b]) = self.distinct_country {
            push(format!("dcc_{a}_{b}"));
        }
        let nonce: String = nonce.chars().filter(char::is_ascii_alphanumeric).collect();
        if !nonce.is_empty() {
            push(format!("n_{nonce}"));
        }
        out
    }

    fn bot_word(&self) -> &str {
        self.bot.as_deref().unwrap_or("not_detected")
    }

    /// Fingerprint v4: the clean event with this persona's signals.
    pub fn apply_v4(&self, body: &mut Value, now_ms: i64) {
        put(body, &["timestamp"], json!(now_ms));
        if let Some(v) = &self.visitor_id {
            put(body, &["identification", "visitor_id"], json!(v));
        }
        if let Some(c) = self.confidence {
            put(body, &["identification", "confidence", "score"], json!(c));
        }
        put(body, &["bot"], json!(self.bot_word()));
        put(body, &["vpn"], json!(self.vpn));
        put(body, &["vpn_methods", "public_vpn"], json!(self.vpn));
        put(body, &["proxy"], json!(self.proxy));
        put(body, &["tor"], json!(self.tor));
        put(body, &["ip_blocklist", "tor_node"], json!(self.tor));
        put(
            body,
            &["ip_blocklist", "attack_source"],
            json!(self.blocklisted),
        );
        put(body, &["ip_blocklist", "email_spam"], json!(false));
        put(body, &["incognito"], json!(self.incognito));
        put(body, &["tampering"], json!(self.tampering));
        put(
            body,
            &["tampering_details", "anti_detect_browser"],
            json!(self.tampering),
        );
        put(body, &["emulator"], json!(self.emulator));
        put(body, &["simulator"], json!(false));
        put(body, &["virtual_machine"], json!(self.virtual_machine));
        put(body, &["root_apps"], json!(self.rooted));
        put(body, &["jailbroken"], json!(self.jailbroken));
        put(body, &["frida"], json!(self.frida));
        if let Some(s) = self.suspect_score {
            put(body, &["suspect_score"], json!(s));
        }
        if let Some(ip) = &self.ip {
            put(body, &["ip_address"], json!(ip));
            put(body, &["ip_info", "v4", "address"], json!(ip));
        }
        if let Some(info) = body.get_mut("ip_info").and_then(Value::as_object_mut) {
            // One address, one location: the sample's IPv6 entry is another place.
            info.remove("v6");
        }
        let geo = ["ip_info", "v4", "geolocation"];
        if let Some(cc) = &self.country {
            put(body, &[&geo[..], &["country_code"]].concat(), json!(cc));
            put(body, &[&geo[..], &["country_name"]].concat(), json!(cc));
            for field in ["city_name", "postal_code", "timezone", "subdivisions"] {
                put(body, &[&geo[..], &[field]].concat(), Value::Null);
            }
        }
        if let Some(asn) = self.asn {
            put(body, &["ip_info", "v4", "asn"], json!(asn.to_string()));
        }
        if let Some(name) = &self.asn_name {
            put(body, &["ip_info", "v4", "asn_name"], json!(name));
        }
        put(
            body,
            &["ip_info", "v4", "datacenter_result"],
            json!(self.datacenter),
        );
        put(body, &["ip_info", "v4", "datacenter_name"], json!(""));
        if let Some([m5, h1, d1]) = self.events {
            put(
                body,
                &["velocity", "events"],
                json!({"5_minutes": m5, "1_hour": h1, "24_hours": d1}),
            );
        }
        if let Some([h1, d1]) = self.distinct_ip {
            put(
                body,
                &["velocity", "distinct_ip"],
                json!({"5_minutes": 1, "1_hour": h1, "24_hours": d1}),
            );
        }
        if let Some([h1, d1]) = self.distinct_country {
            put(
                body,
                &["velocity", "distinct_country"],
                json!({"5_minutes": 1, "1_hour": h1, "24_hours": d1}),
            );
        }
    }

    /// Fingerprint v3: the clean answer with this persona's signals.
    pub fn apply_v3(&self, body: &mut Value, now_ms: i64) {
        let product = |name: &str, rest: &[&'static str]| -> Vec<String> {
            ["products", name, "data"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain(rest.iter().map(|s| (*s).to_owned()))
                .collect()
        };
        let mut set = |path: Vec<String>, v: Value| {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            put(body, &path, v);
        };
        set(product("identification", &["timestamp"]), json!(now_ms));
        if let Some(v) = &self.visitor_id {
            set(product("identification", &["visitorId"]), json!(v));
        }
        if let Some(c) = self.confidence {
            set(
                product("identification", &["confidence", "score"]),
                json!(c),
            );
        }
        let bot = match self.bot_word() {
            "not_detected" => json!({"result": "notDetected"}),
            "bad" => json!({"result": "bad", "type": "selenium"}),
            other => json!({"result": other}),
        };
        set(product("botd", &["bot"]), bot);
        for (name, on) in [
            ("vpn", self.vpn),
            ("proxy", self.proxy),
            ("tor", self.tor),
            ("incognito", self.incognito),
            ("tampering", self.tampering),
            ("emulator", self.emulator),
            ("virtualMachine", self.virtual_machine),
            ("rootApps", self.rooted),
            ("jailbroken", self.jailbroken),
            ("frida", self.frida),
            ("ipBlocklist", self.blocklisted),
        ] {
            set(product(name, &["result"]), json!(on));
        }
        set(
            product("identification", &["incognito"]),
            json!(self.incognito),
        );
        set(
            product("ipBlocklist", &["details", "attackSource"]),
            json!(self.blocklisted),
        );
        if let Some(s) = self.suspect_score {
            set(product("suspectScore", &["result"]), json!(s));
        }
        if let Some(ip) = &self.ip {
            set(product("identification", &["ip"]), json!(ip));
            set(product("ipInfo", &["v4", "address"]), json!(ip));
        }
        if let Some(cc) = &self.country {
            set(
                product("identification", &["ipLocation"]),
                json!({"country": {"code": cc}}),
            );
            set(
                product("ipInfo", &["v4", "geolocation"]),
                json!({"country": {"code": cc}}),
            );
        }
        if let Some(asn) = self.asn {
            set(
                product("ipInfo", &["v4", "asn", "asn"]),
                json!(asn.to_string()),
            );
        }
        if let Some(name) = &self.asn_name {
            set(product("ipInfo", &["v4", "asn", "name"]), json!(name));
        }
        set(
            product("ipInfo", &["v4", "datacenter"]),
            json!({"result": self.datacenter, "name": ""}),
        );
        if let Some(info) = body
            .pointer_mut("/products/ipInfo/data")
            .and_then(Value::as_object_mut)
        {
            info.remove("v6");
        }
        let intervals =
            |m5: u32, h1: u32, d1: u32| json!({"intervals": {"5m": m5, "1h": h1, "24h": d1}});
        if let Some([m5, h1, d1]) = self.events {
            put(
                body,
                &["products", "velocity", "data", "events"],
                intervals(m5, h1, d1),
            );
        }
        if let Some([h1, d1]) = self.distinct_ip {
            put(
                body,
                &["products", "velocity", "data", "distinctIp"],
                intervals(1, h1, d1),
            );
        }
        if let Some([h1, d1]) = self.distinct_country {
            put(
                body,
                &["products", "velocity", "data", "distinctCountry"],
                intervals(1, h1, d1),
            );
        }
    }

    /// Stytch: a verdict and reasons that say what the persona's flags say.
    pub fn apply_stytch(&self, body: &mut Value) {
        if let Some(v) = &self.visitor_id {
            put(body, &["fingerprints", "visitor_fingerprint"], json!(v));
            put(body, &["fingerprints", "visitor_id"], json!(v));
        }
        let mut reasons = Vec::new();
        let bad_bot = self.bot.as_deref() == Some("bad");
        for (on, reason) in [
            (bad_bot, "HEADLESS_BROWSER_AUTOMATION"),
            (self.tampering, "BROWSER_DECEPTION"),
            (self.emulator, "ANDROID_EMULATOR"),
            (self.virtual_machine, "VIRTUAL_MACHINE"),
            (self.tor, "TOR_EXIT_NODE"),
            (self.datacenter, "DATACENTER_IP"),
        ] {
            if on {
                reasons.push(reason);
            }
        }
        let action = if bad_bot || self.tampering || self.emulator {
            "BLOCK"
        } else if self.virtual_machine || self.tor {
            "CHALLENGE"
        } else {
            "ALLOW"
        };
        if reasons.is_empty() {
            reasons.push("KNOWN_DEVICE");
        }
        put(body, &["verdict", "action"], json!(action));
        put(body, &["verdict", "reasons"], json!(reasons));
        put(
            body,
            &["verdict", "is_authentic_device"],
            json!(!self.tampering),
        );
        let net = ["properties", "network_properties"];
        let at = |field: &'static str| [&net[..], &[field]].concat();
        if let Some(ip) = &self.ip {
            put(body, &at("ip_address"), json!(ip));
        }
        if let Some(asn) = self.asn {
            put(
                body,
                &[&at("asn")[..], &["asn"]].concat(),
                json!(asn.to_string()),
            );
        }
        if let Some(name) = &self.asn_name {
            put(body, &[&at("asn")[..], &["name"]].concat(), json!(name));
        }
        if let Some(cc) = &self.country {
            put(body, &at("ip_geolocation"), json!({"country": cc}));
        }
        put(body, &at("is_vpn"), json!(self.vpn));
        put(body, &at("is_proxy"), json!(self.proxy));
    }

    /// FingerprintIQ: the clean event with this persona's verdicts.
    pub fn apply_fingerprintiq(&self, body: &mut Value, now_ms: i64) {
        put(body, &["timestamp"], json!(now_ms));
        if let Some(v) = &self.visitor_id {
            put(body, &["visitorId"], json!(v));
        }
        if let Some(c) = self.confidence {
            put(body, &["confidence"], json!(c));
        }
        let bad_bot = self.bot.as_deref() == Some("bad");
        let p = if bad_bot { 0.97 } else { 0.03 };
        put(body, &["botProbability"], json!(p));
        put(
            body,
            &["verdicts", "bot"],
            json!({"result": bad_bot, "probability": p}),
        );
        put(body, &["verdicts", "headless", "result"], json!(bad_bot));
        for (name, on) in [
            ("vpn", self.vpn),
            ("proxy", self.proxy),
            ("tor", self.tor),
            ("incognito", self.incognito),
            ("tampering", self.tampering),
            ("virtualMachine", self.virtual_machine),
            ("ipBlocklist", self.blocklisted),
        ] {
            put(body, &["verdicts", name, "result"], json!(on));
        }
        if let Some(s) = self.suspect_score {
            put(body, &["suspectScore"], json!(s.min(100)));
        }
        if let Some(ip) = &self.ip {
            put(body, &["ip"], json!(ip));
        }
        if let Some(cc) = &self.country {
            put(body, &["signals", "server", "geo", "country"], json!(cc));
        }
        if let Some(asn) = self.asn {
            put(body, &["signals", "server", "asn", "asn"], json!(asn));
        }
        if let Some(name) = &self.asn_name {
            put(body, &["signals", "server", "asn", "org"], json!(name));
        }
        put(
            body,
            &["signals", "server", "asn", "isDatacenter"],
            json!(self.datacenter),
        );
        let windows = |a: u32, b: u32, c: u32| json!({"5m": a, "1h": b, "24h": c});
        if let Some([m5, h1, d1]) = self.events {
            put(
                body,
                &["verdicts", "velocity", "events"],
                windows(m5, h1, d1),
            );
        }
        if let Some([h1, d1]) = self.distinct_ip {
            put(
                body,
                &["verdicts", "velocity", "distinctIp"],
                windows(1, h1, d1),
            );
        }
        if let Some([h1, d1]) = self.distinct_country {
            put(
                body,
                &["verdicts", "velocity", "distinctCountry"],
                windows(1, h1, d1),
            );
        }
    }
}

/// Sets `value[path…]`, creating the objects on the way (a non-object on the
/// way is replaced by one).
fn put(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, steps)) = path.split_last() else {
        *value = new;
        return;
    };
    let mut at = value;
    for step in steps {
        if !at.is_object() {
            *at = json!({});
        }
        let Some(map) = at.as_object_mut() else {
            return;
        };
        at = map.entry((*step).to_owned()).or_insert_with(|| json!({}));
    }
    if !at.is_object() {
        *at = json!({});
    }
    if let Some(map) = at.as_object_mut() {
        map.insert((*last).to_owned(), new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Persona {
        Persona {
            visitor_id: Some("dev42abc".into()),
            ip: Some("73.136.20.5".into()),
            country: Some("US".into()),
            asn: Some(7922),
            asn_name: Some("COMCAST-7922".into()),
            datacenter: true,
            bot: Some("bad".into()),
            vpn: true,
            incognito: true,
            emulator: true,
            confidence: Some(0.62),
            suspect_score: Some(25),
            events: Some([3, 7, 12]),
            distinct_ip: Some([2, 4]),
            distinct_country: Some([1, 2]),
            ..Default::default()
        }
    }

    #[test]
    fn a_persona_survives_its_id() {
        let p = sample();
        let id = p.encode("s1t0042");
        assert!(id.len() < 256, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
            "{id}"
        );
        assert_eq!(Persona::parse(&id), Some(p));
        assert_eq!(Persona::parse("p~n_1"), Some(Persona::default()));
        assert_eq!(Persona::parse("risky-1"), None);
    }

    #[test]
    fn malformed_tokens_are_ignored() {
        let p = Persona::parse("p~ip_999.1.1.1~cc_USA~conf_7~ev_1_2~bot_evil~v_a/b~vpn").unwrap();
        assert_eq!(
            p,
            Persona {
                vpn: true,
                ..Default::default()
            }
        );
    }
}
