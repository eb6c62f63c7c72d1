//! Finding the device behind a transaction: the signal cache first, the job
//! row of the ingest when the cache does not have it.

use std::sync::Arc;

use crate::cache::{CachedEvent, EventStatus, SignalCache};
use crate::decision::DeviceSource;
use crate::store::{JobKind, JobRow, JobState, Store};

use super::ServiceResult;

#[derive(Clone)]
pub struct Devices {
    store: Arc<dyn Store>,
    cache: Arc<dyn SignalCache>,
}

impl Devices {
    pub fn new(store: Arc<dyn Store>, cache: Arc<dyn SignalCache>) -> Self {
        Self { store, cache }
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
