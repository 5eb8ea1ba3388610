//! `mcp-http-bridge` serves stdio MCP servers (children) to many HTTP clients over Streamable
//! HTTP and the legacy HTTP+SSE transport, remapping JSON-RPC ids so that every answer reaches
//! the caller that asked.
//!
//! # Architecture
//!
//! One routing core between a front per client era and a back per child era:
//!
//! ```text
//! HTTP clients ─► listener (a permit per connection, one task each: TLS, plain GETs and
//!                 POSTs without hyper (listener::plain), hyper HTTP/1.1 for the rest, HTTP/2 (listener::h2),
//!                 header/idle timeouts) ─► http::top (by path, plain calls) ─► http::serve: metrics,
//!                 http::guard (Host, Origin, CORS, a static
//!                 bearer token or an OAuth access token checked by `oauth`) ─►
//!                 http::streamable | http::legacy_sse   (HTTP only: parse, find the
//!                 session, pick the reply mode)
//!                        ▼
//! front::session   the session era (≤ 2025-11-25): initialize answered by the bridge,
//!                  requests, notifications, replies, end of a session
//!                        ▼
//! child (ChildHandle, named routing methods) ─ lock(routes){ stamp per back, alloc bridge id,
//!                  register } → child.send(line)
//!   back::legacy   opened with one `initialize`; requests go as they are
//!   back::modern   opened with `server/discover`; requests carry the caller's `_meta`;
//!                  `input_required` becomes server requests (router::continuations)
//!                        │ bounded mpsc<Bytes> (+ the reader's own bounded lane)
//!                        ▼
//! [writer]  owns the child's stdin; batches queued lines into one write
//! [reader]  owns the child's stdout; parse → lock(routes){ decide } → try_send to stream(s)
//! [stderr]  child's stderr lines → tracing (target "child")
//! [exit]    waits for the process and records its status
//! [deadlines] answers what waited past --request-timeout
//!                        │ bounded channel per stream (StreamTx: queue + stop token)
//!                        ▼
//! SSE bodies: one per POST that carries requests, one standalone (GET) per session, one per
//! legacy session
//! [supervisor] one per shared child: restarts it with backoff, hands its sessions over
//! [reaper]     ends idle sessions
//! ```
//!
//! * `servers::Servers` holds the bridge's servers by name (the command line makes one,
//!   `default`). `http::top` answers the probes (`/health`, `/ready`) and hands every other
//!   request to the server its path names (`/servers/NAME/…`), or to the default server. `state::BridgeState` is what one server's handlers share (config, sessions,
//!   children, its shutdown token); it knows no HTTP. `config::Config` is plain data.
//!   `servers::Running` is one server's life (its routes, reaper, supervision, orderly stop);
//!   `servers::fleet::Fleet` runs the servers of a configuration file (`--config`), each on its
//!   own, and applies reloads (SIGHUP). `metrics` records into a recorder the bridge owns
//!   (cheap handles in each child's routing rules; gauges read at scrape); `logs` puts each
//!   request in a span naming its server and session (with JSON logs); `tool_filter` is a
//!   routing rule.
//! * The fast path: `envelope` reads a message for its envelope only (kind, id, method, the
//!   `_meta` keys the bridge rewrites, where each sits in the bytes); a request or response
//!   the bridge only re-addresses is forwarded as its own bytes with the new id spliced in
//!   (`router::fast`), and everything else takes the full parse (`jsonrpc`), which decides
//!   the same way. Messages with line breaks between tokens always take the full path.
//! * `router::Routes` is the routing core: plain data, no I/O, unit-tested. It knows owners
//!   (opaque keys, in practice session ids), never HTTP nor an era's wire details beyond the
//!   envelope. One `Routes` per child, reached only through `ChildHandle`'s named methods
//!   (`child::routing`); a session refers to its child (`Session::child`, following a
//!   restarted child's successor), which `children::Children` chose for it.
//! * Who asks: a request's principal is its static token's name or its OAuth subject
//!   (`iss#sub`, never the token string). Sessions, their subscriptions and tasks, and signed
//!   request states belong to it; in user isolation so does a child (`children`).
//! * Locks: `Sessions` (id → session) and each child's `Routes` are `std::sync::Mutex`es held
//!   for map operations only, never across `.await`, and never one inside the other (the one
//!   exception, handing a restarted child's sessions over, takes the old routes then the new).
//! * ORDERING: everything that belongs to one client request (its progress notifications, the
//!   server requests sent on its behalf, and finally its response) travels through ONE ordered
//!   channel, which ends after the response. Nothing can overtake the response.
//! * The reader never waits on a client: it uses `try_send`, so one stalled client cannot stall
//!   the others (a full queue stops that stream and cancels its requests); it never waits on
//!   the writer either (pipe deadlock): its own lines go through a bounded lane.
//! * Limits are reservations taken before any `.await` (sessions, children, connections,
//!   `--child-concurrency` slots); every queue is bounded; every task is tracked and waited for
//!   at shutdown.
//! * Several instances: `instance` names the process; every session id and request state
//!   starts with it and a dot, so a load balancer routes by that prefix with nothing shared.
//!   Shutdown drains: `/ready` answers 503 and no session opens (503 with `Retry-After`) while
//!   the listener still accepts, until the requests in flight finish or the grace period ends;
//!   then no new connection, the sessions end and the children stop.
//! * Cancellation tree: `root` (shutdown) → one token per session (DELETE, expiry, its own
//!   child's exit) → each stream ends when its token, or its own stop token, is cancelled.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod back;
pub mod child;
pub mod children;
pub mod cli;
pub mod config;
pub mod envelope;
pub mod error;
pub mod front;
pub mod gate;
pub mod http;
pub mod instance;
pub mod jsonrpc;
pub mod lines;
pub mod listener;
pub mod loglevel;
pub mod logs;
pub mod metrics;
pub mod oauth;
pub mod param_headers;
pub mod reload;
pub mod router;
pub mod servers;
pub mod session;
pub mod shutdown;
pub mod state;
pub mod tls;
pub mod tool_filter;

