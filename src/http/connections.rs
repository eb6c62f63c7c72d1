//! Client connections are bounded: how many may be open at once, how long a
//! client may take to send a request's headers, how long a kept-alive
//! connection may sit idle, and who is let go first when the bound is reached.
//!
//! The accept loop is our own rather than `axum::serve` because the server
//! has to know, for every connection, when it last sent anything: near the
//! bound the connection silent for longest is closed to make room, so a flood
//! of idle sockets can never keep a real request out, nor use up the process's
//! file descriptors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

/// File descriptors kept for everything but client connections: the database
/// pool, Redis, provider and callback calls, the runtime itself.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The bound when none is configured (and the file limit allows it). An idle
/// connection costs a few KiB; ten thousand of them stay well under 100 MiB.
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;

/// The most a request's line and headers may take. Above hyper's URI limit
/// (64 KiB), so a long URI is still told `414`, and far below hyper's default
/// (~400 KiB): a slow client holds at most this much memory until it is cut off.
const MAX_HEAD_BYTES: usize = 80 * 1024;

/// How long the accept loop pauses when the process is out of descriptors or
/// memory: long enough not to spin, short enough that clients barely notice.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How often, at most, reaching the bound is logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Connections the kernel may hold for the accept loop (it caps this at
/// `net.core.somaxconn`). Four times tokio's default: a flood that keeps the
/// queue full makes the kernel drop a real client's SYN, which then waits a
/// second for its retry.
const LISTEN_BACKLOG: u32 = 4096;

/// What the server allows a client connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a connection's first byte of a request to the end of its headers;
    /// also how long a new connection may stay silent.
    pub header_timeout: Duration,
    /// How long a connection may wait for its next request after an answer.
    pub idle_timeout: Duration,
    /// Client connections open at once.
    pub max_connections: usize,
}

/// The listening socket, as `TcpListener::bind` makes it but with a longer
/// accept queue.
pub fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Raises the soft open-file limit to the hard one; returns the limit now in
/// force (`None`: unlimited).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum) {
        if current < maximum {
            let raised = Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return Some(maximum);
            }
        }
    }
    limit.current
}

/// The connection bound for an open-file limit: the configured one, or the
/// default, but never more than half of what the limit leaves once the
/// reserved descriptors are set aside. The second value is the ceiling, when
/// it lowered a configured bound.
pub fn max_connections(
    configured: Option<usize>,
    file_limit: Option<u64>,
) -> (usize, Option<usize>) {
    let ceiling = file_limit
        .map_or(u64::MAX, |limit| {
            limit.saturating_sub(RESERVED_DESCRIPTORS) / 2
        })
        .max(1);
    let ceiling = usize::try_from(ceiling).unwrap_or(usize::MAX);
    match configured {
        Some(wanted) if wanted > ceiling => (ceiling, Some(ceiling)),
        Some(wanted) => (wanted, None),
        None => (
            ceiling.min(usize::try_from(DEFAULT_MAX_CONNECTIONS).unwrap_or(usize::MAX)),
            None,
        ),
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets the open
/// connections finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let tracker = Arc::new(Tracker::new(limits));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header timeout is ours (see `Conn::deadline`): hyper's would also
    // close a kept-alive connection after that long, not after the idle timeout.
    builder
        .http1()
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder);
    // Every connection task holds a receiver: all dropped, all finished.
    let (finished_tx, finished_rx) = watch::channel(());
    let mut stopping = stop.clone();
    let mut last_warning: Option<Instant> = None;
    loop {
        // An evicted connection holds its descriptor until its task ends:
        // past a little slack, accepting waits for those to close.
        loop {
            let closed = tracker.closed.notified();
            if tracker.open.load(Ordering::Acquire) <= tracker.descriptor_cap() {
                break;
            }
            closed.await;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                // Out of descriptors or memory: make room by letting the most
                // idle connection go, and pause instead of spinning on the error.
                let freed = tracker.lock().evict_idlest(&tracker, 1);
                if warn_now(&mut last_warning) {
                    tracing::warn!(error = %err, freed, "cannot accept connections; closing the longest-idle one");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let stream = Arc::new(stream);
        let conn = match tracker.admit(stream.clone()) {
            Admission::Admitted(conn) => conn,
            Admission::MadeRoom(conn) => {
                if warn_now(&mut last_warning) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; closing the longest-idle connections"
                    );
                }
                conn
            }
            Admission::Refused => {
                // Every connection is busy with a request: this one is told so.
                let _ = stream.try_write(&raw_error_response(
                    503,
                    "Service Unavailable",
                    "Too many connections",
                ));
                let _ = rustix::net::shutdown(&*stream, rustix::net::Shutdown::Write);
                if warn_now(&mut last_warning) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached with every connection busy; refusing new ones"
                    );
                }
                continue;
            }
        };
        tokio::spawn(run_connection(
            tracker.clone(),
            conn,
            builder.clone(),
            app.clone(),
            stop.clone(),
            finished_rx.clone(),
        ));
    }
    drop(listener);
    drop(finished_rx);
    finished_tx.closed().await;
    Ok(())
}

