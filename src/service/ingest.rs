//! Accepting a device-identification request id: a durable job to fetch the
//! provider's analysis of it, committed before the caller is answered, so an
//! acknowledged ingest survives a crash right after it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::devices::PendingFetches;
use super::operator::{configured_providers, rfc3339};
use super::{ServiceError, ServiceResult};
use crate::cache::{CachedEvent, EventStatus, SignalCache};
use crate::decision::scrub::masked_id;
use crate::decision::{device_risk, DeviceSignals};
use crate::fields::{optional_text, required, subscriber_id, text};
use crate::metrics::Metrics;
use crate::providers::Provider;
use crate::secrets::random_id;
use crate::store::{duration_millis, now_millis, CustomerTouch, Enqueued, JobKind, NewJob, Store};
use crate::ttl_cache::TtlCache;

const ID_MAX: usize = 256;

pub struct Ingest {
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn SignalCache>,
    /// Each subscriber's configured providers.
    pub providers: TtlCache<Vec<Provider>>,
    /// Wakes the device-fetch handler when a job is recorded.
    pub wake: Arc<Notify>,
    pub metrics: Metrics,
    /// How long a fetched device result counts as fresh (`mode: cached`).
    pub signal_ttl: Duration,
    /// Where this process alone runs the fetches: scoring learns of each
    /// one queued (see [`PendingFetches`]).
    pub pending: Option<Arc<PendingFetches>>,
}

/// The cache keys of one ingest, the same on Redis and the embedded cache.
pub fn cache_keys(
    subscriber_id: &str,
    request_id: &str,
    session_id: &str,
    user_id: &str,
) -> [String; 3] {
    [
        crate::cache::request_key(subscriber_id, request_id),
        crate::cache::session_key(subscriber_id, session_id),
        crate::cache::user_key(subscriber_id, user_id),
    ]
}

/// Request ids end up in provider URLs (`/v4/events/{id}`, percent-encoded)
/// and cache keys. Any text is accepted except `.` and `..`, which a URL path
/// would resolve away.
fn request_id(value: &serde_json::Value) -> Result<&str, ServiceError> {
    let id = text(value, "request_id", ID_MAX)?;
    if id.chars().all(|c| c == '.') {
        return Err(ServiceError::invalid(
            "request_id",
            "must not consist of dots only",
        ));
    }
    Ok(id)
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IngestMode {
    /// A durable fetch job was recorded.
    Queued,
    /// A fresh result is already cached; nothing fetched.
    Cached,
    /// A job for this request id is already pending or running.
    InFlight,
}

impl IngestMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Cached => "cached",
            Self::InFlight => "in_flight",
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    /// Always `accepted`.
    #[schema(example = "accepted")]
    status: &'static str,
    mode: IngestMode,
    /// Cache keys under which the result is (or will be) readable.
    redis_keys: [String; 3],
    request_id: String,
    user_id: String,
    session_id: String,
}

/// What an ingest body asks, validated; the ids as riskgate keeps them (any
/// card number in them masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRequest<'a> {
    pub request_id: Cow<'a, str>,
    pub session_id: Cow<'a, str>,
    pub user_id: Cow<'a, str>,
    /// The provider asked for, if any (checked against the configured ones
    /// later).
    pub provider: Option<Provider>,
}

/// Reads an ingest body for the API key's subscriber: every refusal is a
/// `400` naming the field, or a `403` when the body names another subscriber.
/// Pure: no I/O.
pub fn read_request<'a>(
    subscriber: &str,
    body: &'a Map<String, Value>,
) -> ServiceResult<IngestRequest<'a>> {
    // Absent fields are reported before malformed ones, in the documented order.
    let fields = ["request_id", "subscriber_id", "session_id", "user_id"];
    for field in fields {
        required(body, field)?;
    }
    let request_id = masked_id(request_id(required(body, "request_id")?)?);
    let claimed = subscriber_id(required(body, "subscriber_id")?, "subscriber_id")?;
    let session_id = text(required(body, "session_id")?, "session_id", ID_MAX)?;
    let user_id = text(required(body, "user_id")?, "user_id", ID_MAX)?;
    // Card numbers are masked here exactly as scoring masks them, so the
    // request, session and user keys agree and no full number is stored
    // (the request id is masked above: a provider's ids never hold one).
    let (session_id, user_id) = (masked_id(session_id), masked_id(user_id));
    if claimed != subscriber {
        return Err(ServiceError::subscriber_mismatch());
    }
    let provider = optional_text(body, "provider", 32)?
        .map(|p| {
            Provider::parse(p).ok_or_else(|| {
                ServiceError::invalid("provider", &format!("expected {}", Provider::EXPECTED))
            })
        })
        .transpose()?;
    Ok(IngestRequest {
        request_id,
        session_id,
        user_id,
        provider,
    })
}

