//! A batch's customer updates, merged: what the group commit writes to the
//! customer tables in one statement per table, and what the embedded
//! default's in-memory copy applies after the commit.

use std::collections::BTreeMap;

use super::{CustomerTouch, Millis};

/// One customer's updates in a batch, merged: seen from `first_seen` to
/// `last_seen`, the counts and amounts summed (what applying them one by one
/// would leave).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CustomerDelta<'a> {
    pub subscriber_id: &'a str,
    pub user_id: &'a str,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub decisions_allow: i64,
    pub decisions_review: i64,
    pub decisions_block: i64,
    pub amount_count: i64,
    pub amount_total: f64,
    pub amount_max: Option<f64>,
}

/// A device or a card seen for a customer in a batch: its key (the visitor
/// id, or the BIN and last four) and when it was first and last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen<'a, K> {
    pub subscriber_id: &'a str,
    pub user_id: &'a str,
    pub key: K,
    pub first_seen: Millis,
    pub last_seen: Millis,
}

impl<'a, K> Seen<'a, K> {
    fn from_span(
        ((subscriber_id, user_id, key), (first_seen, last_seen)): (
            (&'a str, &'a str, K),
            (Millis, Millis),
        ),
    ) -> Self {
        Self {
            subscriber_id,
            user_id,
            key,
            first_seen,
            last_seen,
        }
    }
}

/// A batch's customer updates, merged and in key order (the lock order).
#[derive(Debug, Default)]
pub(super) struct Touches<'a> {
    pub customers: Vec<CustomerDelta<'a>>,
    pub devices: Vec<Seen<'a, &'a str>>,
    pub cards: Vec<Seen<'a, (&'a str, &'a str)>>,
}

impl<'a> Touches<'a> {
    pub(super) fn gather(
        touches: impl Iterator<Item = (&'a str, &'a CustomerTouch, Millis, Option<&'a str>)>,
    ) -> Self {
        fn seen<'a, K: Ord>(
            map: &mut BTreeMap<(&'a str, &'a str, K), (Millis, Millis)>,
            key: (&'a str, &'a str, K),
            at: Millis,
        ) {
            let span = map.entry(key).or_insert((at, at));
            *span = (span.0.min(at), span.1.max(at));
        }
        let mut customers: BTreeMap<(&str, &str), CustomerDelta> = BTreeMap::new();
        let mut devices = BTreeMap::new();
        let mut cards = BTreeMap::new();
        for (subscriber_id, touch, at, action) in touches {
            let user_id = touch.user_id.as_str();
            let delta = customers
                .entry((subscriber_id, user_id))
                .or_insert(CustomerDelta {
                    subscriber_id,
                    user_id,
                    first_seen: at,
                    last_seen: at,
                    decisions_allow: 0,
                    decisions_review: 0,
                    decisions_block: 0,
                    amount_count: 0,
                    amount_total: 0.0,
                    amount_max: None,
                });
            delta.first_seen = delta.first_seen.min(at);
            delta.last_seen = delta.last_seen.max(at);
            match action {
                Some("allow") => delta.decisions_allow += 1,
                Some("review") => delta.decisions_review += 1,
                Some("block") => delta.decisions_block += 1,
                _ => {}
            }
            // SQLite cannot store NaN in a NOT NULL REAL column; infinities
            // would poison the sums.
            if let Some(amount) = touch.amount.filter(|a| a.is_finite()) {
                delta.amount_count += 1;
                delta.amount_total += amount;
                delta.amount_max = Some(delta.amount_max.map_or(amount, |max| max.max(amount)));
            }
            if let Some(visitor_id) = &touch.visitor_id {
                seen(
                    &mut devices,
                    (subscriber_id, user_id, visitor_id.as_str()),
                    at,
                );
            }
            if let Some((bin, last4)) = &touch.card {
                seen(
                    &mut cards,
                    (subscriber_id, user_id, (bin.as_str(), last4.as_str())),
                    at,
                );
            }
        }
        Self {
            customers: customers.into_values().collect(),
            devices: devices.into_iter().map(Seen::from_span).collect(),
            cards: cards.into_iter().map(Seen::from_span).collect(),
        }
    }
}
