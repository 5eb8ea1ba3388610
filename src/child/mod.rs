//! One child process: spawning it in its own process group and `ChildHandle`, the front every
//! session bound to it uses. The tasks that own its pipe ends are in `pipes`, what its routes
//! are asked in `routing` (routing decisions themselves live in `router`), its process group
//! in `group`.

mod group;
mod pipes;
mod routing;

use group::{group_has_live_members, signal_group};
use pipes::{drain_stderr, enforce_deadlines, run_reader, run_writer, watch_exit, Lanes};

pub use routing::{Detached, Forwarded, Forwarding, Outgoing};

use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, Instrument};

use crate::back::legacy::{self, ChildInit};
use crate::back::{self, ChildEra};
use crate::config::Config;
use crate::gate::{Gate, GateFull, Permit};
use crate::jsonrpc;
use crate::lines::LineReader;
use crate::router::{Outbound, RouteRules, Routes, StreamTx};

/// The child stopped accepting lines (it exited or is shutting down).
#[derive(Debug, Clone, Copy)]
pub struct ChildGone;

/// Lines the reader may queue for the child (ping answers, refusals, cancellations) while the
/// child is not reading its stdin; beyond that the child is broken and such lines are dropped.
pub const READER_QUEUE: usize = 1024;

/// Allocates `ChildHandle::key`s: unlike pids, never reused within a bridge.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The front of one running child, shared by every session bound to it.
pub struct ChildHandle {
    /// The bridge's own name for this child, unique for the bridge's life (a pid may be
    /// reused by the system once the process is gone).
    pub key: u64,
    /// OS process id (also its process group id).
    pub pid: u32,
    /// The child's answer to the bridge's `initialize`.
    pub init: ChildInit,
    /// The era it speaks (how requests are rendered for it).
    pub era: ChildEra,
    writer: mpsc::Sender<Bytes>,
    /// The reader's own lane to the writer: bounded, in order, never awaited.
    from_reader: mpsc::Sender<Bytes>,
    /// Caps the client requests in flight at this child (`--child-concurrency`); `None`: no
    /// cap.
    gate: Option<Arc<Gate>>,
    routes: Mutex<Routes>,
    /// Cancelled once the child's stdout has ended and every waiting request was failed.
    gone: CancellationToken,
    /// Cancelled once the process has exited and `exit` holds its status.
    exited: CancellationToken,
    exit: Mutex<Option<ExitStatus>>,
    /// Cancel to close the child's stdin (its writer stops).
    close_stdin: CancellationToken,
    /// When it was spawned (supervision tells fast failures from long runs).
    pub started: std::time::Instant,
    /// The child that took over this one's sessions after it exited (shared isolation).
    successor: std::sync::OnceLock<Arc<ChildHandle>>,
    /// Its pipes' share of the wide ones, if they are.
    _wide: Option<pipes::Wide>,
}

impl ChildHandle {
    /// The routing table, for this module only: others ask by name (`routing`).
    // Lock: held for map operations only, never across `.await` (see lib.rs).
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for one more client request at this child, waiting fairly behind other
    /// sessions' requests when `--child-concurrency` are in flight. `None` when there is no cap.
    ///
    /// # Errors
    /// `GateFull` when `--max-waiting` requests wait already.
    pub async fn slot(&self, owner: &Arc<str>) -> Result<Option<Permit>, GateFull> {
        match &self.gate {
            Some(gate) => gate.acquire(owner).await.map(Some),
            None => Ok(None),
        }
    }

    /// Requests waiting for a slot (`--child-concurrency`).
    pub fn waiting_for_slot(&self) -> usize {
        self.gate.as_ref().map_or(0, |g| g.waiting())
    }

    /// The child that took over this one's sessions, once there is one.
    pub fn successor(&self) -> Option<Arc<ChildHandle>> {
        self.successor.get().cloned()
    }

