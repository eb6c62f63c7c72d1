//! Signed decision callbacks: the job a score records when it asks for one,
//! Standard Webhooks signing ([`signing`]), and the guard that keeps
//! deliveries to public addresses ([`ssrf`]). The delivery itself is a job
//! handler (`crate::jobs`).

pub mod signing;
pub mod ssrf;

use serde_json::json;

use crate::store::{JobKind, NewJob};

/// The job recorded with a decision that asked for a callback.
pub fn new_job(
    decision_id: &str,
    subscriber_id: &str,
    url: &str,
    masked_body: &str,
    event_id: &str,
) -> NewJob {
    NewJob {
        id: format!("job_{}", crate::secrets::random_id(20)),
        kind: JobKind::DecisionCallback.as_str().to_owned(),
        subscriber_id: subscriber_id.to_owned(),
        dedupe_key: decision_id.to_owned(),
        payload: json!({
            "decision_id": decision_id,
            "url": url,
            // The request as scored, card numbers masked: re-scoring reads it
            // again, so the final decision sees the same transaction.
            "body": masked_body,
            "event_id": event_id,
        })
        .to_string(),
        run_at: None,
    }
}

/// The `webhook-id` of a decision's callback: stable across attempts.
pub fn webhook_id(decision_id: &str) -> String {
    format!("msg_{decision_id}")
}
