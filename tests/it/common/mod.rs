//! Shared test helpers: fresh databases on each backend, a running app, an
//! HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod binary;
pub mod trials;

pub(crate) use trials::trials;

use std::time::Duration;

use riskgate::app::Running;
use riskgate::config::ServeConfig;
use riskgate::store::DatabaseUrl;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const SECRETS_KEY: &str = "test-secrets-key-0123456789";

/// Where tests send provider calls unless they start a simulator: a loopback
/// port nothing listens on (connection refused), so no test ever reaches out
/// to a provider's public host.
pub const NO_PROVIDER: &str = "http://127.0.0.1:9";

/// The `riskgate` binary, with provider base URLs pointing at [`NO_PROVIDER`]
/// (flags given by a test override these).
pub fn riskgate() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_riskgate"));
    for var in [
        "RISKGATE_FINGERPRINT_BASE_URL",
        "RISKGATE_STYTCH_BASE_URL",
        "RISKGATE_FINGERPRINTIQ_BASE_URL",
    ] {
        command.env(var, NO_PROVIDER);
    }
    command
}

/// A database backend; a test taking one runs once per backend (see [`trials`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A backend of the device-signal cache and the velocity counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBackend {
    Memory,
    Redis,
}

/// A database of its own for one test; removed (or left to its temp dir) on drop.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_schema.take() {
            // Best effort: leave nothing behind in the shared `test` database.
            let _ = std::process::Command::new("psql")
                .args([
                    &base,
                    "-qc",
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                ])
                .output();
        }
    }
}

pub fn postgres_base_url() -> String {
    std::env::var("RISKGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The test Redis (`RISKGATE_TEST_REDIS_URL`, default the local server).
pub fn redis_url() -> String {
    std::env::var("RISKGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A raw connection to the test Redis. A trial that calls this must need
/// [`trials::Server::Redis`], so that it is ignored, not failed, where Redis is
/// missing outside CI.
pub async fn raw_redis() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let attempt = async {
        let client = redis::Client::open(url.as_str())?;
        client.get_multiplexed_async_connection().await
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => panic!("Redis at {url} is unreachable ({err}); start it (see .ci/run)"),
        Err(_) => panic!("Redis at {url} did not answer within 5 s; start it (see .ci/run)"),
    }
}

/// A fresh database of `backend`.
pub async fn fresh_db(backend: Backend) -> TestDb {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("riskgate.db");
            TestDb {
                url: DatabaseUrl::Sqlite {
                    path: path.to_str().unwrap().to_owned(),
                },
                _dir: Some(dir),
                pg_schema: None,
            }
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let base = postgres_base_url();
            let mut conn = match sqlx::PgConnection::connect(&base).await {
                Ok(conn) => conn,
                Err(err) => {
                    panic!("PostgreSQL at {base} is unreachable ({err}); start it (see .ci/run)")
                }
            };
            let schema = format!("rg_test_{}", riskgate::secrets::random_id(16));
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            TestDb {
                url: DatabaseUrl::Postgres { url },
                _dir: None,
                pg_schema: Some((base, schema)),
            }
        }
    }
}

/// A running app on a fresh database of `backend`, with fixed admin token and secrets key.
pub struct TestApp {
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDb,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the test defaults, then whatever `configure` changes.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut ServeConfig)) -> Self {
        let db = fresh_db(backend).await;
        let mut config = ServeConfig::for_database(db.url.clone());
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        config.db.secrets_key = Some(SECRETS_KEY.to_owned());
        let nowhere = url::Url::parse(NO_PROVIDER).ok();
        config.fingerprint_base_url = nowhere.clone();
        config.stytch_base_url = nowhere.clone();
        config.fingerprintiq_base_url = nowhere;
        configure(&mut config);
        let running = riskgate::app::start(&config, false)
            .await
            .expect("app starts");
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            running: Some(running),
            base,
            client,
            db,
        }
    }

    /// Stops the app and starts it again on the same database, with the test
    /// defaults (a new port: `base` changes).
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
        let mut config = ServeConfig::for_database(self.db.url.clone());
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        config.db.secrets_key = Some(SECRETS_KEY.to_owned());
        let nowhere = url::Url::parse(NO_PROVIDER).ok();
        config.fingerprint_base_url = nowhere.clone();
        config.stytch_base_url = nowhere.clone();
        config.fingerprintiq_base_url = nowhere;
        let running = riskgate::app::start(&config, false)
            .await
            .expect("app restarts");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn store(&self) -> std::sync::Arc<dyn riskgate::store::Store> {
        self.running.as_ref().unwrap().state.store.clone()
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        read(req.send().await.unwrap()).await
    }

    /// Creates a subscriber with one API key and Fingerprint credentials;
    /// returns the key.
    pub async fn subscriber_with_key(&self, id: &str) -> String {
        let (status, _) = self
            .admin(
                reqwest::Method::POST,
                "/admin/subscribers",
                Some(json!({"id": id, "name": id})),
            )
            .await;
        assert_eq!(status, 201);
        let (status, _) = self
            .admin(
                reqwest::Method::PUT,
                &format!("/admin/subscribers/{id}/providers/fingerprint"),
                Some(json!({"secret_key": "fp_secret_test"})),
            )
            .await;
        assert_eq!(status, 200);
        self.new_key(id).await
    }

    pub async fn new_key(&self, id: &str) -> String {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/subscribers/{id}/keys"),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["api_key"].as_str().unwrap().to_owned()
    }

    pub async fn ingest(&self, key: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut req = self.client.post(self.url("/fingerprint/ingest")).body(body);
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
    }
}

pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = resp.text().await.unwrap();
    let body = if is_json {
        serde_json::from_str(&text).unwrap()
    } else {
        assert!(
            status < 400,
            "error responses must be JSON, got {status}: {text}"
        );
        Value::String(text)
    };
    (status, body)
}
