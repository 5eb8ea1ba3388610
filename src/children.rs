//! Which child serves a session, and keeping children alive. Shared isolation runs one child
//! (or a pool of them, each session pinned to the least loaded at `initialize`), restarted by a
//! supervisor with exponential backoff. Session isolation runs one child per session, spawned
//! at `initialize` and ended with the session. User isolation runs one child per user, spawned
//! at their first `initialize`, shared by their sessions, and ended once idle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::child::{self, ChildHandle};
pub use crate::config::{Isolation, Restart, Supervision};

use crate::config::Config;
use crate::jsonrpc;
use crate::router::{Outbound, Refused};
use crate::shutdown;

mod users;
use users::{Use, UserChild};

/// The children of one bridge.
pub struct Children {
    config: Config,
    /// Shared isolation: the current child of each pool slot.
    slots: Mutex<Vec<Arc<ChildHandle>>>,
    /// Session isolation: a child started ahead, for the next session.
    spare: Mutex<Option<Arc<ChildHandle>>>,
    /// User isolation: each user's child. Lock: taken before `live` when both are needed.
    users: Mutex<HashMap<Arc<str>, UserChild>>,
    /// Every child that may be running, and the places reserved for children being started.
    live: Mutex<Live>,
    /// Every task spawned for the children (pipes, supervisors, stops); shutdown waits for them.
    tasks: TaskTracker,
    restarts: AtomicU64,
    /// Cancelled when supervision gives up: the bridge then exits with `fatal_reason`.
    fatal: CancellationToken,
    fatal_reason: Mutex<Option<String>>,
    stopping: CancellationToken,
}

/// The children that may be running, by `ChildHandle::key`, and how many more are being
/// started: together they never exceed `max_children` in session isolation.
#[derive(Default)]
struct Live {
    children: HashMap<u64, Arc<ChildHandle>>,
    starting: usize,
}

/// A place reserved for a child being started; given back if the start fails or is abandoned.
struct Reservation<'a> {
    live: &'a Mutex<Live>,
}

