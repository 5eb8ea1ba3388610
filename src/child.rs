//! The child process: spawning it in its own process group, the tasks that own its pipe ends
//! (writer, reader, stderr drain, exit watcher), and `ChildHandle`, the cloneable front the
//! HTTP side uses to register requests and write lines. Routing decisions live in `router`.

use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::config::Config;
use crate::gate::{Gate, GateFull, Permit};
use crate::handshake::{self, ChildInit};
use crate::jsonrpc;
use crate::lines::{Line, LineReader};
use crate::router::{Action, Outbound, RouteRules, Routes, StreamTx};

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
}

impl ChildHandle {
    /// The routing table.
    // Lock: held for map operations only, never across `.await` (see lib.rs).
    pub fn routes(&self) -> MutexGuard<'_, Routes> {
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
        let adopted = next.routes().adopt(owners);
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

#[allow(unsafe_code)]
fn signal_group(pgid: u32, sig: i32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    // SAFETY: killpg only sends a signal; it touches no memory of ours. The group id is the
    // child's pid, which is its own group leader (spawned with process_group(0)).
    let rc = unsafe { libc::killpg(pgid, sig) };
    if rc != 0 {
        debug!(pgid, sig, err = %std::io::Error::last_os_error(), "killpg");
    }
    rc == 0
}

/// Whether a process of group `pgid` is alive, from `/proc` (Linux); elsewhere, whether the
/// group can be signalled at all.
fn group_has_live_members(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return signal_group(pgid, 0);
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command's closing parenthesis: state, ppid, pgrp, ...
            let mut rest = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace();
            let state = rest.next();
            let group = rest.nth(1).and_then(|g| g.parse::<u32>().ok());
            group == Some(pgid) && state != Some("Z")
        })
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
    let span = tracing::info_span!("child", pid);

    let (Some(stderr), Some(mut stdin), Some(stdout)) =
        (child.stderr.take(), child.stdin.take(), child.stdout.take())
    else {
        signal_group(pid, libc::SIGKILL);
        anyhow::bail!("the child's pipes were not set up");
    };
    tasks.spawn(
        drain_stderr(LineReader::new(stderr, config.limits.max_line)).instrument(span.clone()),
    );
    let mut stdout = LineReader::new(stdout, config.limits.max_line);

    let init = match handshake::initialize(&mut stdin, &mut stdout, config.init_timeout).await {
        Ok(init) => init,
        Err(e) => {
            signal_group(pid, libc::SIGKILL);
            return Err(e);
        }
    };
    info!(version = %init.protocol_version, server = %init.server_name(), "child initialized");

    let (writer, rx) = mpsc::channel(config.limits.child_queue);
    let (from_reader, reader_rx) = mpsc::channel(READER_QUEUE);
    let handle = Arc::new(ChildHandle {
        key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
        pid,
        from_reader,
        gate: (config.limits.child_concurrency > 0)
            .then(|| Gate::new(config.limits.child_concurrency, config.limits.max_waiting)),
        init,
        writer,
        routes: Mutex::new(Routes::new(handshake::FIRST_CLIENT_ID, route_rules(config))),
        gone: CancellationToken::new(),
        exited: CancellationToken::new(),
        exit: Mutex::new(None),
        close_stdin: CancellationToken::new(),
        started,
        successor: std::sync::OnceLock::new(),
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
    Ok(handle)
}

/// The routing rules a child of this configuration gets.
fn route_rules(config: &Config) -> RouteRules {
    RouteRules {
        max_in_flight: config.limits.max_requests_per_session,
        request_timeout: config.request_timeout,
        single_owner: config.supervision.isolation == crate::config::Isolation::Session,
    }
}

/// Answers what is overdue (see `Routes::expire`) until the child is gone. It sleeps until the
/// earliest deadline, or, with nothing waiting, for the shortest time anything may wait
/// (`RouteRules::shortest_wait`): a deadline set meanwhile is never earlier than the wake-up.
async fn enforce_deadlines(child: Arc<ChildHandle>) {
    loop {
        let wake = {
            let routes = child.routes();
            let idle = tokio::time::Instant::now() + routes.rules().shortest_wait();
            routes.next_deadline().unwrap_or(idle)
        };
        // Cancel safety: nothing is lost when the sleep loses.
        tokio::select! {
            _ = child.gone() => return,
            _ = tokio::time::sleep_until(wake) => {}
        }
        let expired = child.routes().expire(tokio::time::Instant::now());
        for (stream, out) in expired.to_clients {
            // A client that has gone needs no answer.
            let _ = stream.try_send(out);
        }
        if !expired.to_child.is_empty() {
            warn!(lines = expired.to_child.len(), "requests timed out");
        }
        for line in expired.to_child {
            if child.send(jsonrpc::to_bytes(&line)).await.is_err() {
                return;
            }
        }
    }
}

/// The two queues the writer serves: the reader's lane first (short, urgent answers), then
/// the lines of client requests.
struct Lanes {
    from_reader: mpsc::Receiver<Bytes>,
    clients: mpsc::Receiver<Bytes>,
}

impl Lanes {
    /// The next line without waiting, the reader's lane first.
    fn try_next(&mut self) -> Option<Bytes> {
        self.from_reader
            .try_recv()
            .or_else(|_| self.clients.try_recv())
            .ok()
    }
}

/// Owns the child's stdin: writes queued lines, batching whatever is already queued into one
/// write, until `close` is cancelled or the client lane's senders are gone; then drops stdin
/// (EOF).
async fn run_writer(mut stdin: ChildStdin, mut lanes: Lanes, close: CancellationToken) {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        // Cancel safety: `recv` loses nothing when another branch wins.
        let first = tokio::select! {
            biased;
            _ = close.cancelled() => break,
            Some(line) = lanes.from_reader.recv() => line,
            line = lanes.clients.recv() => match line { Some(l) => l, None => break },
        };
        buf.extend_from_slice(&first);
        buf.push(b'\n');
        while buf.len() < 1 << 20 {
            let Some(line) = lanes.try_next() else { break };
            buf.extend_from_slice(&line);
            buf.push(b'\n');
        }
        let write = async {
            stdin.write_all(&buf).await?;
            stdin.flush().await
        };
        tokio::select! {
            _ = close.cancelled() => break,
            r = write => if let Err(e) = r {
                debug!(err = %e, "child stdin closed");
                break;
            },
        }
        buf.clear();
    }
    debug!("closing child stdin");
}

