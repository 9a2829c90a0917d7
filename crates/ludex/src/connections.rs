//! The HTTP listener of `ludex serve`: every connection is served by hyper under limits that a
//! slow or idle client cannot stretch.
//!
//! - A connection waiting for a request head (a fresh one, or one whose client started a new
//!   request) gets `header_timeout` from its first byte; a kept-alive connection with nothing
//!   to say is closed after `idle_timeout`. A request in flight (its response body not yet
//!   sent) is never cut by either. Request bodies get `body_timeout` between chunks
//!   (tower-http's `TimeoutBody`).
//! - At most `max_connections` are open at once, and never more than the open-files limit
//!   leaves room for once the stores, the bucket and the inbox have what they need
//!   ([`connection_budget`]). A new connection over the cap takes the place of the connection
//!   that has waited longest for a request; when every connection is busy it waits for one
//!   to finish. So idle and slow clients can hold no more than the waiting slots, and an
//!   ordinary request always gets in.

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower_http::timeout::TimeoutBody;

/// The limits every connection is served under.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// From the first byte of a request head (or the connection's start) to its last.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Longest pause between two chunks of a request body.
    pub body_timeout: Duration,
    /// Connections open at once, before the open-files limit lowers it.
    pub max_connections: usize,
}

/// File handles a connection may use: its socket, and a file a request may open (an upload
/// written to the bucket, a cover read from it).
const FILES_PER_CONNECTION: u64 = 2;

/// File handles kept free beyond those open when the server starts: the ingest's upload and
/// report files, PostgreSQL connections opened on demand, log and metrics files, the inbox's
/// watches.
const FILES_HEADROOM: u64 = 32;

/// How many connections the open-files limit leaves room for, and that limit, once its soft
/// value is raised to the hard one. `open_now` is the number of handles already open (the
/// stores' files among them).
pub fn connection_budget(open_now: u64) -> std::io::Result<(usize, u64)> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    let files = limit.current.unwrap_or(u64::MAX);
    let free = files.saturating_sub(open_now + FILES_HEADROOM);
    Ok((
        usize::try_from(free / FILES_PER_CONNECTION).unwrap_or(usize::MAX),
        files,
    ))
}

/// File handles this process has open (Linux; `None` elsewhere).
pub fn open_files() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64)
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request: since when, and since when a head is arriving.
    Waiting {
        since: Instant,
        head_since: Option<Instant>,
    },
    /// This many requests in flight (HTTP/2 may have several).
    Busy(usize),
}

/// One open connection, as the listener and the connection's own task see it.
struct Connection {
    phase: Mutex<Phase>,
    /// Wakes the connection's task to look at its deadline again.
    changed: Notify,
    /// The listener wants the slot back: close if still waiting for a request.
    evicted: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Connection {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            // A new connection is waiting for its first head from the start.
            phase: Mutex::new(Phase::Waiting {
                since: now,
                head_since: Some(now),
            }),
            changed: Notify::new(),
            evicted: false.into(),
        }
    }

    fn read_some(&self) {
        let mut phase = lock(&self.phase);
        if let Phase::Waiting {
            head_since: head_since @ None,
            ..
        } = &mut *phase
        {
            *head_since = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut phase = lock(&self.phase);
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Waiting { .. } => Phase::Busy(1),
        };
        InFlight(Arc::clone(self))
    }

    fn request_ended(&self) {
        let mut phase = lock(&self.phase);
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Waiting {
                since: Instant::now(),
                head_since: None,
            },
        };
        drop(phase);
        self.changed.notify_one();
    }

    /// Since when the connection has waited for a request, if it is waiting.
    fn waiting_since(&self) -> Option<Instant> {
        match *lock(&self.phase) {
            Phase::Waiting { since, .. } => Some(since),
            Phase::Busy(_) => None,
        }
    }

    /// When the connection is to be closed if nothing changes; `None` while busy.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        match *lock(&self.phase) {
            Phase::Busy(_) => None,
            Phase::Waiting { since, head_since } => {
                let idle = since + limits.idle_timeout;
                Some(head_since.map_or(idle, |head| idle.min(head + limits.header_timeout)))
            }
        }
    }

    fn should_close(&self, limits: &ConnectionLimits) -> bool {
        let waiting = self.waiting_since().is_some();
        (waiting && self.evicted.load(Ordering::Relaxed))
            || self.deadline(limits).is_some_and(|d| d <= Instant::now())
    }
}

