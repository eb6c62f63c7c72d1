//! Standard Webhooks signatures for decision callbacks
//! (<https://www.standardwebhooks.com/>).
//!
//! Each callback carries three headers:
//! - `webhook-id`: a unique message id, the same on every retry of one callback;
//! - `webhook-timestamp`: Unix seconds at the time of the attempt;
//! - `webhook-signature`: space-separated entries, one per valid key, each over
//!   `"{id}.{timestamp}.{body}"`: `v1,<base64 HMAC-SHA256>` for a symmetric
//!   secret, `v1a,<base64 Ed25519 signature>` for an asymmetric key.
//!
//! The scheme follows from the key's prefix, as the standard intends:
//! - `whsec_` + base64 of the HMAC key bytes (see
//!   [`crate::secrets::new_webhook_secret`]); the HMAC key is the decoded
//!   bytes, not the text. The receiver holds the same secret.
//! - `whsk_` + base64 of a 32-byte Ed25519 private key (the RFC 8032 seed;
//!   the 64-byte seed-and-public-key form is read too). It never leaves
//!   riskgate: the receiver holds only `whpk_` + base64 of the 32-byte public
//!   key ([`new_signing_key`], [`public_key_of`]), which cannot sign, so a
//!   leaked copy forges nothing.
//!
//! Signing with several keys lets a subscriber rotate: during the grace period
//! the callback carries a signature under the new and the old key, and a
//! receiver holding either accepts it.
//!
//! [`verify`] and [`verify_v1a`] check the signature only; a receiver also
//! rejects timestamps too far from its clock (the reference libraries allow
//! five minutes) to limit replays.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const SECRET_PREFIX: &str = "whsec_";
const SIGNING_KEY_PREFIX: &str = "whsk_";
const PUBLIC_KEY_PREFIX: &str = "whpk_";
const SIGNATURE_VERSION: &str = "v1";
const ASYMMETRIC_VERSION: &str = "v1a";

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
    /// The key at this position of the list is neither `whsec_` followed by
    /// non-empty base64 nor `whsk_` followed by the base64 of an Ed25519
    /// private key. The key itself is never put in the message.
    #[error("webhook signing key #{index} is neither a `whsec_` secret nor a `whsk_` Ed25519 key")]
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

