//! One device risk number in [0, 1] from [`DeviceSignals`], whatever the
//! provider.
//!
//! Each signal the provider reported as present adds a contribution `c` in
//! [0, 1]; the contributions combine as independent pieces of evidence,
//! `risk = 1 − Π (1 − c)`, so several weak signals add up while the result
//! never passes 1, and adding a signal never lowers the risk. A signal the
//! provider did not report (`None`) or reported absent (`Some(false)`)
//! contributes nothing: unknown is not evidence. The result is rounded to 4
//! decimals. Pure and cheap: rules call it on every decision.
//!
//! | signal | when | c | why |
//! |---|---|---|---|
//! | `bot` | `bad` | 0.85 | automation (Selenium, Puppeteer, headless browsers) has no business in a checkout; `good` bots (crawlers, signed agents) add nothing |
//! | `bot_probability` | p | 0.85 × p | the same evidence, graded; with `bot` it counts once (the larger of the two) |
//! | `tampering` | true | 0.60 | anti-detect browser or anomalous fingerprint: the device is being disguised |
//! | `frida` | true | 0.60 | a dynamic instrumentation toolkit on the device, used to tamper with apps |
//! | `mitm_attack` | true | 0.50 | the app's traffic to the provider was intercepted and possibly rewritten |
//! | `ip_blocklisted` | true | 0.50 | the IP is a known attack or spam source |
//! | `tor` | true | 0.45 | strong anonymity, rare among real shoppers |
//! | `emulator` | true | 0.40 | Android emulator / iOS simulator: device farms, scripted sign-ups |
//! | `virtual_machine` | true | 0.35 | VMs scale and hide fraud, but remote desktops are legitimate too |
//! | `jailbroken`, `rooted` | true | 0.25 each | makes spoofing easy, yet many owners are just enthusiasts |
//! | `proxy` | true | 0.15 | residential proxies carry account takeover, but corporate proxies are common |
//! | `vpn` | true | 0.15 | common among privacy-minded customers; weak alone |
//! | `ip_datacenter` | true | 0.10 | a hosting IP for a human shopper is odd, but VPN and corporate egress use them |
//! | `incognito` | true | 0.05 | very common, barely informative |
//! | `confidence` | c < 0.9 | 0.3 × (0.9 − c) / 0.9 | the provider could not recognize the device well (signals blocked or missing, typical of privacy tools and bots); at most 0.3 at c = 0 |
//! | `provider_verdict` | `block` / `challenge` | 0.80 / 0.30 | the provider's own conclusion (Stytch verdict, Fingerprint ruleset); `allow` and unknown values add nothing |
//! | `suspect_score` | s | 0.5 × s | the provider's aggregate of the flags above; half weight because it partly repeats them |
//!
//! Not scored here: velocity (rules compare it with the subscriber's own
//! thresholds), `marked_suspect` (the merchant's own flag, visible to rules),
//! `partial_errors` (missing data is unknown, not risk) and countries (a
//! policy choice for rules).
//!
//! Examples: a clean device is 0; the published Fingerprint v4 sample (a
//! residential proxy on a datacenter IP, confidence 0.97) is 0.235; a bad bot
//! alone is 0.85; a Stytch BLOCK for headless automation in a VM is above 0.99.

use super::DeviceSignals;

const BOT_BAD: f64 = 0.85;
const TAMPERING: f64 = 0.60;
const FRIDA: f64 = 0.60;
const MITM: f64 = 0.50;
const IP_BLOCKLISTED: f64 = 0.50;
const TOR: f64 = 0.45;
const EMULATOR: f64 = 0.40;
const VIRTUAL_MACHINE: f64 = 0.35;
const JAILBROKEN: f64 = 0.25;
const ROOTED: f64 = 0.25;
const PROXY: f64 = 0.15;
const VPN: f64 = 0.15;
const DATACENTER: f64 = 0.10;
const INCOGNITO: f64 = 0.05;
/// Below this identification confidence the device counts as poorly recognized.
const CONFIDENCE_OK: f64 = 0.9;
const LOW_CONFIDENCE_MAX: f64 = 0.30;
const VERDICT_BLOCK: f64 = 0.80;
const VERDICT_CHALLENGE: f64 = 0.30;
const SUSPECT_SCORE: f64 = 0.5;

/// A finite value in [0, 1], or `None` (NaN and infinities are unknown).
fn unit(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite()).map(|x| x.clamp(0.0, 1.0))
}

fn when(flag: Option<bool>, c: f64) -> f64 {
    if flag == Some(true) {
        c
    } else {
        0.0
    }
}