use std::sync::Arc;

use anyhow::anyhow;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

pub use config::{Config, Limits};
pub use servers::fleet::{serve_file, FileOptions};

/// A bridge whose child is running and initialized, ready to serve.
pub struct Bridge {
    config: Config,
    children: Arc<children::Children>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    metrics: Option<(Arc<metrics::Metrics>, TcpListener)>,
    oauth: Option<Arc<oauth::Verifier>>,
}

impl Bridge {
    /// Spawns and initializes the child.
    ///
    /// # Errors
    /// When the command cannot be spawned or does not complete `initialize` in time.
    pub async fn start(config: Config) -> anyhow::Result<Bridge> {
        // Certificate problems are reported before any child is started.
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        // So are the issuers' keys: a wrong issuer fails now, not at the first request.
        let oauth = match &config.oauth {
            Some(o) => Some(Arc::new(oauth::Verifier::start(o).await?)),
            None => None,
        };
        warn_of_shared_users(&config);
        let span = tracing::info_span!("server", server = %config.name);
        let children = children::Children::start(config.clone())
            .instrument(span)
            .await?;
        Ok(Bridge {
            config,
            children,
            tls,
            metrics: None,
            oauth,
        })
    }

    /// Serves `metrics` at `GET /metrics` on `listener` too (the configuration's
    /// `metrics` handle should be `metrics.server(&config.name)`).
    pub fn with_metrics(mut self, metrics: Arc<metrics::Metrics>, listener: TcpListener) -> Self {
        self.metrics = Some((metrics, listener));
        self
    }

    /// Whether the bridge serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves HTTP on `listener` until `shutdown` is cancelled (then returns `Ok`) or the child
    /// exits (then returns an error), ending streams and the child in order.
    ///
    /// # Errors
    /// When the child exited on its own, or the server failed.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        let c = &self.config;
        let oauth = self
            .oauth
            .clone()
            .map(|v| oauth::ResourceServer::new(v, c, addr, self.tls.is_some()))
            .transpose()?;
        if let Some(o) = &oauth {
            info!(resource = %o.resource, "OAuth: serving as a protected resource");
        }
        let servers = Arc::new(servers::Servers::new(access::Policy::new(&c.access, addr)));
        let server = servers::Running::launch(
            c.name.as_str().into(),
            c.clone(),
            self.children.clone(),
            (access::Policy::new(&c.access, addr), oauth),
            None,
        );
        servers.set(
            server.name.clone(),
            servers::Slot::Running(server.clone()),
            true,
        );
        let stop_metrics = CancellationToken::new();
        let connections = Arc::new(crate::listener::Connections::default());
        let metrics_server = self.metrics.map(|(metrics, listener)| {
            metrics.watch(&servers);
            metrics.watch_connections(&connections);
            metrics::serve::spawn(listener, metrics, stop_metrics.clone())
        });
        let settings = crate::listener::Settings::for_config(c);
        info!(%addr, instance = crate::instance::id(), mcp = ?c.mcp_path, sse = ?c.sse_path, "listening");
        // Cancelled once the drain is over: no new connections; open ones finish their requests.
        let stop_accepting = CancellationToken::new();
        let listening = crate::listener::spawn_server(
            listener,
            self.tls.clone(),
            http::top(servers.clone()),
            settings,
            stop_accepting.clone(),
            connections,
        );
        let child_exited = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = server.gave_up() => true,
        };
        // Draining: `/ready` turns 503 and no session opens, while the listener still accepts,
        // so that the open sessions' requests in flight can finish (their clients may still
        // have answers to send) and probes see the 503. Then no new connection; what came in
        // meanwhile gets the rest of the grace period.
        servers.begin_shutdown();
        let drain = (!child_exited).then(|| server.drain_deadline());
        if let Some(deadline) = drain {
            server.settle(deadline).await;
        }
        stop_accepting.cancel();
        server.stop(drain).await;
        if listening.finish(self.config.shutdown_grace).await {
            info!("server stopped");
        } else {
            warn!("open connections did not finish within the grace period; closed them");
        }
        server.wait_tasks().await;
        stop_metrics.cancel();
        if let Some(task) = metrics_server {
            let _ = tokio::time::timeout(self.config.shutdown_grace, task).await;
        }
        if child_exited {
            return Err(anyhow!(server.fatal_reason()));
        }
        Ok(())
    }
}

/// Several users on one shared child: what the child says outside a request (log lines, its
/// own requests) then reaches nobody, since nothing tells whose it is.
fn warn_of_shared_users(config: &Config) {
    let mut users: Vec<&str> = config
        .access
        .tokens
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    users.sort_unstable();
    users.dedup();
    let oauth = config.oauth.is_some();
    if (users.len() > 1 || oauth) && config.supervision.isolation == config::Isolation::Shared {
        warn!(
            users = users.len(),
            oauth,
            "tokens of several users share one MCP server process: its log messages and \
             requests that no request of one user explains are dropped or refused; \
             --isolation user gives each user a process of their own, --isolation session \
             each session"
        );
    }
}

/// Runs the bridge: spawns the child, serves `listener` until `shutdown` is cancelled.
///
/// # Errors
/// See [`Bridge::start`] and [`Bridge::serve`].
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Bridge::start(config).await?.serve(listener, shutdown).await
}
