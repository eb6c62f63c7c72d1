//! Assessing a transaction and recording the decision: the device signals,
//! the velocity counters, the customer's profile and the compiled rules are
//! gathered, the pure core decides, and the decision is committed (through
//! the store's group commit, so concurrent decisions share one flush) before
//! the caller is answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::devices::Devices;
use super::rulebook::RuleBook;
use super::{ServiceError, ServiceResult};
use crate::decision::scrub::masked_id;
use crate::decision::{self, CustomerInput, Transaction};
use crate::metrics::Metrics;
use crate::secrets::random_id;
use crate::store::{
    now_millis, Actor, CallbackAttempt, CustomerFeatures, CustomerTouch, DecisionRecorded,
    DecisionRow, JobRow, Label, Millis, NewDecision, Store,
};
use crate::velocity::{VelocitySnapshot, VelocityStore, WINDOW_24H_MS};

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_MS: Millis = WINDOW_24H_MS;
/// How long the callback URL's host may take to resolve at scoring time.
const CALLBACK_DNS_TIMEOUT: Duration = Duration::from_secs(3);
/// The bound on reading the customer's features: a frozen database
/// connection answers the score 503 in time instead of holding it.
const CUSTOMER_READ_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Scoring {
    pub store: Arc<dyn Store>,
    pub velocity: Arc<dyn VelocityStore>,
    pub rulebook: Arc<RuleBook>,
    /// Each subscriber's lists, in memory: matching one costs no query.
    pub lists: Arc<super::lists::ListBook>,
    pub devices: Devices,
    pub metrics: Metrics,
    /// Whether `callback_url` may point at loopback or private addresses.
    pub allow_private_callbacks: bool,
    /// Wakes the callback handler when a decision records a callback.
    pub callback_wake: Arc<Notify>,
}

/// A stored decision with what its callback did, as its owner reads it.
pub struct DecisionDetail {
    pub row: DecisionRow,
    pub callback_job: Option<JobRow>,
    pub attempts: Vec<CallbackAttempt>,
}

fn customer_input(features: Option<CustomerFeatures>, now: Millis) -> CustomerInput {
    let Some(c) = features else {
        return CustomerInput::default();
    };
    #[allow(clippy::cast_precision_loss)]
    let (age_days, avg_amount) = (
        ((now - c.first_seen).max(0) as f64) / 86_400_000.0,
        if c.amount_count > 0 {
            c.amount_total / c.amount_count as f64
        } else {
            0.0
        },
    );
    CustomerInput {
        known: true,
        status: c.status.as_str().into(),
        age_days: (age_days * 100.0).round() / 100.0,
        decisions: c.decisions_allow + c.decisions_review + c.decisions_block,
        allows: c.decisions_allow,
        reviews: c.decisions_review,
        blocks: c.decisions_block,
        fraud_labels: c.fraud_labels,
        amount_count: c.amount_count,
        avg_amount: (avg_amount * 100.0).round() / 100.0,
        max_amount: c.amount_max.unwrap_or(0.0),
        devices: c.devices,
        cards: c.cards,
        known_device: c.known_device,
        known_card: c.known_card,
    }
}

/// The answer to a score: always valid JSON in `input` and `result`, either
/// the bytes just stored or those of the earlier decision a repeat finds.
pub struct Scored {
    pub decision_id: String,
    pub input: Arc<str>,
    pub result: Arc<str>,
    /// Whether a callback will follow.
    pub callback: bool,
}

/// Whether an assessment counts the transaction in velocity (a score) or
/// only reads the counters (a re-score, which was counted already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Velocity {
    Count,
    Read,
}

/// One assessment of a transaction: the features, the outcome, their JSON,
/// and what it tells the customer's profile.
pub struct Assessment {
    pub outcome: decision::Outcome,
    pub input_json: Arc<str>,
    pub result_json: Arc<str>,
    /// The shadow rule set's outcome, when one runs: stored, never answered.
    pub shadow_json: Option<Arc<str>>,
    pub touch: Option<CustomerTouch>,
    /// What the console searches decisions by (see
    /// [`NewDecision::ip_address`]).
    pub ip_address: Option<String>,
    pub email_domain: Option<String>,
}

