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
//! | `tampering` | true | 0.20 | anti-detect browser or anomalous fingerprint, but privacy extensions read as tampering too |
//! | `frida` | true | 0.60 | a dynamic instrumentation toolkit on the device, used to tamper with apps |
//! | `mitm_attack` | true | 0.50 | the app's traffic to the provider was intercepted and possibly rewritten |
//! | `ip_blocklisted` | true | 0.50 | the IP is a known attack or spam source |
//! | `tor` | true | 0.12 | strong anonymity, but privacy browsers route through it |
//! | `emulator` | true | 0.40 | Android emulator / iOS simulator: device farms, scripted sign-ups |
//! | `virtual_machine` | true | 0.15 | VMs scale and hide fraud, but remote desktops are legitimate too |
//! | `jailbroken`, `rooted` | true | 0.10 each | makes spoofing easy, yet many owners are just enthusiasts |
//! | `proxy` | true | 0.08 | residential proxies carry account takeover, but corporate proxies are common |
//! | `vpn` | true | 0.05 | common among privacy-minded customers (iCloud Private Relay reads as one); weak alone |
//! | `ip_datacenter` | true | 0.05 | a hosting IP for a human shopper is odd, but VPN and corporate egress use them |
//! | `incognito` | true | 0.02 | very common, barely informative |
//! | `confidence` | c < 0.9 | 0.15 × (0.9 − c) / 0.9 | the provider could not recognize the device well (signals blocked or missing, typical of privacy tools and bots); at most 0.15 at c = 0 |
//! | `provider_verdict` | `block` / `challenge` | 0.80 / 0.30 | the provider's own conclusion (Stytch verdict, Fingerprint ruleset); `allow` and unknown values add nothing |
//! | `suspect_score` | s | 0.5 × s | the provider's aggregate of the flags above; half weight because it partly repeats them |
//!
//! Not scored here: velocity (rules compare it with the subscriber's own
//! thresholds), `marked_suspect` (the merchant's own flag, visible to rules),
//! `partial_errors` (missing data is unknown, not risk) and countries (a
//! policy choice for rules).
//!
//! Examples: a clean device is 0; the published Fingerprint v4 sample (a
//! residential proxy on a datacenter IP, confidence 0.97) is 0.126; a bad bot
//! alone is 0.85; a Stytch BLOCK for headless automation in a VM is about 0.98.
//!
//! The weak signals (VPN, proxy, datacenter, incognito, Tor, low confidence)
//! stay below the default review threshold alone and as they usually come
//! together (a VPN on a hosting IP, incognito, confidence 0.35: 0.2), so that a
//! privacy tool alone never reviews a shopper; the default rule pack combines
//! them with a new device, an amount or cross-account velocity (weights
//! measured with `riskgate simulate-traffic`, docs/simulated-traffic.md).

use super::signals::DeviceSignals;

/// Where the device signals of a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSource {
    Request,
    Session,
    User,
}

impl DeviceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Session => "session",
            Self::User => "user",
        }
    }
}

/// What is known of the transaction's device when it is scored: the ingested
/// request found for it and how, where its fetch stands, and its signals.
#[derive(Debug, Clone, Copy)]
pub struct DeviceEvidence<'a> {
    pub request_id: &'a str,
    pub provider: &'a str,
    /// `pending`, `ready` or `failed`.
    pub status: &'static str,
    /// The normalized signals, when the provider answered.
    pub signals: Option<&'a DeviceSignals>,
    pub source: DeviceSource,
}

impl DeviceEvidence<'_> {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

const BOT_BAD: f64 = 0.85;
const TAMPERING: f64 = 0.20;
const FRIDA: f64 = 0.60;
const MITM: f64 = 0.50;
const IP_BLOCKLISTED: f64 = 0.50;
const TOR: f64 = 0.12;
const EMULATOR: f64 = 0.40;
const VIRTUAL_MACHINE: f64 = 0.15;
const JAILBROKEN: f64 = 0.10;
const ROOTED: f64 = 0.10;
const PROXY: f64 = 0.08;
const VPN: f64 = 0.05;
const DATACENTER: f64 = 0.05;
const INCOGNITO: f64 = 0.02;
/// Below this identification confidence the device counts as poorly recognized.
const CONFIDENCE_OK: f64 = 0.9;
const LOW_CONFIDENCE_MAX: f64 = 0.15;
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
