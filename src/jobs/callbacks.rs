//! Signed decision callbacks.
//!
//! A score with a `callback_url` records a `decision_callback` job in the same
//! transaction as the decision. The worker here leases it, waits (bounded by
//! `--callback-wait`) for the decision's device signals to leave `pending`,
//! re-scores with everything now known, stores that final result on the
//! decision (beside the synchronous one), and POSTs
//! `{"type": "risk.decision", decision_id, request_id, subscriber_id, result,
//! input, signals_complete}` to the URL, signed per Standard Webhooks
//! ([`signing`]). A non-2xx answer or a network error is retried on
//! `--callback-retry-schedule`; after the last retry the callback is `failed`
//! and an operator can send it again. Every attempt is recorded on the
//! decision. The `webhook-id` (`msg_<decision id>`) is the same for every
//! attempt, so receivers can deduplicate; the body is the same bytes too.
//!
//! The worker is a [`Handler`] on the job [`Runner`](super::Runner). Crash
//! safety comes from the job lease: a callback whose process died is leased
//! again when its lease expires, and delivered (again, with the same
//! `webhook-id`) by whichever process takes it. Outbound connections go only
//! to public addresses ([`ssrf`]) unless `--allow-private-callbacks`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::cache::EventStatus;
use crate::callbacks::{signing, ssrf, webhook_id};
use crate::config::Schedule;
use crate::decision::Transaction;
use crate::secrets::Sealer;
use crate::service::operator::{signing_key_context, webhook_secret_context};
use crate::service::scoring::{Scoring, Velocity};
use crate::store::{
    duration_millis, now_millis, CallbackAttempt, DecisionRow, JobKind, JobOutcome, JobRow, Millis,
    SigningScheme,
};

use super::{Backoff, Handler};

/// How often a callback waiting for device signals looks again.
const SIGNAL_POLL: Duration = Duration::from_millis(100);
/// Callbacks leased per delivery slot: the others wait for their device
/// signals, which takes no slot.
const LEASED_PER_SLOT: usize = 4;
/// An attempt's error until its outcome is recorded: what the history shows
/// of a delivery its process did not live to finish.
pub const INTERRUPTED: &str = "interrupted: the delivering process stopped before an answer";

#[derive(Debug, Clone)]
pub struct CallbackConfig {
    pub wait: Duration,
    pub timeout: Duration,
    pub schedule: Schedule,
    pub concurrency: usize,
    pub allow_private: bool,
}

struct Job {
    decision_id: String,
    url: String,
    body: String,
    event_id: String,
}

impl Job {
    fn from_row(row: &JobRow) -> Option<Self> {
        let v: Value = serde_json::from_str(&row.payload).ok()?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            decision_id: text("decision_id").unwrap_or_else(|| row.dedupe_key.clone()),
            url: text("url")?,
            body: text("body")?,
            event_id: text("event_id").unwrap_or_default(),
        })
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    decision_id: &'a str,
    request_id: &'a str,
    subscriber_id: &'a str,
    result: &'a RawValue,
    input: &'a RawValue,
    /// False when the device signals were still pending at the end of the wait.
    signals_complete: bool,
    /// The synchronous answer, for comparison.
    sync_result: &'a RawValue,
}

pub struct CallbackWorker {
    scoring: Scoring,
    sealer: Sealer,
    config: CallbackConfig,
    /// Retries of a delivery that failed, on `--callback-retry-schedule`.
    backoff: Backoff,
    client: reqwest::Client,
    /// Re-scores and POSTs in flight (`--callback-concurrency`).
    delivery: Semaphore,
}

#[async_trait]
impl Handler for CallbackWorker {
    fn kind(&self) -> JobKind {
        JobKind::DecisionCallback
    }

    fn leased(&self) -> usize {
        self.config.concurrency * LEASED_PER_SLOT
    }

    async fn run(&self, job: JobRow) {
        self.handle(job).await;
    }
}

impl CallbackWorker {
    /// Re-scores through `scoring`, the same service the score endpoint uses.
    pub fn new(scoring: Scoring, sealer: Sealer, config: CallbackConfig) -> reqwest::Result<Self> {
        let client = ssrf::client(config.allow_private, config.timeout)?;
        let delivery = Semaphore::new(config.concurrency);
        let backoff = Backoff::Schedule(config.schedule.0.clone());
        Ok(Self {
            scoring,
            sealer,
            config,
            backoff,
            client,
            delivery,
        })
    }

    async fn handle(&self, row: JobRow) {
        let Some(job) = Job::from_row(&row) else {
            let _ = self
                .scoring
                .store
                .finish_job(
                    &row.id,
                    &JobOutcome::Failed {
                        error: "unreadable callback job".into(),
                    },
                )
                .await;
            return;
        };
        match self.deliver(&row, &job).await {
            Ok(()) => {}
            Err(err) => {
                tracing::warn!(decision_id = %job.decision_id, error = %err, "callback not handled; it runs again after its lease")
            }
        }
    }

