//! Generating, hashing and sealing the secrets riskgate hands out or keeps.
//!
//! - API keys and the admin token are random, shown once, stored as SHA-256
//!   (a slow password hash buys nothing for 256-bit random secrets) and compared
//!   in constant time.
//! - Provider credentials and webhook signing secrets must be usable again, so
//!   they are sealed with ChaCha20-Poly1305 under a key that never enters the
//!   database: derived from `--secrets-key`, or for the embedded default
//!   generated once into a file beside the SQLite database.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const API_KEY_PREFIX: &str = "rg_live_";
pub const ADMIN_TOKEN_PREFIX: &str = "rgadm_";
const KEY_ID_LEN: usize = 12;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A short random identifier of `len` lowercase letters and digits.
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // One read of the OS generator per id, not one per character. The modulo
    // bias (256 % 36) is irrelevant for identifiers.
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares a presented secret with a stored SHA-256 hex digest in constant time.
pub fn verify_hash(presented: &str, stored_hex: &str) -> bool {
    let Ok(stored) = hex::decode(stored_hex) else {
        return false;
    };
    let presented = Sha256::digest(presented.as_bytes());
    presented.as_slice().ct_eq(&stored).into()
}

/// A freshly minted API key: the full key goes to the operator once, only the
/// hash is stored.
pub struct NewApiKey {
    pub key_id: String,
    pub api_key: String,
    pub hash: String,
}

/// `rg_live_<key id>_<43 chars of base64url>`: the prefix makes leaked keys easy to
/// find with secret scanners, the embedded key id makes lookup one indexed read.
pub fn new_api_key() -> NewApiKey {
    let key_id = random_id(KEY_ID_LEN);
    let api_key = format!(
        "{API_KEY_PREFIX}{key_id}_{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    );
    let hash = sha256_hex(&api_key);
    NewApiKey {
        key_id,
        api_key,
        hash,
    }
}

/// The key id inside a presented API key, if it has the shape of one.
pub fn key_id_of(api_key: &str) -> Option<&str> {
    let rest = api_key.strip_prefix(API_KEY_PREFIX)?;
    let (key_id, secret) = rest.split_once('_')?;
    let well_formed = key_id.len() == KEY_ID_LEN
        && key_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !secret.is_empty();
    well_formed.then_some(key_id)
}

pub fn new_admin_token() -> String {
    format!(
        "{ADMIN_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(random_bytes::<32>()))
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("--secrets-key must be at least 16 characters")]
    KeyTooShort,
    #[error("--secrets-key (RISKGATE_SECRETS_KEY) is required with a PostgreSQL database: every riskgate process must seal and open secrets with the same key")]
    KeyRequired,
    #[error("secrets key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("a sealed secret could not be opened: wrong --secrets-key, or the row was altered")]
    Open,
    #[error("the secrets key does not match the one this database's secrets were sealed with (check --secrets-key / RISKGATE_SECRETS_KEY, or the key file beside the database)")]
    Mismatch,
    #[error("database: {0}")]
    Store(String),
}

/// Seals and opens stored secrets. The associated data binds each ciphertext
/// to the row it belongs to, so a sealed value copied into another row (or
/// another subscriber's) does not open.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

const SEALED_PREFIX: &str = "v1.";

impl Sealer {
    fn from_key(key: [u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Derives the sealing key from an operator-supplied secret with HKDF-SHA256.
    pub fn from_passphrase(secret: &str) -> Result<Self, SecretsError> {
        if secret.chars().count() < 16 {
            return Err(SecretsError::KeyTooShort);
        }
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"riskgate-secrets-v1"), secret.as_bytes());
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit; expand cannot fail.
        hk.expand(b"sealing key", &mut key)
            .map_err(|_| SecretsError::KeyTooShort)?;
        Ok(Self::from_key(key))
    }

    /// Reads the key file beside an SQLite database, creating it (mode 0600) at
    /// first start.
    pub fn from_key_file(path: &Path) -> Result<Self, SecretsError> {
        let file_err = |reason: String| SecretsError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = STANDARD
                    .decode(text.trim())
                    .map_err(|e| file_err(e.to_string()))?;
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| file_err("expected 32 base64-encoded bytes".into()))?;
                Ok(Self::from_key(key))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = random_bytes::<32>();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut file) => {
                        writeln!(file, "{}", STANDARD.encode(key))
                            .and_then(|()| file.sync_all())
                            .map_err(|e| file_err(e.to_string()))?;
                        Ok(Self::from_key(key))
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::from_key_file(path)
                    }
                    Err(e) => Err(file_err(e.to_string())),
                }
            }
            Err(err) => Err(file_err(err.to_string())),
        }
    }

    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let nonce = random_bytes::<12>();
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption with a valid key and nonce has no failure mode in this AEAD.
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretsError> {
        let encoded = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretsError::Open)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretsError::Open)?;
        if bytes.len() < 12 {
            return Err(SecretsError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SecretsError::Open)?;
        String::from_utf8(plain).map_err(|_| SecretsError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_unique_and_carry_their_id() {
        let a = new_api_key();
        let b = new_api_key();
        assert_ne!(a.api_key, b.api_key);
        assert_eq!(key_id_of(&a.api_key), Some(a.key_id.as_str()));
        assert!(verify_hash(&a.api_key, &a.hash));
        assert!(!verify_hash(&b.api_key, &a.hash));
        assert!(!a.hash.contains(&a.api_key));
    }

    #[test]
    fn malformed_keys_have_no_id() {
        for key in [
            "",
            "rg_live_",
            "rg_live_short_x",
            "sk_live_abcdefghijkl_x",
            "rg_live_ABCDEFGHIJKL_x",
        ] {
            assert_eq!(key_id_of(key), None, "{key}");
        }
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let sealer = Sealer::from_passphrase("correct horse battery staple").unwrap();
        let sealed = sealer.seal("sk_secret", "sub:12:fingerprint");
        assert!(!sealed.contains("sk_secret"));
        assert_eq!(
            sealer.open(&sealed, "sub:12:fingerprint").unwrap(),
            "sk_secret"
        );
        assert!(sealer.open(&sealed, "sub:13:fingerprint").is_err());
        let other = Sealer::from_passphrase("another secret passphrase").unwrap();
        assert!(other.open(&sealed, "sub:12:fingerprint").is_err());
        assert!(sealer.open("v1.AAAA", "x").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.key");
        let first = Sealer::from_key_file(&path).unwrap();
        let sealed = first.seal("secret", "ctx");
        let second = Sealer::from_key_file(&path).unwrap();
        assert_eq!(second.open(&sealed, "ctx").unwrap(), "secret");
    }
}
