//! The running service: shared state, the router with its middleware, and
//! start-up and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tokio::sync::{watch, Notify};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::config::ServeConfig;
use crate::decision::scrub::scrub_str;
use crate::http::error::error_response;
use crate::http::request::MAX_BODY_BYTES;
use crate::http::{
    audit, backtests, connections, console_users, customers, decisions, ingest, labels, lists,
    operator, ops, rule_versions,
};
use crate::jobs::{
    BacktestWorker, CallbackConfig, CallbackWorker, PrefetchConfig, Prefetcher, Runner, Upstream,
};
use crate::metrics::Metrics;
use crate::providers::client::Endpoints;
use crate::service::auth::{AdminAuth, KeyCache};
use crate::service::rate_limits::RateLimits;
use crate::service::{Devices, Ingest, RuleBook, Scoring};
pub use crate::state::{AppState, Inner};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

const CACHE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown waits for open requests before it closes them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

#[derive(OpenApi)]
#[openapi(
    info(title = "riskgate", description = "Self-hosted, multi-tenant fraud decision service"),
    modifiers(&SecuritySchemes),
    components(schemas(
        crate::http::error::ErrorBody,
        crate::http::bodies::FingerprintCredentials,
        crate::http::bodies::StytchCredentials,
        crate::http::bodies::FingerprintiqCredentials,
        crate::http::bodies::JobStateFilter
    ))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes and their OpenAPI description, from the same annotations.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ingest::router())
        .merge(decisions::router())
        .merge(labels::router())
        .merge(customers::router())
        .merge(lists::router())
        .merge(operator::router())
        .merge(audit::router())
        .merge(rule_versions::router())
        .merge(backtests::router())
        .merge(console_users::router())
        .merge(ops::router())
        .split_for_parts();
    provider_paths(&mut openapi);
    optional_bodies(&mut openapi);
    unique_parameters(&mut openapi);
    (router, openapi)
}

/// A path parameter documented with its limits (`params(ListName)`) is
/// listed again, bare, by the extractor's inference; a parameter is named
/// once per location, and the documented one (listed first) stays.
fn unique_parameters(openapi: &mut utoipa::openapi::OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            if let Some(parameters) = op.parameters.as_mut() {
                let mut seen = std::collections::HashSet::new();
                parameters.retain(|p| {
                    seen.insert((
                        p.name.clone(),
                        serde_json::to_string(&p.parameter_in).unwrap_or_default(),
                    ))
                });
            }
        }
    }
}

/// Bodies an operation may omit (an empty body is an empty object there).
fn optional_bodies(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::Required;
    for path in [
        "/admin/subscribers/{id}/keys",
        "/admin/subscribers/{id}/webhook-secret/rotate",
        "/admin/subscribers/{id}/signing-key/rotate",
    ] {
        let op = openapi
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut());
        if let Some(body) = op.and_then(|op| op.request_body.as_mut()) {
            body.required = Some(Required::False);
        }
    }
}

/// The credentials a `PUT …/providers/{provider}` takes depend on the
/// provider the path names, which one path template cannot say: the document
/// lists the route once per provider, each with its own body.
fn provider_paths(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Ref, RefOr};
    const TEMPLATE: &str = "/admin/subscribers/{id}/providers/{provider}";
    let Some(item) = openapi.paths.paths.remove(TEMPLATE) else {
        return;
    };
    for (provider, schema) in [
        ("fingerprint", "FingerprintCredentials"),
        ("stytch", "StytchCredentials"),
        ("fingerprintiq", "FingerprintiqCredentials"),
    ] {
        let mut item = item.clone();
        if let Some(op) = item.put.as_mut() {
            if let Some(params) = op.parameters.as_mut() {
                params.retain(|p| p.name != "provider");
            }
            op.operation_id = Some(format!("put_{provider}_credentials"));
            if let Some(body) = op.request_body.as_mut() {
                for content in body.content.values_mut() {
                    content.schema = Some(RefOr::Ref(Ref::from_schema_name(schema)));
                }
            }
        }
        openapi
            .paths
            .paths
            .insert(TEMPLATE.replace("{provider}", provider), item);
    }
}

/// The OpenAPI document of the whole API, built from the annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