    /// Hands this (exited) child's sessions to `next`: their subscriptions, logging levels and
    /// standalone streams move to its routes, and from now on `Session::child` resolves to it.
    /// Returns the lines `next` must get to match (subscriptions, the merged logging level)
    /// and the sessions' standalone streams.
    pub fn hand_over(&self, next: &Arc<ChildHandle>) -> (Vec<Value>, Vec<StreamTx>) {
        // Lock: both routes at once, the old one first; nothing else ever takes two. Holding
        // the old one until the successor is set means a session ending meanwhile is either
        // detached before the hand-over or finds the successor and leaves it too.
        let mut old = self.routes();
        let owners = old.take_owners();
        let adopted = next.routes().adopt(owners, next.era == ChildEra::Legacy);
        let _ = self.successor.set(next.clone());
        drop(old);
        adopted
    }

    /// Queues one line for the child's stdin, waiting while the queue is full.
    ///
    /// # Errors
    /// `ChildGone` when the writer has stopped.
    pub async fn send(&self, line: Bytes) -> Result<(), ChildGone> {
        self.writer.send(line).await.map_err(|_| ChildGone)
    }

    /// Queues a line from the reader, which must never wait on the child (a child blocked
    /// writing its stdout while the reader waits to write its stdin is a deadlock). The lane is
    /// bounded and keeps order; the writer serves it first. A child that lets it fill is not
    /// reading its stdin at all, and the line is dropped with an error.
    fn send_from_reader(&self, line: Bytes) {
        match self.from_reader.try_send(line) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => error!(
                queued = READER_QUEUE,
                "the MCP server is not reading its stdin; a reply or cancellation to it was dropped"
            ),
            // The writer stopped: the child is gone and needs nothing more.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Refuses all further requests and answers every request still waiting with a JSON-RPC
    /// error. Returns how many were answered.
    pub fn fail_waiting(&self, code: i64, message: &str) -> usize {
        let waiting = self.routes().close();
        for (tx, client_id) in &waiting {
            let msg = jsonrpc::error_value(client_id.clone(), code, message);
            // The client may have gone; nothing else to do then.
            let _ = tx.try_send(Outbound {
                json: jsonrpc::to_bytes(&msg),
                last: true,
            });
        }
        waiting.len()
    }

    /// A future that completes once the child is gone and its waiting requests were failed.
    pub fn gone(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.gone.cancelled()
    }

    /// Whether the child is still running.
    pub fn is_running(&self) -> bool {
        !self.gone.is_cancelled()
    }

    /// Closes the child's stdin: the MCP way to ask a stdio server to exit.
    pub fn close_stdin(&self) {
        self.close_stdin.cancel();
    }

    /// A future that completes once the process has exited.
    pub fn exited(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.exited.cancelled()
    }

    /// The exit status, once known.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `sig` to the child's whole process group (grandchildren included). False when
    /// the group has no process left.
    pub fn signal_group(&self, sig: i32) -> bool {
        signal_group(self.pid, sig)
    }

    /// Whether any process of the child's group is still alive (not counting zombies, which
    /// hold no resources and wait only to be reaped).
    pub fn group_alive(&self) -> bool {
        group_has_live_members(self.pid)
    }
}

/// Spawns the child, initializes it once, then starts its pipe tasks (tracked by `tasks`).
///
/// # Errors
/// When the command cannot be spawned (naming it and the OS error), or the child does not
/// answer `initialize` in time or with a usable result.
pub async fn spawn(
    config: &Config,
    extra_env: &[(String, String)],
    tasks: &TaskTracker,
) -> anyhow::Result<Arc<ChildHandle>> {
    let mut cmd = Command::new(&config.command);
    cmd.args(&config.args)
        // The bridge's own credentials are never the child's.
        .env_remove(crate::cli::TOKEN_ENV)
        .env_remove(crate::cli::CLIENT_SECRET_ENV)
        .envs(config.env.iter().chain(extra_env).map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A terminal's Ctrl-C reaches only the bridge, which then ends the child in order.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &config.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot spawn {:?}", config.command))?;
    let pid = child.id().context("child has no pid")?;
    let started = std::time::Instant::now();
    info!(pid, command = ?config.command, args = ?config.args, "child spawned");
    let span = tracing::info_span!("child", server = %config.name, pid);

    let (Some(stderr), Some(mut stdin), Some(stdout)) =
        (child.stderr.take(), child.stdin.take(), child.stdout.take())
    else {
        signal_group(pid, libc::SIGKILL);
        anyhow::bail!("the child's pipes were not set up");
    };
    let wide = pipes::widen(&stdin, &stdout);
    tasks.spawn(
        drain_stderr(LineReader::new(stderr, config.limits.max_line)).instrument(span.clone()),
    );
    let mut stdout = LineReader::new(stdout, config.limits.max_line);

    let opened = back::open(
        &mut stdin,
        &mut stdout,
        config.child_era,
        config.init_timeout,
    );
    let declared = match opened.await {
        Ok(declared) => declared,
        Err(e) => {
            signal_group(pid, libc::SIGKILL);
            return Err(e);
        }
    };
    let init = declared.init;
    let server_info = init.result.get("serverInfo").cloned().unwrap_or_default();
    let version = declared.era.version().unwrap_or(&init.protocol_version);
    info!(era = declared.era.name(), version, mcp_server = %init.server_name(), "child ready");

    let (writer, rx) = mpsc::channel(config.limits.child_queue);
    let (from_reader, reader_rx) = mpsc::channel(READER_QUEUE);
    let handle = Arc::new(ChildHandle {
        key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
        pid,
        from_reader,
        gate: (config.limits.child_concurrency > 0)
            .then(|| Gate::new(config.limits.child_concurrency, config.limits.max_waiting)),
        init,
        era: declared.era.clone(),
        writer,
        routes: Mutex::new(Routes::new(
            legacy::FIRST_CLIENT_ID,
            route_rules(config, server_info),
        )),
        gone: CancellationToken::new(),
        exited: CancellationToken::new(),
        exit: Mutex::new(None),
        close_stdin: CancellationToken::new(),
        started,
        successor: std::sync::OnceLock::new(),
        _wide: wide,
    });
    let close = handle.close_stdin.clone();
    let lanes = Lanes {
        from_reader: reader_rx,
        clients: rx,
    };
    tasks.spawn(run_writer(stdin, lanes, close).instrument(span.clone()));
    tasks.spawn(run_reader(stdout, handle.clone()).instrument(span.clone()));
    tasks.spawn(enforce_deadlines(handle.clone()).instrument(span.clone()));
    tasks.spawn(watch_exit(child, handle.clone()).instrument(span));
    // A modern child tells its changes only to listeners: the bridge listens for its sessions.
    if handle.era != ChildEra::Legacy {
        handle
            .relisten()
            .await
            .map_err(|_| anyhow::anyhow!("the MCP server exited"))?;
    }
    Ok(handle)
}

/// The routing rules a child of this configuration gets.
fn route_rules(config: &Config, server_info: Value) -> RouteRules {
    RouteRules {
        max_in_flight: config.limits.max_requests_per_session,
        request_timeout: config.request_timeout,
        single_owner: config.supervision.isolation == crate::config::Isolation::Session,
        finish_context: server_info,
        tools: config.tools.clone(),
        metrics: config.metrics.clone(),
        param_headers: config.param_headers.clone(),
    }
}

/// Registers a request as if it had been forwarded, for unit tests without a process.
#[cfg(test)]
impl ChildHandle {
    pub(crate) fn register_for_tests(
        &self,
        owner: &crate::router::Owner,
        msg: &mut Value,
        reg: crate::router::Registration,
    ) -> u64 {
        self.routes().register(owner, msg, reg).expect("registered")
    }
}

/// A handle with no process behind it, for unit tests of what sits on top of children.
#[cfg(test)]
pub(crate) fn handle_for_tests() -> Arc<ChildHandle> {
    let (writer, _) = mpsc::channel(1);
    let (from_reader, _) = mpsc::channel(1);
    Arc::new(ChildHandle {
        key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
        pid: 0,
        from_reader,
        gate: None,
        init: ChildInit {
            result: serde_json::json!({}),
            protocol_version: legacy::LATEST_VERSION.into(),
        },
        writer,
        era: ChildEra::Legacy,
        routes: Mutex::new(Routes::new(legacy::FIRST_CLIENT_ID, RouteRules::new(8))),
        gone: CancellationToken::new(),
        exited: CancellationToken::new(),
        exit: Mutex::new(None),
        close_stdin: CancellationToken::new(),
        started: std::time::Instant::now(),
        successor: std::sync::OnceLock::new(),
        _wide: None,
    })
}
