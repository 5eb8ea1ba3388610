//! `Running`: one server's life once its children started: its state and HTTP routes, the
//! idle-session reaper, supervision, readiness, and its orderly stop (drain the requests in
//! flight, end the sessions, stop the children, wait for the tasks).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::access::Policy;
use crate::children::{Children, Isolation};
use crate::config::Config;
use crate::state::BridgeState;
use crate::{child, front, jsonrpc, session};

/// One server, serving.
pub struct Running {
    /// Its name (`default` for the server of the command line).
    pub name: Arc<str>,
    /// What its handlers share.
    pub state: Arc<BridgeState>,
    /// The prefix its own paths carry (`/servers/NAME`), added to a default path (`/mcp`)
    /// when the server is also the default one; `None` when its paths are the default paths.
    pub prefix: Option<Arc<str>>,
}

impl Running {
    /// Serves a server whose children have started: builds its state (with its access rules
    /// and OAuth resource server) and routes, starts its reaper and its supervisors.
    pub fn launch(
        name: Arc<str>,
        config: Config,
        children: Arc<Children>,
        (policy, oauth): (Policy, Option<crate::oauth::ResourceServer>),
        prefix: Option<Arc<str>>,
    ) -> Arc<Running> {
        let state = Arc::new(BridgeState {
            name: name.clone(),
            policy,
            oauth,
            config,
            sessions: session::Sessions::default(),
            children: children.clone(),
            started: Instant::now(),
            root: CancellationToken::new(),
            draining: AtomicBool::new(false),
        });
        children.tasks().spawn(reap_idle_sessions(state.clone()));
        children.supervise();
        Arc::new(Running {
            name,
            state,
            prefix,
        })
    }

    /// Whether the server can take requests: not stopping, not given up, and (shared
    /// isolation) some shared child running.
    pub fn is_ready(&self) -> bool {
        !self.state.draining.load(Ordering::Relaxed) && self.phase() == "serving"
    }

    /// `serving`, `restarting` (no shared child runs), `failed` (supervision gave up) or
    /// `stopping`.
    pub fn phase(&self) -> &'static str {
        let children = &self.state.children;
        if self.state.draining.load(Ordering::Relaxed) {
            "stopping"
        } else if children.has_given_up() {
            "failed"
        } else if children.isolation() == Isolation::Shared
            && !children.shared().iter().any(|c| c.is_running())
        {
            "restarting"
        } else {
            "serving"
        }
    }

    /// Its `/health` details.
    pub fn health(&self) -> (bool, Value) {
        let (running, mut body) = self.state.status();
        body["ready"] = self.is_ready().into();
        body["state"] = self.phase().into();
        (running, body)
    }

    /// Completes when supervision gave up on its children.
    pub async fn gave_up(&self) {
        self.state.children.fatal().await
    }

    /// Why supervision gave up.
    pub fn fatal_reason(&self) -> String {
        self.state.children.fatal_reason()
    }

    /// Marks the server as stopping: `/ready` says so from now on, and new sessions are
    /// refused (503) while the open ones go on.
    pub fn begin_stop(&self) {
        self.state.draining.store(true, Ordering::Relaxed);
    }

    /// When a drain begun now must end: the grace period from now.
    pub fn drain_deadline(&self) -> Instant {
        Instant::now() + self.state.config.shutdown_grace
    }

    /// Waits until no client request is in flight, or until `deadline`. While the listener
    /// still accepts, this is the drain: `/ready` answers 503 and no session opens, but the
    /// open ones still get in (their requests, and the answers to requests of the server).
    pub async fn settle(&self, deadline: Instant) {
        let children = self.state.children.all();
        let waiting = || children.iter().map(|c| c.waiting_clients()).sum::<usize>();
        if waiting() == 0 {
            return;
        }
        info!(server = %self.name, waiting = waiting(), "draining: waiting for requests in flight");
        let _ = tokio::time::timeout_at(deadline.into(), async {
            while waiting() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    /// Stops the server: gives requests in flight until `drain` (when given), answers those
    /// left with an error, then ends its sessions and its children.
    pub async fn stop(&self, drain: Option<Instant>) {
        self.begin_stop();
        let state = &self.state;
        if let Some(deadline) = drain {
            self.settle(deadline).await;
            fail_waiting(&state.children.all());
        }
        state.root.cancel();
        state.sessions.drain();
        state.children.stop_all().await;
    }

    /// Waits (up to the grace period) for every task spawned for the server.
    pub async fn wait_tasks(&self) {
        let tasks = self.state.children.tasks();
        tasks.close();
        let grace = self.state.config.shutdown_grace;
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            warn!(
                server = %self.name,
                left = tasks.len(),
                "tasks still running after the grace period"
            );
        }
    }
}

/// Answers the requests still in flight with an error (the drain is over).
fn fail_waiting(children: &[Arc<child::ChildHandle>]) {
    let message = "the bridge is shutting down";
    let failed: usize = children
        .iter()
        .map(|c| c.fail_waiting(jsonrpc::SHUTTING_DOWN, message))
        .sum();
    if failed > 0 {
        warn!(
            failed,
            "requests still in flight after the grace period were answered with an error"
        );
    }
}

/// Ends sessions idle for longer than the configured timeout, checking a few times per
/// timeout (at most once a minute), until the server stops.
async fn reap_idle_sessions(state: Arc<BridgeState>) {
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