pub fn router(state: AppState) -> Router {
    let (routes, _) = api();
    routes
        .merge(crate::console::router())
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "Not found") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A client that trickles its body (or never finishes it) must not hold
        // a connection and a task forever.
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            },
        ))
        .layer(middleware::from_fn(reject_nul_paths))
        .layer(middleware::from_fn(json_errors))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // The path only: query strings and headers may carry secrets. A
            // path parameter may hold a card number (a user id, a request id).
            let path = logged_path(req.uri().path());
            tracing::info_span!("request", method = %req.method(), %path, request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(mask_request_id))
        .with_state(state)
}

/// Masks a card number in the caller's `x-request-id` before anything logs,
/// propagates or echoes it, the same way as in a body.
async fn mask_request_id(mut req: Request, next: Next) -> Response {
    let masked = req
        .headers()
        .get("x-request-id")
        .and_then(|v| scrub_str(&String::from_utf8_lossy(v.as_bytes())));
    if let Some(masked) = masked {
        match HeaderValue::from_str(&masked) {
            Ok(value) => {
                req.headers_mut().insert("x-request-id", value);
            }
            // Not a header value once decoded: a generated id replaces it.
            Err(_) => {
                req.headers_mut().remove("x-request-id");
            }
        }
    }
    next.run(req).await
}

/// The request path as logged: as sent, unless it holds a card number (also
/// percent-encoded, `4111%201111…`), which is then masked in its decoded form.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    let masked = if path.contains('%') {
        scrub_str(&percent_decoded(path))
    } else {
        scrub_str(path)
    };
    match masked {
        Some(masked) => std::borrow::Cow::Owned(masked),
        None => std::borrow::Cow::Borrowed(path),
    }
}

fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn record_metrics(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    app.metrics
        .http_requests
        .with_label_values(&[&method, &route, &status])
        .inc();
    app.metrics
        .http_duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A NUL byte can be percent-encoded into a path parameter, and PostgreSQL
/// refuses it in text (SQLite does not): answer a 404 before any query runs.
async fn reject_nul_paths(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.contains("%00") || path.contains('\0') {
        return error_response(StatusCode::NOT_FOUND, "Not found");
    }
    next.run(req).await
}

/// Rewrites any error response that is not already JSON (axum's own 405s and
/// extractor rejections) into the `{"error": …}` contract.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    // The console's own error pages are HTML and stay so.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body too large".to_owned(),
        _ if status.is_server_error() => "Internal server error".to_owned(),
        _ if !text.trim().is_empty() => text.trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("Error").to_owned(),
    };
    let mut rewritten = error_response(status, &message);
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        rewritten.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rewritten
}

