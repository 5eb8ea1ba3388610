//! The tasks that own the child's pipe ends: the writer (stdin), the reader (stdout: every
//! message is routed), the stderr drain, the exit watcher, and the deadline keeper; and the
//! pipes' capacity.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::ChildHandle;

/// How long the reader waits for more of a child's server requests before it answers a
/// stateless call with the ones it has (they usually come in one write).
const ANNOUNCE_WAIT: std::time::Duration = std::time::Duration::from_millis(5);
use crate::front::request_state;
use crate::jsonrpc;
use crate::lines::{Line, LineReader};
use crate::router::{Action, Outbound, StreamTx};

/// The capacity asked for a child's stdin and stdout pipes: a message of up to this size
/// crosses in one write and one read, where Linux's default of 64 KiB takes a round of
/// wake-ups per 64 KiB (`stream-16x4-large`, 64 KiB texts, and 8 MiB messages measured faster
/// in every alternated run). The kernel caps it at `/proc/sys/fs/pipe-max-size` (1 MiB by
/// default); a refusal keeps the default.
const PIPE_CAPACITY: i32 = 1 << 20;

/// Wide pipes at a time, at most. Each counts its capacity against the user's
/// `pipe-user-pages-soft` (64 MiB by default), past which Linux gives every new pipe of the
/// user, in any process, two pages only: 16 (8 children) take a quarter of it. Children past
/// them (session isolation) keep the default.
const WIDE_PIPES: usize = 16;

static WIDE_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// A child's reservation of two wide pipes, given back when its handle goes.
pub(super) struct Wide(());

impl Drop for Wide {
    fn drop(&mut self) {
        WIDE_IN_USE.fetch_sub(2, Ordering::Relaxed);
    }
}

/// Widens a child's stdin and stdout to `PIPE_CAPACITY` when the reservation allows.
pub(super) fn widen(stdin: &impl AsRawFd, stdout: &impl AsRawFd) -> Option<Wide> {
    WIDE_IN_USE
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n + 2 <= WIDE_PIPES).then_some(n + 2)
        })
        .ok()?;
    let wide = Wide(());
    set_capacity(stdin.as_raw_fd());
    set_capacity(stdout.as_raw_fd());
    Some(wide)
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_capacity(fd: std::os::fd::RawFd) {
    // SAFETY: F_SETPIPE_SZ changes the capacity of the pipe behind a descriptor we own; it
    // reads or writes no memory of ours.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_CAPACITY) };
    if rc < 0 {
        debug!(err = %std::io::Error::last_os_error(), "a child's pipe keeps its size");
    }
}

#[cfg(not(target_os = "linux"))]
fn set_capacity(_fd: std::os::fd::RawFd) {}

