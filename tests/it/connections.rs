#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Client connections are bounded: a client that trickles its headers is cut
//! off, a flood of idle sockets never keeps a real request out nor uses up the
//! server's descriptors, and what the HTTP layer itself rejects is answered in
//! the `{"error"}` contract. The bounds are set small here and the waits
//! generous: a loaded machine makes the server slower, never the test fail.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::binary::Server;
use crate::common::{Backend, TestApp};
use riskgate::store::DatabaseUrl;
use serde_json::Value;

/// A fresh SQLite database for a server child process (kept while the
/// returned directory lives).
fn sqlite_db() -> (tempfile::TempDir, DatabaseUrl) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("riskgate.db").to_str().unwrap().to_owned();
    (dir, DatabaseUrl::Sqlite { path })
}

fn addr_of(server: &Server) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the server prints host:port")
}

/// Descriptors the server process has open.
fn open_descriptors(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .expect("the server's descriptors can be listed")
        .count()
}

/// `GET /healthz` on a connection of its own: the status and the body.
fn healthz(addr: SocketAddr) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .expect("/healthz answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

/// Waits for the server to close `stream`: `Some(bytes it sent first)`, or
/// `None` when it is still open after `limit`. With `trickle`, one more byte
/// of a never-ending header is sent every 200 ms, as a slow client would.
fn wait_for_close(stream: &mut TcpStream, limit: Duration, trickle: bool) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        if trickle && stream.write_all(b"a").is_err() {
            return Some(received);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Some(received),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(received),
        }
    }
    None
}

/// (1) A client that sends a request line slowly and never finishes its
/// headers is cut off after the header timeout (set through its environment
/// variable), told `408` in JSON if it still reads; so is a connection that
/// sends nothing. A prompt client on the same server is served.
fn a_slow_header_client_is_cut_off() {
    let (_dir, db) = sqlite_db();
    let server = Server::start_with_env(&db, &[], &[("RISKGATE_HEADER_TIMEOUT", "1s")]);
    let addr = addr_of(&server);

    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let cut = wait_for_close(&mut slow, Duration::from_secs(10), true);
    let waited = started.elapsed();
    let received = cut.unwrap_or_else(|| panic!("a slow header still open after {waited:?}"));
    if !received.is_empty() {
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
        assert!(text.contains("content-type: application/json"), "{text}");
        let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert!(body["error"].is_string(), "{text}");
    }
    assert!(
        wait_for_close(&mut silent, Duration::from_secs(10), false).is_some(),
        "a silent connection still open after the header timeout"
    );

    let (status, body) = healthz(addr);
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    server.stop();
}

/// (2) Far more idle sockets than the connection bound (300 against 64):
/// `/healthz` answers all along, the server's descriptors stay within the
/// bound, and the sockets silent for longest are the ones closed.
fn an_idle_socket_flood_never_keeps_a_request_out() {
    const MAX: usize = 64;
    let (_dir, db) = sqlite_db();
    // Timeouts far longer than the test: only the bound closes the flood.
    let server = Server::start(
        &db,
        &[
            "--max-connections",
            &MAX.to_string(),
            "--header-timeout",
            "10m",
            "--idle-timeout",
            "10m",
        ],
    );
    let addr = addr_of(&server);
    assert_eq!(healthz(addr).0, 200);
    let baseline = open_descriptors(&server);

    let mut flood = Vec::new();
    let mut most_descriptors = baseline;
    for round in 0..6 {
        for _ in 0..50 {
            flood.push(TcpStream::connect(addr).unwrap());
        }
        let (status, body) = healthz(addr);
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("ok")),
            "round {round}"
        );
        most_descriptors = most_descriptors.max(open_descriptors(&server));
    }
    eprintln!(
        "{} idle sockets, bound {MAX}: server descriptors {baseline} at rest, at most {most_descriptors}",
        flood.len()
    );
    // The bound, evicted connections whose task is closing them (an eighth
    // more at most), and a little for whatever the runtime opens meanwhile.
    assert!(
        most_descriptors <= baseline + MAX + MAX / 4 + 8,
        "{most_descriptors} descriptors open (at rest {baseline}, bound {MAX})"
    );
    // Longest silent, first closed.
    let first = flood.first_mut().unwrap();
    assert!(
        wait_for_close(first, Duration::from_secs(10), false).is_some(),
        "the oldest idle socket is still open"
    );
    // A kept-alive client is served while the flood goes on.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for _ in 0..3 {
        let response = client
            .get(format!("{}/healthz", server.base))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        for _ in 0..20 {
            flood.push(TcpStream::connect(addr).unwrap());
        }
    }
    drop(flood);
    assert_eq!(healthz(addr).0, 200);
    server.stop();
}

/// Sends `request` on a connection of its own and reads until the server
/// closes it: (status, lower-cased head, body).
fn exchange(addr: SocketAddr, request: Vec<u8>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(&request);
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse::<usize>().ok());
            if length.is_some_and(|n| response.len() >= end + 4 + n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no response: {text:?}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// (3) What hyper rejects before any request reaches the router, and the
/// router's own rejections, are all `{"error"}` JSON.
async fn rejections_of_the_http_layer_are_json() {
    let app = TestApp::start(Backend::Sqlite).await;
    let addr = app.running.as_ref().unwrap().addr;
    let key = app.subscriber_with_key("12").await;
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(512 * 1024)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-{i}: a\r\n"))
            .collect::<String>()
    );
    let long_uri = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("enormous header", big_header.into_bytes(), 431),
        ("too many headers", many_headers.into_bytes(), 431),
        ("URI too long", long_uri.into_bytes(), 414),
        (
            "bad Content-Length",
            b"POST /fingerprint/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n".to_vec(),
            400,
        ),
        ("not HTTP", b"HELLO\r\n\r\n".to_vec(), 400),
        (
            "body over 1 MiB",
            format!(
                "POST /fingerprint/ingest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 X-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                2 * 1024 * 1024
            )
            .into_bytes(),
            413,
        ),
        (
            "method not allowed",
            b"DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            405,
        ),
    ];
    for (what, request, expected) in cases {
        let (status, head, body) = tokio::task::spawn_blocking(move || exchange(addr, request))
            .await
            .unwrap();
        assert_eq!(status, expected, "{what}: {head}\n{body}");
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|err| panic!("{what}: {err}: {body}"));
        assert!(body["error"].is_string(), "{what}: {body}");
    }
    app.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        sync => [
            a_slow_header_client_is_cut_off,
            an_idle_socket_flood_never_keeps_a_request_out,
        ],
        tokio.threads(2) => [
            rejections_of_the_http_layer_are_json,
        ],
    }
}
