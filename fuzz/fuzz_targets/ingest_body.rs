//! A `POST /fingerprint/ingest` body, from its bytes through
//! `fields::parse_object` and `service::ingest::read_request` (the checks the
//! service makes before it touches the store).
//!
//! Invariants: a refused body is a 400 naming a field (or the body), or the
//! 403 for another subscriber's id, never anything else; an accepted one has
//! ids without a card number in the clear, masked stably (masking them again
//! changes nothing, so the ingest's cache keys are the ones scoring finds),
//! within their bounds, and a request id a URL path keeps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use riskgate::decision::scrub::masked_id;
use riskgate::fields::parse_object;
use riskgate::service::ingest::{cache_keys, read_request};
use riskgate::service::ServiceError;
use riskgate_fuzz::clear_card_numbers;

const SUBSCRIBER: &str = "acme";

fuzz_target!(|data: &[u8]| {
    let body = match parse_object(data) {
        Ok(body) => body,
        Err(err) => {
            assert!(err.0.starts_with("Invalid JSON"), "{err}");
            return;
        }
    };
    let request = match read_request(SUBSCRIBER, &body) {
        Ok(request) => request,
        Err(ServiceError::Invalid(message)) => {
            assert!(
                message.starts_with("Missing '") || message.starts_with("Invalid '"),
                "{message}"
            );
            assert!(clear_card_numbers(&message).is_empty(), "{message}");
            return;
        }
        Err(ServiceError::Forbidden(message)) => {
            assert_eq!(message, "subscriber_id does not match API key");
            return;
        }
        Err(other) => panic!("an ingest body answered {other:?}"),
    };
    for id in [&request.request_id, &request.session_id, &request.user_id] {
        assert!(!id.trim().is_empty());
        assert!(
            id.chars().count() <= 256,
            "{} characters",
            id.chars().count()
        );
        assert!(!id.chars().any(char::is_control));
        let clear = clear_card_numbers(id);
        assert!(clear.is_empty(), "card numbers kept in {id:?}: {clear:?}");
        assert_eq!(masked_id(id), *id, "masking {id:?} again changes it");
    }
    assert!(!request.request_id.chars().all(|c| c == '.'));
    let keys = cache_keys(
        SUBSCRIBER,
        &request.request_id,
        &request.session_id,
        &request.user_id,
    );
    for key in &keys {
        assert!(clear_card_numbers(key).is_empty(), "{key}");
    }
    // The same body read for another subscriber is that subscriber's refusal.
    assert!(matches!(
        read_request("someone-else", &body),
        Err(ServiceError::Forbidden(_))
    ));
});