/// A request in flight: it ends when its response body is dropped (sent or abandoned).
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that holds its request in flight until hyper is done with it.
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling its connection when request bytes arrive.
struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The open connections, and how many there are.
struct Registry {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    count: watch::Sender<usize>,
    next_id: AtomicU64,
}

impl Registry {
    fn add(&self, connection: Arc<Connection>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut open = lock(&self.open);
        open.insert(id, connection);
        self.count.send_replace(open.len());
        id
    }

    fn remove(&self, id: u64) {
        let mut open = lock(&self.open);
        open.remove(&id);
        self.count.send_replace(open.len());
    }

    /// Asks the connection that has waited longest for a request to close. `false` when
    /// every connection is busy.
    fn evict_longest_waiting(&self) -> bool {
        let open = lock(&self.open);
        let oldest = open
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .filter_map(|c| c.waiting_since().map(|since| (since, c)))
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((_, connection)) => {
                connection.evicted.store(true, Ordering::Relaxed);
                connection.changed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Whether an accept error means the process ran out of file handles.
fn out_of_files(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
    )
}

/// Serves `router` on `listener` under `limits` (with `max_connections` already fitted to the
/// open-files limit) until `stop` resolves; then stops accepting and waits for the open
/// connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry {
        open: Mutex::new(HashMap::new()),
        count: watch::channel(0).0,
        next_id: AtomicU64::new(0),
    });
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own header timer would also run while a kept-alive connection idles; ours
    // tells the two apart.
    builder.http1().header_read_timeout(None);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file handles (or another passing fault): free a waiting slot
                    // if there is one, and do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    if !(out_of_files(&e) && registry.evict_longest_waiting()) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        if !make_room(&registry, limits.max_connections, &mut stop).await {
            break;
        }
        let connection = Arc::new(Connection::new());
        let id = registry.add(Arc::clone(&connection));
        let io = TokioIo::new(Watched {
            stream,
            connection: Arc::clone(&connection),
        });
        let requests = {
            let connection = Arc::clone(&connection);
            let router = router.clone();
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let in_flight = connection.request_started();
                let mut router = router.clone();
                async move {
                    let mut request =
                        request.map(|body| Body::new(TimeoutBody::new(limits.body_timeout, body)));
                    request
                        .extensions_mut()
                        .insert(crate::api::rate::ClientAddr(peer.ip()));
                    let response = tower::Service::call(&mut router, request).await?;
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        Body::new(TrackedBody {
                            body,
                            _in_flight: in_flight,
                        })
                    }))
                }
            })
        };
        let serving = graceful.watch(
            builder
                .serve_connection_with_upgrades(io, requests)
                .into_owned(),
        );
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            tokio::pin!(serving);
            loop {
                let deadline = connection.deadline(&limits);
                tokio::select! {
                    _ = &mut serving => break,
                    () = connection.changed.notified() => {}
                    () = sleep_until(deadline) => {}
                }
                if connection.should_close(&limits) {
                    // Dropping the connection closes the socket; no request is in flight.
                    break;
                }
            }
            registry.remove(id);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Waits until there is room for one more connection: evicts the connection that has waited
/// longest for a request, or waits for a busy one to finish. `false` if `stop` came first.
async fn make_room(
    registry: &Registry,
    max: usize,
    stop: &mut Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let mut count = registry.count.subscribe();
    loop {
        if *count.borrow_and_update() < max {
            return true;
        }
        registry.evict_longest_waiting();
        tokio::select! {
            () = stop.as_mut() => return false,
            changed = count.changed() => if changed.is_err() { return false },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