impl Scoring {
    /// Scores a request body for the subscriber and records the decision.
    /// With an idempotency key, a repeat within 24 h answers the decision made
    /// the first time (and a repeat with another body is a conflict).
    pub async fn score(
        &self,
        subscriber: &str,
        body: Map<String, Value>,
        key: Option<String>,
    ) -> ServiceResult<Scored> {
        let started = Instant::now();
        // The key is stored, logged with conflicts and counted in velocity:
        // masked like every identifier, so a card number used as one is not
        // kept in full.
        let key = key.map(|k| masked_id(&k).into_owned());
        let mut tx = decision::parse_request(body, key.is_some())?;
        let claims = std::iter::once(&tx.input.subscriber_id).chain(&tx.payload_subscriber_id);
        for claim in claims {
            if crate::fields::subscriber_id(claim, "subscriber_id")? != subscriber {
                return Err(ServiceError::subscriber_mismatch());
            }
        }
        let now = now_millis();
        let since = now - IDEMPOTENCY_WINDOW_MS;
        // The body's fingerprint for idempotency, taken after card numbers were
        // masked (what is stored never derives from a full card number).
        let request_hash = match key {
            Some(_) => hex::encode(Sha256::digest(tx.fingerprint().as_bytes())),
            None => String::new(),
        };
        // A repeat is found by the insert itself (the key is unique within
        // the window), not by a read first: the repeat is assessed again and
        // the commit answers the first decision instead. Nothing it assessed
        // is kept: the customer update and the callback go only with an
        // inserted decision, and velocity counts one event id once.

        let decision_id = format!("dec_{}", random_id(24));
        let event_id = velocity_event_id(&decision_id, key.as_deref());
        let callback_url = tx.callback_url.clone();
        let callback = match &callback_url {
            Some(url) => {
                // Refused now rather than at delivery: a private address is never
                // tried (and delivery checks again, at connect time).
                let check = crate::callbacks::ssrf::check_url(url, self.allow_private_callbacks);
                tokio::time::timeout(CALLBACK_DNS_TIMEOUT, check)
                    .await
                    .map_err(|_| {
                        ServiceError::invalid("callback_url", "host did not resolve in time")
                    })?
                    .map_err(|why| ServiceError::invalid("callback_url", &why))?;
                Some(crate::callbacks::new_job(
                    &decision_id,
                    subscriber,
                    url,
                    tx.fingerprint(),
                    &event_id,
                ))
            }
            None => None,
        };
        let user_id = tx.input.user_id.clone();
        let request_id = tx.input.request_id.clone();
        let references = std::mem::take(&mut tx.references);
        let assessed = self
            .assess(subscriber, tx, event_id, Velocity::Count, now)
            .await?;
        let outcome = &assessed.outcome;
        let decision = NewDecision {
            id: decision_id,
            subscriber_id: subscriber.to_owned(),
            request_id,
            idempotency_key: key.clone(),
            request_hash: request_hash.clone(),
            input: assessed.input_json,
            result: assessed.result_json,
            risk_score: outcome.risk_score,
            risk_level: outcome.risk_level.clone(),
            action: outcome.action.as_str().to_owned(),
            rules_version: outcome.rules_version,
            callback_url,
            user_id,
            duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
            created_at: now,
            shadow: assessed.shadow_json,
            ip_address: assessed.ip_address,
            email_domain: assessed.email_domain,
            customer: assessed.touch,
            callback,
            references,
        };
        let recorded = self.store.record_decision(&decision, since).await?;
        if decision.callback.is_some() {
            self.callback_wake.notify_one();
        }
        match recorded {
            DecisionRecorded::Inserted(_) => {
                self.metrics
                    .decisions
                    .with_label_values(&[decision.action.as_str()])
                    .inc();
                Ok(Scored {
                    callback: decision.callback_url.is_some(),
                    decision_id: decision.id,
                    input: decision.input,
                    result: decision.result,
                })
            }
            DecisionRecorded::Existing(row) => {
                let key = key.as_deref().unwrap_or_default();
                replay(row, &request_hash, key)
            }
        }
    }

