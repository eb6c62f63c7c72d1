//! Start-up configuration: every flag of `riskgate serve`, each also read from
//! `RISKGATE_<FLAG>`. Values are parsed into typed settings here, so a bad one
//! stops start-up with a message that names it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::secrets::{Sealer, SecretsError};
use crate::store::DatabaseUrl;

// No `Debug` on the configuration types: they hold the admin token and the
// secrets key, and a `{:?}` in a log line must not be able to print them.

/// Where the database is and how stored secrets are sealed; shared by `serve`
/// and the operator commands.
#[derive(Clone, Args)]
pub struct DbArgs {
    /// `sqlite://PATH` (created if absent) or `postgres://…`.
    #[arg(
        long,
        env = "RISKGATE_DATABASE_URL",
        default_value = "sqlite://riskgate.db",
        global = true
    )]
    pub database_url: DatabaseUrl,

    /// Secret (16+ characters) from which the key sealing provider credentials
    /// and webhook secrets is derived. Required with PostgreSQL; with SQLite a
    /// random key is kept in `<database file>.secrets-key` when this is unset.
    #[arg(
        long,
        env = "RISKGATE_SECRETS_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secrets_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Args)]
pub struct ServeConfig {
    /// Address to serve on.
    #[arg(long, env = "RISKGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub db: DbArgs,

    /// `redis://…` for the shared signal cache and velocity counters (none: embedded).
    #[arg(long, env = "RISKGATE_REDIS_URL", value_parser = parse_redis_url)]
    pub redis_url: Option<String>,

    /// The longest one Redis call may take before it counts as a failure and
    /// the request goes on without Redis (e.g. `250ms`).
    #[arg(long, env = "RISKGATE_REDIS_TIMEOUT", default_value = "250ms", value_parser = parse_redis_timeout)]
    pub redis_timeout: Duration,

    /// Operator bearer token. When absent, one is generated at first start,
    /// printed once and stored hashed.
    #[arg(long, env = "RISKGATE_ADMIN_TOKEN", hide_env_values = true, value_parser = parse_admin_token)]
    pub admin_token: Option<String>,

    /// Base URL of the Fingerprint Server API (default: the regional public host).
    #[arg(long, env = "RISKGATE_FINGERPRINT_BASE_URL", value_parser = parse_http_url)]
    pub fingerprint_base_url: Option<url::Url>,

    /// Base URL of the Stytch API (default: Stytch's public host).
    #[arg(long, env = "RISKGATE_STYTCH_BASE_URL", value_parser = parse_http_url)]
    pub stytch_base_url: Option<url::Url>,

    /// Base URL of the FingerprintIQ API (default: its public host).
    #[arg(long, env = "RISKGATE_FINGERPRINTIQ_BASE_URL", value_parser = parse_http_url)]
    pub fingerprintiq_base_url: Option<url::Url>,

    /// Let `callback_url` point at loopback or private addresses.
    #[arg(long, env = "RISKGATE_ALLOW_PRIVATE_CALLBACKS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_callbacks: bool,

    /// Mark the console's session cookie `Secure` (set it when riskgate is
    /// reached over HTTPS, e.g. behind a TLS-terminating proxy).
    #[arg(long, env = "RISKGATE_CONSOLE_SECURE_COOKIES", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub console_secure_cookies: bool,

    /// How long a callback waits for the decision's pending device signals
    /// before it re-scores with what it has (e.g. `5s`).
    #[arg(long, env = "RISKGATE_CALLBACK_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub callback_wait: Duration,

    /// How long a callback receiver may take to answer one delivery.
    #[arg(long, env = "RISKGATE_CALLBACK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub callback_timeout: Duration,

    /// Waits before each retry of a failed delivery, comma-separated; after
    /// the last, the callback is `failed` (e.g. `5s,30s,2m`).
    #[arg(long, env = "RISKGATE_CALLBACK_RETRY_SCHEDULE",
          default_value = "5s,30s,2m,10m,1h,2h,4h,8h,8h", value_parser = parse_schedule)]
    pub callback_retry_schedule: Schedule,

    /// Callback deliveries in flight at once in this process.
    #[arg(long, env = "RISKGATE_CALLBACK_CONCURRENCY", default_value_t = 16, value_parser = parse_concurrency)]
    pub callback_concurrency: usize,

    /// How long a fetched device result stays fresh: a repeat ingest within it
    /// answers `mode: cached` (e.g. `24h`, `90m`).
    #[arg(long, env = "RISKGATE_SIGNAL_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub signal_ttl: Duration,

    /// Provider fetches in flight at once in this process.
    #[arg(long, env = "RISKGATE_FETCH_CONCURRENCY", default_value_t = 32, value_parser = parse_concurrency)]
    pub fetch_concurrency: usize,

    /// Total time one provider call may take (e.g. `10s`).
    #[arg(long, env = "RISKGATE_FETCH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub fetch_timeout: Duration,

    /// Time to establish a connection to a provider.
    #[arg(long, env = "RISKGATE_FETCH_CONNECT_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub fetch_connect_timeout: Duration,

    /// Attempts of a retryable failure (timeout, 5xx, 429) before it is final.
    #[arg(long, env = "RISKGATE_FETCH_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(i64).range(1..=100))]
    pub fetch_max_attempts: i64,

    /// Also start the provider simulator in-process, point the adapters at it,
    /// and create a `demo` subscriber whose API key is printed.
    #[arg(long, env = "RISKGATE_DEMO", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,

    /// How long a client may take from the first byte of a request to the end
    /// of its headers; also how long a new connection may stay silent.
    #[arg(long, env = "RISKGATE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub header_timeout: Duration,

    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, env = "RISKGATE_IDLE_TIMEOUT", default_value = "75s", value_parser = parse_timeout)]
    pub idle_timeout: Duration,

    /// Client connections open at once; at the bound, the connection silent
    /// for longest is closed to admit a new one (default: 10000, lowered to
    /// stay well below the open-file limit).
    #[arg(long, env = "RISKGATE_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: Option<u32>,

    /// Log format.
    #[arg(long, env = "RISKGATE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl ServeConfig {
    /// A configuration with every default, on the given database (tests, tools).
    pub fn for_database(database_url: DatabaseUrl) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: DbArgs {
                database_url,
                secrets_key: None,
            },
            redis_url: None,
            redis_timeout: crate::redis_link::DEFAULT_CALL_TIMEOUT,
            admin_token: None,
            fingerprint_base_url: None,
            stytch_base_url: None,
            fingerprintiq_base_url: None,
            allow_private_callbacks: false,
            console_secure_cookies: false,
            callback_wait: Duration::from_secs(5),
            callback_timeout: Duration::from_secs(10),
            callback_retry_schedule: Schedule::default(),
            callback_concurrency: 16,
            signal_ttl: Duration::from_secs(24 * 3600),
            fetch_concurrency: 32,
            fetch_timeout: Duration::from_secs(10),
            fetch_connect_timeout: Duration::from_secs(3),
            fetch_max_attempts: 8,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: None,
            demo: false,
            log_format: LogFormat::Text,
        }
    }
}