/// Answers what is overdue (see `Routes::expire`) until the child is gone. It sleeps until the
/// earliest deadline, or, with nothing waiting, for the shortest time anything may wait
/// (`RouteRules::shortest_wait`): a deadline set meanwhile is never earlier than the wake-up.
pub(super) async fn enforce_deadlines(child: Arc<ChildHandle>) {
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
pub(super) struct Lanes {
    pub(super) from_reader: mpsc::Receiver<Bytes>,
    pub(super) clients: mpsc::Receiver<Bytes>,
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
pub(super) async fn run_writer(mut stdin: ChildStdin, mut lanes: Lanes, close: CancellationToken) {
    let mut batch = Batch::default();
    loop {
        // Cancel safety: `recv` loses nothing when another branch wins.
        let first = tokio::select! {
            biased;
            _ = close.cancelled() => break,
            Some(line) = lanes.from_reader.recv() => line,
            line = lanes.clients.recv() => match line { Some(l) => l, None => break },
        };
        // Let the tasks that are ready run first: lines they queue go out in this write, one
        // wake-up of the child for many requests under load (measured: see the README's
        // performance section), and no wait at all when nothing else is ready.
        if batch.add(first) {
            tokio::task::yield_now().await;
            while let Some(line) = lanes.try_next() {
                if !batch.add(line) {
                    break;
                }
            }
        }
        tokio::select! {
            _ = close.cancelled() => break,
            r = batch.write_to(&mut stdin) => if let Err(e) = r {
                debug!(err = %e, "child stdin closed");
                break;
            },
        }
    }
    debug!("closing child stdin");
}

/// Lines gathered for one write: small ones copied together, then at most one large one
/// written from its own buffer (a large payload is not copied again here).
#[derive(Default)]
struct Batch {
    small: Vec<u8>,
    large: Option<Bytes>,
}

impl Batch {
    /// A line this long or longer is written from its own buffer.
    const LARGE: usize = 1 << 20;
    /// Small lines gathered for one write at most.
    const FULL: usize = 1 << 20;

    /// Adds a line; false when the batch takes no more.
    fn add(&mut self, line: Bytes) -> bool {
        if line.len() >= Self::LARGE {
            self.large = Some(line);
            return false;
        }
        self.small.extend_from_slice(&line);
        self.small.push(b'\n');
        self.small.len() < Self::FULL
    }

    /// Writes and empties the batch. Cancel safety: not cancel safe (a write may be cut
    /// short); the writer stops when it is cancelled.
    async fn write_to(&mut self, stdin: &mut ChildStdin) -> std::io::Result<()> {
        stdin.write_all(&self.small).await?;
        self.small.clear();
        if let Some(large) = self.large.take() {
            stdin.write_all(&large).await?;
            stdin.write_all(b"\n").await?;
        }
        stdin.flush().await
    }
}

/// Owns the child's stdout: routes every message, skips what is not JSON, and when the output
/// ends fails every waiting request and marks the child gone.
pub(super) async fn run_reader(mut lines: LineReader<ChildStdout>, child: Arc<ChildHandle>) {
    loop {
        // A call parked for its stateless client's input is announced once the child has
        // nothing more to say at once: requests it sends together go out together.
        let next = if !lines.has_line() && child.routes().has_unannounced() {
            // Cancel safety: `next_line` keeps every byte it read when the wait ends first.
            tokio::select! {
                line = lines.next_line() => line,
                _ = tokio::time::sleep(ANNOUNCE_WAIT) => {
                    let actions = child.routes().announce();
                    for action in actions {
                        perform(&child, action);
                    }
                    continue;
                }
            }
        } else {
            lines.next_line().await
        };
        match next {
            Ok(Some(Line::Text(line))) if route_plain(&child, &line) => {}
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

/// Routes a plain response by its envelope alone (`crate::envelope`); false when the line
/// needs the full parse.
fn route_plain(child: &ChildHandle, line: &[u8]) -> bool {
    let Some(env) = crate::envelope::read(line) else {
        return false;
    };
    let action = child.routes().response_raw(line, &env);
    match action {
        Some(action) => {
            perform(child, action);
            true
        }
        None => false,
    }
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
        Action::Several(actions) => {
            for a in actions {
                perform(child, a);
            }
        }
        Action::AskByResult {
            to,
            client_id,
            parked,
            caller,
            asks,
        } => {
            let ttl = child.routes().rules().shortest_wait();
            let state = request_state::mint(parked, caller.as_deref(), ttl);
            let result = json!({"resultType": "input_required", "inputRequests": asks, "requestState": state});
            let out = Outbound {
                json: jsonrpc::to_bytes(&jsonrpc::result_value(client_id, result)),
                last: true,
            };
            deliver(child, &to, out, "input_required");
        }
        Action::Deliver { to, msg, last } => {
            let out = Outbound {
                json: jsonrpc::to_bytes(&msg),
                last,
            };
            deliver(child, &to, out, jsonrpc::method(&msg));
        }
        Action::Send { to, json, last } => {
            deliver(child, &to, Outbound { json, last }, "response");
        }
        Action::Ask { to, requests } => {
            for msg in requests {
                let out = Outbound {
                    json: jsonrpc::to_bytes(&msg),
                    last: false,
                };
                deliver(child, &to, out, jsonrpc::method(&msg));
            }
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
            let cancels = {
                let mut routes = child.routes();
                routes.rules().metrics.stream_dropped();
                routes.drop_stream(to)
            };
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

pub(super) async fn drain_stderr(mut lines: LineReader<tokio::process::ChildStderr>) {
    while let Ok(Some(line)) = lines.next_line().await {
        match line {
            Line::Text(l) => info!(target: "child", "{}", String::from_utf8_lossy(&l)),
            Line::TooLong(n) => warn!(target: "child", bytes = n, "stderr line over the limit"),
        }
    }
}

pub(super) async fn watch_exit(mut child: Child, handle: Arc<ChildHandle>) {
    match child.wait().await {
        Ok(status) => {
            info!(%status, "child exited");
            *handle.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        }
        Err(e) => error!(err = %e, "waiting for child"),
    }
    handle.exited.cancel();
}