    /// Gathers what the decision core needs — the device signals, the rules, the
    /// velocity counters, the customer's profile — and decides.
    pub async fn assess(
        &self,
        subscriber_id: &str,
        tx: Transaction,
        event_id: String,
        velocity_mode: Velocity,
        now: Millis,
    ) -> Result<Assessment, ServiceError> {
        let (device, rules, lists) = tokio::join!(
            self.devices.lookup(
                subscriber_id,
                &tx.input.request_id,
                tx.input.session_id.as_deref(),
                tx.input.user_id.as_deref()
            ),
            self.rulebook.active(self.store.as_ref(), subscriber_id),
            self.lists.current(self.store.as_ref(), subscriber_id),
        );
        let (lookup, rules, lists) = (device?, rules?, lists?);
        let mut degraded = Vec::new();
        if lookup.cache_failed {
            // Scored without the device a session or user pointer would
            // have named; the decision says so.
            degraded.push("device".into());
        }
        let device = lookup.device;
        let evidence = device
            .as_ref()
            .map(|(event, source)| event.evidence(*source));
        let signals = evidence.as_ref().and_then(|e| e.signals);
        let event = decision::velocity_event(
            &tx.input,
            signals.and_then(|s| s.visitor_id.as_deref()),
            signals.and_then(|s| s.ip_address.as_deref()),
            event_id,
        );
        let card = tx.input.bin.as_deref().zip(tx.input.last4.as_deref());
        let visitor = event.device.as_deref();
        let (velocity, customer) = tokio::join!(
            async {
                match velocity_mode {
                    Velocity::Count => {
                        self.velocity
                            .record_and_read(subscriber_id, &event, now)
                            .await
                    }
                    Velocity::Read => self.velocity.read(subscriber_id, &event, now).await,
                }
            },
            async {
                match tx.input.user_id.as_deref() {
                    Some(user) => tokio::time::timeout(
                        CUSTOMER_READ_TIMEOUT,
                        self.store
                            .customer_features(subscriber_id, user, visitor, card),
                    )
                    .await
                    .unwrap_or_else(|_| Err(crate::store::timed_out())),
                    None => Ok(None),
                }
            }
        );
        let velocity = velocity.unwrap_or_else(|err| {
            // Checkout must not stop because the counters are unreachable; the
            // decision says it was made without them.
            tracing::warn!(error = %err, "velocity counters unavailable; scoring without them");
            degraded.push("velocity".into());
            VelocitySnapshot::default()
        });
        let customer = customer_input(customer?, now);
        let touch = tx.input.user_id.clone().map(|user_id| CustomerTouch {
            user_id,
            visitor_id: event.device.clone(),
            card: card.map(|(b, l)| (b.to_owned(), l.to_owned())),
            amount: rust_decimal::prelude::ToPrimitive::to_f64(&tx.input.amount),
            action: None,
        });
        let mut input = decision::build_input(tx, evidence.as_ref(), &velocity, customer);
        input.degraded = degraded;
        if !lists.is_empty() {
            input.lists = lists.hits(&input, now);
        }
        let (outcome, shadow) =
            decision::decide_with_shadow(&rules.live, rules.shadow.as_deref(), &input);
        if !outcome.rule_errors.is_empty() {
            self.metrics
                .rule_errors
                .inc_by(outcome.rule_errors.len() as u64);
        }
        Ok(Assessment {
            input_json: json(&input)?,
            result_json: json(&outcome)?,
            shadow_json: shadow.as_ref().map(json).transpose()?,
            outcome,
            touch,
            ip_address: input
                .ip_address
                .clone()
                .or_else(|| input.device.ip_address.clone()),
            email_domain: input.email_domain.clone(),
        })
    }