impl Ingest {
    /// Validates an ingest body for the subscriber and records its fetch.
    pub async fn accept(
        &self,
        subscriber: &str,
        body: &Map<String, Value>,
    ) -> ServiceResult<IngestResponse> {
        let IngestRequest {
            request_id,
            session_id,
            user_id,
            provider: asked,
        } = read_request(subscriber, body)?;
        let (request_id, session_id, user_id) = (&*request_id, &*session_id, &*user_id);

        let configured = self.subscriber_providers(subscriber).await?;
        let Some(default) = configured.first() else {
            return Err(ServiceError::unprocessable(
                "No device provider configured for this subscriber",
            ));
        };
        let provider = match asked {
            Some(p) if !configured.contains(&p) => {
                return Err(ServiceError::unprocessable(format!(
                    "Provider '{}' is not configured for this subscriber",
                    p.as_str()
                )))
            }
            Some(p) => p,
            None => *default,
        };

        let job = NewJob {
            id: format!("job_{}", random_id(20)),
            kind: JobKind::DeviceFetch.as_str().to_owned(),
            subscriber_id: subscriber.to_owned(),
            dedupe_key: request_id.to_owned(),
            payload: json!({
                "request_id": request_id,
                "session_id": session_id,
                "user_id": user_id,
                "provider": provider,
            })
            .to_string(),
            run_at: None,
        };
        let now = now_millis();
        let fresh_since = now - duration_millis(self.signal_ttl);
        // The customer's profile records the sighting; both writes join the same
        // group commit, so the 202 waits for one flush.
        let touch = CustomerTouch {
            user_id: user_id.to_owned(),
            ..CustomerTouch::default()
        };
        let (enqueued, touched) = tokio::join!(
            self.store.enqueue_unique(&job, fresh_since),
            self.store.touch_customer(subscriber, &touch, now),
        );
        if let Err(err) = touched {
            tracing::warn!(error = %err, "could not record the customer's sighting");
        }
        let mode = match enqueued? {
            Enqueued::Queued(_) => IngestMode::Queued,
            Enqueued::InFlight(_) => IngestMode::InFlight,
            Enqueued::Done(_) => IngestMode::Cached,
        };
        if mode == IngestMode::Queued {
            if let Some(pending) = &self.pending {
                pending.queued(subscriber, request_id, provider.as_str());
            }
            self.wake.notify_one();
        }
        // Scoring finds device signals by session or user through these pointers.
        // They are a convenience on top of the durable job: a cache outage must
        // not turn an accepted ingest into an error.
        if let Err(err) = self
            .cache
            .point(subscriber, request_id, Some(session_id), Some(user_id))
            .await
        {
            tracing::warn!(error = %err, "could not point session/user at the request");
        }
        self.metrics
            .ingests
            .with_label_values(&[mode.as_str()])
            .inc();
        tracing::debug!(subscriber_id = %subscriber, %request_id, mode = mode.as_str(), "ingest accepted");
        Ok(IngestResponse {
            status: "accepted",
            mode,
            redis_keys: cache_keys(subscriber, request_id, session_id, user_id),
            request_id: request_id.to_owned(),
            user_id: user_id.to_owned(),
            session_id: session_id.to_owned(),
        })
    }

    /// The subscriber's providers, first configured first, through a cache that is
    /// at most [`crate::ttl_cache::LOOKUP_TTL`] stale.
    async fn subscriber_providers(&self, subscriber_id: &str) -> ServiceResult<Vec<Provider>> {
        if let Some(providers) = self.providers.get(subscriber_id) {
            return Ok(providers);
        }
        let providers: Vec<Provider> = configured_providers(self.store.as_ref(), subscriber_id)
            .await?
            .into_iter()
            .map(|(provider, _)| provider)
            .collect();
        self.providers.put(subscriber_id, providers.clone());
        Ok(providers)
    }
}

/// `GET /fingerprint/events/{request_id}` answer.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    request_id: String,
    #[schema(value_type = String, example = "ready")]
    status: EventStatus,
    provider: String,
    visitor_id: Option<String>,
    /// The normalized signals (when `ready`).
    signals: Option<DeviceSignals>,
    /// `risk_score_from_cache`: the device risk in [0, 1] from these signals.
    device_risk: Option<f64>,
    /// When the provider answered (RFC 3339).
    fetched_at: Option<String>,
    attempts: i64,
    /// Why the fetch failed (when `failed`), or the last retryable error (when `pending`).
    error: Option<String>,
}

impl EventView {
    pub fn from_event(event: CachedEvent) -> Self {
        Self {
            visitor_id: event.signals.as_ref().and_then(|s| s.visitor_id.clone()),
            device_risk: event.signals.as_ref().map(device_risk),
            fetched_at: event.fetched_at.map(rfc3339),
            request_id: event.request_id,
            status: event.status,
            provider: event.provider,
            signals: event.signals,
            attempts: event.attempts,
            error: event.error,
        }
    }
}
