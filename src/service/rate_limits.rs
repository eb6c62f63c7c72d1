//! Per-subscriber rate limits: off until the operator sets one, then every
//! request made with the subscriber's keys counts against it.
//!
//! The operator's setting is stored (the `settings` table, one entry per
//! subscriber) and read at most once per [`LOOKUP_TTL`] per subscriber. A
//! limiter that cannot answer (Redis down) admits the request and counts the
//! failure: a checkout is never refused because the limit is unknown.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{ServiceError, ServiceResult};
use crate::metrics::Metrics;
use crate::rate_limit::{Admission, Limiter, RateLimit};
use crate::store::{Actor, NewAudit, Store, StoreError};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

/// The highest rate and burst an operator may set: above these a limit
/// protects nothing.
const MAX_PER_SECOND: f64 = 1_000_000.0;
const MAX_BURST: u64 = 1_000_000;
/// The lowest rate: one request a day.
const MIN_PER_SECOND: f64 = 1.0 / 86_400.0;

fn setting_key(subscriber_id: &str) -> String {
    format!("rate_limit:{subscriber_id}")
}

pub struct RateLimits {
    store: Arc<dyn Store>,
    limiter: Arc<dyn Limiter>,
    settings: TtlCache<Option<RateLimit>>,
    metrics: Metrics,
}

/// A subscriber's limit as the operator API shows it; both fields are
/// `null` when the subscriber has none.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitView {
    pub subscriber_id: String,
    /// Sustained requests per second.
    #[schema(example = 50.0)]
    pub requests_per_second: Option<f64>,
    /// Requests allowed at once above the sustained rate.
    #[schema(example = 100)]
    pub burst: Option<u32>,
}

impl RateLimitView {
    fn new(subscriber_id: &str, limit: Option<RateLimit>) -> Self {
        Self {
            subscriber_id: subscriber_id.to_owned(),
            requests_per_second: limit.map(|l| l.per_second),
            burst: limit.map(|l| l.burst),
        }
    }
}

impl RateLimits {
    pub fn new(store: Arc<dyn Store>, limiter: Arc<dyn Limiter>, metrics: Metrics) -> Self {
        Self {
            store,
            limiter,
            settings: TtlCache::new(LOOKUP_TTL, 100_000),
            metrics,
        }
    }

    async fn limit_of(&self, subscriber_id: &str) -> Result<Option<RateLimit>, StoreError> {
        if let Some(limit) = self.settings.get(subscriber_id) {
            return Ok(limit);
        }
        let limit = match self.store.get_setting(&setting_key(subscriber_id)).await? {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("rate limit: {e}")))?,
            ),
        };
        self.settings.put(subscriber_id, limit);
        Ok(limit)
    }

    /// Counts one request of the subscriber; a `429` refusal when over.
    pub async fn check(&self, subscriber_id: &str) -> ServiceResult<()> {
        let Some(limit) = self.limit_of(subscriber_id).await? else {
            return Ok(());
        };
        match self.limiter.admit(subscriber_id, &limit).await {
            Ok(Admission::Admitted) => Ok(()),
            Ok(Admission::Refused { retry_after }) => {
                self.metrics
                    .rate_limited
                    .with_label_values(&[subscriber_id])
                    .inc();
                Err(ServiceError::RateLimited {
                    message: format!(
                        "Rate limit exceeded: {} requests per second, burst {}",
                        limit.per_second, limit.burst
                    ),
                    retry_after: whole_seconds(retry_after),
                })
            }
            Err(err) => {
                self.metrics
                    .rate_limiter_errors
                    .with_label_values(&[self.limiter.backend()])
                    .inc();
                tracing::warn!(error = %err, "rate limiter unavailable; request admitted");
                Ok(())
            }
        }
    }

    pub async fn show(&self, subscriber_id: &str) -> ServiceResult<RateLimitView> {
        super::operator::existing(self.store.as_ref(), subscriber_id).await?;
        self.settings.remove_where(|id, _| id == subscriber_id);
        Ok(RateLimitView::new(
            subscriber_id,
            self.limit_of(subscriber_id).await?,
        ))
    }

    /// Sets the subscriber's limit from `{requests_per_second, burst?}`; the
    /// burst defaults to one second's worth (at least 1).
    pub async fn set(
        &self,
        subscriber_id: &str,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> ServiceResult<RateLimitView> {
        super::operator::existing(self.store.as_ref(), subscriber_id).await?;
        for field in body.keys() {
            if field != "requests_per_second" && field != "burst" {
                return Err(ServiceError::bad_request(format!(
                    "Unknown field '{field}': expected requests_per_second and burst"
                )));
            }
        }
        let per_second = crate::fields::required(body, "requests_per_second")?
            .as_f64()
            .filter(|r| r.is_finite() && (MIN_PER_SECOND..=MAX_PER_SECOND).contains(r))
            .ok_or_else(|| {
                ServiceError::invalid(
                    "requests_per_second",
                    "expected a number from one a day (0.0000116) to 1000000",
                )
            })?;
        let burst = match body.get("burst") {
            None | Some(Value::Null) => (per_second.ceil() as u64).max(1),
            Some(value) => crate::fields::integer_text(value)
                .and_then(|b| b.parse::<u64>().ok())
                .filter(|b| (1..=MAX_BURST).contains(b))
                .ok_or_else(|| {
                    ServiceError::invalid("burst", "expected a whole number from 1 to 1000000")
                })?,
        };
        let limit = RateLimit {
            per_second,
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
        };
        let text =
            serde_json::to_string(&limit).map_err(|_| ServiceError::internal("rate limit"))?;
        let audit = NewAudit::new(
            subscriber_id,
            actor,
            "rate_limit.set",
            "rate-limit",
            serde_json::json!({"requests_per_second": limit.per_second, "burst": limit.burst}),
        );
        self.store
            .change_setting(&setting_key(subscriber_id), Some(&text), &audit)
            .await?;
        self.settings.remove_where(|id, _| id == subscriber_id);
        tracing::info!(%subscriber_id, per_second, burst, "rate limit set");
        Ok(RateLimitView::new(subscriber_id, Some(limit)))
    }

    /// Turns the subscriber's limit off.
    pub async fn remove(&self, subscriber_id: &str, actor: &Actor) -> ServiceResult<RateLimitView> {
        super::operator::existing(self.store.as_ref(), subscriber_id).await?;
        let audit = NewAudit::new(
            subscriber_id,
            actor,
            "rate_limit.remove",
            "rate-limit",
            serde_json::json!({}),
        );
        self.store
            .change_setting(&setting_key(subscriber_id), None, &audit)
            .await?;
        self.settings.remove_where(|id, _| id == subscriber_id);
        tracing::info!(%subscriber_id, "rate limit removed");
        Ok(RateLimitView::new(subscriber_id, None))
    }
}

/// `Retry-After` counts whole seconds: rounded up, so a client that waits
/// that long is admitted.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs.max(1)
    }
}
