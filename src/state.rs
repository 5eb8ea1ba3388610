//! `BridgeState`: what the whole bridge shares, whatever the client's era or transport: the
//! configuration, the live sessions, the children and the shutdown token. `http/` maps HTTP
//! onto it; nothing here knows HTTP.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::access::Policy;
use crate::children::Children;
use crate::config::Config;
use crate::session::Sessions;

/// The bridge's shared state.
pub struct BridgeState {
    /// The server's name (`default` for the server of the command line).
    pub name: std::sync::Arc<str>,
    /// The configuration the bridge runs with.
    pub config: Config,
    /// Live sessions.
    pub sessions: Sessions,
    /// The children sessions are bound to.
    pub children: Arc<Children>,
    /// When the bridge started serving.
    pub started: Instant,
    /// Cancelled at shutdown; every session token is its child.
    pub root: CancellationToken,
    /// Host, Origin and token rules for the address the bridge listens on.
    pub policy: Policy,
    /// OAuth: token checks, metadata and challenges (`None`: OAuth is off).
    pub oauth: Option<crate::oauth::ResourceServer>,
    /// Set when the server begins to stop: no new sessions from then on (clients open them
    /// on another instance), while the open ones finish their work.
    pub draining: std::sync::atomic::AtomicBool,
}

impl BridgeState {
    /// Whether the bridge can serve (shared isolation: some shared child runs), and its status
    /// as `/health` shows it.
    pub fn status(&self) -> (bool, Value) {
        let shared = self.children.shared();
        // Shared isolation is degraded while no shared child runs (e.g. during a restart).
        let running = shared.is_empty() || shared.iter().any(|c| c.is_running());
        let children = self.children.status();
        let all = self.children.all();
        // Client requests only: the bridge's own (a modern child's listen) are not work waiting.
        let pending: usize = all.iter().map(|c| c.waiting_clients()).sum();
        let waiting: usize = all.iter().map(|c| c.waiting_for_slot()).sum();
        let body = json!({
            "status": if running { "ok" } else { "degraded" },
            "child": children["pool"].get(0),
            "children": children,
            "uptimeSeconds": self.started.elapsed().as_secs(),
            "sessions": self.sessions.len(),
            "pendingRequests": pending,
            "waitingRequests": waiting,
        });
        (running, body)
    }
}
