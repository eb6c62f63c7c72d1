//! The `riskgate` binary as a child process: operator commands and a server.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use riskgate::store::DatabaseUrl;
use serde_json::Value;

use super::{riskgate, ADMIN_TOKEN, SECRETS_KEY};

pub fn db_arg(url: &DatabaseUrl) -> String {
    match url {
        DatabaseUrl::Sqlite { path } => format!("sqlite://{path}"),
        DatabaseUrl::Postgres { url } => url.clone(),
    }
}

/// Runs an operator command with the test secrets key; returns (success,
/// stdout JSON or text, stderr).
pub fn cli(url: &DatabaseUrl, args: &[&str]) -> (bool, Value, String) {
    cli_with_key(url, SECRETS_KEY, args)
}

/// Runs an operator command with the given secrets key.
pub fn cli_with_key(url: &DatabaseUrl, secrets_key: &str, args: &[&str]) -> (bool, Value, String) {
    let out = riskgate()
        .args(args)
        .env("RISKGATE_DATABASE_URL", db_arg(url))
        .env("RISKGATE_SECRETS_KEY", secrets_key)
        .env_remove("RISKGATE_ADMIN_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    (
        out.status.success(),
        value,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr: Arc<Mutex<String>>,
    /// Lines printed after the address.
    pub stdout: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(url: &DatabaseUrl, extra: &[&str]) -> Self {
        Self::start_with_env(url, extra, &[])
    }

    pub fn start_with_env(url: &DatabaseUrl, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = riskgate()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db_arg(url),
            ])
            .args(extra)
            .envs(env.iter().copied())
            .env("RISKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RISKGATE_SECRETS_KEY", SECRETS_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(addr) = line.strip_prefix("riskgate listening on ") {
                break addr.to_owned();
            }
        };
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out_sink = stdout.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                out_sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            base,
            stderr,
            stdout,
        }
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    pub fn stop(mut self) -> String {
        // SIGTERM: the graceful path.
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
        let log = self.stderr.lock().unwrap().clone();
        log
    }
}

impl Server {
    /// Creates subscriber `id` with Fingerprint credentials and an API key,
    /// through the operator API; returns the key.
    pub async fn subscriber_with_key(&self, client: &reqwest::Client, id: &str) -> String {
        let admin = |method: reqwest::Method, path: String, body: Value| {
            client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
        };
        let created = admin(
            reqwest::Method::POST,
            "/admin/subscribers".into(),
            serde_json::json!({"id": id, "name": id}),
        );
        assert_eq!(created.await.unwrap().status(), 201);
        let path = format!("/admin/subscribers/{id}/providers/fingerprint");
        let stored = admin(
            reqwest::Method::PUT,
            path,
            serde_json::json!({"secret_key": "k"}),
        );
        assert_eq!(stored.await.unwrap().status(), 200);
        let key: Value = admin(
            reqwest::Method::POST,
            format!("/admin/subscribers/{id}/keys"),
            serde_json::json!({}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        key["api_key"].as_str().unwrap().to_owned()
    }
}