fn warn_now(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// Errors of one connection that was gone before it was accepted: the next
/// accept is unaffected.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Why a connection task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The connection closed, or hyper finished with it.
    Served,
    /// Closed to make room for a newer connection.
    Evicted,
    /// A request's headers did not arrive in time.
    HeaderTimeout,
    /// Sent nothing: a new connection for the header timeout, a kept-alive
    /// one for the idle timeout.
    Silent,
}

async fn run_connection(
    tracker: Arc<Tracker>,
    conn: Arc<Conn>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    app: Router,
    mut stop: watch::Receiver<bool>,
    _finished: watch::Receiver<()>,
) {
    // Declared first, dropped last: the connection leaves the tracker only
    // once its socket is closed.
    let _registration = Registration {
        tracker: tracker.clone(),
        id: conn.id,
    };
    let limits = tracker.limits;
    let timer = tokio::time::sleep_until(tracker.instant(conn.deadline(&limits).0));
    tokio::pin!(timer);
    // Until the client sends something, the connection is only this task and
    // its entry in the tracker: hyper's state and read buffer (8 KiB at its
    // first read) are not spent on a socket that may never say anything.
    let silent = loop {
        tokio::select! {
            readable = conn.stream.readable() => break readable.err().map(|_| Ending::Served),
            _ = conn.evicted.notified() => break Some(Ending::Evicted),
            _ = stop.wait_for(|stop| *stop) => break Some(Ending::Served),
            _ = &mut timer => {
                let (deadline, ending) = conn.deadline(&limits);
                if deadline <= tracker.now() {
                    break Some(ending);
                }
                timer.as_mut().reset(tracker.instant(deadline));
            }
        }
    };
    if let Some(ending) = silent {
        close(&conn, ending);
        return;
    }
    let io = TokioIo::new(TrackedIo {
        conn: conn.clone(),
        replacement: None,
    });
    let service = TrackedService {
        app,
        peer: conn.stream.peer_addr().ok(),
        conn: conn.clone(),
    };
    let mut serving = Box::pin(builder.serve_connection(io, service));
    let mut shutting_down = false;
    let ending = loop {
        tokio::select! {
            result = serving.as_mut() => {
                if let Err(err) = result {
                    tracing::trace!(error = %err, "connection ended with an error");
                }
                break Ending::Served;
            }
            _ = conn.evicted.notified() => break Ending::Evicted,
            _ = stop.wait_for(|stop| *stop), if !shutting_down => {
                shutting_down = true;
                serving.as_mut().graceful_shutdown();
            }
            _ = &mut timer => {
                let (deadline, ending) = conn.deadline(&limits);
                if deadline <= tracker.now() {
                    break ending;
                }
                timer.as_mut().reset(tracker.instant(deadline));
            }
        }
    };
    drop(serving);
    close(&conn, ending);
}

