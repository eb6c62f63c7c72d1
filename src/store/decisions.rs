//! Scoring decisions, their callback attempts and labels.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use super::{Actor, CustomerTouch, Millis, NewJob, StoreResult};

/// One delivery attempt of a decision's callback.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackAttempt {
    pub decision_id: String,
    /// 1 for the first attempt; (decision_id, attempt) is unique.
    pub attempt: i64,
    pub at: Millis,
    /// The HTTP status answered, if any.
    pub status_code: Option<i64>,
    /// Why the attempt failed (network error, non-2xx), if it did.
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The `webhook-id` header sent.
    pub webhook_id: String,
}

/// The outcome a subscriber reports for a decision after the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Fraud,
    Legit,
    Chargeback,
}

impl Label {
    pub const ALL: [Label; 3] = [Self::Fraud, Self::Legit, Self::Chargeback];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fraud => "fraud",
            Self::Legit => "legit",
            Self::Chargeback => "chargeback",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|label| label.as_str() == s)
    }

    /// Fraud and chargebacks count in `customers.fraud_labels`.
    pub fn is_fraud_like(self) -> bool {
        matches!(self, Self::Fraud | Self::Chargeback)
    }
}

/// A scoring decision to record.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub id: String,
    pub subscriber_id: String,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    /// The scored request, JSON. Shared with the answer to the score, which
    /// writes the same bytes.
    pub input: Arc<str>,
    /// The response given, JSON.
    pub result: Arc<str>,
    pub risk_score: f64,
    pub risk_level: String,
    pub action: String,
    pub rules_version: i64,
    pub callback_url: Option<String>,
    /// The end customer; labels on the decision count against this user.
    /// Should equal `customer.user_id` when `customer` is given.
    pub user_id: Option<String>,
    pub duration_us: i64,
    pub created_at: Millis,
    /// The shadow rule set's outcome on this decision, JSON (`version`,
    /// `risk_score`, `risk_level`, `action`, `rule_hits`); never acts.
    pub shadow: Option<Arc<str>>,
    /// The IP a list of kind `ip` matches (the request's `ip_address`, else
    /// the device's) and the request's email domain (lower case), kept
    /// beside the JSON so the console finds decisions by them through an
    /// index.
    pub ip_address: Option<String>,
    pub email_domain: Option<String>,
    /// The customer profile update that goes with the decision (same transaction).
    pub customer: Option<CustomerTouch>,
    /// A job recorded with the decision, in the same transaction, when the
    /// decision is inserted (not when an idempotent repeat finds an existing
    /// one): the decision's callback, a
    /// [`DecisionCallback`](super::JobKind::DecisionCallback) job with the
    /// decision id as `dedupe_key`.
    pub callback: Option<NewJob>,
    /// The payment's gateway references (see
    /// [`GatewayRefs`](super::GatewayRefs)), recorded with the decision, in
    /// the same transaction, when it is inserted.
    pub references: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub id: String,
    pub subscriber_id: String,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub input: String,
    pub result: String,
    pub risk_score: f64,
    pub risk_level: String,
    pub action: String,
    pub rules_version: i64,
    pub callback_url: Option<String>,
    pub user_id: Option<String>,
    pub duration_us: i64,
    pub created_at: Millis,
    pub label: Option<Label>,
    pub labeled_at: Option<Millis>,
    /// The request and result the callback sends, fixed by its first attempt
    /// (see [`Decisions::set_decision_final`]).
    pub final_input: Option<String>,
    pub final_result: Option<String>,
    pub final_at: Option<Millis>,
    /// The shadow rule set's outcome, JSON (see [`NewDecision::shadow`]).
    pub shadow: Option<String>,
}

/// How [`Decisions::record_decision`] resolved a decision.
#[derive(Debug, Clone)]
pub enum DecisionRecorded {
    /// The decision was recorded (and committed).
    Inserted(DecisionRow),
    /// A decision with the same idempotency key is within the window; it is
    /// returned and nothing was written.
    Existing(DecisionRow),
}