/// An Ed25519 key pair for `v1a`: the private half is sealed and kept, the
/// public half goes to the receiver. `Debug` shows the public half only.
#[derive(Clone)]
pub struct SigningKeyPair {
    /// `whsk_…`.
    pub private_key: String,
    /// `whpk_…`.
    pub public_key: String,
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyPair")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// A fresh Ed25519 key pair from 32 bytes of the OS generator.
pub fn new_signing_key() -> SigningKeyPair {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let private_key = format!("{SIGNING_KEY_PREFIX}{}", STANDARD.encode(seed));
    // Any 32 bytes are a valid Ed25519 seed, so the fallback is unreachable;
    // it keeps this free of `expect`.
    let public = Ed25519KeyPair::from_seed_unchecked(&seed)
        .map(|pair| STANDARD.encode(pair.public_key().as_ref()))
        .unwrap_or_default();
    SigningKeyPair {
        private_key,
        public_key: format!("{PUBLIC_KEY_PREFIX}{public}"),
    }
}

/// The `whpk_` public key of a `whsk_` private key; `None` when it is not one.
pub fn public_key_of(private_key: &str) -> Option<String> {
    let pair = decode_signing_key(private_key)?;
    Some(format!(
        "{PUBLIC_KEY_PREFIX}{}",
        STANDARD.encode(pair.public_key().as_ref())
    ))
}

/// The Ed25519 key pair inside a `whsk_` key: a 32-byte seed, or the 64-byte
/// seed followed by its public key (which must match).
fn decode_signing_key(key: &str) -> Option<Ed25519KeyPair> {
    let bytes = SECRET_BASE64
        .decode(key.strip_prefix(SIGNING_KEY_PREFIX)?)
        .ok()?;
    match bytes.len() {
        32 => Ed25519KeyPair::from_seed_unchecked(&bytes).ok(),
        64 => Ed25519KeyPair::from_seed_and_public_key(&bytes[..32], &bytes[32..]).ok(),
        _ => None,
    }
}

/// The 32 bytes inside a `whpk_` public key.
fn decode_public_key(key: &str) -> Option<Vec<u8>> {
    let bytes = SECRET_BASE64
        .decode(key.strip_prefix(PUBLIC_KEY_PREFIX)?)
        .ok()?;
    (bytes.len() == 32).then_some(bytes)
}

/// `"{id}.{timestamp}.{body}"` in one buffer: Ed25519 hashes the message
/// twice, so it cannot be fed in pieces.
fn signed_content(webhook_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut content = Vec::with_capacity(webhook_id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(webhook_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// Signs `body` with each key (current first, then a previous one during its
/// grace period): a `whsec_` secret gives a `v1` entry, a `whsk_` key a `v1a`
/// one. Every key must be valid: a malformed one is a configuration error,
/// not something to skip silently.
pub fn sign(
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
    keys: &[&str],
) -> Result<SignedHeaders, SigningError> {
    if keys.is_empty() {
        return Err(SigningError::NoSecrets);
    }
    let mut content = None;
    let entries = keys
        .iter()
        .enumerate()
        .map(|(index, key)| {
            if key.starts_with(SIGNING_KEY_PREFIX) {
                let pair = decode_signing_key(key).ok_or(SigningError::InvalidSecret { index })?;
                let content =
                    content.get_or_insert_with(|| signed_content(webhook_id, timestamp, body));
                let signature = pair.sign(content);
                return Ok(format!(
                    "{ASYMMETRIC_VERSION},{}",
                    STANDARD.encode(signature.as_ref())
                ));
            }
            let secret = decode_secret(key).ok_or(SigningError::InvalidSecret { index })?;
            let tag = mac(&secret, webhook_id, timestamp, body);
            Ok(format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag)))
        })
        .collect::<Result<Vec<_>, SigningError>>()?;
    Ok(SignedHeaders {
        id: webhook_id.to_owned(),
        timestamp,
        signature: entries.join(" "),
    })
}

/// True when any `v1a` entry of `signature_header` is an Ed25519 signature
/// of `body` under the `whpk_` `public_key`: all a receiver needs. Entries of
/// other versions and malformed entries are ignored; a malformed key
/// verifies nothing. The timestamp is not checked against the clock.
pub fn verify_v1a(
    public_key: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Some(key) = decode_public_key(public_key) else {
        return false;
    };
    let key = UnparsedPublicKey::new(&ED25519, key);
    let content = signed_content(webhook_id, timestamp, body);
    signature_header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == ASYMMETRIC_VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|signature| key.verify(&content, &signature).is_ok())
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
            // The right bytes without the prefix, or with the public key's.
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "whpk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            // An Ed25519 key of the wrong length, or not base64.
            "whsk_",
            "whsk_AAECAwQF",
            "whsk_not base64!",
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

    // Ed25519 known-answer vector computed independently with Python's
    // `cryptography` package (OpenSSL underneath):
    //
    //   python3 -c '
    //   import base64
    //   from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    //   from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    //   seed = bytes(range(32)); k = Ed25519PrivateKey.from_private_bytes(seed)
    //   print("whsk_" + base64.b64encode(seed).decode())
    //   print("whpk_" + base64.b64encode(k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode())
    //   msg = b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.1674087231." \
    //         b"{\"type\":\"risk.decision\",\"decision_id\":\"dec_123\"}"
    //   print("v1a," + base64.b64encode(k.sign(msg)).decode())'
    const KAT_SIGNING_KEY: &str = "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KAT_PUBLIC_KEY: &str = "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    const KAT_V1A_SIGNATURE: &str =
        "v1a,z+Mdtyc/fuOkFkxHXct8cNZsqWITiyk5l2wXqYatJ3Vr9LFxSjkC6OvfJYcSSsPsJ+9iRo2lLyNzaP+0CQV1Dw==";

    #[test]
    fn v1a_known_answer_vector() {
        assert_eq!(
            public_key_of(KAT_SIGNING_KEY).as_deref(),
            Some(KAT_PUBLIC_KEY)
        );
        let signed = sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[KAT_SIGNING_KEY]).unwrap();
        assert_eq!(signed.signature, KAT_V1A_SIGNATURE);
        assert!(verify_v1a(
            KAT_PUBLIC_KEY,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            KAT_V1A_SIGNATURE
        ));
        // The 64-byte form (seed, then public key) is the same key.
        let seed = STANDARD.decode(&KAT_SIGNING_KEY[5..]).unwrap();
        let public = STANDARD.decode(&KAT_PUBLIC_KEY[5..]).unwrap();
        let long = format!(
            "whsk_{}",
            STANDARD.encode([seed.as_slice(), &public].concat())
        );
        assert_eq!(
            sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[&long])
                .unwrap()
                .signature,
            KAT_V1A_SIGNATURE
        );
        // ... but not with a public key that is not its own.
        let other = STANDARD.decode(&new_signing_key().public_key[5..]).unwrap();
        let mismatched = format!(
            "whsk_{}",
            STANDARD.encode([seed.as_slice(), &other].concat())
        );
        assert_eq!(
            sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[&mismatched]),
            Err(SigningError::InvalidSecret { index: 0 })
        );
    }

    #[test]
    fn new_signing_keys_are_distinct_pairs() {
        let a = new_signing_key();
        let b = new_signing_key();
        assert_ne!(a.private_key, b.private_key);
        assert_ne!(a.public_key, b.public_key);
        for pair in [&a, &b] {
            assert!(pair.private_key.starts_with("whsk_"));
            assert!(pair.public_key.starts_with("whpk_"));
            assert_eq!(STANDARD.decode(&pair.private_key[5..]).unwrap().len(), 32);
            assert_eq!(STANDARD.decode(&pair.public_key[5..]).unwrap().len(), 32);
            assert_eq!(
                public_key_of(&pair.private_key).as_deref(),
                Some(pair.public_key.as_str())
            );
        }
        // Debug output never shows the private half.
        let shown = format!("{a:?}");
        assert!(shown.contains(&a.public_key), "{shown}");
        assert!(!shown.contains(&a.private_key[5..]), "{shown}");
    }

    #[test]
    fn v1a_tampering_and_wrong_keys_fail() {
        let pair = new_signing_key();
        let h = sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[&pair.private_key]).unwrap();
        let v = |key: &str, id: &str, ts: i64, body: &[u8], sig: &str| {
            verify_v1a(key, id, ts, body, sig)
        };
        let pk = pair.public_key.as_str();
        assert!(v(pk, KAT_ID, KAT_TIMESTAMP, KAT_BODY, &h.signature));
        let tampered_body = br#"{"type":"risk.decision","decision_id":"dec_124"}"#;
        assert!(!v(pk, KAT_ID, KAT_TIMESTAMP, tampered_body, &h.signature));
        assert!(!v(pk, "msg_other", KAT_TIMESTAMP, KAT_BODY, &h.signature));
        assert!(!v(pk, KAT_ID, KAT_TIMESTAMP + 1, KAT_BODY, &h.signature));
        // Another key pair's public key, the private key, a v1 secret.
        assert!(!v(
            &new_signing_key().public_key,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &h.signature
        ));
        assert!(!v(
            &pair.private_key,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &h.signature
        ));
        assert!(!v(
            KAT_SECRET,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &h.signature
        ));
        // A v1a signature relabelled v1, or a v1 one relabelled v1a.
        let relabelled = h.signature.replacen("v1a,", "v1,", 1);
        assert!(!v(pk, KAT_ID, KAT_TIMESTAMP, KAT_BODY, &relabelled));
        assert!(!verify(
            KAT_SECRET,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &relabelled
        ));
        let hmac = sign(KAT_ID, KAT_TIMESTAMP, KAT_BODY, &[KAT_SECRET]).unwrap();
        let hmac_as_v1a = hmac.signature.replacen("v1,", "v1a,", 1);
        assert!(!v(pk, KAT_ID, KAT_TIMESTAMP, KAT_BODY, &hmac_as_v1a));
        // One flipped bit of the signature.
        let mut raw = STANDARD.decode(&h.signature[4..]).unwrap();
        raw[10] ^= 1;
        let flipped = format!("v1a,{}", STANDARD.encode(&raw));
        assert!(!v(pk, KAT_ID, KAT_TIMESTAMP, KAT_BODY, &flipped));
        for junk in ["", " ", "v1a,", "v1a,!!!", "v1a", ",", "v1a,AAAA"] {
            assert!(!v(pk, KAT_ID, KAT_TIMESTAMP, KAT_BODY, junk), "{junk:?}");
        }
        for bad_key in [
            "",
            "whpk_",
            "whpk_AAAA",
            "whpk_!!",
            "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        ] {
            assert!(
                !v(bad_key, KAT_ID, KAT_TIMESTAMP, KAT_BODY, KAT_V1A_SIGNATURE),
                "{bad_key:?}"
            );
        }
    }

    #[test]
    fn v1a_rotation_carries_both_keys() {
        let current = new_signing_key();
        let previous = new_signing_key();
        let body = br#"{"result":"approve"}"#;
        let signed = sign(
            "msg_1",
            1_700_000_000,
            body,
            &[&current.private_key, &previous.private_key],
        )
        .unwrap();
        let entries: Vec<&str> = signed.signature.split(' ').collect();
        assert_eq!(entries.len(), 2, "{}", signed.signature);
        assert!(entries.iter().all(|e| e.starts_with("v1a,")));
        // Current first; Ed25519 is deterministic, so it is the same entry.
        let only_current = sign("msg_1", 1_700_000_000, body, &[&current.private_key]).unwrap();
        assert_eq!(entries[0], only_current.signature);
        for pair in [&current, &previous] {
            assert!(verify_v1a(
                &pair.public_key,
                "msg_1",
                1_700_000_000,
                body,
                &signed.signature
            ));
            assert!(verify_v1a(
                &pair.public_key,
                "msg_1",
                1_700_000_000,
                body,
                entries[usize::from(pair.public_key == previous.public_key)]
            ));
        }
        assert!(!verify_v1a(
            &previous.public_key,
            "msg_1",
            1_700_000_000,
            body,
            entries[0]
        ));
    }

    #[test]
    fn mixed_v1_and_v1a_keys_sign_one_entry_each() {
        // A scheme change: during its grace period the old scheme's key signs too.
        let pair = new_signing_key();
        let signed = sign(
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &[&pair.private_key, KAT_SECRET],
        )
        .unwrap();
        let entries: Vec<&str> = signed.signature.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].starts_with("v1a,"));
        assert_eq!(entries[1], KAT_SIGNATURE);
        assert!(verify(
            KAT_SECRET,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &signed.signature
        ));
        assert!(verify_v1a(
            &pair.public_key,
            KAT_ID,
            KAT_TIMESTAMP,
            KAT_BODY,
            &signed.signature
        ));
        // A bad key in either position is named.
        assert_eq!(
            sign(KAT_ID, 1, KAT_BODY, &[&pair.private_key, "whsk_AAAA"]),
            Err(SigningError::InvalidSecret { index: 1 })
        );
    }

    #[test]
    fn an_independent_ed25519_verifier_accepts_v1a_signatures() {
        // ed25519-dalek shares no code with the signer (ring): it checks the
        // signature from the public key bytes alone, as a receiver would.
        use ed25519_dalek::{Signature, VerifyingKey};
        let pair = new_signing_key();
        let body = br#"{"type":"risk.decision","decision_id":"dec_9"}"#;
        let signed = sign("msg_dec_9", 1_700_000_123, body, &[&pair.private_key]).unwrap();
        let public: [u8; 32] = STANDARD
            .decode(&pair.public_key[5..])
            .unwrap()
            .try_into()
            .unwrap();
        let key = VerifyingKey::from_bytes(&public).unwrap();
        let raw: [u8; 64] = STANDARD
            .decode(&signed.signature[4..])
            .unwrap()
            .try_into()
            .unwrap();
        let signature = Signature::from_bytes(&raw);
        key.verify_strict(
            b"msg_dec_9.1700000123.{\"type\":\"risk.decision\",\"decision_id\":\"dec_9\"}",
            &signature,
        )
        .unwrap();
        assert!(key
            .verify_strict(b"msg_dec_9.1700000124.{}", &signature)
            .is_err());
    }
}