/// Owns the child's stdout: routes every message, skips what is not JSON, and when the output
/// ends fails every waiting request and marks the child gone.
async fn run_reader(mut lines: LineReader<ChildStdout>, child: Arc<ChildHandle>) {
    loop {
        match lines.next_line().await {
            Ok(Some(Line::Text(line))) => match serde_json::from_slice::<Value>(&line) {
                Ok(msg) => {
                    let action = child.routes().from_child(msg);
                    perform(&child, action);
                }
                Err(e) => {
                    warn!(err = %e, line = %preview(&line), "child printed a line that is not JSON; skipped")
                }
            },
            Ok(Some(Line::TooLong(n))) => fail_oversized(&child, &lines, n),
            Ok(None) => break,
            Err(e) => {
                warn!(err = %e, "reading child stdout");
                break;
            }
        }
    }
    let failed = child.fail_waiting(jsonrpc::CHILD_EXITED, "the MCP server process exited");
    info!(failed, "child output ended");
    child.gone.cancel();
}

/// A line over the limit is skipped; when it was the response to a waiting request (its id
/// read from the line's two ends), that request gets an error instead of waiting forever.
fn fail_oversized(child: &ChildHandle, lines: &LineReader<ChildStdout>, bytes: usize) {
    let (head, tail) = lines.skipped_ends();
    let id = jsonrpc::oversized_response_id(head, tail);
    let Some((tx, client_id)) = id.and_then(|id| child.routes().take_waiting(id)) else {
        error!(bytes, "child printed a line over the length limit; skipped");
        return;
    };
    error!(
        bytes,
        id, "a response over the length limit was skipped; its request gets an error"
    );
    let message = format!(
        "the MCP server's response ({bytes} bytes) exceeds the bridge's line limit (--max-line)"
    );
    let msg = jsonrpc::error_value(client_id, jsonrpc::INTERNAL_ERROR, &message);
    // The client may have gone; nothing else to do then.
    let _ = tx.try_send(Outbound {
        json: jsonrpc::to_bytes(&msg),
        last: true,
    });
}