    /// Waits (without a delivery slot) until the decision's device signals
    /// have left `pending`, or the wait is over.
    async fn wait_for_signals(
        &self,
        tx: &Transaction,
        decision: &DecisionRow,
    ) -> Result<(), String> {
        let deadline = Instant::now()
            + self
                .config
                .wait
                .saturating_sub(elapsed_since(decision.created_at));
        loop {
            // Only the device's status is polled; the full re-score runs once.
            let device = self
                .scoring
                .devices
                .find(
                    &decision.subscriber_id,
                    &tx.input.request_id,
                    tx.input.session_id.as_deref(),
                    tx.input.user_id.as_deref(),
                )
                .await
                .map_err(|e| e.to_string())?;
            let settled = device
                .as_ref()
                .is_none_or(|(event, _)| event.status != EventStatus::Pending);
            if settled || Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(SIGNAL_POLL).await;
        }
    }

    /// The decision's final result: `tx` re-scored, stored on the decision
    /// (the first writer wins, so every attempt sends the same body).
    async fn final_decision(
        &self,
        job: &Job,
        tx: Transaction,
        decision: DecisionRow,
    ) -> Result<(DecisionRow, bool), String> {
        let assessed = self
            .scoring
            .assess(
                &decision.subscriber_id,
                tx,
                job.event_id.clone(),
                Velocity::Read,
                now_millis(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let at = now_millis();
        let stored_now = self
            .scoring
            .store
            .set_decision_final(
                &decision.id,
                &assessed.input_json,
                &assessed.result_json,
                at,
            )
            .await
            .map_err(|e| e.to_string())?;
        if stored_now {
            let mut decision = decision;
            decision.final_input = Some(assessed.input_json.to_string());
            decision.final_result = Some(assessed.result_json.to_string());
            decision.final_at = Some(at);
            let complete = final_complete(&decision);
            return Ok((decision, complete));
        }
        // Another process stored its final first: send that one.
        let stored = self
            .scoring
            .store
            .get_decision_by_id(&decision.id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("decision vanished")?;
        let complete = final_complete(&stored);
        Ok((stored, complete))
    }

    async fn deliver(&self, row: &JobRow, job: &Job) -> Result<(), String> {
        let store = &self.scoring.store;
        let decision = store
            .get_decision_by_id(&job.decision_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("decision not found")?;
        // The request as scored, read back once the final result is needed.
        let pending = match decision.final_result {
            Some(_) => None,
            None => {
                let body: serde_json::Map<String, Value> =
                    serde_json::from_str(&job.body).map_err(|e| format!("stored body: {e}"))?;
                let tx = crate::decision::parse(body).map_err(|e| format!("{e:?}"))?;
                self.wait_for_signals(&tx, &decision).await?;
                Some(tx)
            }
        };
        // Waiting takes no delivery slot; re-scoring and posting do.
        let _slot = self
            .delivery
            .acquire()
            .await
            .map_err(|_| "worker stopping".to_owned())?;
        let (decision, complete) = match pending {
            Some(tx) => self.final_decision(job, tx, decision).await?,
            None => {
                let complete = final_complete(&decision);
                (decision, complete)
            }
        };
        let (Some(final_result), Some(final_input)) = (
            decision.final_result.as_deref(),
            decision.final_input.as_deref(),
        ) else {
            return Err("final result missing".into());
        };
        let payload = Payload {
            kind: "risk.decision",
            decision_id: &decision.id,
            request_id: &decision.request_id,
            subscriber_id: &decision.subscriber_id,
            result: raw(final_result)?,
            input: raw(final_input)?,
            signals_complete: complete,
            sync_result: raw(&decision.result)?,
        };
        let body = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
        let secrets = self.signing_keys(&decision.subscriber_id).await?;
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let id = webhook_id(&decision.id);
        let timestamp = now_millis() / 1000;
        let signed =
            signing::sign(&id, timestamp, &body, &secret_refs).map_err(|e| e.to_string())?;

        // Numbered after the attempts already recorded, so an operator's
        // retry (which restarts the job's schedule) adds to the history.
        let number = store
            .callback_attempts(&decision.id)
            .await
            .map_or(row.attempts, |a| a.len() as i64 + 1);
        let at = now_millis();
        let mut attempt = CallbackAttempt {
            decision_id: decision.id.clone(),
            attempt: number,
            at,
            status_code: None,
            error: Some(INTERRUPTED.to_owned()),
            duration_ms: 0,
            webhook_id: id.clone(),
        };
        // Recorded before the request leaves, and completed after: a process
        // killed mid-delivery leaves the attempt in the history, as the job
        // counts it, not a gap.
        if let Err(err) = store.record_callback_attempt(&attempt).await {
            tracing::warn!(error = %err, "could not record a callback attempt");
        }
        let started = Instant::now();
        let outcome = self.post(&job.url, &signed, body).await;
        let duration = started.elapsed();
        let metrics = &self.scoring.metrics;
        metrics.callback_latency.observe(duration.as_secs_f64());
        let (status_code, error) = match &outcome {
            Ok(status) if (200..300).contains(status) => (Some(i64::from(*status)), None),
            Ok(status) => (
                Some(i64::from(*status)),
                Some(format!("receiver answered {status}")),
            ),
            Err(e) => (None, Some(e.clone())),
        };
        attempt.status_code = status_code;
        attempt.error = error.clone();
        attempt.duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        if let Err(err) = store.record_callback_attempt(&attempt).await {
            tracing::warn!(error = %err, "could not record a callback attempt");
        }
        match outcome {
            Ok(status) if (200..300).contains(&status) => {
                metrics.callbacks.with_label_values(&["delivered"]).inc();
                store
                    .finish_job(
                        &row.id,
                        &JobOutcome::Succeeded {
                            result: json!({"status": status}).to_string(),
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(decision_id = %decision.id, attempt = row.attempts, status, "callback delivered");
            }
            other => {
                let why = match other {
                    Ok(status) => format!("receiver answered {status}"),
                    Err(e) => e,
                };
                match self.backoff.next(row.attempts) {
                    Some(wait) => {
                        metrics.callbacks.with_label_values(&["retry"]).inc();
                        let run_at = now_millis() + duration_millis(wait);
                        store
                            .retry_job(&row.id, run_at, &why, false)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    None => {
                        metrics.callbacks.with_label_values(&["failed"]).inc();
                        store
                            .finish_job(&row.id, &JobOutcome::Failed { error: why.clone() })
                            .await
                            .map_err(|e| e.to_string())?;
                        tracing::warn!(decision_id = %decision.id, attempts = row.attempts, error = %why, "callback failed for good");
                    }
                }
            }
        }
        Ok(())
    }

    async fn post(
        &self,
        url: &str,
        signed: &signing::SignedHeaders,
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let url = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        ssrf::check_literal(&url, self.config.allow_private)?;
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", &signed.signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }

    /// The subscriber's signing keys, those of its scheme first: for `v1`
    /// the `whsec_` secret, for `v1a` the `whsk_` key, each with the previous
    /// one while its grace period lasts; then, for a while after a change of
    /// scheme, the keys of the scheme before.
    async fn signing_keys(&self, subscriber_id: &str) -> Result<Vec<String>, String> {
        let row = self
            .scoring
            .store
            .get_subscriber(subscriber_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("subscriber not found")?;
        let now = now_millis();
        let open_set = |current: Option<&str>,
                        previous: Option<&str>,
                        until: Option<Millis>,
                        context: &str|
         -> Result<Vec<String>, String> {
            let current = current.ok_or("no signing key for the subscriber's scheme")?;
            let mut keys = vec![self
                .sealer
                .open(current, context)
                .map_err(|e| e.to_string())?];
            if let (Some(previous), Some(until)) = (previous, until) {
                if until > now {
                    if let Ok(key) = self.sealer.open(previous, context) {
                        keys.push(key);
                    }
                }
            }
            Ok(keys)
        };
        let v1 = || {
            open_set(
                Some(&row.webhook_secret_sealed),
                row.previous_webhook_secret_sealed.as_deref(),
                row.previous_secret_expires_at,
                &webhook_secret_context(subscriber_id),
            )
        };
        let v1a = || {
            open_set(
                row.signing_key_sealed.as_deref(),
                row.previous_signing_key_sealed.as_deref(),
                row.previous_signing_key_expires_at,
                &signing_key_context(subscriber_id),
            )
        };
        let (mut keys, before) = match row.signing_scheme {
            SigningScheme::V1 => (v1()?, v1a()),
            SigningScheme::V1a => (v1a()?, v1()),
        };
        if row
            .previous_scheme_expires_at
            .is_some_and(|until| until > now)
        {
            // The scheme before is a courtesy for the grace period: a key that
            // no longer opens must not stop the callback.
            if let Ok(before) = before {
                keys.extend(before);
            }
        }
        Ok(keys)
    }
}

fn raw(s: &str) -> Result<&RawValue, String> {
    serde_json::from_str::<&RawValue>(s).map_err(|e| e.to_string())
}

fn final_complete(decision: &DecisionRow) -> bool {
    decision
        .final_input
        .as_deref()
        .and_then(|i| serde_json::from_str::<Value>(i).ok())
        .and_then(|i| {
            i.get("device_status")
                .and_then(Value::as_str)
                .map(|s| s != EventStatus::Pending.as_str())
        })
        .unwrap_or(true)
}

fn elapsed_since(at: Millis) -> Duration {
    Duration::from_millis(u64::try_from(now_millis() - at).unwrap_or(0))
}

/// A network error in a few words, without the URL's query (it may carry a
/// token of the merchant's).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_request() {
        "request failed"
    } else {
        "network error"
    };
    let mut source = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}
