//! Standard Webhooks signatures for decision callbacks
//! (<https://www.standardwebhooks.com/>).
//!
//! Each callback carries three headers:
//! - `webhook-id`: a unique message id, the same on every retry of one callback;
//! - `webhook-timestamp`: Unix seconds at the time of the attempt;
//! - `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries, one
//!   per valid secret, over `"{id}.{timestamp}.{body}"`.
//!
//! A secret is `whsec_` followed by the base64 of the key bytes (see
//! [`crate::secrets::new_webhook_secret`]); the HMAC key is the decoded bytes,
//! not the text. Signing with several secrets lets a subscriber rotate: during
//! the grace period the callback carries a signature under the new and the old
//! secret, and a receiver holding either accepts it.
//!
//! [`verify`] checks the signature only; a receiver also rejects timestamps too
//! far from its clock (the reference libraries allow five minutes) to limit
//! replays.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const SECRET_PREFIX: &str = "whsec_";
const SIGNATURE_VERSION: &str = "v1";

/// Standard base64 that accepts the key with or without `=` padding: ours are
/// padded (32 bytes), secrets minted elsewhere (24 bytes) need none.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The three Standard Webhooks headers for one callback attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The secret at this position of the list is not `whsec_` followed by
    /// non-empty base64. The secret itself is never put in the message.
    #[error("webhook secret #{index} is not `whsec_` followed by base64")]
    InvalidSecret { index: usize },
    #[error("no webhook secret to sign with")]
    NoSecrets,
}

/// The HMAC key inside a `whsec_` secret.
fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX)?;
    let key = SECRET_BASE64.decode(encoded).ok()?;
    (!key.is_empty()).then_some(key)
}

/// HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, fed in pieces so the body
/// needs no copy and need not be UTF-8.
fn mac(key: &[u8], webhook_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the
    // fallback only keeps this free of `expect`.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0u8; 32],
    };
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Signs `body` with each secret (current first, then a previous one during
/// its grace period). Every secret must be valid: a malformed one is a
/// configuration error, not something to skip silently.
pub fn sign(
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[&str],
) -> Result<SignedHeaders, SigningError> {
    if secrets.is_empty() {
        return Err(SigningError::NoSecrets);
    }
    let entries = secrets
        .iter()
        .enumerate()
        .map(|(index, secret)| {
            let key = decode_secret(secret).ok_or(SigningError::InvalidSecret { index })?;
            let tag = mac(&key, webhook_id, timestamp, body);
            Ok(format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag)))
        })
        .collect::<Result<Vec<_>, SigningError>>()?;
    Ok(SignedHeaders {
        id: webhook_id.to_owned(),
        timestamp,
        signature: entries.join(" "),
    })
}

