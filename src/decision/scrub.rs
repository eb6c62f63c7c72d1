//! Card-number scrubbing: a full card number (PAN) is never stored or logged.
//!
//! [`scrub_value`] walks a JSON value (object keys too) and replaces every card
//! number it finds with a masked form of the same length that keeps only the
//! BIN and the last four digits (`4111111111111111` → `41111111****1111`), and
//! reports where it found each one ([`FoundPan`]), so that a response can say
//! so. [`scrub_str`] does the same for one string (log and error messages).
//!
//! What counts as a card number: 13 to 19 digits passing the Luhn check,
//! bounded by non-digits, either contiguous (`4111111111111111`) or written in
//! groups of 3 to 6 digits separated by single spaces or dashes
//! (`4111 1111 1111 1111`, `3782-822463-10005`); in a JSON number, an integer of
//! 13 to 19 digits. Digits that belong to a longer contiguous run are never
//! taken apart, so a 20-digit id is not a card number. Deliberately not card
//! numbers, to keep ordinary data intact:
//! - numbers starting with `0` (no card network issues them; zero-padded ids
//!   and all-zero placeholders pass Luhn);
//! - numbers starting with `1` unless they have 15 digits (the only cards with
//!   a leading 1 are 15-digit UATP cards; Unix timestamps in milliseconds,
//!   microseconds and nanoseconds start with 1);
//! - anything inside a UUID (`8-4-4-4-12` hex digits).
//!
//! Strings with fewer than 13 ASCII digits are answered without allocating,
//! and nothing allocates until a card number is found.

use serde::Serialize;
use serde_json::{Map, Value};

/// Shortest and longest card number, in digits.
const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;
/// Digits of one group in a separated card number (`4111 1111 …`, `3782 822463 10005`).
const MIN_GROUP: usize = 3;
const MAX_GROUP: usize = 6;

/// A card number found in a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundPan {
    /// Where it was: a JSON path such as `payload.card.number`,
    /// `payload.items[2].note` or `notes` (empty for the value itself). When
    /// the card number was an object key, the path ends with the masked key.
    pub path: String,
    /// The first 6 digits, or 8 when the number has 16 digits or more (the
    /// 8-digit BINs of the networks).
    pub bin: String,
    /// The last 4 digits.
    pub last4: String,
}

/// Replaces, in place, every full card number in `value` (in object keys,
/// strings and integer numbers, at any depth) with its masked form, and
/// returns what it found (empty when nothing, without allocating). A card
/// number held as a JSON number becomes a masked string.
pub fn scrub_value(value: &mut Value) -> Vec<FoundPan> {
    let mut found = Vec::new();
    walk(value, None, &mut found);
    found
}

/// Masks every full card number in `s`; `None` when there is none.
pub fn scrub_str(s: &str) -> Option<String> {
    mask_all(s).map(|(masked, _)| masked)
}

/// An identifier as riskgate keeps it: with any card number in it masked
/// (some merchants key customers or sessions by card), so the same id is
/// found wherever it arrives and no full number is stored.
pub fn masked_id(id: &str) -> std::borrow::Cow<'_, str> {
    match scrub_str(id) {
        Some(masked) => std::borrow::Cow::Owned(masked),
        None => std::borrow::Cow::Borrowed(id),
    }
}

/// The Luhn (mod 10) check of a string of ASCII digits; `false` when it is
/// empty or holds anything but `0`–`9`.
pub fn luhn_valid(digits: &[u8]) -> bool {
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) && luhn_skipping(digits)
}

/// Luhn over the ASCII digits of `bytes`, ignoring every other byte.
fn luhn_skipping(bytes: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in bytes.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum % 10 == 0
}

/// One card number: its byte range in the scanned text and its digit count.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    digits: usize,
}

impl Hit {
    fn bin_len(&self) -> usize {
        if self.digits >= 16 {
            8
        } else {
            6
        }
    }

