//! The embedded default's copy of what scoring reads about each customer.
//!
//! One process owns the SQLite file, and every write to a customer row goes
//! through that process's store, so a write-through copy answers
//! [`Customers::customer_features`](super::Customers::customer_features)
//! exactly, without a statement. Writers apply to it only after their commit
//! succeeded, and in commit order: each holds [`CustomerMemory::write_order`]
//! from before its transaction begins until the copy is updated.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use tokio::sync::{Mutex, MutexGuard};

use super::touches::Touches;
use super::{CustomerFeatures, CustomerRow, CustomerStatus, Millis};

#[derive(Debug, Clone)]
struct Remembered {
    status: CustomerStatus,
    first_seen: Millis,
    last_seen: Millis,
    decisions_allow: i64,
    decisions_review: i64,
    decisions_block: i64,
    amount_count: i64,
    amount_total: f64,
    amount_max: Option<f64>,
    fraud_labels: i64,
    /// Sorted (byte order), distinct: a lookup is a binary search, and a
    /// customer with one device costs one small allocation, not a hash table.
    devices: Vec<Box<str>>,
    /// Sorted (BIN, then last four), distinct.
    cards: Vec<(Box<str>, Box<str>)>,
}

impl Remembered {
    /// A row as the tables' defaults create it.
    fn new(first_seen: Millis, last_seen: Millis) -> Self {
        Self {
            status: CustomerStatus::Normal,
            first_seen,
            last_seen,
            decisions_allow: 0,
            decisions_review: 0,
            decisions_block: 0,
            amount_count: 0,
            amount_total: 0.0,
            amount_max: None,
            fraud_labels: 0,
            devices: Vec::new(),
            cards: Vec::new(),
        }
    }

    fn add_device(&mut self, visitor_id: &str) {
        if let Err(at) = self
            .devices
            .binary_search_by(|d| d.as_ref().cmp(visitor_id))
        {
            self.devices.insert(at, visitor_id.into());
        }
    }

    fn card_position(&self, bin: &str, last4: &str) -> Result<usize, usize> {
        self.cards
            .binary_search_by(|(b, l)| (b.as_ref(), l.as_ref()).cmp(&(bin, last4)))
    }

    fn add_card(&mut self, bin: &str, last4: &str) {
        if let Err(at) = self.card_position(bin, last4) {
            self.cards.insert(at, (bin.into(), last4.into()));
        }
    }
}

type Subscribers = HashMap<Box<str>, HashMap<Box<str>, Remembered>>;

#[derive(Default)]
pub(super) struct CustomerMemory {
    customers: RwLock<Subscribers>,
    order: Mutex<()>,
}

