//! Calling a provider's server API for one identification event, and sorting
//! the answer into ready, retry later, or failed for good.
//!
//! The call shapes are the providers' own (SPEC "Providers"); base URLs are
//! configurable so tests, demos and on-premises proxies can stand in.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use url::Url;

use super::errors::error_reason;
use super::{fingerprint, fingerprintiq, stytch, DeviceSignals, Provider};

/// Where each provider's API is; `None` means the provider's public host.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub fingerprint: Option<Url>,
    pub stytch: Option<Url>,
    pub fingerprintiq: Option<Url>,
}

/// A subscriber's opened credentials for one provider.
#[derive(Clone)]
pub enum Credentials {
    Fingerprint {
        secret_key: String,
        region: String,
        api_version: String,
    },
    Stytch {
        project_id: String,
        secret: String,
    },
    Fingerprintiq {
        secret_key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets, even in a debug log.
        let name = match self {
            Self::Fingerprint { .. } => "fingerprint",
            Self::Stytch { .. } => "stytch",
            Self::Fingerprintiq { .. } => "fingerprintiq",
        };
        write!(f, "Credentials({name}, ..)")
    }
}

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

impl Credentials {
    /// Rebuilds credentials from the opened secret JSON and the stored settings.
    pub fn from_stored(provider: Provider, secret: &str, settings: &str) -> Option<Self> {
        let secret: Value = serde_json::from_str(secret).ok()?;
        let settings: Value = serde_json::from_str(settings).unwrap_or(Value::Null);
        Some(match provider {
            Provider::Fingerprint => Self::Fingerprint {
                secret_key: text(&secret, "secret_key")?,
                region: text(&settings, "region").unwrap_or_else(|| "us".into()),
                api_version: text(&settings, "api_version").unwrap_or_else(|| "v4".into()),
            },
            Provider::Stytch => Self::Stytch {
                project_id: text(&secret, "project_id")?,
                secret: text(&secret, "secret")?,
            },
            Provider::Fingerprintiq => Self::Fingerprintiq {
                secret_key: text(&secret, "secret_key")?,
            },
        })
    }

    pub fn provider(&self) -> Provider {
        match self {
            Self::Fingerprint { .. } => Provider::Fingerprint,
            Self::Stytch { .. } => Provider::Stytch,
            Self::Fingerprintiq { .. } => Provider::Fingerprintiq,
        }
    }
}

/// Parses one of the literal public hosts below (covered by a unit test).
#[allow(clippy::expect_used)]
fn parse_base(s: &'static str) -> Url {
    Url::parse(s).expect("a literal public host is a valid URL")
}

/// The base URL a call goes to.
pub fn base_url(endpoints: &Endpoints, credentials: &Credentials) -> Url {
    match credentials {
        Credentials::Fingerprint { region, .. } => {
            endpoints.fingerprint.clone().unwrap_or_else(|| {
                parse_base(match region.as_str() {
                    "eu" => "https://eu.api.fpjs.io",
                    "ap" => "https://ap.api.fpjs.io",
                    _ => "https://api.fpjs.io",
                })
            })
        }
        Credentials::Stytch { project_id, .. } => endpoints.stytch.clone().unwrap_or_else(|| {
            // Stytch serves live and test projects from different hosts.
            parse_base(if project_id.starts_with("project-live-") {
                "https://api.stytch.com"
            } else {
                "https://test.stytch.com"
            })
        }),
        Credentials::Fingerprintiq { .. } => endpoints
            .fingerprintiq
            .clone()
            .unwrap_or_else(|| parse_base("https://fingerprintiq.com")),
    }
}

fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// What one call came to.
#[derive(Debug)]
pub enum FetchOutcome {
    Ready(Box<DeviceSignals>),
    /// Worth another attempt: timeouts, network errors, 5xx, 429. `not_before`
    /// is the provider's `Retry-After`, the minimum wait.
    Retry {
        reason: String,
        not_before: Option<Duration>,
    },
    /// Final: the provider refused or does not know the event (400/401/403/404…),
    /// or answered something that is not an event.
    Failed {
        reason: String,
    },
}

/// `Retry-After` as seconds or an HTTP date, capped at an hour.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(Duration::from_secs(3600)))
}

