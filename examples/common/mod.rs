//! Helpers shared by the HTTP benchmarks (`bench_ingest`, `bench_score`,
//! `bench_callbacks`): where the run keeps its data, fanning requests out over
//! tasks, reading answers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a run keeps its data: a temporary SQLite file, or a PostgreSQL
/// schema of its own (`RISKGATE_BENCH_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`) with, when asked, Redis
/// (`RISKGATE_BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`). Call
/// [`BenchBackend::clean_up`] at the end.
pub struct BenchBackend {
    pub database_url: riskgate::store::DatabaseUrl,
    pub redis_url: Option<String>,
    _dir: tempfile::TempDir,
    pg_schema: Option<(sqlx::PgPool, String)>,
}

impl BenchBackend {
    /// `sqlite` or `postgres`; any other name stops the run.
    pub async fn open(backend: &str, with_redis: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg_schema, redis_url) = match backend {
            "sqlite" => (
                riskgate::store::DatabaseUrl::Sqlite {
                    path: dir.path().join("bench.db").display().to_string(),
                },
                None,
                None,
            ),
            "postgres" => {
                let base = std::env::var("RISKGATE_BENCH_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                let schema = format!("rg_bench_{}", riskgate::secrets::random_id(10));
                let pool = sqlx::PgPool::connect(&base)
                    .await
                    .expect("PostgreSQL reachable");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = riskgate::store::DatabaseUrl::Postgres {
                    url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                };
                let redis = with_redis.then(|| {
                    std::env::var("RISKGATE_BENCH_REDIS_URL")
                        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
                });
                (url, Some((pool, schema)), redis)
            }
            other => panic!("unknown backend {other}: expected sqlite or postgres"),
        };
        Self {
            database_url,
            redis_url,
            _dir: dir,
            pg_schema,
        }
    }

    /// Drops the PostgreSQL schema and the subscriber's Redis keys.
    pub async fn clean_up(self, subscriber: &str) {
        if let Some((pool, schema)) = &self.pg_schema {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(pool)
                .await
                .unwrap();
        }
        if let Some(redis_url) = &self.redis_url {
            delete_redis_keys(redis_url, &format!("rg:{subscriber}:*")).await;
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `call(0..count)` on `concurrency` tasks; the results in index order,
/// or the first error (the other tasks stop at their next call).
pub async fn fan_out<T, F, Fut>(count: usize, concurrency: usize, call: F) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let abort = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency.min(count))
        .map(|_| {
            let (call, next, abort) = (call.clone(), next.clone(), abort.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while !abort.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    match call(n).await {
                        Ok(value) => mine.push((n, value)),
                        Err(err) => {
                            abort.store(true, Ordering::Relaxed);
                            return Err(err);
                        }
                    }
                }
                Ok(mine)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    let mut first_error = None;
    for worker in workers {
        match worker.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(mine) => results.extend(mine),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    results.sort_unstable_by_key(|(n, _)| *n);
    Ok(results.into_iter().map(|(_, value)| value).collect())
}

/// Sends a request and reads the whole answer.
pub async fn send(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, body.to_vec()))
}

pub fn expect(ok: bool, what: &str, status: u16, body: &[u8]) -> Result<(), String> {
    if ok {
        return Ok(());
    }
    Err(format!(
        "{what} answered {status}: {}",
        String::from_utf8_lossy(body)
    ))
}

/// Deletes the run's keys from a shared Redis.
pub async fn delete_redis_keys(url: &str, pattern: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}