/// The device's risk in [0, 1] (see the module table for the contributions).
pub fn device_risk(s: &DeviceSignals) -> f64 {
    let bad_bot = if s
        .bot
        .as_deref()
        .is_some_and(|b| b.eq_ignore_ascii_case("bad"))
    {
        BOT_BAD
    } else {
        0.0
    };
    let bot = bad_bot.max(unit(s.bot_probability).map_or(0.0, |p| BOT_BAD * p));
    let low_confidence = unit(s.confidence).map_or(0.0, |c| {
        LOW_CONFIDENCE_MAX * ((CONFIDENCE_OK - c) / CONFIDENCE_OK).max(0.0)
    });
    let verdict = match s
        .provider_verdict
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("block" | "deny" | "reject") => VERDICT_BLOCK,
        Some("challenge" | "review") => VERDICT_CHALLENGE,
        _ => 0.0,
    };
    let suspect = unit(s.suspect_score).map_or(0.0, |x| SUSPECT_SCORE * x);

    let contributions = [
        bot,
        when(s.tampering, TAMPERING),
        when(s.frida, FRIDA),
        when(s.mitm_attack, MITM),
        when(s.ip_blocklisted, IP_BLOCKLISTED),
        when(s.tor, TOR),
        when(s.emulator, EMULATOR),
        when(s.virtual_machine, VIRTUAL_MACHINE),
        when(s.jailbroken, JAILBROKEN),
        when(s.rooted, ROOTED),
        when(s.proxy, PROXY),
        when(s.vpn, VPN),
        when(s.ip_datacenter, DATACENTER),
        when(s.incognito, INCOGNITO),
        low_confidence,
        verdict,
        suspect,
    ];
    let clean = contributions
        .iter()
        .fold(1.0, |keep, c| keep * (1.0 - c.clamp(0.0, 1.0)));
    ((1.0 - clean) * 10_000.0).round().clamp(0.0, 10_000.0) / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{fingerprint, fingerprintiq, stytch};

    fn fixture(rel: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/providers/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn unknown_and_clean_devices_are_zero() {
        assert_eq!(device_risk(&DeviceSignals::default()), 0.0);
        let clean = DeviceSignals {
            confidence: Some(0.99),
            bot: Some("not_detected".into()),
            vpn: Some(false),
            proxy: Some(false),
            tor: Some(false),
            tampering: Some(false),
            provider_verdict: Some("allow".into()),
            suspect_score: Some(0.0),
            ..Default::default()
        };
        assert_eq!(device_risk(&clean), 0.0);
    }

    #[test]
    fn fixtures_land_where_a_reviewer_expects() {
        let v4 = fingerprint::parse_v4(&fixture("fingerprint/v4/get_event_200.json")).unwrap();
        assert_eq!(
            device_risk(&v4),
            0.235,
            "proxy 0.15 and datacenter 0.10 only"
        );
        assert!(device_risk(&v4) < 0.3);

        let v3 = fingerprint::parse_v3(&fixture("fingerprint/v3/get_event_200.json")).unwrap();
        assert!(device_risk(&v3) < 0.3, "{}", device_risk(&v3));

        let bot = fingerprint::parse_v3(&fixture(
            "fingerprint/v3/get_event_200_identification_failed_error.json",
        ))
        .unwrap();
        assert_eq!(device_risk(&bot), 0.85);

        let webhook_bot = fingerprint::parse_v3(&fixture("fingerprint/v3/webhook.json")).unwrap();
        assert!(
            device_risk(&webhook_bot) > 0.85,
            "{}",
            device_risk(&webhook_bot)
        );

        let allow = stytch::parse_lookup(&fixture("stytch/lookup_200.json")).unwrap();
        assert_eq!(device_risk(&allow), 0.0);
        let challenge = stytch::parse_lookup(&fixture("stytch/lookup_200_challenge.json")).unwrap();
        let challenge_risk = device_risk(&challenge);
        assert!((0.3..0.7).contains(&challenge_risk), "{challenge_risk}");
        let block = stytch::parse_lookup(&fixture("stytch/lookup_200_block.json")).unwrap();
        assert!(device_risk(&block) > 0.99, "{}", device_risk(&block));

        let fiq = fingerprintiq::parse_event(&fixture("fingerprintiq/get_event_200.json")).unwrap();
        assert!(device_risk(&fiq) < 0.1, "{}", device_risk(&fiq));
    }

    #[test]
    fn weak_signals_add_up_but_saturate() {
        let vpn = DeviceSignals {
            vpn: Some(true),
            ..Default::default()
        };
        let vpn_proxy = DeviceSignals {
            proxy: Some(true),
            ..vpn.clone()
        };
        assert_eq!(device_risk(&vpn), 0.15);
        assert_eq!(device_risk(&vpn_proxy), 0.2775);
        let everything = DeviceSignals {
            bot: Some("bad".into()),
            bot_probability: Some(1.0),
            tampering: Some(true),
            frida: Some(true),
            mitm_attack: Some(true),
            ip_blocklisted: Some(true),
            tor: Some(true),
            emulator: Some(true),
            virtual_machine: Some(true),
            jailbroken: Some(true),
            rooted: Some(true),
            proxy: Some(true),
            vpn: Some(true),
            ip_datacenter: Some(true),
            incognito: Some(true),
            confidence: Some(0.0),
            provider_verdict: Some("BLOCK".into()),
            suspect_score: Some(1.0),
            ..Default::default()
        };
        let r = device_risk(&everything);
        assert!(r > 0.999 && r <= 1.0, "{r}");
    }

    #[test]
    fn bot_flag_and_probability_count_once() {
        let flagged = DeviceSignals {
            bot: Some("bad".into()),
            ..Default::default()
        };
        let both = DeviceSignals {
            bot_probability: Some(0.9),
            ..flagged.clone()
        };
        assert_eq!(device_risk(&flagged), device_risk(&both));
        let good = DeviceSignals {
            bot: Some("good".into()),
            ..Default::default()
        };
        assert_eq!(device_risk(&good), 0.0);
        let probable = DeviceSignals {
            bot_probability: Some(0.5),
            ..Default::default()
        };
        assert_eq!(device_risk(&probable), 0.425);
    }

    #[test]
    fn confidence_and_odd_numbers() {
        let at = |c: f64| {
            device_risk(&DeviceSignals {
                confidence: Some(c),
                ..Default::default()
            })
        };
        assert_eq!(at(0.95), 0.0);
        assert_eq!(at(0.9), 0.0);
        assert_eq!(at(0.45), 0.15);
        assert_eq!(at(0.0), 0.3);
        assert_eq!(at(f64::NAN), 0.0);
        assert_eq!(at(-4.0), 0.3);
        let weird = DeviceSignals {
            suspect_score: Some(f64::INFINITY),
            bot_probability: Some(7.0),
            ..Default::default()
        };
        let r = device_risk(&weird);
        assert!((0.0..=1.0).contains(&r), "{r}");
    }

    /// Every way of setting one more signal on any starting point never lowers
    /// the risk, and the risk always stays in [0, 1].
    #[test]
    fn monotonic_and_bounded() {
        type Setter = fn(&mut DeviceSignals);
        let bad: [Setter; 18] = [
            |s| s.bot = Some("bad".into()),
            |s| s.bot_probability = Some(0.7),
            |s| s.tampering = Some(true),
            |s| s.frida = Some(true),
            |s| s.mitm_attack = Some(true),
            |s| s.ip_blocklisted = Some(true),
            |s| s.tor = Some(true),
            |s| s.emulator = Some(true),
            |s| s.virtual_machine = Some(true),
            |s| s.jailbroken = Some(true),
            |s| s.rooted = Some(true),
            |s| s.proxy = Some(true),
            |s| s.vpn = Some(true),
            |s| s.ip_datacenter = Some(true),
            |s| s.incognito = Some(true),
            |s| s.provider_verdict = Some("challenge".into()),
            |s| s.provider_verdict = Some("block".into()),
            |s| s.suspect_score = Some(0.6),
        ];
        // Deterministic pseudo-random subsets (no RNG dependency needed).
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut base = DeviceSignals {
                confidence: Some((seed % 101) as f64 / 100.0),
                ..Default::default()
            };
            for (i, set) in bad.iter().enumerate() {
                // Skip "challenge" when "block" is also picked: it replaces, not adds.
                if (seed >> i) & 1 == 1 && i != 15 {
                    set(&mut base);
                }
            }
            let before = device_risk(&base);
            assert!((0.0..=1.0).contains(&before), "{before}");
            for (i, set) in bad.iter().enumerate() {
                if i == 15 && base.provider_verdict.is_some() {
                    continue; // a challenge would replace a block
                }
                let mut more = base.clone();
                set(&mut more);
                let after = device_risk(&more);
                assert!(
                    after >= before,
                    "signal {i}: {before} -> {after} on {base:?}"
                );
                assert!(after <= 1.0);
            }
        }
    }
}