/// A started server: where it listens, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The admin token generated at this start, if one was (printed once).
    pub generated_admin_token: Option<String>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, closes the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let result = self.task.await.unwrap_or(Ok(()));
        result
    }

    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reference data: {0}")]
    Reference(String),
    #[error("signal cache: Redis did not answer within {0:?} (check --redis-url)")]
    CacheTimeout(Duration),
    #[error("{0}: Redis did not answer ({1}); check --redis-url")]
    CacheUnreachable(&'static str, String),
    #[error("signal cache: {0}")]
    Cache(#[from] crate::cache::CacheError),
    #[error("velocity counters: {0}")]
    Velocity(#[from] crate::velocity::VelocityError),
    #[error("rate limiter: {0}")]
    RateLimiter(#[from] crate::rate_limit::LimiterError),
    #[error("rules: {0}")]
    Rules(String),
    #[error("HTTP client: {0}")]
    Http(#[source] reqwest::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Connects the store, prepares secrets, binds the listener and starts serving
/// in the background. The returned server stops on [`Running::shutdown`], or on
/// SIGTERM/SIGINT when `handle_signals` is set.
pub async fn start(config: &ServeConfig, handle_signals: bool) -> Result<Running, StartError> {
    // The embedded BIN and currency tables: decoded once, before any request,
    // so a corrupt table stops start-up instead of degrading lookups.
    let reference = crate::decision::reference::init().map_err(StartError::Reference)?;
    tracing::info!(
        currencies = reference.currencies,
        bin_rows = reference.bin_rows,
        bin_table_bytes = reference.bin_table_bytes,
        "reference data loaded"
    );
    // Secrets first: a missing key must not leave a half-initialised database.
    let sealer = crate::config::sealer(&config.db)?;
    let store = crate::store::connect(&config.db.database_url).await?;
    crate::config::check_sealer(store.as_ref(), &sealer).await?;
    tracing::info!(database = %config.db.database_url.redacted(), backend = store.backend(), "database ready");
    // Bind before generating an admin token: a start that fails on a taken
    // port must not store a token it never printed.
    let listener = connections::bind(config.listen).map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let (admin, generated_admin_token) =
        AdminAuth::init(store.as_ref(), config.admin_token.as_deref()).await?;
    // A start-up that cannot reach Redis must say so rather than hang.
    let metrics = Metrics::new()?;
    let redis = |backend: &str| crate::redis_link::RedisSettings {
        call_timeout: config.redis_timeout,
        health: metrics.redis_health(backend),
    };
    let cache = tokio::time::timeout(
        CACHE_CONNECT_TIMEOUT,
        crate::cache::connect_with(
            config.redis_url.as_deref(),
            config.signal_ttl,
            &redis("cache"),
        ),
    )
    .await
    .map_err(|_| StartError::CacheTimeout(CACHE_CONNECT_TIMEOUT))?
    .map_err(|err| match err {
        crate::cache::CacheError::Unavailable(cause) => {
            StartError::CacheUnreachable("signal cache", cause.to_string())
        }
        other => other.into(),
    })?;
    tracing::info!(backend = cache.backend(), "signal cache ready");
    let velocity = tokio::time::timeout(
        CACHE_CONNECT_TIMEOUT,
        crate::velocity::connect_with(config.redis_url.as_deref(), &redis("velocity")),
    )
    .await
    .map_err(|_| StartError::CacheTimeout(CACHE_CONNECT_TIMEOUT))?
    .map_err(|err| match err {
        crate::velocity::VelocityError::Unavailable(cause) => {
            StartError::CacheUnreachable("velocity counters", cause.to_string())
        }
        other => other.into(),
    })?;
    let limiter = tokio::time::timeout(
        CACHE_CONNECT_TIMEOUT,
        crate::rate_limit::connect(config.redis_url.as_deref(), &redis("rate_limit")),
    )
    .await
    .map_err(|_| StartError::CacheTimeout(CACHE_CONNECT_TIMEOUT))??;
    let rulebook = Arc::new(RuleBook::new().map_err(StartError::Rules)?);
    if velocity.backend() == "memory" {
        // The embedded counters live in this process: count the last 24 hours
        // of stored decisions again, so a restart does not reset them.
        let counted =
            crate::service::scoring::rebuild_velocity(store.as_ref(), velocity.as_ref()).await?;
        tracing::info!(
            decisions = counted,
            "velocity counters rebuilt from stored decisions"
        );
    }
    let wake = Arc::new(Notify::new());
    let http = reqwest::Client::builder()
        .connect_timeout(config.fetch_connect_timeout)
        .timeout(config.fetch_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("riskgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(StartError::Http)?;
    // One process owns the embedded default's queue: scoring can know a
    // fetch is pending without reading its row.
    let pending = store
        .foreign_writes()
        .map(|_| Arc::new(crate::service::devices::PendingFetches::default()));
    let prefetcher = Arc::new(
        Prefetcher::new(
            store.clone(),
            cache.clone(),
            sealer.clone(),
            Upstream {
                http,
                endpoints: Endpoints {
                    fingerprint: config.fingerprint_base_url.clone(),
                    stytch: config.stytch_base_url.clone(),
                    fingerprintiq: config.fingerprintiq_base_url.clone(),
                },
            },
            PrefetchConfig {
                concurrency: config.fetch_concurrency,
                max_attempts: config.fetch_max_attempts,
                ..PrefetchConfig::default()
            },
            metrics.clone(),
        )
        .with_pending(pending.clone()),
    );
    let devices = Devices::new(store.clone(), cache.clone(), pending.clone());
    let scoring = Scoring {
        store: store.clone(),
        velocity,
        rulebook,
        lists: Arc::new(crate::service::ListBook::new()),
        devices: devices.clone(),
        metrics: metrics.clone(),
        allow_private_callbacks: config.allow_private_callbacks,
        callback_wake: Arc::new(Notify::new()),
    };
    let callback_wake = scoring.callback_wake.clone();
    let ingest = Ingest {
        store: store.clone(),
        cache: cache.clone(),
        providers: TtlCache::new(LOOKUP_TTL, 10_000),
        wake: wake.clone(),
        metrics: metrics.clone(),
        signal_ttl: config.signal_ttl,
        pending,
    };
    let rate_limits = RateLimits::new(store.clone(), limiter, metrics.clone());
    let backtest_wake = Arc::new(Notify::new());
    let state = AppState::new(Inner {
        backtest_wake: backtest_wake.clone(),
        rate_limits,
        login_throttle: Default::default(),
        overview_cache: crate::service::console_data::overview_cache(),
        secure_cookies: config.console_secure_cookies,
        store: store.clone(),
        cache,
        sealer: sealer.clone(),
        metrics,
        admin,
        key_cache: KeyCache::default(),
        devices,
        ingest,
        scoring: scoring.clone(),
        openapi: Arc::new(openapi()),
    });
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let (shutdown, stop) = watch::channel(false);
    if handle_signals {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown signal received");
            let _ = shutdown.send(true);
        });
    }
    let runner = Runner::new(store.clone());
    let released = runner.recover().await?;
    if released > 0 {
        tracing::info!(
            jobs = released,
            "took back the jobs left running by the last start"
        );
    }
    let callbacks = Arc::new(
        CallbackWorker::new(
            scoring,
            sealer,
            CallbackConfig {
                wait: config.callback_wait,
                timeout: config.callback_timeout,
                schedule: config.callback_retry_schedule.clone(),
                concurrency: config.callback_concurrency,
                allow_private: config.allow_private_callbacks,
            },
        )
        .map_err(StartError::Http)?,
    );
    let keeper = tokio::spawn(runner.clone().keep_leases(stop.clone()));
    let worker = tokio::spawn(runner.clone().run(prefetcher, wake, stop.clone()));
    let callback_worker = tokio::spawn(runner.clone().run(callbacks, callback_wake, stop.clone()));
    let backtest_worker = tokio::spawn(runner.run(
        Arc::new(BacktestWorker::new(store.clone(), stop.clone())),
        backtest_wake,
        stop.clone(),
    ));
    let app = router(state.clone());
    let limits = connection_limits(config);
    let task = tokio::spawn(async move {
        let mut deadline = stop.clone();
        let serving = connections::serve(listener, app, limits, stop);
        let served = tokio::select! {
            served = serving => served,
            _ = async {
                let _ = deadline.wait_for(|stop| *stop).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!("shutdown grace period over; closing the remaining connections");
                Ok(())
            }
        };
        // The handlers saw the same signal; let their jobs in flight finish,
        // their leases renewed until the last one ends.
        let _ = worker.await;
        let _ = callback_worker.await;
        let _ = backtest_worker.await;
        let _ = keeper.await;
        store.close().await;
        served
    });
    Ok(Running {
        addr,
        state,
        generated_admin_token,
        shutdown,
        task,
    })
}

/// The connection limits of `config`, the open-file limit raised first so
/// that the bound can be as high as asked while staying well below it.
fn connection_limits(config: &ServeConfig) -> connections::Limits {
    let file_limit = connections::raise_open_file_limit();
    let configured = config.max_connections.and_then(|n| usize::try_from(n).ok());
    let (max_connections, lowered) = connections::max_connections(configured, file_limit);
    if let Some(ceiling) = lowered {
        tracing::warn!(
            configured = ?config.max_connections,
            max_connections = ceiling,
            open_file_limit = ?file_limit,
            "max connections lowered to stay well below the open-file limit"
        );
    }
    tracing::info!(max_connections, open_file_limit = ?file_limit, "connection limits");
    connections::Limits {
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        max_connections,
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn logged_paths_mask_card_numbers_also_percent_encoded() {
        assert_eq!(logged_path("/customers/user-42"), "/customers/user-42");
        assert_eq!(logged_path("/customers/a%20b"), "/customers/a%20b");
        assert_eq!(
            logged_path("/customers/4111111111111111"),
            "/customers/41111111****1111"
        );
        assert_eq!(
            logged_path("/customers/4111%201111%201111%201111"),
            "/customers/4111 1111 **** 1111"
        );
    }
}
