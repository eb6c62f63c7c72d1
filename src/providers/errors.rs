//! What went wrong with a provider answer, phrased for a job's `reason`.
//!
//! Both are pure: [`MappingError`] is a 2xx body that holds no event, and
//! [`error_reason`] turns a non-2xx body into one short line such as
//! `"404 RequestNotFound: request id is not found"`. The body is the
//! provider's own answer (it never holds our credentials), but it is still
//! untrusted text: control characters are dropped and the length is bounded
//! before it reaches logs or the database.

use std::fmt;

use serde_json::Value;

use super::Provider;

/// A successful (2xx) provider answer that holds no recognizable event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError(pub String);

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MappingError {}

/// Longest piece of provider text (code, message or raw body) kept in a reason.
const SNIPPET_MAX: usize = 200;

/// Control characters removed, whitespace runs (newlines included) collapsed
/// to one space, at most `max` chars (an ellipsis marks a cut).
pub(crate) fn clean_text(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() {
            continue;
        }
        if count >= max {
            out.push('…');
            return out;
        }
        if pending_space {
            if count + 1 >= max {
                out.push('…');
                return out;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Longest error code kept (codes are identifiers, not prose).
const CODE_MAX: usize = 64;

/// A non-empty, cleaned string of at most `max` characters (numbers
/// accepted: some codes are numeric).
fn piece(v: Option<&Value>, max: usize) -> Option<String> {
    let raw = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let cleaned = clean_text(&raw, max);
    (!cleaned.is_empty()).then_some(cleaned)
}

fn join(status: u16, code: Option<String>, message: Option<String>) -> Option<String> {
    match (code, message) {
        (Some(code), Some(message)) if code != message => {
            Some(format!("{status} {code}: {message}"))
        }
        (Some(text), _) | (None, Some(text)) => Some(format!("{status} {text}")),
        (None, None) => None,
    }
}

/// Reads the error shapes the three providers document:
/// - Fingerprint v4 / v3: `{"error": {"code", "message"}}`;
/// - Fingerprint v3 plain form and FingerprintIQ: `{"error": "text"}`;
/// - Stytch: `{"status_code", "request_id", "error_type", "error_message", "error_url"}`.
///
/// Every shape is tried whatever the provider (a proxy or gateway in front of
/// it may answer in another one); `provider` only orders the attempts.
fn structured(provider: Provider, status: u16, body: &Value) -> Option<String> {
    let stytch = || {
        join(
            status,
            piece(body.get("error_type"), CODE_MAX),
            piece(body.get("error_message"), SNIPPET_MAX),
        )
    };
    let nested = || match body.get("error") {
        Some(Value::Object(e)) => join(
            status,
            piece(e.get("code"), CODE_MAX).or_else(|| piece(e.get("name"), CODE_MAX)),
            piece(e.get("message"), SNIPPET_MAX),
        ),
        Some(other) => join(status, None, piece(Some(other), SNIPPET_MAX)),
        None => None,
    };
    let flat = || {
        join(
            status,
            piece(body.get("code"), CODE_MAX),
            piece(body.get("message"), SNIPPET_MAX),
        )
    };
    match provider {
        Provider::Stytch => stytch().or_else(nested).or_else(flat),
        Provider::Fingerprint | Provider::Fingerprintiq => nested().or_else(stytch).or_else(flat),
    }
}

/// One short line saying why a provider call did not give an event: the
/// status, the provider's error code and its message, or `HTTP <status>`
/// and the start of the body when the body is not a known error shape.
pub fn error_reason(provider: Provider, status: u16, body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Some(reason) = structured(provider, status, &value) {
            return reason;
        }
    }
    let snippet = clean_text(&String::from_utf8_lossy(body), SNIPPET_MAX);
    if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/providers/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn fingerprint_v4_error_fixtures() {
        let cases = [
            ("error_403_subscription_not_active.json", 403, "403 subscription_not_active: forbidden"),
            ("error_403_wrong_region.json", 403, "403 wrong_region: wrong region"),
            ("get_event_400_event_id_invalid.json", 400, "400 request_cannot_be_parsed: invalid event_id"),
            ("get_event_400_ruleset_not_found.json", 400, "400 ruleset_not_found: ruleset not found"),
            (
                "get_event_403_secret_api_key_not_found.json",
                403,
                "403 secret_api_key_not_found: no fingerprint workspace found for specified secret API key",
            ),
            (
                "get_event_403_secret_api_key_required.json",
                403,
                "403 secret_api_key_required: secret API key in header is missing or empty",
            ),
            ("get_event_404_event_not_found.json", 404, "404 event_not_found: event id not found"),
            ("get_event_429_too_many_requests.json", 429, "429 too_many_requests: too many requests"),
            (
                "get_event_429_too_many_search_requests.json",
                429,
                "429 too_many_requests: too many search requests",
            ),
            ("get_event_500_internal_server_error.json", 500, "500 failed: internal server error"),
            ("get_event_504_search_timeout_exceeded.json", 504, "504 failed: gateway timeout"),
        ];
        for (file, status, want) in cases {
            let body = fixture(&format!("fingerprint/v4/{file}"));
            assert_eq!(
                error_reason(Provider::Fingerprint, status, &body),
                want,
                "{file}"
            );
        }
    }

    #[test]
    fn fingerprint_v3_error_fixtures() {
        let cases = [
            (
                "error_403_subscription_not_active.json",
                403,
                "403 SubscriptionNotActive: forbidden",
            ),
            (
                "error_429_too_many_requests.json",
                429,
                "429 TooManyRequests: too many requests",
            ),
            (
                "error_429_too_many_requests_plain.json",
                429,
                "429 too many requests",
            ),
            (
                "get_event_403_token_not_found.json",
                403,
                "403 TokenNotFound: secret key is not found",
            ),
            (
                "get_event_403_token_required.json",
                403,
                "403 TokenRequired: secret key is required",
            ),
            (
                "get_event_403_wrong_region.json",
                403,
                "403 WrongRegion: wrong region",
            ),
            (
                "get_event_404_request_not_found.json",
                404,
                "404 RequestNotFound: request id is not found",
            ),
        ];
        for (file, status, want) in cases {
            let body = fixture(&format!("fingerprint/v3/{file}"));
            assert_eq!(
                error_reason(Provider::Fingerprint, status, &body),
                want,
                "{file}"
            );
        }
    }

    #[test]
    fn stytch_error_fixture() {
        let body = fixture("stytch/error_404_telemetry_id_not_found.json");
        let reason = error_reason(Provider::Stytch, 404, &body);
        assert!(
            reason.starts_with("404 telemetry_id_not_found: "),
            "{reason}"
        );
        assert!(!reason.contains("request-id-"), "{reason}");
    }

    #[test]
    fn fingerprintiq_error_body() {
        let body = fixture("fingerprintiq/error_404_event_not_found.json");
        assert_eq!(
            error_reason(Provider::Fingerprintiq, 404, &body),
            "404 Event not found"
        );
        assert_eq!(
            error_reason(
                Provider::Fingerprintiq,
                401,
                br#"{"error":"Invalid API key"}"#
            ),
            "401 Invalid API key"
        );
    }

    #[test]
    fn unreadable_bodies_fall_back_to_status_and_a_clean_bounded_snippet() {
        assert_eq!(error_reason(Provider::Fingerprint, 502, b""), "HTTP 502");
        assert_eq!(error_reason(Provider::Stytch, 503, b"   \n"), "HTTP 503");
        assert_eq!(
            error_reason(
                Provider::Fingerprint,
                502,
                b"<html>\r\n<b>Bad\x07 gateway</b>\n</html>"
            ),
            "HTTP 502: <html> <b>Bad gateway</b> </html>"
        );
        // JSON that is no known error shape is shown raw too.
        assert_eq!(
            error_reason(Provider::Fingerprintiq, 500, br#"{"ok":false}"#),
            r#"HTTP 500: {"ok":false}"#
        );
        let long = "x".repeat(5000);
        let reason = error_reason(Provider::Fingerprint, 500, long.as_bytes());
        assert!(
            reason.chars().count() <= 200 + "HTTP 500: …".chars().count(),
            "{}",
            reason.len()
        );
        assert!(reason.ends_with('…'));
        // Not UTF-8: replaced, never a panic.
        let reason = error_reason(Provider::Stytch, 500, &[0xff, 0xfe, b'o', b'k']);
        assert!(
            reason.starts_with("HTTP 500: ") && reason.ends_with("ok"),
            "{reason}"
        );
    }

    #[test]
    fn provider_text_is_cleaned_and_bounded() {
        let body = serde_json::json!({
            "error": {"code": format!("Bad\u{0}Code{}", "c".repeat(100)), "message": format!("line1\nline2 {}", "m".repeat(400))}
        })
        .to_string();
        let reason = error_reason(Provider::Fingerprint, 400, body.as_bytes());
        let code = format!("400 BadCode{}…: ", "c".repeat(64 - "BadCode".len()));
        assert!(reason.starts_with(&code), "{reason}");
        assert!(reason.contains("…: line1 line2 mmm"), "{reason}");
        assert!(reason.ends_with("m…"), "{reason}");
        assert_eq!(
            reason.chars().count(),
            code.chars().count() + 200 + 1,
            "{reason}"
        );
        // Same code and message are said once.
        assert_eq!(
            error_reason(
                Provider::Fingerprint,
                429,
                br#"{"error":{"code":"busy","message":"busy"}}"#
            ),
            "429 busy"
        );
    }
}