impl DecisionRecorded {
    pub fn row(&self) -> &DecisionRow {
        match self {
            Self::Inserted(row) | Self::Existing(row) => row,
        }
    }

    pub fn into_row(self) -> DecisionRow {
        match self {
            Self::Inserted(row) | Self::Existing(row) => row,
        }
    }
}

/// A stored decision as the start-up velocity rebuild reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionReplay {
    pub id: String,
    pub subscriber_id: String,
    pub created_at: Millis,
    pub input: String,
    pub idempotency_key: Option<String>,
}

/// Decisions, the callbacks that report them and the labels that judge them.
#[async_trait]
pub trait Decisions: Send + Sync {
    /// Records a decision, in one transaction through the group committer.
    /// With an idempotency key: a decision of the subscriber with the same key
    /// created at or after `idempotent_since` is returned as
    /// [`DecisionRecorded::Existing`] and nothing is written (also when a
    /// concurrent call wins the race); an older one loses its key, which may be
    /// reused, and the new decision is recorded. With `customer`, the
    /// customer's profile is updated in the same transaction: seen times,
    /// the decision's `action` counted, the amount, device and card. With
    /// `callback`, that job is recorded in the same transaction when the
    /// decision is inserted (never for [`DecisionRecorded::Existing`]).
    async fn record_decision(
        &self,
        decision: &NewDecision,
        idempotent_since: Millis,
    ) -> StoreResult<DecisionRecorded>;
    /// The subscriber's decision with this idempotency key created at or after `since`.
    async fn find_decision_by_idempotency(
        &self,
        subscriber_id: &str,
        key: &str,
        since: Millis,
    ) -> StoreResult<Option<DecisionRow>>;
    /// The subscriber's decision; `None` for an unknown id or another subscriber's.
    async fn get_decision(&self, subscriber_id: &str, id: &str)
        -> StoreResult<Option<DecisionRow>>;
    /// The decision of any subscriber (for workers, whose jobs name their
    /// subscriber); never answer a tenant with it unchecked.
    async fn get_decision_by_id(&self, decision_id: &str) -> StoreResult<Option<DecisionRow>>;
    /// Fixes the input and result the decision's callback sends, unless they
    /// are fixed already (the first writer wins, so every retry of a callback
    /// sends the same body). Answers whether this call set them; `false` also
    /// for an unknown decision.
    async fn set_decision_final(
        &self,
        decision_id: &str,
        final_input: &str,
        final_result: &str,
        at: Millis,
    ) -> StoreResult<bool>;
    /// Records one callback attempt; recording the same (decision, attempt)
    /// again replaces it. Fails for an unknown decision.
    async fn record_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()>;
    /// The decision's callback attempts, by attempt number.
    async fn callback_attempts(&self, decision_id: &str) -> StoreResult<Vec<CallbackAttempt>>;
    /// Sets (or replaces) the decision's label; `None` if the subscriber has no
    /// such decision. In the same transaction, the fraud-like label count of the
    /// decision's user (if any) goes up by one when the label becomes fraud-like
    /// and down by one when it stops being (the customer row is created if
    /// missing), and a `decision.label` audit entry of `actor` is written (its
    /// summary: the label, the previous one, and the fields of `context`, an
    /// object or null). The label the decision has already changes nothing:
    /// the decision is returned as it is and nothing is written.
    #[allow(clippy::too_many_arguments)]
    async fn label_decision(
        &self,
        subscriber_id: &str,
        id: &str,
        label: Label,
        at: Millis,
        actor: &Actor,
        context: serde_json::Value,
    ) -> StoreResult<Option<DecisionRow>>;
    /// Records that the customer was seen at `at` (through the group committer):
    /// seen times, device, card and amount; a decision only when `touch.action`
    /// position when given: keyset paging for the start-up velocity rebuild.
    /// Up to `limit` decisions of every subscriber created at or after `since`,
    /// ordered by (created_at, id), strictly after the `after` (created_at, id)
    /// position when given: keyset paging for the start-up velocity rebuild.
    async fn decisions_since(
        &self,
        since: Millis,
        after: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DecisionReplay>>;
}