/// Ends a connection hyper no longer serves.
fn close(conn: &Conn, ending: Ending) {
    if ending == Ending::HeaderTimeout {
        // A client that started a request is told why it is cut off (one
        // non-blocking write: a client that does not read loses nothing).
        let _ = conn.stream.try_write(&raw_error_response(
            408,
            "Request Timeout",
            "Request headers not received in time",
        ));
    }
    if ending != Ending::Served {
        tracing::debug!(reason = ?ending, "closed a client connection");
    }
    let _ = rustix::net::shutdown(&*conn.stream, rustix::net::Shutdown::Both);
}

/// Takes the connection out of the tracker when its task ends, however it ends.
struct Registration {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut table = self.tracker.lock();
        table.conns.remove(&self.id);
        // After a flood, the table gives its room back.
        if table.conns.capacity() > 1024 && table.conns.len() < table.conns.capacity() / 4 {
            let keep = table.conns.len() * 2;
            table.conns.shrink_to(keep);
        }
        drop(table);
        self.tracker.open.fetch_sub(1, Ordering::AcqRel);
        self.tracker.closed.notify_waiters();
    }
}

/// Milliseconds since the tracker started; `NEVER` for "not set".
type Millis = u64;
const NEVER: Millis = u64::MAX;

/// The open connections and when each last did something.
struct Tracker {
    limits: Limits,
    epoch: Instant,
    next_id: AtomicU64,
    /// Connections whose socket is still open, evicted ones included.
    open: AtomicUsize,
    /// Signalled whenever one of those closes.
    closed: Notify,
    table: Mutex<Table>,
}

struct Table {
    max: usize,
    conns: HashMap<u64, Arc<Conn>>,
}

enum Admission {
    Admitted(Arc<Conn>),
    /// Admitted after the most idle connection was closed.
    MadeRoom(Arc<Conn>),
    /// At the bound with every connection in a request.
    Refused,
}

impl Tracker {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            closed: Notify::new(),
            table: Mutex::new(Table {
                max: limits.max_connections,
                conns: HashMap::new(),
            }),
        }
    }

    fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    /// Open sockets allowed, counting evicted ones whose task has not yet
    /// closed them: the bound and an eighth more, far below the file limit
    /// (see [`max_connections`]).
    fn descriptor_cap(&self) -> usize {
        self.limits.max_connections + self.limits.max_connections / 8 + 1
    }

    fn instant(&self, at: Millis) -> tokio::time::Instant {
        let at = Duration::from_millis(at.min(self.now() + 24 * 3600 * 1000));
        tokio::time::Instant::from_std(self.epoch + at)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // The table stays consistent whatever panicked while holding it.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn admit(&self, stream: Arc<TcpStream>) -> Admission {
        let now = self.now();
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            stream,
            epoch: self.epoch,
            last_read: AtomicU64::new(now),
            idle_since: AtomicU64::new(now),
            head_started: AtomicU64::new(NEVER),
            in_flight: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            evicted: Notify::new(),
        });
        let mut table = self.lock();
        let mut made_room = false;
        if table.conns.len() >= table.max {
            // A few at once, so that a flood does not pay a scan of the
            // table for every connection it opens.
            let batch = 1 + table.max / 64;
            if table.evict_idlest(self, batch) == 0 {
                return Admission::Refused;
            }
            made_room = true;
        }
        table.conns.insert(conn.id, conn.clone());
        self.open.fetch_add(1, Ordering::AcqRel);
        if made_room {
            Admission::MadeRoom(conn)
        } else {
            Admission::Admitted(conn)
        }
    }
}

impl Table {
    /// Closes up to `count` of the connections that have sent nothing for
    /// longest, of those not in a request. A socket with bytes waiting that
    /// its task has not read yet (a new client that sent its request at once)
    /// is not idle, whatever its timestamps say. Returns how many it closed.
    fn evict_idlest(&mut self, tracker: &Tracker, count: usize) -> usize {
        let mut idle: Vec<(Millis, Arc<Conn>)> = self
            .conns
            .values()
            .filter(|conn| conn.in_flight.load(Ordering::Acquire) == 0)
            .map(|conn| (conn.last_active(), conn.clone()))
            .collect();
        // Spares for candidates found to have bytes waiting after all.
        let wanted = (count * 2).min(idle.len());
        if wanted == 0 {
            return 0;
        }
        if wanted < idle.len() {
            idle.select_nth_unstable_by_key(wanted - 1, |(at, _)| *at);
            idle.truncate(wanted);
        }
        idle.sort_unstable_by_key(|(at, _)| *at);
        let mut evicted = 0;
        for (_, candidate) in idle {
            if evicted == count {
                break;
            }
            if candidate.has_unread_bytes() {
                candidate.last_read.store(tracker.now(), Ordering::Release);
                continue;
            }
            self.conns.remove(&candidate.id);
            // Shut down at once so the client sees the close even before the
            // connection's task runs; the task then releases the descriptor.
            let _ = rustix::net::shutdown(&*candidate.stream, rustix::net::Shutdown::Both);
            candidate.evicted.notify_one();
            evicted += 1;
        }
        evicted
    }
}