impl CustomerMemory {
    /// Held by a writer of customer rows from before its transaction begins
    /// until it has updated the copy, so the copy sees writes in commit order
    /// (a status set and a batch creating the same customer do not commute).
    pub(super) async fn write_order(&self) -> MutexGuard<'_, ()> {
        self.order.lock().await
    }

    // A panic while holding the lock cannot leave a half-applied entry that
    // matters more than losing the process's scoring: carry on with the data.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Subscribers> {
        self.customers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Subscribers> {
        self.customers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The copy of the tables as they stand (start-up).
    pub(super) fn rebuild(
        &self,
        customers: Vec<CustomerRow>,
        devices: Vec<(String, String, String)>,
        cards: Vec<(String, String, String, String)>,
    ) {
        let mut map = Subscribers::new();
        for c in customers {
            let remembered = Remembered {
                status: c.status,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
                decisions_allow: c.decisions_allow,
                decisions_review: c.decisions_review,
                decisions_block: c.decisions_block,
                amount_count: c.amount_count,
                amount_total: c.amount_total,
                amount_max: c.amount_max,
                fraud_labels: c.fraud_labels,
                devices: Vec::new(),
                cards: Vec::new(),
            };
            map.entry(c.subscriber_id.into())
                .or_default()
                .insert(c.user_id.into(), remembered);
        }
        for (subscriber_id, user_id, visitor_id) in devices {
            if let Some(c) = lookup_mut(&mut map, &subscriber_id, &user_id) {
                c.add_device(&visitor_id);
            }
        }
        for (subscriber_id, user_id, bin, last4) in cards {
            if let Some(c) = lookup_mut(&mut map, &subscriber_id, &user_id) {
                c.add_card(&bin, &last4);
            }
        }
        *self.write() = map;
    }

    /// What the `customer_features` statement answers.
    pub(super) fn features(
        &self,
        subscriber_id: &str,
        user_id: &str,
        visitor_id: Option<&str>,
        card: Option<(&str, &str)>,
    ) -> Option<CustomerFeatures> {
        let map = self.read();
        let c = map.get(subscriber_id)?.get(user_id)?;
        Some(CustomerFeatures {
            status: c.status,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            decisions_allow: c.decisions_allow,
            decisions_review: c.decisions_review,
            decisions_block: c.decisions_block,
            amount_count: c.amount_count,
            amount_total: c.amount_total,
            amount_max: c.amount_max,
            fraud_labels: c.fraud_labels,
            devices: count(c.devices.len()),
            cards: count(c.cards.len()),
            known_device: visitor_id
                .is_some_and(|v| c.devices.binary_search_by(|d| d.as_ref().cmp(v)).is_ok()),
            known_card: card.is_some_and(|(bin, last4)| c.card_position(bin, last4).is_ok()),
        })
    }

    /// A committed batch's customer upserts, with the statements' arithmetic
    /// (the same f64 additions, in the same order, give the same sums).
    pub(super) fn touched(&self, touches: &Touches<'_>) {
        if touches.customers.is_empty() {
            return;
        }
        let mut map = self.write();
        for d in &touches.customers {
            let c = entry(
                &mut map,
                d.subscriber_id,
                d.user_id,
                d.first_seen,
                d.last_seen,
            );
            c.first_seen = c.first_seen.min(d.first_seen);
            c.last_seen = c.last_seen.max(d.last_seen);
            c.decisions_allow += d.decisions_allow;
            c.decisions_review += d.decisions_review;
            c.decisions_block += d.decisions_block;
            c.amount_count += d.amount_count;
            c.amount_total += d.amount_total;
            c.amount_max = match (c.amount_max, d.amount_max) {
                (old, None) => old,
                (Some(old), Some(new)) if new <= old => Some(old),
                (_, new) => new,
            };
        }
        for d in &touches.devices {
            if let Some(c) = lookup_mut(&mut map, d.subscriber_id, d.user_id) {
                c.add_device(d.key);
            }
        }
        for k in &touches.cards {
            if let Some(c) = lookup_mut(&mut map, k.subscriber_id, k.user_id) {
                c.add_card(k.key.0, k.key.1);
            }
        }
    }

    /// A committed label's change to the fraud count; a customer first known
    /// from it is dated by its decision.
    pub(super) fn labeled(
        &self,
        subscriber_id: &str,
        user_id: &str,
        created_at: Millis,
        delta: i64,
    ) {
        let mut map = self.write();
        let c = entry(&mut map, subscriber_id, user_id, created_at, created_at);
        c.fraud_labels = (c.fraud_labels + delta).max(0);
    }

    /// A committed status change; a customer first known from it is seen at `at`.
    pub(super) fn status_set(
        &self,
        subscriber_id: &str,
        user_id: &str,
        status: CustomerStatus,
        at: Millis,
    ) {
        let mut map = self.write();
        entry(&mut map, subscriber_id, user_id, at, at).status = status;
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn lookup_mut<'m>(
    map: &'m mut Subscribers,
    subscriber_id: &str,
    user_id: &str,
) -> Option<&'m mut Remembered> {
    map.get_mut(subscriber_id)?.get_mut(user_id)
}

/// The customer, created as an insert would create it when absent.
fn entry<'m>(
    map: &'m mut Subscribers,
    subscriber_id: &str,
    user_id: &str,
    first_seen: Millis,
    last_seen: Millis,
) -> &'m mut Remembered {
    map.entry(subscriber_id.into())
        .or_default()
        .entry(user_id.into())
        .or_insert_with(|| Remembered::new(first_seen, last_seen))
}
