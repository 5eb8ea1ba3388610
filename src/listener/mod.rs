//! The listening socket and every connection it accepts: the accept loop, the connection cap
//! (a permit is taken before anything else is done with a socket and held for the
//! connection's life), TLS handshakes off the accept path, the header and idle timeouts, and
//! graceful shutdown. HTTP/1.1: plain `GET`s and `POST`s are served by `plain` (an event stream
//! held without hyper's buffers, a call without hyper's dispatcher), anything else by hyper.
//! HTTP/2 (`h2`: prior knowledge, or ALPN over TLS): hyper, many requests on one connection.
//! Requests go to the bridge's `App`. Nothing here knows MCP.

mod activity;
mod connection;
mod h2;
pub mod open_files;
mod plain;
mod throttle;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use crate::config::Config;
use crate::config::Isolation;
use activity::Phase;
use throttle::Throttle;

/// One log line per this interval at most for each kind of event a flood can cause.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (out of descriptors and the like) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The limits every connection is held to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Open connections at most, counting those still in their TLS handshake.
    pub max_connections: usize,
    /// How long a request head may take, from accept or from its first byte.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Settings {
    /// The settings `config` asks for. Raises the open-files limit to its hard limit first;
    /// without `--max-connections`, the cap is derived from it. Logs what was chosen.
    pub fn for_config(config: &Config) -> Settings {
        let open_files = open_files::raise_limit();
        let children = match config.supervision.isolation {
            Isolation::Shared => config.supervision.pool,
            Isolation::Session | Isolation::User => config.supervision.max_children,
        };
        let max_connections = match (config.limits.max_connections, &open_files) {
            (Some(n), _) => n,
            (None, Ok(limit)) => open_files::default_max_connections(*limit, children),
            (None, Err(e)) => {
                warn!(err = %e, "cannot read the open-files limit; pass --max-connections");
                open_files::MIN_CONNECTIONS
            }
        };
        let settings = Settings {
            max_connections: max_connections.min(Semaphore::MAX_PERMITS),
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
        };
        info!(
            max_connections = settings.max_connections,
            open_files = open_files.as_ref().ok(),
            header_timeout = ?settings.header_timeout,
            idle_timeout = ?settings.idle_timeout,
            "connection limits"
        );
        settings
    }
}

/// A boxed future that can move between threads.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What answers every request: a plain function from request to response future. (A tower
/// stack of routers and middleware cost each request several boxed futures, service clones
/// and extension maps: about a tenth of the bridge's CPU at 16x4.)
pub type App = Arc<
    dyn Fn(axum::http::Request<axum::body::Body>) -> BoxFuture<axum::response::Response>
        + Send
        + Sync,
>;

/// What every connection task shares.
struct Shared {
    app: App,
    connections: Arc<Connections>,
    tls: Option<TlsAcceptor>,
    settings: Settings,
    /// Cancelled at shutdown: stop accepting; open connections finish their requests.
    stop: CancellationToken,
    /// Cancelled when the grace period is over: close whatever is still open.
    abort: CancellationToken,
    header_log: Throttle,
    idle_log: Throttle,
    cap_log: Throttle,
    accept_log: Throttle,
}

impl Shared {
    /// Says that a connection was closed because its wait in `phase` lasted too long.
    fn log_expired(&self, phase: Phase, addr: SocketAddr) {
        match phase {
            Phase::Head => {
                if let Some(suppressed) = self.header_log.allow() {
                    let timeout = self.settings.header_timeout;
                    warn!(%addr, ?timeout, suppressed, "closed a connection that sent no complete request head in time (--header-timeout)");
                }
            }
            // Routine for keep-alive clients, hence not a warning.
            Phase::Idle => {
                if let Some(suppressed) = self.idle_log.allow() {
                    let timeout = self.settings.idle_timeout;
                    info!(%addr, ?timeout, suppressed, "closed an idle keep-alive connection (--idle-timeout)");
                }
            }
            Phase::Busy => {}
        }
    }
}

/// The running accept loop and its connections.
pub struct Server {
    task: JoinHandle<()>,
    abort: CancellationToken,
}

/// Serves `app` on `listener` (HTTPS when `tls` is given) in a task. When `stop` is
/// cancelled it stops accepting, closes idle connections, and lets the others finish their
/// requests; see [`Server::finish`].
pub fn spawn_server(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: App,
    settings: Settings,
    stop: CancellationToken,
    connections: Arc<Connections>,
) -> Server {
    let abort = CancellationToken::new();
    let shared = Arc::new(Shared {
        app,
        connections,
        tls,
        settings,
        stop,
        abort: abort.clone(),
        header_log: Throttle::new(LOG_EVERY),
        idle_log: Throttle::new(LOG_EVERY),
        cap_log: Throttle::new(LOG_EVERY),
        accept_log: Throttle::new(LOG_EVERY),
    });
    let task = tokio::spawn(run_accept(listener, shared));
    Server { task, abort }
}

impl Server {
    /// After `stop`: waits up to `grace` for every connection to end, then closes those
    /// still open. Returns whether all ended on their own.
    pub async fn finish(mut self, grace: Duration) -> bool {
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => {
                warn!(err = %e, "server task failed");
                return false;
            }
            Err(_) => {}
        }
        self.abort.cancel();
        // Every connection task returns at its next poll; the bound only guards against a bug.
        let _ = tokio::time::timeout(grace, &mut self.task).await;
        false
    }
}

/// The connections open now, for the metrics: all of them (from accept, TLS handshakes
/// included), and those of them speaking HTTP/2.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    http2: AtomicUsize,
}

impl Connections {
    /// Open connections.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Open connections speaking HTTP/2.
    pub fn http2(&self) -> usize {
        self.http2.load(Ordering::Relaxed)
    }

    /// Counts a connection in `open` until the guard is dropped.
    fn count_open(&self) -> Counted<'_> {
        Counted::new(&self.open)
    }

    /// Counts a connection in `http2` until the guard is dropped.
    fn count_http2(&self) -> Counted<'_> {
        Counted::new(&self.http2)
    }
}

/// One connection counted; uncounted when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Counted<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts until `stop`, then waits for the connections it started.
async fn run_accept(listener: TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(shared.settings.max_connections));
    let connections = TaskTracker::new();
    loop {
        // Cancel safety: `TcpListener::accept` loses no connection when `stop` wins.
        let accepted = tokio::select! {
            _ = shared.stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, addr) = match accepted {
            Ok(c) => c,
            Err(e) => {
                if let Some(suppressed) = shared.accept_log.allow() {
                    warn!(err = %e, suppressed, "accept failed");
                }
                tokio::select! {
                    _ = shared.stop.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        // The permit comes first: over the cap, the socket is closed before any other work.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            if let Some(suppressed) = shared.cap_log.allow() {
                let max = shared.settings.max_connections;
                warn!(%addr, max, suppressed, "refused a connection: too many open (--max-connections)");
            }
            continue;
        };
        let span = tracing::debug_span!("connection", %addr);
        connections.spawn(connection::serve(stream, addr, permit, shared.clone()).instrument(span));
    }
    // New connections are now refused by the system.
    drop(listener);
    connections.close();
    connections.wait().await;
}