/// Calls the provider for `request_id` and classifies the answer.
pub async fn fetch(
    client: &reqwest::Client,
    endpoints: &Endpoints,
    credentials: &Credentials,
    request_id: &str,
) -> FetchOutcome {
    let base = base_url(endpoints, credentials);
    let request = match credentials {
        Credentials::Fingerprint {
            secret_key,
            api_version,
            ..
        } if api_version == "v3" => client
            .get(join(&base, &["events", request_id]))
            .header("Auth-API-Key", secret_key),
        Credentials::Fingerprint { secret_key, .. } => client
            .get(join(&base, &["v4", "events", request_id]))
            .bearer_auth(secret_key),
        Credentials::Stytch { project_id, secret } => client
            .post(join(&base, &["v1", "fingerprint", "lookup"]))
            .basic_auth(project_id, Some(secret))
            .json(&serde_json::json!({ "telemetry_id": request_id })),
        Credentials::Fingerprintiq { secret_key } => client
            .get(join(&base, &["v1", "events", request_id]))
            .bearer_auth(secret_key),
    };
    let response = match request.header("Accept", "application/json").send().await {
        Ok(response) => response,
        Err(err) => {
            let kind = if err.is_timeout() {
                "timeout"
            } else if err.is_connect() {
                "connect error"
            } else {
                "network error"
            };
            return FetchOutcome::Retry {
                reason: kind.to_owned(),
                not_before: None,
            };
        }
    };
    let status = response.status().as_u16();
    let not_before = retry_after(response.headers());
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => {
            let reason = if err.is_timeout() {
                "timeout reading body"
            } else {
                "network error reading body"
            };
            return FetchOutcome::Retry {
                reason: reason.to_owned(),
                not_before: None,
            };
        }
    };
    classify(credentials, status, not_before, &body)
}

/// Sorts a provider answer (pure, so every fixture can be run through it).
pub fn classify(
    credentials: &Credentials,
    status: u16,
    not_before: Option<Duration>,
    body: &[u8],
) -> FetchOutcome {
    let provider = credentials.provider();
    match status {
        200..=299 => {
            let parsed = match credentials {
                Credentials::Fingerprint { api_version, .. } if api_version == "v3" => {
                    fingerprint::parse_v3(body)
                }
                Credentials::Fingerprint { .. } => fingerprint::parse_v4(body),
                Credentials::Stytch { .. } => stytch::parse_lookup(body),
                Credentials::Fingerprintiq { .. } => fingerprintiq::parse_event(body),
            };
            match parsed {
                Ok(signals) => FetchOutcome::Ready(Box::new(signals)),
                Err(err) => FetchOutcome::Failed {
                    reason: format!("unreadable {} answer: {err}", provider.as_str()),
                },
            }
        }
        408 | 425 | 429 | 500..=599 => FetchOutcome::Retry {
            reason: error_reason(provider, status, body),
            not_before,
        },
        _ => FetchOutcome::Failed {
            reason: error_reason(provider, status, body),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(version: &str) -> Credentials {
        Credentials::Fingerprint {
            secret_key: "k".into(),
            region: "eu".into(),
            api_version: version.into(),
        }
    }

    #[test]
    fn regions_and_projects_pick_the_public_hosts() {
        let none = Endpoints::default();
        assert_eq!(
            base_url(&none, &fp("v4")).as_str(),
            "https://eu.api.fpjs.io/"
        );
        let live = Credentials::Stytch {
            project_id: "project-live-1".into(),
            secret: "s".into(),
        };
        assert_eq!(base_url(&none, &live).as_str(), "https://api.stytch.com/");
        let custom = Endpoints {
            fingerprint: Url::parse("http://127.0.0.1:9/x/").ok(),
            ..Default::default()
        };
        assert_eq!(
            join(&base_url(&custom, &fp("v4")), &["v4", "events", "a/b"]).as_str(),
            "http://127.0.0.1:9/x/v4/events/a%2Fb"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, later.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn statuses_are_sorted_into_retry_and_final() {
        for status in [429, 500, 502, 503, 504] {
            assert!(
                matches!(
                    classify(&fp("v4"), status, None, b"{}"),
                    FetchOutcome::Retry { .. }
                ),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404] {
            assert!(
                matches!(
                    classify(&fp("v4"), status, None, b"{}"),
                    FetchOutcome::Failed { .. }
                ),
                "{status}"
            );
        }
        assert!(matches!(
            classify(&fp("v4"), 200, None, b"<html>"),
            FetchOutcome::Failed { .. }
        ));
    }
}