/// Carries out a routing decision. Never waits: a stream whose queue is full belongs to a
/// client that stopped reading; that stream is ended and its requests are cancelled at the
/// child, and the reader goes on serving everyone else.
fn perform(child: &ChildHandle, action: Action) {
    match action {
        Action::Deliver { to, msg, last } => {
            let out = Outbound {
                json: jsonrpc::to_bytes(&msg),
                last,
            };
            deliver(child, &to, out, jsonrpc::method(&msg));
        }
        Action::Broadcast { to, msg } => {
            let json = jsonrpc::to_bytes(&msg);
            for tx in to {
                deliver(
                    child,
                    &tx,
                    Outbound {
                        json: json.clone(),
                        last: false,
                    },
                    jsonrpc::method(&msg),
                );
            }
        }
        Action::ToChild { msg, refused } => {
            if let Some(r) = refused {
                warn!(
                    method = r.method,
                    why = r.why,
                    "refused a request from the child"
                );
            }
            child.send_from_reader(jsonrpc::to_bytes(&msg));
        }
        Action::Drop { why, warn: true } => warn!(why, "child message dropped"),
        Action::Drop { why, warn: false } => debug!(why, "child message dropped"),
    }
}

fn deliver(child: &ChildHandle, to: &StreamTx, out: Outbound, method: &str) {
    match to.try_send(out) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Closed(_)) => {
            debug!(method, "client stream closed; message dropped")
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            to.stop();
            let cancels = child.routes().drop_stream(to);
            warn!(
                method,
                cancelled = cancels.len(),
                "client not reading its stream (queue full): stream closed"
            );
            for line in cancels {
                child.send_from_reader(jsonrpc::to_bytes(&line));
            }
        }
    }
}

/// A short, printable excerpt of a line for logs.
fn preview(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(200)]);
    s.into_owned()
}

async fn drain_stderr(mut lines: LineReader<tokio::process::ChildStderr>) {
    while let Ok(Some(line)) = lines.next_line().await {
        match line {
            Line::Text(l) => info!(target: "child", "{}", String::from_utf8_lossy(&l)),
            Line::TooLong(n) => warn!(target: "child", bytes = n, "stderr line over the limit"),
        }
    }
}

async fn watch_exit(mut child: Child, handle: Arc<ChildHandle>) {
    match child.wait().await {
        Ok(status) => {
            info!(%status, "child exited");
            *handle.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        }
        Err(e) => error!(err = %e, "waiting for child"),
    }
    handle.exited.cancel();
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
            protocol_version: handshake::LATEST_VERSION.into(),
        },
        writer,
        routes: Mutex::new(Routes::new(handshake::FIRST_CLIENT_ID, RouteRules::new(8))),
        gone: CancellationToken::new(),
        exited: CancellationToken::new(),
        exit: Mutex::new(None),
        close_stdin: CancellationToken::new(),
        started: std::time::Instant::now(),
        successor: std::sync::OnceLock::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn group_liveness_follows_its_members() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = sleeper.id();
        assert!(group_has_live_members(pgid));
        assert!(signal_group(pgid, libc::SIGKILL));
        sleeper.wait().unwrap();
        assert!(!group_has_live_members(pgid));
        assert!(
            !signal_group(pgid, libc::SIGTERM),
            "an empty group cannot be signalled"
        );
    }
}
