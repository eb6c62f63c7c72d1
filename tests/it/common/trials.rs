//! The one way a test runs: each test is a trial of the `it` binary, and a
//! test written for several backends is one trial per backend, named after it
//! (`scoring::rejects_bad_amount::sqlite`, `...::postgres`), so one backend's
//! failure never hides another's result.
//!
//! A trial that needs a server (PostgreSQL, Redis) is marked ignored when that
//! server does not accept a TCP connection at start-up, so a developer without
//! it sees `ignored`, never `ok`. Under `CI=true` nothing is ignored: the
//! trial runs and fails on the missing server.

use std::future::Future;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};

use super::{postgres_base_url, redis_url, Backend, CacheBackend};

/// A server a trial needs besides the process itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Redis,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Postgres => "PostgreSQL",
            Server::Redis => "Redis",
        }
    }

    /// Where the tests will connect: host and port only, since the URL may
    /// hold a password.
    fn address(self) -> Option<(String, u16)> {
        let (url, default_port) = match self {
            Server::Postgres => (postgres_base_url(), 5432),
            Server::Redis => (redis_url(), 6379),
        };
        let url = url::Url::parse(&url).ok()?;
        let host = url.host_str()?.trim_matches(['[', ']']).to_owned();
        Some((host, url.port().unwrap_or(default_port)))
    }

    /// Probed once per run. An address the probe cannot work out counts as
    /// reachable: the trials then run and say what is wrong, instead of
    /// being ignored for a reason nobody sees.
    fn reachable(self) -> bool {
        static POSTGRES: OnceLock<bool> = OnceLock::new();
        static REDIS: OnceLock<bool> = OnceLock::new();
        let cell = match self {
            Server::Postgres => &POSTGRES,
            Server::Redis => &REDIS,
        };
        *cell.get_or_init(|| {
            let Some((host, port)) = self.address() else {
                return true;
            };
            let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
                Ok(addrs) => addrs.collect(),
                Err(_) => Vec::new(),
            };
            let up = addrs
                .iter()
                .any(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_ok());
            if !up {
                eprintln!(
                    "{} at {host}:{port} is unreachable: its tests are ignored \
                     (start it, see .ci/run; under CI=true they run and fail)",
                    self.label()
                );
            }
            up
        })
    }
}

/// `CI` set to anything but empty, `false` or `0`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn ignored(needs: &[Server]) -> bool {
    !in_ci() && needs.iter().any(|server| !server.reachable())
}

/// What a test can be run on: one trial per value, named after it.
pub trait Variant: Copy + Send + 'static {
    fn name(self) -> &'static str;
    fn server(self) -> Option<Server>;
}

impl Backend {
    pub const ALL: &'static [Backend] = &[Backend::Sqlite, Backend::Postgres];
}

impl Variant for Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn server(self) -> Option<Server> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Server::Postgres),
        }
    }
}

impl CacheBackend {
    pub const ALL: &'static [CacheBackend] = &[CacheBackend::Memory, CacheBackend::Redis];
}

impl Variant for CacheBackend {
    fn name(self) -> &'static str {
        match self {
            CacheBackend::Memory => "memory",
            CacheBackend::Redis => "redis",
        }
    }

    fn server(self) -> Option<Server> {
        match self {
            CacheBackend::Memory => None,
            CacheBackend::Redis => Some(Server::Redis),
        }
    }
}

/// The trial's name: its module inside the `it` binary, then the test.
fn trial_name(module_path: &str, test: &str) -> String {
    let module = module_path
        .split_once("::")
        .map_or(module_path, |(_, module)| module);
    format!("{module}::{test}")
}

/// A synchronous test.
pub struct Plain;

pub fn sync() -> Plain {
    Plain
}

impl Plain {
    pub fn trials(self, module_path: &str, name: &str, test: fn()) -> Vec<Trial> {
        vec![Trial::test(trial_name(module_path, name), move || {
            test();
            Ok(())
        })]
    }
}

/// An async test on a runtime of its own: current-thread like
/// `#[tokio::test]`, or multi-threaded with [`Tokio::threads`].
pub struct Tokio {
    worker_threads: Option<usize>,
    needs: Vec<Server>,
}

pub fn tokio() -> Tokio {
    Tokio {
        worker_threads: None,
        needs: Vec::new(),
    }
}

impl Tokio {
    pub fn threads(mut self, worker_threads: usize) -> Self {
        self.worker_threads = Some(worker_threads);
        self
    }

    pub fn needs(mut self, server: Server) -> Self {
        self.needs.push(server);
        self
    }

    pub fn trials<F, Fut>(self, module_path: &str, name: &str, test: F) -> Vec<Trial>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let worker_threads = self.worker_threads;
        let trial = Trial::test(trial_name(module_path, name), move || {
            block_on(worker_threads, test())
        });
        vec![trial.with_ignored_flag(ignored(&self.needs))]
    }
}

fn block_on(worker_threads: Option<usize>, test: impl Future<Output = ()>) -> Result<(), Failed> {
    let mut builder = match worker_threads {
        None => ::tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = ::tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|err| format!("could not start a tokio runtime: {err}"))?;
    runtime.block_on(test);
    Ok(())
}

/// An async test taking a variant, run once per variant as trials named
/// `module::test::variant`, each on a multi-threaded runtime of its own.
pub struct Each<V: 'static> {
    variants: &'static [V],
    runtime: Tokio,
}

pub fn each<V: Variant>(variants: &'static [V]) -> Each<V> {
    assert!(!variants.is_empty(), "a test on no variant would never run");
    Each {
        variants,
        runtime: tokio().threads(2),
    }
}

impl<V: Variant> Each<V> {
    pub fn threads(mut self, worker_threads: usize) -> Self {
        self.runtime = self.runtime.threads(worker_threads);
        self
    }

    /// A server every variant needs, besides the variant's own.
    pub fn needs(mut self, server: Server) -> Self {
        self.runtime = self.runtime.needs(server);
        self
    }

    pub fn trials<F, Fut>(self, module_path: &str, name: &str, test: F) -> Vec<Trial>
    where
        F: Fn(V) -> Fut + Copy + Send + 'static,
        Fut: Future<Output = ()>,
    {
        self.variants
            .iter()
            .map(|&variant| {
                let mut needs = self.runtime.needs.clone();
                needs.extend(variant.server());
                let worker_threads = self.runtime.worker_threads;
                let name = format!("{}::{}", trial_name(module_path, name), variant.name());
                Trial::test(name, move || block_on(worker_threads, test(variant)))
                    .with_ignored_flag(ignored(&needs))
            })
            .collect()
    }
}

/// A module's trials, one group per way of running:
///
/// ```ignore
/// trials! {
///     each(Backend::ALL) => [rejects_bad_amount, ...],
///     each(Backend::ALL).needs(Server::Redis) => [counts_in_redis],
///     tokio => [openapi_documents_every_route],
///     tokio.threads(4) => [survives_a_burst],
///     sync => [flags_parse],
/// }
/// ```
macro_rules! trials {
    ($($way:ident $(($($arg:expr),* $(,)?))? $(.$option:ident($($value:expr),*))*
        => [$($test:ident),* $(,)?]),* $(,)?) => {{
        let mut trials = Vec::new();
        $(
            let way = || $crate::common::trials::$way($($($arg),*)?)$(.$option($($value),*))*;
            $(trials.extend(way().trials(module_path!(), stringify!($test), $test));)*
        )*
        trials
    }};
}
pub(crate) use trials;