    /// `(bin, last4)` of the hit in `bytes`.
    fn parts(&self, bytes: &[u8]) -> (String, String) {
        let digits = || {
            bytes
                .get(self.start..self.end)
                .unwrap_or_default()
                .iter()
                .filter(|b| b.is_ascii_digit())
                .map(|&b| char::from(b))
        };
        let bin = digits().take(self.bin_len()).collect();
        let last4 = digits().skip(self.digits.saturating_sub(4)).collect();
        (bin, last4)
    }
}

/// Finds every card number in `bytes` (ASCII digits and separators; any other
/// byte, UTF-8 continuation bytes included, bounds a run).
fn scan(bytes: &[u8]) -> Vec<Hit> {
    let mut hits = Vec::new();
    if bytes.iter().filter(|b| b.is_ascii_digit()).count() < MIN_DIGITS {
        return hits;
    }
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let starts_token = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if starts_token && b.is_ascii_hexdigit() && is_uuid_at(bytes, i) {
            i += UUID_LEN;
            continue;
        }
        if !b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = run_end(bytes, i);
        scan_run(bytes, i, end, &mut hits);
        i = end;
    }
    hits
}

const UUID_LEN: usize = 36;

/// Whether a UUID (`8-4-4-4-12` hex digits, not followed by another
/// alphanumeric) starts at `i`.
fn is_uuid_at(bytes: &[u8], i: usize) -> bool {
    let Some(candidate) = bytes.get(i..i + UUID_LEN) else {
        return false;
    };
    let shape_ok = candidate.iter().enumerate().all(|(k, b)| match k {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    shape_ok
        && !bytes
            .get(i + UUID_LEN)
            .is_some_and(u8::is_ascii_alphanumeric)
}

/// End of the run of digits starting at `start`: digit groups joined by single
/// spaces or dashes.
fn run_end(bytes: &[u8], start: usize) -> usize {
    let mut j = group_end(bytes, start);
    while matches!(bytes.get(j), Some(b' ' | b'-'))
        && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
    {
        j = group_end(bytes, j + 1);
    }
    j
}

/// End of the contiguous digits starting at `start`.
fn group_end(bytes: &[u8], start: usize) -> usize {
    let mut j = start;
    while bytes.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    j
}

/// Card numbers within one run `bytes[start..end]`: windows of whole groups,
/// the longest first from each group on, never overlapping.
fn scan_run(bytes: &[u8], start: usize, end: usize, hits: &mut Vec<Hit>) {
    let mut a = start;
    while a < end {
        let first_end = group_end(bytes, a);
        let first_len = first_end - a;
        // Candidate windows from group `a`: (byte end, digit count).
        let mut windows = [(0usize, 0usize); MAX_DIGITS];
        let mut n = 0;
        let (mut g_start, mut g_end, mut total, mut groups) = (a, first_end, 0usize, 0usize);
        loop {
            let len = g_end - g_start;
            let groupable = |l: usize| (MIN_GROUP..=MAX_GROUP).contains(&l);
            if groups > 0 && !(groupable(len) && groupable(first_len)) {
                break;
            }
            total += len;
            groups += 1;
            if total > MAX_DIGITS {
                break;
            }
            if total >= MIN_DIGITS && n < windows.len() {
                windows[n] = (g_end, total);
                n += 1;
            }
            if g_end >= end {
                break;
            }
            g_start = g_end + 1;
            g_end = group_end(bytes, g_start);
        }
        let hit = windows[..n]
            .iter()
            .rev()
            .find(|&&(w_end, digits)| is_card_number(&bytes[a..w_end], digits))
            .map(|&(w_end, digits)| Hit {
                start: a,
                end: w_end,
                digits,
            });
        let next = match hit {
            Some(hit) => {
                hits.push(hit);
                hit.end
            }
            None => first_end,
        };
        // Skip the separator after the window (or after the first group).
        a = next + 1;
    }
}

/// Whether a window (digits and separators) of `digits` digits is a card number.
fn is_card_number(window: &[u8], digits: usize) -> bool {
    let plausible_prefix = match window.first() {
        Some(b'0') | None => false,
        Some(b'1') => digits == 15,
        Some(_) => true,
    };
    plausible_prefix && luhn_skipping(window)
}

/// `s` with the middle digits of every hit replaced by `*` (same length).
fn mask(s: &str, hits: &[Hit]) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    for hit in hits {
        out.push_str(s.get(copied..hit.start).unwrap_or_default());
        let keep_tail = hit.digits.saturating_sub(4);
        let mut k = 0;
        for &b in bytes.get(hit.start..hit.end).unwrap_or_default() {
            if b.is_ascii_digit() {
                let visible = k < hit.bin_len() || k >= keep_tail;
                out.push(if visible { char::from(b) } else { '*' });
                k += 1;
            } else {
                out.push(char::from(b));
            }
        }
        copied = hit.end;
    }
    out.push_str(s.get(copied..).unwrap_or_default());
    out
}

/// Masks `s` and records its hits at `path`; `None` when nothing was found.
fn scrub_at(s: &str, path: Option<&PathNode<'_>>, found: &mut Vec<FoundPan>) -> Option<String> {
    let (masked, parts) = mask_all(s)?;
    let rendered = render(path);
    for (bin, last4) in parts {
        found.push(FoundPan {
            path: rendered.clone(),
            bin,
            last4,
        });
    }
    Some(masked)
}

/// `s` with every card number masked, and the `(bin, last4)` of each; `None`
/// when there is none. Scanned again until nothing is left: two card numbers
/// can overlap (`4242 4242 4242 4242 42424 0004` holds a second one from the
/// first's last four digits on), and the scan takes only the first, so the
/// second would stay in the clear and masking the output again would change
/// it.
fn mask_all(s: &str) -> Option<(String, Vec<(String, String)>)> {
    let hits = scan(s.as_bytes());
    if hits.is_empty() {
        return None;
    }
    let mut parts: Vec<_> = hits.iter().map(|h| h.parts(s.as_bytes())).collect();
    let mut masked = mask(s, &hits);
    // Each pass masks at least three more digits, so this ends.
    loop {
        let more = scan(masked.as_bytes());
        if more.is_empty() {
            return Some((masked, parts));
        }
        parts.extend(more.iter().map(|h| h.parts(masked.as_bytes())));
        masked = mask(&masked, &more);
    }
}

/// A path to the current value, built only when a card number is found.
struct PathNode<'a> {
    parent: Option<&'a PathNode<'a>>,
    segment: Segment<'a>,
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn render(node: Option<&PathNode<'_>>) -> String {
    fn write(node: &PathNode<'_>, out: &mut String) {
        if let Some(parent) = node.parent {
            write(parent, out);
        }
        match node.segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    let mut out = String::new();
    if let Some(node) = node {
        write(node, &mut out);
    }
    out
}

fn walk(value: &mut Value, at: Option<&PathNode<'_>>, found: &mut Vec<FoundPan>) {
    match value {
        Value::String(s) => {
            if let Some(masked) = scrub_at(s, at, found) {
                *s = masked;
            }
        }
        Value::Number(number) => {
            let mut buf = [0u8; 20];
            let Some(digits) = integer_digits(number, &mut buf) else {
                return;
            };
            // ASCII digits are always UTF-8.
            let Ok(text) = std::str::from_utf8(digits) else {
                return;
            };
            if let Some(masked) = scrub_at(text, at, found) {
                *value = Value::String(masked);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let node = PathNode {
                    parent: at,
                    segment: Segment::Index(i),
                };
                walk(item, Some(&node), found);
            }
        }
        Value::Object(map) => {
            scrub_keys(map, at, found);
            for (key, item) in map.iter_mut() {
                let node = PathNode {
                    parent: at,
                    segment: Segment::Key(key),
                };
                walk(item, Some(&node), found);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// Renames every key of `map` that holds a card number to its masked form.
fn scrub_keys(map: &mut Map<String, Value>, at: Option<&PathNode<'_>>, found: &mut Vec<FoundPan>) {
    let mut renames = Vec::new();
    for key in map.keys() {
        if let Some((masked, parts)) = mask_all(key) {
            renames.push((key.clone(), masked, parts));
        }
    }
    for (old, mut new, parts) in renames {
        let Some(item) = map.remove(&old) else {
            continue;
        };
        // Two keys masking alike must not overwrite each other.
        while map.contains_key(&new) {
            new.push('*');
        }
        let node = PathNode {
            parent: at,
            segment: Segment::Key(&new),
        };
        let path = render(Some(&node));
        for (bin, last4) in parts {
            found.push(FoundPan {
                path: path.clone(),
                bin,
                last4,
            });
        }
        map.insert(new, item);
    }
}

/// The decimal digits of a non-negative integral JSON number of 13 digits or
/// more (floats only while exact, up to 2^53), written into `buf`.
fn integer_digits<'b>(number: &serde_json::Number, buf: &'b mut [u8; 20]) -> Option<&'b [u8]> {
    const SMALLEST: u64 = 1_000_000_000_000; // 13 digits
    const EXACT_F64: f64 = 9_007_199_254_740_992.0; // 2^53
    let n = match number.as_u64() {
        Some(n) => n,
        None => {
            let f = number.as_f64()?;
            if !(f.fract() == 0.0 && f >= SMALLEST as f64 && f <= EXACT_F64) {
                return None;
            }
            // Integral and within 0..=2^53: the conversion is exact.
            f as u64
        }
    };
    if n < SMALLEST {
        return None;
    }
    let mut rest = n;
    let mut start = buf.len();
    while rest > 0 {
        start -= 1;
        buf[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    buf.get(start..)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    const PANS: [&str; 10] = [
        "4111111111111111",    // Visa
        "4242424242424242",    // Visa (Stripe)
        "5555555555554444",    // Mastercard
        "378282246310005",     // Amex, 15
        "30569309025904",      // Diners, 14
        "6011000990139424",    // Discover
        "3566111111111113",    // JCB
        "4222222222222",       // Visa, 13
        "6011000000000000001", // 19
        "4111111111111111110", // Visa, 19
    ];

    fn expected_mask(pan: &str) -> String {
        let bin = if pan.len() >= 16 { 8 } else { 6 };
        pan.char_indices()
            .map(|(i, c)| {
                if i < bin || i >= pan.len() - 4 {
                    c
                } else {
                    '*'
                }
            })
            .collect()
    }

    /// Turns the last digit of a digit string into the one that passes Luhn.
    fn with_check_digit(body: &str) -> String {
        (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|s| luhn_valid(s.as_bytes()))
            .unwrap()
    }

    #[test]
    fn luhn_of_known_numbers() {
        for pan in PANS {
            assert!(luhn_valid(pan.as_bytes()), "{pan}");
        }
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b"6011000000000000004"));
        assert!(!luhn_valid(b""));
        assert!(!luhn_valid(b"4111 1111 1111 1111"));
        assert!(luhn_valid(b"0"));
        assert!(luhn_valid(b"18"));
    }

    #[test]
    fn standard_test_numbers_are_masked() {
        for pan in PANS {
            assert_eq!(scrub_str(pan).unwrap(), expected_mask(pan), "{pan}");
            let mut value = json!(pan);
            let found = scrub_value(&mut value);
            assert_eq!(value, json!(expected_mask(pan)));
            let bin = if pan.len() >= 16 {
                &pan[..8]
            } else {
                &pan[..6]
            };
            assert_eq!(
                found,
                vec![FoundPan {
                    path: String::new(),
                    bin: bin.into(),
                    last4: pan[pan.len() - 4..].into()
                }],
                "{pan}"
            );
        }
        assert_eq!(scrub_str("378282246310005").unwrap(), "378282*****0005");
        assert_eq!(scrub_str("4111111111111111").unwrap(), "41111111****1111");
    }

    #[test]
    fn separated_numbers_keep_their_separators() {
        assert_eq!(
            scrub_str("4111 1111 1111 1111").unwrap(),
            "4111 1111 **** 1111"
        );
        assert_eq!(
            scrub_str("4111-1111-1111-1111").unwrap(),
            "4111-1111-****-1111"
        );
        assert_eq!(
            scrub_str("4111-1111 1111-1111").unwrap(),
            "4111-1111 ****-1111"
        );
        assert_eq!(scrub_str("3782 822463 10005").unwrap(), "3782 82**** *0005");
        assert_eq!(
            scrub_str("6011 0000 0000 0000 001").unwrap(),
            "6011 0000 **** ***0 001"
        );
        let mut value = json!({"pan": "3056 930902 5904"});
        let found = scrub_value(&mut value);
        assert_eq!(value, json!({"pan": "3056 93**** 5904"}));
        assert_eq!(
            (found[0].bin.as_str(), found[0].last4.as_str()),
            ("305693", "5904")
        );
        // Double separators and other punctuation end a run.
        assert_eq!(scrub_str("4111  1111  1111  1111"), None);
        assert_eq!(scrub_str("4111.1111.1111.1111"), None);
        assert_eq!(scrub_str("4111--1111--1111--1111"), None);
    }

    #[test]
    fn numbers_inside_text() {
        assert_eq!(
            scrub_str("card 4111111111111111 exp 12/26, cvv 123").unwrap(),
            "card 41111111****1111 exp 12/26, cvv 123"
        );
        assert_eq!(
            scrub_str("pan=4242424242424242;").unwrap(),
            "pan=42424242****4242;"
        );
        assert_eq!(
            scrub_str("x4111111111111111y").unwrap(),
            "x41111111****1111y"
        );
        // Neighbouring numbers that are not part of it.
        assert_eq!(
            scrub_str("qty 12 4111 1111 1111 1111 12/26").unwrap(),
            "qty 12 4111 1111 **** 1111 12/26"
        );
        assert_eq!(
            scrub_str("4111111111111111 and 378282246310005").unwrap(),
            "41111111****1111 and 378282*****0005"
        );
        assert_eq!(
            scrub_str("ref 1234-4111111111111111").unwrap(),
            "ref 1234-41111111****1111"
        );
        // Non-ASCII text around it.
        assert_eq!(
            scrub_str("carte n° 4111111111111111 – merci").unwrap(),
            "carte n° 41111111****1111 – merci"
        );
        let mut value = json!("from 4111111111111111 to 5555555555554444");
        let found = scrub_value(&mut value);
        assert_eq!(value, json!("from 41111111****1111 to 55555555****4444"));
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].last4, "4444");
    }

    #[test]
    fn nested_values_report_their_paths() {
        let mut value = json!({
            "request_id": "r-1",
            "payload": {
                "transaction_amount": 12.5,
                "card": {"number": "4111 1111 1111 1111", "exp": "12/26"},
                "items": [{"sku": "a"}, "paid with 378282246310005"],
                "raw": 5555555555554444u64,
            },
            "notes": "customer read 4242-4242-4242-4242 over the phone",
            "4111111111111111": "a key",
        });
        let found = scrub_value(&mut value);
        let mut paths: Vec<_> = found.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "41111111****1111",
                "notes",
                "payload.card.number",
                "payload.items[1]",
                "payload.raw"
            ]
        );
        assert_eq!(
            value,
            json!({
                "request_id": "r-1",
                "payload": {
                    "transaction_amount": 12.5,
                    "card": {"number": "4111 1111 **** 1111", "exp": "12/26"},
                    "items": [{"sku": "a"}, "paid with 378282*****0005"],
                    "raw": "55555555****4444",
                },
                "notes": "customer read 4242-4242-****-4242 over the phone",
                "41111111****1111": "a key",
            })
        );
        let raw = found.iter().find(|f| f.path == "payload.raw").unwrap();
        assert_eq!((raw.bin.as_str(), raw.last4.as_str()), ("55555555", "4444"));
        let amex = found.iter().find(|f| f.path == "payload.items[1]").unwrap();
        assert_eq!((amex.bin.as_str(), amex.last4.as_str()), ("378282", "0005"));
    }

    #[test]
    fn overlapping_card_numbers_are_both_masked_and_masking_is_idempotent() {
        // The second number starts at the first one's last four digits.
        let text = "4242 4242 4242 4242 42424 0004";
        assert!(luhn_valid(b"4242424242424242") && luhn_valid(b"4242424240004"));
        let masked = scrub_str(text).unwrap();
        assert_eq!(masked, "4242 4242 **** 4242 42*** 0004");
        assert_eq!(scrub_str(&masked), None);
        assert_eq!(masked_id(&masked), masked.as_str());
        let mut value = json!({ text: text });
        let found = scrub_value(&mut value);
        assert_eq!(value, json!({ masked.as_str(): masked.as_str() }));
        let parts: Vec<_> = found
            .iter()
            .map(|f| (f.bin.as_str(), f.last4.as_str()))
            .collect();
        assert_eq!(
            parts,
            [
                ("42424242", "4242"),
                ("424242", "0004"),
                ("42424242", "4242"),
                ("424242", "0004")
            ]
        );
        assert!(scrub_value(&mut value).is_empty());
    }

    #[test]
    fn masked_keys_never_overwrite_each_other() {
        let mut value = json!({"41111111****1111": 1, "4111111111111111": 2});
        let found = scrub_value(&mut value);
        assert_eq!(found.len(), 1);
        assert_eq!(
            value,
            json!({"41111111****1111": 1, "41111111****1111*": 2})
        );
    }

    #[test]
    fn json_numbers() {
        let mut value = json!([
            4111111111111111u64,
            4222222222222u64,
            4111111111111111110u64
        ]);
        let found = scrub_value(&mut value);
        assert_eq!(
            value,
            json!(["41111111****1111", "422222***2222", "41111111*******1110"])
        );
        assert_eq!(found[2].path, "[2]");
        // A float holding an integer is still a card number.
        let mut value: Value = serde_json::from_str(r#"{"pan": 4111111111111111.0}"#).unwrap();
        assert_eq!(scrub_value(&mut value).len(), 1);
        assert_eq!(value, json!({"pan": "41111111****1111"}));
        // Not card numbers: amounts, Luhn failures, negatives, 20 digits, fractions.
        let mut value: Value = serde_json::from_str(
            r#"[499.99, 4111111111111112, -4111111111111111, 12345678901234567890, 4111111111111.5, 411111111111]"#,
        )
        .unwrap();
        let before = value.clone();
        assert!(scrub_value(&mut value).is_empty());
        assert_eq!(value, before);
    }

    #[test]
    fn what_is_not_a_card_number() {
        let twelve = with_check_digit("41111111111");
        let twenty = with_check_digit("4111111111111111111");
        assert_eq!(twelve.len(), 12);
        assert_eq!(twenty.len(), 20);
        let sixteen_in_twenty = format!("9999{}", PANS[0]);
        let negatives = [
            twelve.as_str(),
            twenty.as_str(),
            sixteen_in_twenty.as_str(),
            "4111111111111112",               // fails Luhn
            "4111 1111 1111 1112",            // fails Luhn
            "2024-01-15T10:30:00.123456789Z", // timestamps
            "2024-01-15 10:30:00",
            "20240115103000",
            "550e8400-e29b-41d4-a716-446655440000", // UUID
            "+1 (415) 555-2671",                    // phones
            "+44 20 7946 0958",
            "+49 1512 3456789",
            "0000000000000000", // placeholder, passes Luhn
            "0000 0000 0000 0000",
            "00000000000000000000000000000",
            "12 34 56 78 90 12 34 56", // small groups
            "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6",
            "order 123456789012 item 12345",
            "",
            "no digits at all",
            "€ 12,345,678,901,234.00",
        ];
        for s in negatives {
            assert_eq!(scrub_str(s), None, "{s:?}");
            let mut value = json!({"field": s});
            assert!(scrub_value(&mut value).is_empty(), "{s:?}");
        }
    }

    #[test]
    fn epoch_timestamps_are_not_card_numbers() {
        // Luhn-valid timestamps in ms, µs and ns: all start with 1.
        let ms = with_check_digit("170531220000");
        let us = with_check_digit("170531220000000");
        let ns = with_check_digit("170531220000000000");
        for t in [&ms, &us, &ns] {
            assert!(luhn_valid(t.as_bytes()));
            assert_eq!(scrub_str(t), None, "{t}");
            let mut value: Value = serde_json::from_str(&format!(r#"{{"at": {t}}}"#)).unwrap();
            assert!(scrub_value(&mut value).is_empty(), "{t}");
        }
        // 15-digit UATP cards do start with 1.
        let uatp = with_check_digit("10000000000000");
        assert_eq!(uatp.len(), 15);
        assert_eq!(
            scrub_str(&uatp).unwrap(),
            format!("100000*****{}", &uatp[11..])
        );
    }

    #[test]
    fn uuids_with_card_like_digits_are_left_alone() {
        // An all-digit UUID whose last groups would otherwise form a
        // Luhn-valid 16-digit window, and one with a 13+ digit tail.
        let tail = with_check_digit("123456789012345");
        let id = format!("12345678-1234-1234-{}-{}", &tail[..4], &tail[4..]);
        assert_eq!(id.len(), 36);
        assert_eq!(scrub_str(&id), None);
        let upper = "E29B41D4-1234-5678-9012-446655440000".to_owned();
        assert_eq!(scrub_str(&upper), None);
        // Groups 2 to 4 and the head of the last one would make a Luhn-valid
        // 15-digit window of groups of 3 to 6 digits.
        let window = with_check_digit("42345678901244");
        let id2 = format!("deadbeef-4234-5678-9012-{}a55440000", &window[12..]);
        assert_eq!(id2.len(), 36);
        assert_eq!(
            scrub_str(&window),
            Some(format!("423456*****{}", &window[11..]))
        );
        assert_eq!(scrub_str(&id2), None);
        assert_eq!(
            scrub_str(&id2.replace("deadbeef-", "deadbeef "))
                .as_deref()
                .map(str::len),
            Some(36)
        );
        // A card number beside a UUID is still found.
        assert_eq!(
            scrub_str(&format!("{id} 4111111111111111")).unwrap(),
            format!("{id} 41111111****1111")
        );
    }

    #[test]
    fn short_strings_take_the_fast_path() {
        assert!(scan(b"4111 1111 1111").is_empty());
        assert!(scan(b"411111111111").is_empty());
        assert_eq!(scrub_str("user 12 paid 499.99 USD"), None);
        let mut value = json!({"a": [1, 2.5, "x"], "b": null, "c": true});
        assert!(scrub_value(&mut value).is_empty());
        assert_eq!(found_capacity(), 0);
    }

    /// `scrub_value` on a clean value returns a vector that never allocated.
    fn found_capacity() -> usize {
        let mut value = json!({"request_id": "r-1", "amount": 12, "at": "2024-01-15T10:30:00Z"});
        scrub_value(&mut value).capacity()
    }

    #[test]
    fn random_strings_never_panic_and_keep_their_length() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5c7b);
        let alphabet: Vec<char> = "0123456789012345678901234567890123456789 - -a:é€"
            .chars()
            .collect();
        let mut hits = 0;
        for round in 0..20_000 {
            let len = rng.gen_range(0..64);
            let s: String = if round % 2 == 0 {
                (0..len)
                    .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
                    .collect()
            } else {
                (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            };
            let Some(masked) = scrub_str(&s) else {
                continue;
            };
            hits += 1;
            assert_eq!(masked.len(), s.len(), "{s:?}");
            for (a, b) in s.chars().zip(masked.chars()) {
                assert!(
                    a == b || (a.is_ascii_digit() && b == '*'),
                    "{s:?} → {masked:?}"
                );
            }
            assert_ne!(masked, s);
            let mut value = json!({ "k": s });
            assert!(!scrub_value(&mut value).is_empty());
            assert_eq!(value["k"], json!(masked));
        }
        // Random digit runs of 13–19 digits pass Luhn one time in ten.
        assert!(hits > 100, "{hits}");
        // Random JSON integers.
        for _ in 0..20_000 {
            let mut value = json!(rng.gen::<u64>() >> rng.gen_range(0..64));
            let _ = scrub_value(&mut value);
        }
    }
}
