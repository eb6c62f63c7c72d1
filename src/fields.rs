//! Reading the fields of a JSON request body the way the wire contract says:
//! the checks every endpoint shares, each failing with a message that names
//! the field (`400` at the HTTP edge).

use serde_json::{Map, Value};

/// A request body or field that cannot be used, with the message the client
/// sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

impl FieldError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    pub fn missing(field: &str) -> Self {
        Self(format!("Missing '{field}' in request body"))
    }

    pub fn invalid(field: &str, why: &str) -> Self {
        Self(format!("Invalid '{field}': {why}"))
    }
}

pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, FieldError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(FieldError::bad_request(format!(
            "Invalid JSON: expected an object, got {}",
            json_kind(&other)
        ))),
        Err(err) => Err(FieldError::bad_request(format!("Invalid JSON: {err}"))),
    }
}

pub use crate::decision::gateways::{integer_text, json_kind};

/// The field's value; absent and `null` are both "missing".
pub fn required<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a Value, FieldError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(FieldError::missing(field)),
        Some(value) => Ok(value),
    }
}

/// A present, non-null field; `None` when absent or `null`.
pub fn optional<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

/// A non-empty string of at most `max` characters without control characters.
pub fn text<'a>(value: &'a Value, field: &str, max: usize) -> Result<&'a str, FieldError> {
    let Value::String(s) = value else {
        return Err(FieldError::invalid(
            field,
            &format!("expected a string, got {}", json_kind(value)),
        ));
    };
    if s.trim().is_empty() {
        return Err(FieldError::invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(FieldError::invalid(
            field,
            &format!("must be at most {max} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(s)
}

pub fn required_text<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<&'a str, FieldError> {
    text(required(body, field)?, field, max)
}

pub fn optional_text<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, FieldError> {
    optional(body, field)
        .map(|v| text(v, field, max))
        .transpose()
}

/// A subscriber id: 1–64 characters of `[A-Za-z0-9_-]`, or a JSON integer that
/// stands for its decimal form (`12` and `"12"` are the same subscriber).
pub fn subscriber_id(value: &Value, field: &str) -> Result<String, FieldError> {
    let id = match (value, integer_text(value)) {
        (Value::String(s), _) => s.clone(),
        (_, Some(text)) => text,
        _ => {
            return Err(FieldError::invalid(
                field,
                "expected a string of 1-64 characters from [A-Za-z0-9_-] or an integer",
            ))
        }
    };
    if is_subscriber_id(&id) {
        Ok(id)
    } else {
        Err(FieldError::invalid(
            field,
            "expected 1-64 characters from [A-Za-z0-9_-]",
        ))
    }
}

pub fn is_subscriber_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscriber_ids_accept_integers_and_strings_alike() {
        assert_eq!(subscriber_id(&json!(12), "subscriber_id").unwrap(), "12");
        assert_eq!(subscriber_id(&json!("12"), "subscriber_id").unwrap(), "12");
        assert_eq!(
            subscriber_id(&json!("acme_eu-1"), "subscriber_id").unwrap(),
            "acme_eu-1"
        );
        for bad in [
            json!(1.5),
            json!(""),
            json!("a b"),
            json!("x".repeat(65)),
            json!(true),
            json!([1]),
        ] {
            assert!(subscriber_id(&bad, "subscriber_id").is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse_object(b"{}").is_ok());
        let err = parse_object(b"[1]").unwrap_err();
        assert_eq!(err.0, "Invalid JSON: expected an object, got an array");
        let err = parse_object(b"request_id=1").unwrap_err();
        assert!(err.0.starts_with("Invalid JSON: "), "{}", err.0);
        assert!(parse_object(b"").is_err());
    }

    #[test]
    fn text_fields_are_bounded() {
        assert!(text(&json!("ok"), "f", 3).is_ok());
        assert!(text(&json!("toolong"), "f", 3).is_err());
        assert!(text(&json!("  "), "f", 3).is_err());
        assert!(text(&json!("a\nb"), "f", 3).is_err());
        assert!(text(&json!(5), "f", 3).is_err());
    }
}