impl Reservation<'_> {
    /// The child started: it takes the reserved place.
    fn fill(self, child: &Arc<ChildHandle>) {
        let mut live = lock(self.live);
        live.starting -= 1;
        live.children.insert(child.key, child.clone());
        drop(live);
        std::mem::forget(self);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        lock(self.live).starting -= 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Children {
    /// Starts the shared children (or, in session isolation, one spare child: the command is
    /// known to work before the bridge says it is ready).
    ///
    /// # Errors
    /// When a child cannot be spawned or initialized.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Children>> {
        let sup = &config.supervision;
        let first = if sup.isolation == Isolation::Shared {
            sup.pool.max(1)
        } else {
            1
        };
        let tasks = TaskTracker::new();
        let mut started = Vec::with_capacity(first);
        for _ in 0..first {
            started.push(child::spawn(&config, &[], &tasks).await?);
            config.metrics.child_started();
        }
        let children = Children {
            slots: Mutex::new(Vec::new()),
            spare: Mutex::new(None),
            users: Mutex::new(HashMap::new()),
            live: Mutex::new(Live::default()),
            tasks,
            restarts: AtomicU64::new(0),
            fatal: CancellationToken::new(),
            fatal_reason: Mutex::new(None),
            stopping: CancellationToken::new(),
            config,
        };
        let sup = &children.config.supervision;
        match sup.isolation {
            Isolation::Shared => {
                let mut live = lock(&children.live);
                live.children
                    .extend(started.iter().map(|c| (c.key, c.clone())));
                drop(live);
                *lock(&children.slots) = started;
            }
            // Children with per-session environments cannot be started ahead: the probe that
            // showed the command works is ended.
            Isolation::Session | Isolation::User
                if !sup.header_env.is_empty()
                    || !sup.claim_env.is_empty()
                    || sup.isolation == Isolation::User =>
            {
                let grace = children.config.shutdown_grace;
                for c in started {
                    children
                        .tasks
                        .spawn(async move { shutdown::stop_child(&c, grace).await });
                }
            }
            Isolation::Session | Isolation::User => *lock(&children.spare) = started.pop(),
        }
        Ok(Arc::new(children))
    }

    /// Starts a supervisor per shared slot.
    pub fn supervise(self: &Arc<Self>) {
        for slot in 0..lock(&self.slots).len() {
            self.tasks.spawn(self.clone().supervise_slot(slot));
        }
    }

    /// The tracker of every task spawned for children; others may add theirs.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// The child for a new session of `user`: the least loaded running shared child, a new
    /// child of its own (with `extra_env`) in session isolation, or the user's child (started
    /// with `extra_env` if they have none running) in user isolation.
    ///
    /// # Errors
    /// `ChildGone` when no child is running or one cannot be started; `TooManySessions` at
    /// `max_children`.
    pub async fn for_session(
        &self,
        user: Option<&Arc<str>>,
        extra_env: &[(String, String)],
    ) -> Result<Arc<ChildHandle>, Refused> {
        if self.config.supervision.isolation == Isolation::User {
            // The CLI requires authentication for user isolation; an anonymous user is one.
            let anonymous: Arc<str> = Arc::from("");
            return self
                .for_user(user.unwrap_or(&anonymous), extra_env, Use::Session)
                .await;
        }
        if self.config.supervision.isolation == Isolation::Shared {
            let slots = lock(&self.slots);
            let running = slots.iter().filter(|c| c.is_running());
            return running
                .min_by_key(|c| c.sessions())
                .cloned()
                .ok_or(Refused::ChildGone);
        }
        // Limits: the place is taken before the first `.await`, so no burst exceeds it.
        let (place, spare) = self.reserve(extra_env.is_empty()).ok_or_else(|| {
            warn!(
                max = self.config.supervision.max_children,
                "session refused: child limit reached"
            );
            Refused::TooManySessions
        })?;
        let child = match spare {
            Some(c) => c,
            None => child::spawn(&self.config, extra_env, &self.tasks)
                .await
                .map_err(|e| {
                    error!(
                        err = format!("{e:#}"),
                        "cannot start a child for a new session"
                    );
                    Refused::ChildGone
                })
                .inspect(|_| self.config.metrics.child_started())?,
        };
        place.fill(&child);
        Ok(child)
    }

    /// A place for one more child in session isolation, with the running spare when
    /// `take_spare` (it already held a place), unless `max_children` are running or being
    /// started.
    fn reserve(&self, take_spare: bool) -> Option<(Reservation<'_>, Option<Arc<ChildHandle>>)> {
        let mut live = lock(&self.live);
        let mut spare_slot = lock(&self.spare);
        let spare = take_spare
            .then(|| spare_slot.take())
            .flatten()
            .filter(|c| c.is_running());
        let taken = live.children.len() + live.starting + usize::from(spare_slot.is_some());
        if spare.is_none() && taken >= self.config.supervision.max_children {
            return None;
        }
        live.starting += 1;
        Some((Reservation { live: &self.live }, spare))
    }

    /// A session is done with `child`: in session isolation the child is ended; in user
    /// isolation it starts idling when no other session of the user uses it.
    pub fn release(&self, child: &Arc<ChildHandle>) {
        if self.config.supervision.isolation == Isolation::User {
            let mut users = lock(&self.users);
            if let Some(u) = users.values_mut().find(|u| u.child.key == child.key) {
                u.sessions = u.sessions.saturating_sub(1);
                if u.sessions == 0 {
                    u.idle_since = Some(tokio::time::Instant::now());
                }
            }
            return;
        }
        if self.config.supervision.isolation == Isolation::Session
            && lock(&self.live).children.remove(&child.key).is_some()
        {
            let (child, grace) = (child.clone(), self.config.shutdown_grace);
            self.tasks
                .spawn(async move { shutdown::stop_child(&child, grace).await });
        }
    }

    /// Completes when supervision gave up; `fatal_reason` says why.
    pub async fn fatal(&self) {
        self.fatal.cancelled().await
    }

    /// Restarts of shared children so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Whether supervision gave up.
    pub fn has_given_up(&self) -> bool {
        self.fatal.is_cancelled()
    }

    /// How sessions share these children.
    pub fn isolation(&self) -> Isolation {
        self.config.supervision.isolation
    }

    /// Why supervision gave up.
    pub fn fatal_reason(&self) -> String {
        lock(&self.fatal_reason)
            .clone()
            .unwrap_or_else(|| "the MCP server exited".into())
    }

    /// The child for one stateless request: the least busy running shared child.
    ///
    /// # Errors
    /// `ChildGone` when none runs, and in session isolation (no child is shared; a stateless
    /// request has no session to give a child of its own).
    pub fn for_request(&self) -> Result<Arc<ChildHandle>, Refused> {
        let slots = lock(&self.slots);
        let mut running = slots.iter().filter(|c| c.is_running());
        let first = running.next().ok_or(Refused::ChildGone)?;
        match running.next() {
            // One child (the usual case): no need to ask how busy it is.
            None => Ok(first.clone()),
            Some(_) => slots
                .iter()
                .filter(|c| c.is_running())
                .min_by_key(|c| c.sessions())
                .cloned()
                .ok_or(Refused::ChildGone),
        }
    }

    /// The shared child of slot 0 (shared isolation), for status and shutdown draining.
    pub fn shared(&self) -> Vec<Arc<ChildHandle>> {
        lock(&self.slots).clone()
    }

    /// Every child that may be running.
    pub fn all(&self) -> Vec<Arc<ChildHandle>> {
        let mut all: Vec<_> = lock(&self.live).children.values().cloned().collect();
        all.extend(lock(&self.spare).clone());
        all
    }

    /// Stops supervision and ends every child (in parallel).
    pub async fn stop_all(&self) {
        self.stopping.cancel();
        let grace = self.config.shutdown_grace;
        let mut all = self.all();
        // A shared child that exited for good (supervision gave up) still has its writer
        // waiting for lines: stopping it ends that task too.
        for c in self.shared() {
            if !all.iter().any(|a| a.key == c.key) {
                all.push(c);
            }
        }
        futures_util::future::join_all(all.iter().map(|c| shutdown::stop_child(c, grace))).await;
    }

    /// Status for `/health`.
    pub fn status(&self) -> Value {
        let describe = |c: &Arc<ChildHandle>| {
            json!({"pid": c.pid, "state": if c.is_running() { "running" } else { "exited" },
                   "sessions": c.sessions(), "protocolVersion": c.era.version().unwrap_or(&c.init.protocol_version),
                   "waiting": c.waiting_for_slot(), "era": c.era.name(),
                   "server": c.init.result.get("serverInfo")})
        };
        let sup = &self.config.supervision;
        let slots: Vec<Value> = lock(&self.slots).iter().map(describe).collect();
        json!({
            "isolation": match sup.isolation { Isolation::Shared => "shared", Isolation::Session => "session", Isolation::User => "user" },
            "restarts": self.restarts.load(Ordering::Relaxed),
            "running": self.all().iter().filter(|c| c.is_running()).count(),
            "starting": lock(&self.live).starting,
            "pool": slots,
        })
    }

    fn give_up(&self, reason: String) {
        error!(reason, "giving up on the MCP server");
        *lock(&self.fatal_reason) = Some(reason);
        self.fatal.cancel();
    }

    /// Watches one shared slot: when its child exits, restarts it as the policy says, with
    /// exponential backoff, and gives up after too many fast failures in a row.
    async fn supervise_slot(self: Arc<Self>, slot: usize) {
        let policy = self.config.supervision.restart;
        let mut fast_failures = 0u32;
        loop {
            let child = lock(&self.slots)[slot].clone();
            tokio::select! {
                _ = child.gone() => {}
                _ = self.stopping.cancelled() => return,
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), child.exited()).await;
            if self.stopping.is_cancelled() {
                return;
            }
            lock(&self.live).children.remove(&child.key);
            let status = child.exit_status();
            let described = status.map_or("unknown status".into(), |s| s.to_string());
            let failed = !status.is_some_and(|s| s.success());
            let restart = match policy {
                Restart::Never => false,
                Restart::OnFailure => failed,
                Restart::Always => true,
            };
            if !restart {
                return self.give_up(format!("the MCP server exited ({described})"));
            }
            let ran = child.started.elapsed();
            fast_failures = if ran < Supervision::FAST_RUN {
                fast_failures + 1
            } else {
                1
            };
            warn!(
                status = described,
                ?ran,
                "the MCP server exited; restarting"
            );
            let Some(new) = self.respawn(&mut fast_failures).await else {
                return;
            };
            lock(&self.live).children.insert(new.key, new.clone());
            let sessions = carry_sessions(&child, &new).await;
            info!(
                pid = new.pid,
                restarts = self.restarts.load(Ordering::Relaxed),
                sessions,
                "the MCP server restarted; its sessions go on"
            );
            lock(&self.slots)[slot] = new;
        }
    }

    /// Spawns a replacement after the backoff; `None` when giving up or stopping.
    async fn respawn(&self, fast_failures: &mut u32) -> Option<Arc<ChildHandle>> {
        loop {
            if *fast_failures > Supervision::MAX_FAST_FAILURES {
                let n = Supervision::MAX_FAST_FAILURES;
                self.give_up(format!(
                    "the MCP server failed {n} times in a row within {:?} of starting",
                    Supervision::FAST_RUN
                ));
                return None;
            }
            let delay = Supervision::backoff(*fast_failures);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stopping.cancelled() => return None,
            }
            match child::spawn(&self.config, &[], &self.tasks).await {
                Ok(new) => {
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                    self.config.metrics.child_started();
                    return Some(new);
                }
                Err(e) => {
                    error!(err = format!("{e:#}"), "restarting the MCP server failed");
                    *fast_failures += 1;
                }
            }
        }
    }
}