/// True when any `v1` entry of `signature_header` is the signature of
/// `body` under `secret`. Comparison is constant-time; entries of other
/// versions and malformed entries are ignored; a malformed secret verifies
/// nothing. The timestamp is not checked against the clock.
pub fn verify(
    secret: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Some(key) = decode_secret(secret) else {
        return false;
    };
    let expected = mac(&key, webhook_id, timestamp, body);
    let mut matched = Choice::from(0);
    for entry in signature_header.split_ascii_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        if version != SIGNATURE_VERSION {
            continue;
        }
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        // Slices of different lengths compare unequal without looking at
        // their contents; the length of a signature is no secret.
        matched |= candidate.as_slice().ct_eq(&expected);
    }
    matched.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vector computed independently with Python's standard library:
    //
    //   python3 -c '
    //   import hmac, hashlib, base64
    //   key = bytes(range(32))
    //   print("whsec_" + base64.b64encode(key).decode())
    //   msg = b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.1674087231." \
    //         b"{\"type\":\"risk.decision\",\"decision_id\":\"dec_123\"}"
    //   print("v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())'
    const KAT_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KAT_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    const KAT_TIMESTAMP: i64 = 1674087231;
    const KAT_BODY: &[u8] = br#"{"type":"risk.decision","decision_id":"dec_123"}"#;
    const KAT_SIGNATURE: &str = "v1,9xpKInH9Or6fMZ2TG9Bca8YoJGrqNzmqZDa8nKwXBys=";

    #[test]
    fn known_answer_vector() {
        let signed = sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[KAT_SECRET]).unwrap();
        assert_eq!(
            signed,
            SignedHeaders {
                id: KAT_ID.to_owned(),
                timestamp: KAT_TIMESTAMP,
                signature: KAT_SIGNATURE.to_owned(),
            }
        );
        assert!(verify(
            KAT_SECRET,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            KAT_SIGNATURE
        ));
    }

    #[test]
    fn reference_implementation_vector() {
        // The vector of the Standard Webhooks reference library's own tests
        // (standardwebhooks 1.0.1, `test_sign`): an unpadded 24-byte secret.
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let signed = sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            body,
            &[secret],
        )
        .unwrap();
        assert_eq!(
            signed.signature,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn two_secrets_give_two_entries_each_verifiable() {
        let current = crate::secrets::new_webhook_secret();
        let previous = crate::secrets::new_webhook_secret();
        let body = br#"{"result":"approve"}"#;
        let signed = sign("msg_1", 1_700_000_000, body, &[&current, &previous]).unwrap();
        let entries: Vec<&str> = signed.signature.split(' ').collect();
        assert_eq!(entries.len(), 2, "{}", signed.signature);
        assert!(entries.iter().all(|e| e.starts_with("v1,")));
        assert_ne!(entries[0], entries[1]);
        // Current first.
        let only_current = sign("msg_1", 1_700_000_000, body, &[&current]).unwrap();
        assert_eq!(entries[0], only_current.signature);

        for secret in [&current, &previous] {
            assert!(verify(
                secret,
                "msg_1",
                1_700_000_000,
                body,
                &signed.signature
            ));
        }
        let stranger = crate::secrets::new_webhook_secret();
        assert!(!verify(
            &stranger,
            "msg_1",
            1_700_000_000,
            body,
            &signed.signature
        ));
    }

    #[test]
    fn tampering_fails_verification() {
        let h = sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[KAT_SECRET]).unwrap();
        let v = |id: &str, ts: i64, body: &[u8], sig: &str| verify(KAT_SECRET, id, ts, body, sig);
        assert!(v(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &h.signature));
        // Body, id, timestamp.
        let tampered_body = br#"{"type":"risk.decision","decision_id":"dec_124"}"#;
        assert!(!v(KAT_ID, KAT_TIMESTAMP, tampered_body, &h.signature));
        assert!(!v(KAT_ID, KAT_TIMESTAMP, b"", &h.signature));
        assert!(!v("msg_other", KAT_TIMESTAMP, KAT_BODY, &h.signature));
        assert!(!v(KAT_ID, KAT_TIMESTAMP + 1, KAT_BODY, &h.signature));
        // Moving the separator between id and timestamp changes the message.
        assert!(!v(
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.1",
            674087231,
            KAT_BODY,
            &h.signature
        ));
        // The signature itself: one flipped character, wrong version, junk.
        let flipped = h.signature.replacen("v1,9", "v1,8", 1);
        assert!(!v(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &flipped));
        let v2 = h.signature.replacen("v1,", "v2,", 1);
        assert!(!v(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &v2));
        let stripped = h.signature.trim_start_matches("v1,");
        assert!(!v(KAT_ID, KAT_TIMESTAMP, KAT_BODY, stripped));
        for junk in ["", " ", "v1,", "v1,!!!", "v1", ",", "v1,AAAA"] {
            assert!(!v(KAT_ID, KAT_TIMESTAMP, KAT_BODY, junk), "{junk:?}");
        }
    }

    #[test]
    fn any_matching_v1_entry_is_enough() {
        let h = sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[KAT_SECRET]).unwrap();
        let other = sign(
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &[&crate::secrets::new_webhook_secret()],
        )
        .unwrap();
        let header = format!("v1a,xyz {} garbage {}", other.signature, h.signature);
        assert!(verify(KAT_SECRET, KAT_ID, KAT_TIMESTAMP, KAT_BODY, &header));
    }

    #[test]
    fn non_utf8_bodies_are_signed_as_bytes() {
        let body = [0xff, 0x00, 0xfe];
        let h = sign("id", 1, &body, &[KAT_SECRET]).unwrap();
        assert!(verify(KAT_SECRET, "id", 1, &body, &h.signature));
        assert!(!verify(KAT_SECRET, "id", 1, &[0xff, 0x00], &h.signature));
    }

    #[test]
    fn bad_secrets_are_errors() {
        for bad in [
            "",
            "whsec_",
            "whsec_not base64!",
            "whsec_%%%%",
            // The right bytes without the prefix, or with another one.
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            // URL-safe alphabet is not the standard one.
            "whsec_-_-_",
        ] {
            assert_eq!(
                sign("id", 1, b"{}", &[bad]),
                Err(SigningError::InvalidSecret { index: 0 }),
                "{bad:?}"
            );
            assert!(!verify(bad, "id", 1, b"{}", "v1,AAAA"), "{bad:?}");
        }
        // The position names which one; a bad previous secret is an error too.
        assert_eq!(
            sign("id", 1, b"{}", &[KAT_SECRET, "whsec_!"]),
            Err(SigningError::InvalidSecret { index: 1 })
        );
        assert_eq!(sign("id", 1, b"{}", &[]), Err(SigningError::NoSecrets));
        // The message never carries the secret.
        let msg = SigningError::InvalidSecret { index: 0 }.to_string();
        assert!(!msg.contains("AAEC"), "{msg}");
    }

    #[test]
    fn secrets_with_or_without_padding_decode() {
        // 32 bytes: our own secrets carry one `=`; the same key unpadded signs alike.
        let unpadded = KAT_SECRET.trim_end_matches('=');
        assert_eq!(
            sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[unpadded])
                .unwrap()
                .signature,
            KAT_SIGNATURE
        );
    }

    #[test]
    fn the_standardwebhooks_crate_accepts_our_signatures() {
        use axum::http::{HeaderMap, HeaderValue};

        let current = crate::secrets::new_webhook_secret();
        let previous = crate::secrets::new_webhook_secret();
        let body =
            br#"{"type":"risk.decision","decision_id":"dec_1","result":{"action":"approve"}}"#;
        // The reference verifier checks the timestamp against its clock (±5 min).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signed = sign("msg_rg_1", now, body, &[&current, &previous]).unwrap();

        let mut headers = HeaderMap::new();
        headers.insert(HEADER_ID, HeaderValue::from_str(&signed.id).unwrap());
        headers.insert(
            HEADER_TIMESTAMP,
            HeaderValue::from_str(&signed.timestamp.to_string()).unwrap(),
        );
        headers.insert(
            HEADER_SIGNATURE,
            HeaderValue::from_str(&signed.signature).unwrap(),
        );

        for secret in [&current, &previous] {
            let webhook = standardwebhooks::Webhook::new(secret).unwrap();
            webhook.verify(body, &headers).unwrap();
        }
        let stranger =
            standardwebhooks::Webhook::new(&crate::secrets::new_webhook_secret()).unwrap();
        assert!(stranger.verify(body, &headers).is_err());
        let current_hook = standardwebhooks::Webhook::new(&current).unwrap();
        assert!(current_hook.verify(b"{}", &headers).is_err());

        // And the other way round: its signature verifies with ours.
        let theirs = current_hook.sign("msg_rg_1", now, body).unwrap();
        assert!(verify(&current, "msg_rg_1", now, body, &theirs));
    }
}
