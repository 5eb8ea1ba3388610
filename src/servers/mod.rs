//! `Servers`: the servers one bridge serves, by name. The command line makes one, `default`,
//! served at its own paths; a configuration file makes several, each at `/servers/NAME/…`
//! (and one of them, if marked, also at the default paths). A server is `Starting` until its
//! children are initialized, then `Running`. Readiness and health are answered from here.

pub mod file;
pub mod fleet;
pub mod running;

#[cfg(test)]
mod file_tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::{json, Value};

use crate::access::Policy;
pub use running::Running;

/// The prefix of every named server's paths.
pub const PREFIX: &str = "/servers/";

/// A server in the registry.
#[derive(Clone)]
pub enum Slot {
    /// Its children are being started.
    Starting,
    /// Serving (or restarting, or given up: see `Running::phase`).
    Running(Arc<Running>),
    /// Its children could not be started, for this reason.
    Failed(Arc<str>),
}

#[derive(Default)]
struct Table {
    by_name: BTreeMap<Arc<str>, Slot>,
    default: Option<Arc<str>>,
}

/// Every server of the bridge.
pub struct Servers {
    table: RwLock<Table>,
    shutting_down: AtomicBool,
    started: Instant,
    /// Host and Origin rules for the probes (the servers' routes apply their own).
    pub policy: Policy,
}

impl Servers {
    /// No servers yet.
    pub fn new(policy: Policy) -> Servers {
        Servers {
            table: RwLock::default(),
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            policy,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds or replaces server `name`; `default` also makes it the server of the default
    /// paths.
    pub fn set(&self, name: Arc<str>, slot: Slot, default: bool) {
        let mut t = self.write();
        if default {
            t.default = Some(name.clone());
        }
        t.by_name.insert(name, slot);
    }

    /// Removes server `name`, returning it.
    pub fn remove(&self, name: &str) -> Option<Slot> {
        let mut t = self.write();
        if t.default.as_deref() == Some(name) {
            t.default = None;
        }
        t.by_name.remove(name)
    }

    /// Server `name`.
    pub fn get(&self, name: &str) -> Option<Slot> {
        self.read().by_name.get(name).cloned()
    }

    /// The server of the default paths.
    pub fn default_server(&self) -> Option<Slot> {
        let t = self.read();
        t.default.as_ref().and_then(|n| t.by_name.get(n)).cloned()
    }

    /// The names of every server.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.read().by_name.keys().cloned().collect()
    }

    /// Every running server.
    pub fn running(&self) -> Vec<Arc<Running>> {
        let t = self.read();
        t.by_name
            .values()
            .filter_map(|s| match s {
                Slot::Running(r) => Some(r.clone()),
                Slot::Starting | Slot::Failed(_) => None,
            })
            .collect()
    }

    /// From now on `/ready` answers 503.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        for r in self.running() {
            r.begin_stop();
        }
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Whether every server is ready (and there is one, and no shutdown began), with each
    /// server's state.
    pub fn readiness(&self) -> (bool, Value) {
        let t = self.read();
        let mut servers = serde_json::Map::new();
        let mut all = !t.by_name.is_empty() && !self.is_shutting_down();
        for (name, slot) in &t.by_name {
            let (ready, state) = slot_readiness(slot);
            all &= ready;
            servers.insert(name.to_string(), json!({"ready": ready, "state": state}));
        }
        let body = json!({"ready": all, "instance": crate::instance::id(), "shuttingDown": self.is_shutting_down(), "servers": servers});
        (all, body)
    }

    /// Whether the bridge is alive (some server serves or starts, or there is none), and the
    /// details `/health` shows: totals, each server's, and (compatible with a bridge of one
    /// server) the default server's `child` and `children`.
    pub fn health(&self) -> (bool, Value) {
        let slots: Vec<(Arc<str>, Slot)> = {
            let t = self.read();
            t.by_name
                .iter()
                .map(|(n, s)| (n.clone(), s.clone()))
                .collect()
        };
        let default = self.read().default.clone();
        let mut servers = serde_json::Map::new();
        let (mut alive, mut ok) = (slots.is_empty(), !slots.is_empty());
        let mut body = json!({});
        let sum = |key: &str, v: &Value, body: &mut Value| {
            let total = body[key].as_u64().unwrap_or(0) + v[key].as_u64().unwrap_or(0);
            body[key] = total.into();
        };
        for (name, slot) in &slots {
            let detail = match slot {
                Slot::Starting => {
                    alive = true;
                    ok = false;
                    json!({"status": "starting", "ready": false, "state": "starting"})
                }
                Slot::Failed(why) => {
                    ok = false;
                    json!({"status": "failed", "ready": false, "state": "failed", "error": &**why})
                }
                Slot::Running(r) => {
                    let (running, detail) = r.health();
                    alive |= running;
                    ok &= running;
                    if default.as_deref() == Some(&**name) {
                        body["child"] = detail["child"].clone();
                        body["children"] = detail["children"].clone();
                    }
                    detail
                }
            };
            for key in ["sessions", "pendingRequests", "waitingRequests"] {
                sum(key, &detail, &mut body);
            }
            servers.insert(name.to_string(), detail);
        }
        body["status"] = if ok { "ok" } else { "degraded" }.into();
        body["instance"] = crate::instance::id().into();
        body["ready"] = self.readiness().0.into();
        body["uptimeSeconds"] = self.started.elapsed().as_secs().into();
        body["servers"] = servers.into();
        (alive, body)
    }
}

/// Whether a server is ready, and its state's name.
pub fn slot_readiness(slot: &Slot) -> (bool, &'static str) {
    match slot {
        Slot::Starting => (false, "starting"),
        Slot::Failed(_) => (false, "failed"),
        Slot::Running(r) => (r.is_ready(), r.phase()),
    }
}
