//! What the fuzz targets share: an independent reading of "a card number in
//! the clear", written from the scrubber's documented definition rather than
//! from its code, so a target can check the scrubber's output against it.

use serde_json::Value;

const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;

/// Every card number left in the clear in `s`, as the scrubber's module doc
/// defines one: 13 to 19 Luhn-valid digits bounded by non-digits, contiguous
/// or in groups of 3 to 6 digits joined by single spaces or dashes; not
/// starting with `0`, starting with `1` only with 15 digits; never inside a
/// UUID, never cut out of a longer contiguous run.
pub fn clear_card_numbers(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let uuids = uuid_spans(b);
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // One run: groups of digits joined by single separators.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((start, j));
            if j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        for first in 0..groups.len() {
            for last in first..groups.len() {
                let window = &groups[first..=last];
                if window.len() > 1 && window.iter().any(|&(a, z)| !(3..=6).contains(&(z - a))) {
                    break;
                }
                let digits: Vec<u8> = window
                    .iter()
                    .flat_map(|&(a, z)| b[a..z].iter().copied())
                    .collect();
                if digits.len() > MAX_DIGITS {
                    break;
                }
                let (start, end) = (window[0].0, window[window.len() - 1].1);
                if digits.len() >= MIN_DIGITS
                    && plausible(&digits)
                    && luhn(&digits)
                    && !uuids.iter().any(|&(ua, uz)| start < uz && ua < end)
                {
                    found.push(s[start..end].to_owned());
                }
            }
        }
        i = j;
    }
    found
}

fn plausible(digits: &[u8]) -> bool {
    match digits.first() {
        Some(b'0') | None => false,
        Some(b'1') => digits.len() == 15,
        Some(_) => true,
    }
}

/// The Luhn check, written out again on purpose.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, d)| {
            let d = u32::from(d - b'0');
            if k % 2 == 1 {
                let twice = d * 2;
                twice / 10 + twice % 10
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Byte spans of UUIDs (`8-4-4-4-12` hex digits) standing as their own token.
fn uuid_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for i in 0..b.len() {
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let Some(candidate) = b.get(i..i + 36) else {
            break;
        };
        let shaped = candidate.iter().enumerate().all(|(k, c)| match k {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
        if shaped && !b.get(i + 36).is_some_and(u8::is_ascii_alphanumeric) {
            spans.push((i, i + 36));
        }
    }
    spans
}

/// Card numbers in the clear anywhere in a JSON value: in keys, strings and
/// integers (a fraction such as `4111111111111111.5` is an amount, not a card
/// number, by the scrubber's definition; so is a negative number).
pub fn clear_in_value(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(value, true, &mut found);
    found
}

/// [`clear_in_value`] in keys and strings only: for what the service computed
/// (a decision's input holds amounts in minor units and counters, whatever
/// their digits), where every number that came from the request was an
/// amount or was masked into a string already.
pub fn clear_in_text(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(value, false, &mut found);
    found
}

fn walk(value: &Value, numbers: bool, found: &mut Vec<String>) {
    match value {
        Value::String(s) => found.extend(clear_card_numbers(s)),
        Value::Number(_) if !numbers => {}
        Value::Number(n) => {
            let integral = n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 1e12 && *f <= 9_007_199_254_740_992.0)
                    .map(|f| f as u64)
            });
            if let Some(n) = integral {
                found.extend(clear_card_numbers(&n.to_string()));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, numbers, found)),
        Value::Object(map) => {
            for (k, v) in map {
                found.extend(clear_card_numbers(k));
                walk(v, numbers, found);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_sees_what_the_definition_says() {
        assert_eq!(clear_card_numbers("4111111111111111"), ["4111111111111111"]);
        assert_eq!(clear_card_numbers("x 4111 1111 1111 1111 y").len(), 1);
        assert!(clear_card_numbers("41111111****1111").is_empty());
        assert!(clear_card_numbers("99994111111111111111").is_empty());
        assert!(clear_card_numbers("0000000000000000").is_empty());
        assert!(clear_card_numbers("4111111111111112").is_empty());
    }
}