    /// One of the subscriber's decisions, with its callback's state.
    pub async fn decision(&self, subscriber: &str, id: &str) -> ServiceResult<DecisionDetail> {
        let row = self
            .store
            .get_decision(subscriber, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("Decision '{id}' not found")))?;
        self.detail(row).await
    }

    /// Labels a decision with what really happened; the audit log names
    /// `actor`.
    pub async fn label(
        &self,
        subscriber: &str,
        id: &str,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> ServiceResult<DecisionDetail> {
        let label = crate::fields::required(body, "label")?;
        let label = label
            .as_str()
            .and_then(Label::parse)
            .ok_or_else(|| ServiceError::invalid("label", "expected fraud, legit or chargeback"))?;
        let row = self
            .store
            .label_decision(subscriber, id, label, now_millis(), actor, Value::Null)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("Decision '{id}' not found")))?;
        self.detail(row).await
    }

    async fn detail(&self, row: DecisionRow) -> ServiceResult<DecisionDetail> {
        let (callback_job, attempts) = match &row.callback_url {
            Some(_) => {
                let (job, attempts) = tokio::join!(
                    self.store.latest_job(
                        &row.subscriber_id,
                        crate::store::JobKind::DecisionCallback.as_str(),
                        &row.id
                    ),
                    self.store.callback_attempts(&row.id),
                );
                (job?, attempts?)
            }
            None => (None, Vec::new()),
        };
        Ok(DecisionDetail {
            row,
            callback_job,
            attempts,
        })
    }
}

/// The id a decision's event is counted under in velocity: a repeated key
/// counts once even when two requests race, as both record the same id.
fn velocity_event_id(decision_id: &str, key: Option<&str>) -> String {
    key.map_or_else(|| decision_id.to_owned(), |k| format!("idem:{k}"))
}

fn event_id(decision: &crate::store::DecisionReplay) -> String {
    velocity_event_id(&decision.id, decision.idempotency_key.as_deref())
}

/// Serialized once: the stored row and the answer share these bytes.
fn json(value: &impl serde::Serialize) -> ServiceResult<Arc<str>> {
    serde_json::to_string(value)
        .map(Arc::from)
        .map_err(|_| ServiceError::internal("decision JSON"))
}

/// The decision an idempotent repeat answers with, unless its body differs.
fn replay(row: DecisionRow, request_hash: &str, key: &str) -> ServiceResult<Scored> {
    if row.request_hash == request_hash {
        for json in [&row.input, &row.result] {
            if serde_json::from_str::<&serde_json::value::RawValue>(json).is_err() {
                return Err(ServiceError::internal(
                    "stored decision JSON does not parse",
                ));
            }
        }
        Ok(Scored {
            callback: row.callback_url.is_some(),
            decision_id: row.id,
            input: row.input.into(),
            result: row.result.into(),
        })
    } else {
        Err(ServiceError::conflict(format!(
            "Idempotency-Key '{key}' was already used with a different request body"
        )))
    }
}

/// Rebuilds the embedded velocity counters from the decisions of the last
/// 24 hours (the Redis backend keeps its own). Answers how many were counted.
pub async fn rebuild_velocity(
    store: &dyn crate::store::Store,
    velocity: &dyn crate::velocity::VelocityStore,
) -> Result<u64, crate::store::StoreError> {
    const PAGE: i64 = 1000;
    let since = now_millis() - WINDOW_24H_MS;
    let mut after = None;
    let mut counted = 0;
    loop {
        let page = store.decisions_since(since, after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id.clone()));
        for decision in &page {
            // The event id scoring gave it, so a repeat of the key after the
            // restart is recognised as counted.
            let Some(event) = decision::replay_event(&decision.input, event_id(decision)) else {
                continue;
            };
            if velocity
                .record(&decision.subscriber_id, &event, decision.created_at)
                .await
                .is_ok()
            {
                counted += 1;
            }
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(counted)
}
