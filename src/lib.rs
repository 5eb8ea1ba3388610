//! `mcp-http-bridge` serves stdio MCP servers (children) to many HTTP clients over Streamable
//! HTTP and the legacy HTTP+SSE transport, remapping JSON-RPC ids so that every answer reaches
//! the caller that asked.
//!
//! # Architecture
//!
//! One routing core between a front per client era and a back per child era:
//!
//! ```text
//! HTTP clients ─► listener (a permit per connection, one task each: TLS, hyper HTTP/1.1,
//!                 header/idle timeouts) ─► axum: http::guard (Host, Origin, CORS, a static
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
//! * `state::BridgeState` is what the whole bridge shares (config, sessions, children, the
//!   shutdown token); it knows no HTTP. `config::Config` is plain data. Room for later: several
//!   named servers are several `Children` (each with its routes) in one state; several bridge
//!   instances share nothing but the session ids' prefix.
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
pub mod jsonrpc;
pub mod lines;
pub mod listener;
pub mod loglevel;
pub mod oauth;
pub mod router;
pub mod session;
pub mod shutdown;
pub mod state;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{Config, Limits};

/// A bridge whose child is running and initialized, ready to serve.
pub struct Bridge {
    config: Config,
    children: Arc<children::Children>,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
        let children = children::Children::start(config.clone()).await?;
        Ok(Bridge {
            config,
            children,
            tls,
            oauth,
        })
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
        let root = CancellationToken::new();
        // Cancelled first at shutdown: no new connections; open ones finish their requests.
        let stop_accepting = root.child_token();
        let children = self.children.clone();
        let addr = listener.local_addr()?;
        let policy = access::Policy::new(&self.config.access, addr);
        let oauth = self
            .oauth
            .clone()
            .map(|v| oauth::ResourceServer::new(v, &self.config, addr, self.tls.is_some()))
            .transpose()?;
        if let Some(o) = &oauth {
            info!(resource = %o.resource, "OAuth: serving as a protected resource");
        }
        let state = Arc::new(state::BridgeState {
            policy,
            oauth,
            config: self.config.clone(),
            sessions: session::Sessions::default(),
            children: children.clone(),
            started: Instant::now(),
            root: root.clone(),
        });
        let settings = crate::listener::Settings::for_config(&self.config);
        let c = &self.config;
        info!(addr = %listener.local_addr()?, mcp = ?c.mcp_path, sse = ?c.sse_path, "listening");
        let app = http::app(state.clone());
        let server = crate::listener::spawn_server(
            listener,
            self.tls.clone(),
            app,
            settings,
            stop_accepting.clone(),
        );

        children.tasks().spawn(reap_idle_sessions(state.clone()));
        children.supervise();
        let child_exited = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = children.fatal() => true,
        };
        if !child_exited {
            stop_accepting.cancel();
            drain(&children.all(), self.config.shutdown_grace).await;
        }
        root.cancel();
        state.sessions.drain();
        children.stop_all().await;
        if server.finish(self.config.shutdown_grace).await {
            info!("server stopped");
        } else {
            warn!("open connections did not finish within the grace period; closed them");
        }
        let tasks = children.tasks();
        tasks.close();
        if tokio::time::timeout(self.config.shutdown_grace, tasks.wait())
            .await
            .is_err()
        {
            warn!(
                left = tasks.len(),
                "tasks still running after the grace period"
            );
        }
        if child_exited {
            return Err(anyhow!(children.fatal_reason()));
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

/// Gives the requests in flight up to `grace` to finish, then answers the rest with an error.
async fn drain(children: &[Arc<child::ChildHandle>], grace: Duration) {
    let waiting = || children.iter().map(|c| c.waiting_clients()).sum::<usize>();
    if waiting() == 0 {
        return;
    }
    info!(
        waiting = waiting(),
        ?grace,
        "waiting for requests in flight"
    );
    let finished = tokio::time::timeout(grace, async {
        while waiting() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    if finished.is_err() {
        let message = "the bridge is shutting down";
        let failed: usize = children
            .iter()
            .map(|c| c.fail_waiting(jsonrpc::SHUTTING_DOWN, message))
            .sum();
        warn!(
            failed,
            "requests still in flight after the grace period were answered with an error"
        );
    }
}

/// Ends sessions idle for longer than the configured timeout, checking a few times per
/// timeout (at most once a minute), until shutdown.
async fn reap_idle_sessions(state: Arc<state::BridgeState>) {
    let timeout = state.config.session_timeout;
    let mut tick = tokio::time::interval(
        (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(60)),
    );
    loop {
        tokio::select! {
            _ = state.root.cancelled() => return,
            _ = tick.tick() => {}
        }
        for session in state
            .sessions
            .take_expired(tokio::time::Instant::now(), timeout)
        {
            info!(session = %session.id, ?timeout, "session expired (idle)");
            front::session::end(&state, &session).await;
        }
        state
            .children
            .reap_idle_users(tokio::time::Instant::now(), timeout);
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