/// One client connection, as the tracker sees it.
struct Conn {
    id: u64,
    stream: Arc<TcpStream>,
    epoch: Instant,
    last_read: AtomicU64,
    /// When the connection last had no request in flight.
    idle_since: AtomicU64,
    /// The first byte read since then: a request's head is on its way.
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    /// A request was answered: waiting now is keep-alive.
    answered: AtomicBool,
    /// HTTP/2 frames (pings, settings) come and go between requests, so only
    /// the idle rule applies.
    h2: AtomicBool,
    evicted: Notify,
}

impl Conn {
    fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn last_active(&self) -> Millis {
        self.last_read
            .load(Ordering::Acquire)
            .max(self.idle_since.load(Ordering::Acquire))
    }

    fn read_some(&self) {
        let now = self.now();
        self.last_read.store(now, Ordering::Release);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NEVER, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// When the connection is due to be closed if nothing changes, and why.
    fn deadline(&self, limits: &Limits) -> (Millis, Ending) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NEVER / 2);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // A request in flight is bounded by the router's own timeouts;
            // look again later.
            return (self.now() + ms(limits.header_timeout), Ending::Silent);
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        if self.h2.load(Ordering::Acquire) {
            return (idle_since + ms(limits.idle_timeout), Ending::Silent);
        }
        let head_started = self.head_started.load(Ordering::Acquire);
        if head_started != NEVER {
            return (
                head_started + ms(limits.header_timeout),
                Ending::HeaderTimeout,
            );
        }
        if self.answered.load(Ordering::Acquire) {
            (idle_since + ms(limits.idle_timeout), Ending::Silent)
        } else {
            (idle_since + ms(limits.header_timeout), Ending::Silent)
        }
    }

    fn begin_request(self: &Arc<Self>, version: hyper::Version) -> InFlight {
        if version == hyper::Version::HTTP_2 {
            self.h2.store(true, Ordering::Release);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NEVER, Ordering::Release);
        InFlight(self.clone())
    }

    /// Bytes the client sent that nobody has read yet; an EOF or an error
    /// counts as none.
    fn has_unread_bytes(&self) -> bool {
        use rustix::net::RecvFlags;
        let mut byte = [0u8; 1];
        matches!(
            rustix::net::recv(&*self.stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT),
            Ok((n, _)) if n > 0
        )
    }
}

/// A request in flight on its connection, until its response is handed over.
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since.store(conn.now(), Ordering::Release);
        conn.answered.store(true, Ordering::Release);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router, counting the requests in flight on one connection.
#[derive(Clone)]
struct TrackedService {
    app: Router,
    /// The client's address, for handlers that count per address (the
    /// console's sign-in throttle) as `ConnectInfo`.
    peer: Option<std::net::SocketAddr>,
    conn: Arc<Conn>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for TrackedService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        if let Some(peer) = self.peer {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        let in_flight = self.conn.begin_request(req.version());
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(req).await;
            drop(in_flight);
            response
        })
    }
}

/// The socket as hyper sees it: reads are timestamped for the tracker, and
/// hyper's own rejections (written before any request reaches the router)
/// are rewritten into the `{"error"}` contract.
struct TrackedIo {
    conn: Arc<Conn>,
    /// A rewritten response being written: its bytes, how many are out, and
    /// how many bytes of hyper's it stands for.
    replacement: Option<(Vec<u8>, usize, usize)>,
}

