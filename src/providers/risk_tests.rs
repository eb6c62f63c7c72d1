//! The device risk of every provider fixture, through the real adapters.

use crate::decision::device_risk;
use crate::decision::DeviceSignals;
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
        0.126,
        "proxy 0.08 and datacenter 0.05 only"
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
    assert!(device_risk(&block) > 0.97, "{}", device_risk(&block));

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
    assert_eq!(device_risk(&vpn), 0.05);
    assert_eq!(device_risk(&vpn_proxy), 0.126);
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
    assert_eq!(at(0.45), 0.075);
    assert_eq!(at(0.0), 0.15);
    assert_eq!(at(f64::NAN), 0.0);
    assert_eq!(at(-4.0), 0.15);
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