/// The waits between callback delivery attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

impl Default for Schedule {
    /// 5 s, 30 s, 2 min, 10 min, 1 h, 2 h, 4 h, 8 h, 8 h: ten attempts over
    /// about 23 hours.
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self(vec![
            Duration::from_secs(5),
            Duration::from_secs(30),
            minutes(2),
            minutes(10),
            minutes(60),
            minutes(120),
            minutes(240),
            minutes(480),
            minutes(480),
        ])
    }
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    let waits = s
        .split(',')
        .map(|part| {
            humantime::parse_duration(part.trim()).map_err(|e| format!("'{}': {e}", part.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if waits.len() > 50 {
        return Err("at most 50 retries".into());
    }
    Ok(Schedule(waits))
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d >= Duration::from_millis(100) && d <= Duration::from_secs(3600) => Ok(d),
        Ok(_) => Err("expected a duration from 100ms to 1h".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err("expected a number from 1 to 1024".into()),
    }
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| e.to_string())?;
    match url.scheme() {
        "redis" | "rediss" => Ok(s.to_owned()),
        other => Err(format!("expected redis:// or rediss://, got {other}://")),
    }
}

fn parse_redis_timeout(s: &str) -> Result<Duration, String> {
    let wait = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if wait.is_zero() || wait > Duration::from_secs(10) {
        return Err("expected a duration above 0 and at most 10s".into());
    }
    Ok(wait)
}

fn parse_http_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| e.to_string())?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("expected an absolute http:// or https:// URL".into()),
    }
}

fn parse_admin_token(s: &str) -> Result<String, String> {
    if s.chars().count() < 16 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("expected at least 16 characters without spaces".into());
    }
    Ok(s.to_owned())
}

/// The file beside an SQLite database that holds its sealing key.
pub fn key_file_for(sqlite_path: &str) -> PathBuf {
    PathBuf::from(format!("{sqlite_path}.secrets-key"))
}

/// The sealer for stored secrets: from `--secrets-key` when given, else (SQLite
/// only) from the key file beside the database.
pub fn sealer(db: &DbArgs) -> Result<Sealer, SecretsError> {
    match (&db.secrets_key, &db.database_url) {
        (Some(key), _) => Sealer::from_passphrase(key),
        (None, DatabaseUrl::Sqlite { path }) => Sealer::from_key_file(&key_file_for(path)),
        (None, DatabaseUrl::Postgres { .. }) => Err(SecretsError::KeyRequired),
    }
}

const SECRETS_CHECK_SETTING: &str = "secrets_check";
const SECRETS_CHECK_CONTEXT: &str = "settings:secrets_check";

/// Makes sure every process (server or CLI) seals with the key the database
/// already uses: the first one stores a sealed check value, the others must be
/// able to open it. Without this, a CLI run without `--secrets-key` would seal
/// credentials the server can never open.
pub async fn check_sealer(
    store: &dyn crate::store::Store,
    sealer: &Sealer,
) -> Result<(), SecretsError> {
    let store_err = |e: crate::store::StoreError| SecretsError::Store(e.to_string());
    let existing = match store
        .get_setting(SECRETS_CHECK_SETTING)
        .await
        .map_err(store_err)?
    {
        Some(sealed) => sealed,
        None => {
            let sealed = sealer.seal("riskgate", SECRETS_CHECK_CONTEXT);
            if store
                .insert_setting_if_absent(SECRETS_CHECK_SETTING, &sealed)
                .await
                .map_err(store_err)?
            {
                return Ok(());
            }
            store
                .get_setting(SECRETS_CHECK_SETTING)
                .await
                .map_err(store_err)?
                .unwrap_or_default()
        }
    };
    sealer
        .open(&existing, SECRETS_CHECK_CONTEXT)
        .map(|_| ())
        .map_err(|_| SecretsError::Mismatch)
}
