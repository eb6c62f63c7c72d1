//! Helpers the provider adapters share to map answers onto
//! [`DeviceSignals`](crate::decision::DeviceSignals).

/// Tolerant field picking for the provider adapters: a missing field, a
/// `null` or a value of an unexpected type is `None`, never an error, so a
/// provider adding, dropping or reshaping a field cannot fail a mapping.
pub(crate) mod pick {
    use serde_json::Value;

    use crate::providers::errors::MappingError;

    /// Longest provider string kept in a signal (ids, names, codes).
    const TEXT_MAX: usize = 256;

    /// The body as a JSON object, or why it is not one.
    pub fn object(body: &[u8], provider: &str) -> Result<Value, MappingError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(MappingError(format!(
                "{provider} answer is not a JSON object"
            ))),
            Err(e) => Err(MappingError(format!("{provider} answer is not JSON: {e}"))),
        }
    }

    /// The value at `path` (object keys), if every step exists.
    pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
        path.iter().try_fold(v, |v, key| v.get(*key))
    }

    /// A non-empty string (a number is written out: some ids are numeric),
    /// control characters removed, at most 256 characters.
    pub fn text(v: &Value, path: &[&str]) -> Option<String> {
        let raw = match at(v, path)? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_control())
            .take(TEXT_MAX)
            .collect();
        (!cleaned.is_empty()).then_some(cleaned)
    }

    /// A boolean (`true`/`false`, also as strings).
    pub fn flag(v: &Value, path: &[&str]) -> Option<bool> {
        match at(v, path)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// A finite number (also a numeric string).
    pub fn number(v: &Value, path: &[&str]) -> Option<f64> {
        let n = match at(v, path)? {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        n.is_finite().then_some(n)
    }

    /// A whole number (a float with no fraction is accepted).
    pub fn int(v: &Value, path: &[&str]) -> Option<i64> {
        if let Some(i) = at(v, path)?.as_i64() {
            return Some(i);
        }
        let n = number(v, path)?;
        (n.fract() == 0.0 && n.abs() < 9.0e15).then_some(n as i64)
    }

    /// A number clamped to [0, 1] (confidences, probabilities).
    pub fn unit(v: &Value, path: &[&str]) -> Option<f64> {
        number(v, path).map(|n| n.clamp(0.0, 1.0))
    }

    /// `Some(true)` if any says yes, `Some(false)` if none does but one says
    /// no, `None` if none says anything.
    pub fn any(flags: &[Option<bool>]) -> Option<bool> {
        flags.iter().flatten().copied().reduce(|a, b| a || b)
    }

    /// A provider's enum-like string as a lowercase snake_case word:
    /// `notDetected` → `not_detected`, `BLOCK` → `block`. Unknown values are
    /// kept (normalized), never rejected.
    pub fn word(v: &Value, path: &[&str]) -> Option<String> {
        let raw = text(v, path)?;
        let mut out = String::with_capacity(raw.len() + 4);
        let mut prev_lower = false;
        for c in raw.chars() {
            if c.is_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            if c == '-' || c == ' ' {
                out.push('_');
            } else {
                out.extend(c.to_lowercase());
            }
        }
        Some(out)
    }

    /// Fingerprint's additive Suspect Score (a sum of Smart Signal weights,
    /// 0 to about 130 on the web; one strong signal weighs 7 to 17) mapped
    /// onto [0, 1]: `min(score / 40, 1)`, so two or three strong signals
    /// saturate it.
    pub fn suspect_score(raw: f64) -> f64 {
        (raw / 40.0).clamp(0.0, 1.0)
    }
}
