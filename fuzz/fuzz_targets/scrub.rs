//! Card-number scrubbing (`decision::scrub`), on text and on JSON values.
//!
//! Invariants: what comes out holds no card number in the clear (checked by
//! an independent reading of the definition); scrubbing is idempotent (a
//! masked id masks to itself, so keys built from it agree wherever it
//! arrives); masking keeps the length and changes only digits, into `*`; every
//! number found is reported with its BIN and last4 taken from it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use riskgate::decision::scrub::{masked_id, scrub_str, scrub_value};
use riskgate_fuzz::{clear_card_numbers, clear_in_value};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) {
        let original = value.clone();
        let found = scrub_value(&mut value);
        let clear = clear_in_value(&value);
        assert!(clear.is_empty(), "left in the clear: {clear:?} in {value}");
        for pan in &found {
            assert!(matches!(pan.bin.len(), 6 | 8), "{pan:?}");
            assert_eq!(pan.last4.len(), 4, "{pan:?}");
            assert!(pan
                .bin
                .bytes()
                .chain(pan.last4.bytes())
                .all(|b| b.is_ascii_digit()));
        }
        if found.is_empty() {
            assert_eq!(value, original);
        }
        let again = value.clone();
        assert!(
            scrub_value(&mut value).is_empty(),
            "scrubbed twice: {again}"
        );
        assert_eq!(value, again);
    }
});

fn check_text(text: &str) {
    let Some(masked) = scrub_str(text) else {
        let clear = clear_card_numbers(text);
        assert!(clear.is_empty(), "missed {clear:?} in {text:?}");
        assert_eq!(masked_id(text), text);
        return;
    };
    assert_ne!(masked, text);
    assert_eq!(masked.len(), text.len());
    assert_eq!(masked.chars().count(), text.chars().count());
    for (a, b) in text.chars().zip(masked.chars()) {
        assert!(
            a == b || (a.is_ascii_digit() && b == '*'),
            "{text:?} → {masked:?}"
        );
    }
    let clear = clear_card_numbers(&masked);
    assert!(
        clear.is_empty(),
        "left in the clear: {clear:?} in {masked:?}"
    );
    assert_eq!(
        scrub_str(&masked),
        None,
        "scrubbing {masked:?} again changes it"
    );
    assert_eq!(masked_id(&masked), masked.as_str());
}
