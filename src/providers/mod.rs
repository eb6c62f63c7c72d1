//! Device-intelligence providers and the credentials riskgate holds for them.
//!
//! Parsing here is pure: it turns an operator's JSON into validated
//! credentials (secret part sealed by the caller, settings part shown back).

pub mod client;
pub mod errors;
pub mod fingerprint;
pub mod fingerprintiq;
#[cfg(test)]
mod risk_tests;
pub mod signals;
pub mod stytch;

pub use crate::decision::{DeviceSignals, ProviderVelocity};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::fields::{optional, required_text, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Fingerprint,
    Stytch,
    Fingerprintiq,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Self::Fingerprint, Self::Stytch, Self::Fingerprintiq];
    pub const EXPECTED: &'static str = "fingerprint, stytch or fingerprintiq";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fingerprint => "fingerprint",
            Self::Stytch => "stytch",
            Self::Fingerprintiq => "fingerprintiq",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Credentials split into what must stay secret and what may be shown.
#[derive(Debug)]
pub struct ParsedCredentials {
    /// JSON of the secret fields; sealed before it is stored.
    pub secret: String,
    /// Non-secret settings (region, API version), stored and shown in clear.
    pub settings: Value,
}

/// A credential problem, phrased for a `400` body.
#[derive(Debug, PartialEq)]
pub struct CredentialError(pub String);

const SECRET_MAX: usize = 512;

fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, CredentialError> {
    required_text(body, name, SECRET_MAX).map_err(|e| CredentialError(e.0))
}

fn choice(
    body: &Map<String, Value>,
    name: &str,
    allowed: &[&'static str],
) -> Result<&'static str, CredentialError> {
    let Some(value) = optional(body, name) else {
        return Ok(allowed[0]);
    };
    let given = text(value, name, 16).map_err(|e| CredentialError(e.0))?;
    allowed
        .iter()
        .copied()
        .find(|a| *a == given)
        .ok_or_else(|| {
            CredentialError(format!(
                "Invalid '{name}': expected one of {}",
                allowed.join(", ")
            ))
        })
}

/// Validates one provider's credentials. Unknown fields are ignored; a missing
/// one is an error naming it.
pub fn parse_credentials(
    provider: Provider,
    body: &Map<String, Value>,
) -> Result<ParsedCredentials, CredentialError> {
    match provider {
        Provider::Fingerprint => {
            let secret_key = field(body, "secret_key")?;
            let region = choice(body, "region", &["us", "eu", "ap"])?;
            let api_version = choice(body, "api_version", &["v4", "v3"])?;
            Ok(ParsedCredentials {
                secret: json!({ "secret_key": secret_key }).to_string(),
                settings: json!({ "region": region, "api_version": api_version }),
            })
        }
        Provider::Stytch => {
            let project_id = field(body, "project_id")?;
            let secret = field(body, "secret")?;
            Ok(ParsedCredentials {
                secret: json!({ "project_id": project_id, "secret": secret }).to_string(),
                // The project id is an identifier, not a secret; showing it lets an
                // operator check which Stytch project a subscriber points at.
                settings: json!({ "project_id": project_id }),
            })
        }
        Provider::Fingerprintiq => {
            let secret_key = field(body, "secret_key")?;
            Ok(ParsedCredentials {
                secret: json!({ "secret_key": secret_key }).to_string(),
                settings: json!({}),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn fingerprint_defaults_to_us_v4_and_keeps_the_key_out_of_settings() {
        let parsed = parse_credentials(
            Provider::Fingerprint,
            &obj(json!({"secret_key": "sk_1", "x": 1})),
        )
        .unwrap();
        assert_eq!(
            parsed.settings,
            json!({"region": "us", "api_version": "v4"})
        );
        assert!(!parsed.settings.to_string().contains("sk_1"));
        assert!(parsed.secret.contains("sk_1"));
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let err =
            parse_credentials(Provider::Stytch, &obj(json!({"project_id": "p"}))).unwrap_err();
        assert_eq!(err.0, "Missing 'secret' in request body");
        let err = parse_credentials(
            Provider::Fingerprint,
            &obj(json!({"secret_key": "k", "region": "mars"})),
        )
        .unwrap_err();
        assert_eq!(err.0, "Invalid 'region': expected one of us, eu, ap");
    }
}