/// Hands the sessions of an exited child to its replacement: the replacement is subscribed
/// and set to the logging level they had asked for, and each session hears that the lists it
/// knew may have changed (the new process may offer other tools, prompts or resources).
/// Returns how many sessions have a standalone stream to hear it on.
async fn carry_sessions(old: &ChildHandle, new: &Arc<ChildHandle>) -> usize {
    let (to_child, streams) = old.hand_over(new);
    for line in to_child {
        if new.send(jsonrpc::to_bytes(&line)).await.is_err() {
            break;
        }
    }
    if new.era != crate::back::ChildEra::Legacy {
        // The sessions' subscriptions, through the bridge's listen; a child that is gone again
        // is the supervisor's next round.
        let _ = new.relisten().await;
    }
    let caps = new.init.result.get("capabilities");
    for kind in ["tools", "prompts", "resources"] {
        if caps.and_then(|c| c.get(kind)).is_none() {
            continue;
        }
        let note =
            json!({"jsonrpc": "2.0", "method": format!("notifications/{kind}/list_changed")});
        let json = jsonrpc::to_bytes(&note);
        for s in &streams {
            // A client that is not reading loses the hint, nothing more.
            let _ = s.try_send(Outbound {
                json: json.clone(),
                last: false,
            });
        }
    }
    streams.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let delays: Vec<u64> = (1..=9)
            .map(|n| Supervision::backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(Supervision::backoff(0), Supervision::FIRST_BACKOFF);
        assert_eq!(Supervision::backoff(u32::MAX), Supervision::MAX_BACKOFF);
    }
}
