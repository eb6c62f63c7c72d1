//! Finding the device behind a transaction: the signal cache first, the job
//! row of the ingest when the cache does not have it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::cache::{CachedEvent, EventStatus, SignalCache};
use crate::decision::DeviceSource;
use crate::store::{JobKind, JobRow, JobState, Store};

use super::ServiceResult;

#[derive(Clone)]
pub struct Devices {
    store: Arc<dyn Store>,
    cache: Arc<dyn SignalCache>,
    pending: Option<Arc<PendingFetches>>,
}

/// How long a queued fetch is remembered; one pending longer (a provider
/// retried for minutes) is looked up in its job row again.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Past this many, the oldest are forgotten (and read from the table).
const PENDING_MAX: usize = 100_000;

/// The fetches this process queued and has not finished, with their
/// provider: what scoring needs of a device whose signals have not arrived,
/// without reading its job row. Kept only where one process owns the queue
/// (the embedded default), so that the process that finishes a fetch is the
/// one that forgets it.
#[derive(Default)]
pub struct PendingFetches {
    entries: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl PendingFetches {
    pub fn queued(&self, subscriber_id: &str, request_id: &str, provider: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= PENDING_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < PENDING_FOR);
            if entries.len() >= PENDING_MAX {
                entries.clear();
            }
        }
        entries.insert(
            (subscriber_id.to_owned(), request_id.to_owned()),
            (provider.to_owned(), Instant::now()),
        );
    }

    /// Called once the outcome is durable and cached.
    pub fn finished(&self, subscriber_id: &str, request_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(subscriber_id.to_owned(), request_id.to_owned()));
    }

    fn provider(&self, subscriber_id: &str, request_id: &str) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (subscriber_id.to_owned(), request_id.to_owned());
        entries
            .get(&key)
            .filter(|(_, at)| at.elapsed() < PENDING_FOR)
            .map(|(provider, _)| provider.clone())
    }
}

impl Devices {
    /// `pending`: the fetches this process queued, where it alone runs them.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn SignalCache>,
        pending: Option<Arc<PendingFetches>>,
    ) -> Self {
        Self {
            store,
            cache,
            pending,
        }
    }

    pub fn pending(&self) -> Option<&Arc<PendingFetches>> {
        self.pending.as_ref()
    }

    /// The device event of an ingested request id: from the signal cache, else
    /// from its job row (after a restart of the embedded cache, an expired
    /// key, or while the cache is unreachable), refilling the cache. `None`
    /// when the request id was never ingested.
    pub async fn event(
        &self,
        subscriber_id: &str,
        request_id: &str,
    ) -> ServiceResult<Option<CachedEvent>> {
        let cache_ok = match self.cache.get_by_request(subscriber_id, request_id).await {
            Ok(Some(event)) => return Ok(Some(event)),
            Ok(None) => true,
            Err(err) => {
                tracing::warn!(error = %err, "signal cache read failed; using the database");
                false
            }
        };
        let Some(job) = self
            .store
            .latest_job(subscriber_id, JobKind::DeviceFetch.as_str(), request_id)
            .await?
        else {
            return Ok(None);
        };
        let event = event_from_job(&job);
        // Refill the cache (pointers stay with whatever request is newer),
        // unless it just failed: that would only be a second failed call.
        if cache_ok && event.status != EventStatus::Pending {
            if let Err(err) = self
                .cache
                .put_event(subscriber_id, None, None, &event)
                .await
            {
                tracing::warn!(error = %err, "could not refill the signal cache");
            }
        }
        Ok(Some(event))
    }

    /// The device signals for a transaction: by request id (the cache, else
    /// the job row), else the session's latest request, else the user's.
    pub async fn find(
        &self,
        subscriber_id: &str,
        request_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) -> ServiceResult<Option<(CachedEvent, DeviceSource)>> {
        Ok(self
            .lookup(subscriber_id, request_id, session_id, user_id)
            .await?
            .device)
    }

    /// [`Devices::find`], also telling whether the answer may lack a device
    /// because the cache could not be read.
    pub async fn lookup(
        &self,
        subscriber_id: &str,
        request_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) -> ServiceResult<DeviceLookup> {
        let queued = self
            .pending
            .as_ref()
            .and_then(|pending| pending.provider(subscriber_id, request_id));
        if let Some(provider) = queued {
            // Queued here and not finished: pending, unless its signals
            // arrived in the cache just now.
            let cached = self.cache.get_by_request(subscriber_id, request_id).await;
            let event = match cached {
                Ok(Some(event)) => event,
                _ => CachedEvent {
                    request_id: request_id.to_owned(),
                    provider,
                    status: EventStatus::Pending,
                    signals: None,
                    error: None,
                    fetched_at: None,
                    attempts: 0,
                },
            };
            return Ok(DeviceLookup {
                device: Some((event, DeviceSource::Request)),
                cache_failed: false,
            });
        }
        if let Some(event) = self.event(subscriber_id, request_id).await? {
            return Ok(DeviceLookup {
                device: Some((event, DeviceSource::Request)),
                cache_failed: false,
            });
        }
        let pointers = [
            (session_id, DeviceSource::Session),
            (user_id, DeviceSource::User),
        ];
        let mut cache_failed = false;
        for (id, source) in pointers {
            let Some(id) = id else { continue };
            let found = match source {
                DeviceSource::Session => self.cache.get_by_session(subscriber_id, id).await,
                _ => self.cache.get_by_user(subscriber_id, id).await,
            };
            match found {
                Ok(Some(event)) => {
                    return Ok(DeviceLookup {
                        device: Some((event, source)),
                        cache_failed: false,
                    })
                }
                Ok(None) => {}
                Err(err) => {
                    // The session and user pointers live only in the cache.
                    tracing::warn!(error = %err, "signal cache read failed");
                    cache_failed = true;
                }
            }
        }
        Ok(DeviceLookup {
            device: None,
            cache_failed,
        })
    }
}

/// What [`Devices::lookup`] found.
pub struct DeviceLookup {
    pub device: Option<(CachedEvent, DeviceSource)>,
    /// A session or user pointer could not be read: a device may exist that
    /// this answer does not have.
    pub cache_failed: bool,
}

/// The event as the job row records it, for a cache miss (after a restart of
/// the embedded cache, or an expired key).
fn event_from_job(job: &JobRow) -> CachedEvent {
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let provider = payload
        .get("provider")
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_owned();
    let stored: Option<CachedEvent> = job
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    match (job.state, stored) {
        (JobState::Succeeded, Some(event)) => event,
        (state, _) => CachedEvent {
            request_id: job.dedupe_key.clone(),
            provider,
            status: if state == JobState::Failed {
                EventStatus::Failed
            } else {
                EventStatus::Pending
            },
            signals: None,
            error: job.last_error.clone(),
            fetched_at: job.finished_at,
            attempts: job.attempts,
        },
    }
}