impl TrackedIo {
    /// Writes `bufs`, or the JSON version of the hyper rejection they hold.
    fn write(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            if let Some(first) = bufs.iter().find(|buf| !buf.is_empty()) {
                if self.conn.in_flight.load(Ordering::Acquire) == 0 {
                    if let Some(json) = json_rejection(first) {
                        self.replacement = Some((json, 0, first.len()));
                    }
                }
            }
        }
        if let Some((bytes, written, stands_for)) = &mut self.replacement {
            while *written < bytes.len() {
                ready!(self.conn.stream.poll_write_ready(cx))?;
                match self.conn.stream.try_write(&bytes[*written..]) {
                    Ok(n) => *written += n,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(err) => return Poll::Ready(Err(err)),
                }
            }
            let stands_for = *stands_for;
            // hyper closes the connection after its rejection: anything it
            // writes after this goes out as is.
            self.replacement = Some((Vec::new(), 0, 0));
            if stands_for > 0 {
                return Poll::Ready(Ok(stands_for));
            }
        }
        loop {
            ready!(self.conn.stream.poll_write_ready(cx))?;
            match self.conn.stream.try_write_vectored(bufs) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.conn.stream.poll_read_ready(cx))?;
            match self.conn.stream.try_read_buf(buf) {
                Ok(n) => {
                    if n > 0 {
                        self.conn.read_some();
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match rustix::net::shutdown(&*self.conn.stream, rustix::net::Shutdown::Write) {
            Err(rustix::io::Errno::NOTCONN) => Poll::Ready(Ok(())),
            other => Poll::Ready(other.map_err(io::Error::from)),
        }
    }
}

/// hyper answers a request it cannot parse itself, with an empty body; this
/// recognises such an answer and returns the same status with an
/// `{"error"}` body. The router's own error responses always carry a body,
/// so an empty one can only be hyper's.
fn json_rejection(head: &[u8]) -> Option<Vec<u8>> {
    let (status, reason, message) = match head.get(..13)? {
        b"HTTP/1.1 400 " => (400, "Bad Request", "Malformed request"),
        b"HTTP/1.1 414 " => (414, "URI Too Long", "Request URI too long"),
        b"HTTP/1.1 431 " => (
            431,
            "Request Header Fields Too Large",
            "Request headers too large",
        ),
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?;
    let empty = text
        .to_ascii_lowercase()
        .split("\r\n")
        .any(|line| line == "content-length: 0");
    if !text.ends_with("\r\n\r\n") || !empty {
        return None;
    }
    Some(raw_error_response(status, reason, message))
}

/// A complete HTTP/1.1 error response that closes the connection, written
/// straight to a socket where no request reached the router.
fn raw_error_response(status: u16, reason: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": message }).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\ndate: {}\r\n\r\n{body}",
        body.len(),
        httpdate::fmt_http_date(std::time::SystemTime::now()),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_empty_rejections_become_json() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 01:00:00 GMT\r\n\r\n";
        let rewritten =
            String::from_utf8(json_rejection(head).unwrap_or_default()).unwrap_or_default();
        assert!(rewritten.starts_with("HTTP/1.1 431 "), "{rewritten}");
        assert!(
            rewritten.contains("content-type: application/json"),
            "{rewritten}"
        );
        assert!(
            rewritten.ends_with(r#"{"error":"Request headers too large"}"#),
            "{rewritten}"
        );
    }

    #[test]
    fn the_routers_own_responses_are_left_alone() {
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n";
        assert!(json_rejection(with_body).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(json_rejection(ok).is_none());
    }

    #[test]
    fn the_bound_stays_well_below_the_file_limit() {
        assert_eq!(max_connections(None, Some(4096)), (1920, None));
        assert_eq!(max_connections(None, Some(1 << 20)), (10_000, None));
        assert_eq!(max_connections(Some(64), Some(4096)), (64, None));
        assert_eq!(max_connections(Some(5000), Some(4096)), (1920, Some(1920)));
        assert_eq!(max_connections(None, Some(100)), (1, None));
    }
}
