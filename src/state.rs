//! What every request handler may use, built once at start-up by
//! `crate::app`.

use std::ops::Deref;
use std::sync::Arc;

use crate::cache::SignalCache;
use crate::metrics::Metrics;
use crate::secrets::Sealer;
use crate::service::auth::{AdminAuth, KeyCache};
use crate::service::rate_limits::RateLimits;
use crate::service::{Devices, Ingest, Scoring};
use crate::store::Store;

/// Everything a request handler may use, built once at start-up.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn SignalCache>,
    pub sealer: Sealer,
    pub metrics: Metrics,
    pub admin: AdminAuth,
    pub key_cache: KeyCache,
    pub devices: Devices,
    pub ingest: Ingest,
    pub scoring: Scoring,
    pub rate_limits: RateLimits,
    /// Wakes the backtest worker when a backtest is queued.
    pub backtest_wake: Arc<tokio::sync::Notify>,
    /// Failed console sign-ins, per account and client address.
    pub login_throttle: crate::service::console::LoginThrottle,
    /// The console overviews computed in the last seconds.
    pub overview_cache: crate::service::console_data::OverviewCache,
    /// Whether console cookies carry `Secure` (served over HTTPS).
    pub secure_cookies: bool,
    /// The OpenAPI document of the whole API (`GET /openapi.json`).
    pub openapi: Arc<utoipa::openapi::OpenApi>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}
