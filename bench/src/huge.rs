//! The `huge` scenario: an N MiB request argument (`echo`) and an N MiB tool result (`huge`),
//! one call at a time, timed first over the example server's own stdio pipes (no bridge: the
//! floor) and then through the bridge, so that what the bridge adds to big payloads is a ratio.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::bridge::Bridge;
use crate::client::{self, ACCEPT_BOTH, SESSION_VERSION};
use crate::http::{check_echo, read_reply, Conn, Fail};
use crate::procs;
use crate::scenario::{percentiles, CpuWindow, Errors, Row, Settings, Spec, What};

const DEFAULT_MIB: usize = 8;
const MAX_MIB: usize = 128;
/// The revision the pipe client asks the server for (the bridge's session asks for its own).
const PIPE_VERSION: &str = "2025-06-18";
/// How long starting the server and its `initialize` may take on the pipe.
const PIPE_SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The capacity the bridge asks for its child's pipes (`src/child/pipes.rs` at the root).
const PIPE_CAPACITY: i32 = 1 << 20;
/// The bar of the performance issue: through the bridge within 1.5× of the pipe alone.
const TARGET_RATIO: f64 = 1.5;

/// `huge` (8 MiB) or `huge-N` (N MiB, 1 to 128); `None` for the names of other scenarios.
pub fn parse(name: &str) -> Option<Result<What, String>> {
    crate::scenario::name_with_count(name, "huge", DEFAULT_MIB, MAX_MIB, "N MiB")
        .map(|mib| mib.map(|mib| What::Huge { mib }))
}

/// The bridge's body and line limits (4 MiB and 16 MiB by default) raised to fit the calls:
/// 32 MiB, or 4 × N MiB when more.
pub fn bridge_args(mib: usize) -> Vec<String> {
    let limit = format!("{}MiB", (4 * mib).max(32));
    vec![
        "--max-body".into(),
        limit.clone(),
        "--max-line".into(),
        limit,
    ]
}

/// The two calls measured, each in a row of its own.
#[derive(Clone, Copy)]
enum Call {
    /// `echo` with an N MiB text: a big request argument, and the same bytes back.
    Echo,
    /// `huge` with `bytes`: a tiny request, an N MiB tool result.
    Result,
}

impl Call {
    const BOTH: [Call; 2] = [Call::Echo, Call::Result];

    fn name(self) -> &'static str {
        match self {
            Call::Echo => "echo",
            Call::Result => "result",
        }
    }

    /// The call with id `id`; `filler` is the N MiB the echo texts are made of.
    fn request(self, id: u64, filler: &str) -> Request {
        match self {
            Call::Echo => {
                let text = echo_text(id, filler);
                let body = client::echo_body(id, &text, 0, false);
                Request { id, body, text }
            }
            Call::Result => {
                let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "huge", "arguments": {"bytes": filler.len()}}});
                let body = Bytes::from(serde_json::to_vec(&msg).expect("serializable"));
                // The example server's `huge` answers with that many `x`.
                let text = "x".repeat(filler.len());
                Request { id, body, text }
            }
        }
    }
}

/// One call, built before the clock starts: its id, its JSON body and the text the reply must
/// carry (checked with the same rules as every `echo` of the bench: id, no error, the text).
struct Request {
    id: u64,
    body: Bytes,
    text: String,
}

impl Request {
    /// The body as one line for the pipe.
    fn line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(self.body.len() + 1);
        line.extend_from_slice(&self.body);
        line.push(b'\n');
        line
    }
}

/// `bytes` of letters and digits (deterministic): what the echo texts are made of.
pub fn make_filler(bytes: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// The text of one echo call: `huge-<id>-` over the filler, so that each call's text is its own
/// and a stale reply cannot pass.
fn echo_text(id: u64, filler: &str) -> String {
    let tag = format!("huge-{id}-");
    let mut text = String::with_capacity(filler.len());
    text.push_str(&tag);
    text.push_str(&filler[tag.len().min(filler.len())..]);
    text
}

/// The example server on pipes of its own, no bridge: the floor the bridge is compared with.
struct Pipe {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The last line read (its buffer is kept from call to call).
    reply: Vec<u8>,
}

impl Pipe {
    /// Starts `server` and does the handshake: `initialize` (id 1), its reply,
    /// `notifications/initialized`.
    async fn start(server: &Path) -> Result<Pipe, String> {
        let mut child = Command::new(server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
        let stdin = child.stdin.take().ok_or("the server has no stdin")?;
        let stdout = child.stdout.take().ok_or("the server has no stdout")?;
        // The floor is measured over pipes as wide as the bridge makes its child's.
        widen(stdin.as_raw_fd());
        widen(stdout.as_raw_fd());
        let mut pipe = Pipe {
            child,
            stdin,
            stdout: BufReader::with_capacity(1 << 16, stdout),
            reply: Vec::new(),
        };
        let handshake = async {
            let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": PIPE_VERSION, "capabilities": {},
                "clientInfo": {"name": "mcp-bench", "version": env!("CARGO_PKG_VERSION")}}});
            pipe.exchange(&json_line(&init)).await?;
            let msg = pipe.parse_reply()?;
            if msg["id"].as_u64() != Some(1) || msg["result"]["protocolVersion"] != PIPE_VERSION {
                return Err(Fail::Rpc(format!("initialize answered {msg}")));
            }
            let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            pipe.write(&json_line(&initialized)).await
        };
        let done = tokio::time::timeout(PIPE_SETUP_TIMEOUT, handshake).await;
        match done {
            Ok(Ok(())) => Ok(pipe),
            Ok(Err(e)) => Err(format!("the server on pipes: {e}")),
            Err(_) => Err("the server on pipes: no initialize reply within 10 s".into()),
        }
    }

    async fn write(&mut self, line: &[u8]) -> Result<(), Fail> {
        write_line(&mut self.stdin, line).await
    }

    /// Writes `line` (newline included) while reading one line back into `reply`.
    async fn exchange(&mut self, line: &[u8]) -> Result<(), Fail> {
        let Pipe {
            stdin,
            stdout,
            reply,
            ..
        } = self;
        reply.clear();
        let (written, read) =
            tokio::join!(write_line(stdin, line), stdout.read_until(b'\n', reply));
        written?;
        match read {
            Ok(_) if reply.ends_with(b"\n") => Ok(()),
            Ok(0) => Err(Fail::Http("the server closed its stdout".into())),
            Ok(n) => Err(Fail::Http(format!(
                "the server's stdout ended after {n} bytes of a line"
            ))),
            Err(e) => Err(Fail::Http(format!("reading from the server: {e}"))),
        }
    }

    fn parse_reply(&self) -> Result<Value, Fail> {
        serde_json::from_slice(&self.reply).map_err(|e| Fail::Http(format!("reply line: {e}")))
    }

    /// One timed call: (write to whole reply line read, parse and check of that line).
    async fn call(&mut self, req: &Request, timeout: Duration) -> Result<[Duration; 2], Fail> {
        let line = req.line();
        let start = Instant::now();
        match tokio::time::timeout(timeout, self.exchange(&line)).await {
            Ok(done) => done?,
            Err(_) => return Err(Fail::Timeout),
        }
        let moved = start.elapsed();
        check_echo(&self.parse_reply()?, req.id, &req.text)?;
        Ok([moved, start.elapsed() - moved])
    }

    /// Closes the server's stdin (it exits on EOF); killed if still there after 5 s.
    async fn stop(self) {
        let Pipe {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

async fn write_line(stdin: &mut ChildStdin, line: &[u8]) -> Result<(), Fail> {
    let written = async {
        stdin.write_all(line).await?;
        stdin.flush().await
    };
    written
        .await
        .map_err(|e| Fail::Http(format!("writing to the server: {e}")))
}

/// The same failure, said to be of the pipe (the row's errors count both sides).
fn on_pipe(f: Fail) -> Fail {
    match f {
        Fail::Http(m) => Fail::Http(format!("pipe: {m}")),
        Fail::Rpc(m) => Fail::Rpc(format!("pipe: {m}")),
        Fail::Mismatch(m) => Fail::Mismatch(format!("pipe: {m}")),
        Fail::Timeout => Fail::Timeout,
    }
}

fn json_line(msg: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(msg).expect("serializable");
    line.push(b'\n');
    line
}

/// The bridge's side: one Streamable HTTP session on a connection of its own (reopened after a
/// failure, as the load workers do).
struct BridgeSession {
    addr: SocketAddr,
    path: String,
    sid: String,
    conn: Option<Conn>,
}

impl BridgeSession {
    /// `initialize` + `notifications/initialized`, as every scenario opens its sessions.
    async fn open(bridge: &Bridge) -> Result<BridgeSession, Fail> {
        let mut conn = Conn::open(bridge.addr).await?;
        let session = client::open_stream_session(&mut conn, &bridge.mcp_path).await?;
        Ok(BridgeSession {
            addr: bridge.addr,
            path: bridge.mcp_path.clone(),
            sid: session.sid.clone().unwrap_or_default(),
            conn: Some(conn),
        })
    }

    /// POSTs the call (both reply forms accepted) and checks the reply.
    async fn call(&mut self, req: &Request) -> Result<(), Fail> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(self.addr).await?);
        }
        let conn = self.conn.as_mut().expect("opened above");
        let headers = [
            ("accept", ACCEPT_BOTH),
            ("mcp-session-id", self.sid.as_str()),
            ("mcp-protocol-version", SESSION_VERSION),
        ];
        let resp = conn
            .send(Method::POST, &self.path, &headers, req.body.clone())
            .await?;
        check_echo(&read_reply(resp).await?, req.id, &req.text)
    }

    /// One timed call: from starting the POST to the reply parsed and checked.
    async fn timed(&mut self, req: &Request, timeout: Duration) -> Result<Duration, Fail> {
        let start = Instant::now();
        let done = match tokio::time::timeout(timeout, self.call(req)).await {
            Ok(done) => done,
            Err(_) => Err(Fail::Timeout),
        };
        if matches!(done, Err(Fail::Http(_) | Fail::Timeout)) {
            self.conn = None; // it may be unusable
        }
        done.map(|()| start.elapsed())
    }
}

/// What the pipe phase measured for one kind of call.
#[derive(Default)]
struct PipeTimes {
    /// Write of the request line to the whole reply line read.
    moved_ns: Vec<u64>,
    /// Parse and check of the reply line after that (the bridge times include theirs).
    checked_ns: Vec<u64>,
    errors: Errors,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

fn median_ms(ns: &[u64]) -> Option<f64> {
    percentiles(ns.to_vec()).map(|p| p[0])
}

/// Phase 1: each kind of call `repeat` times over the server's own pipes. A transport failure
/// or a timeout ends the phase (the pipe may be out of step): later calls are not made.
async fn pipe_phase(
    server: &Path,
    filler: &str,
    repeat: usize,
    timeout: Duration,
) -> Result<[PipeTimes; 2], String> {
    let mut out: [PipeTimes; 2] = Default::default();
    let mut pipe = Some(Pipe::start(server).await?);
    let mut id = 1;
    for (call, times) in Call::BOTH.into_iter().zip(out.iter_mut()) {
        for _ in 0..repeat {
            let Some(p) = pipe.as_mut() else { break };
            id += 1;
            let req = call.request(id, filler);
            match p.call(&req, timeout).await {
                Ok([moved, checked]) => {
                    times.moved_ns.push(ns(moved));
                    times.checked_ns.push(ns(checked));
                }
                Err(e) => {
                    if matches!(e, Fail::Http(_) | Fail::Timeout) {
                        pipe = None;
                    }
                    times.errors.add(&on_pipe(e));
                }
            }
        }
    }
    if let Some(p) = pipe {
        p.stop().await;
    }
    Ok(out)
}

/// Sets the kernel's peak RSS of each process back to its RSS now; that RSS, by pid (`None`
/// when the kernel refused: the peaks are then those since the process started).
fn reset_kernel_peaks(pids: &[i32]) -> Option<Vec<u64>> {
    pids.iter()
        .map(|&pid| {
            let now = procs::rss(pid)?;
            procs::reset_peak_rss(pid).then_some(now)
        })
        .collect()
}

/// `VmHWM` of the bridge and of its child since `from` was read: "bridge X MiB (from Y)".
fn kernel_peaks(pids: &[i32], from: Option<&[u64]>) -> String {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let peaks: Vec<String> = pids
        .iter()
        .enumerate()
        .filter_map(|(i, &pid)| {
            let who = if i == 0 { "bridge" } else { "child" };
            let peak = procs::peak_rss(pid)?;
            Some(match from.and_then(|f| f.get(i)) {
                Some(&start) => format!("{who} {:.1} MiB (from {:.1})", mib(peak), mib(start)),
                None => format!("{who} {:.1} MiB (since start)", mib(peak)),
            })
        })
        .collect();
    peaks.join(", ")
}

/// The pipe alone, then one session through the bridge; a row per kind of call.
pub async fn run(
    spec: &Spec,
    set: &Settings,
    bridge: &Bridge,
    server: &Path,
) -> Result<Vec<Row>, String> {
    let What::Huge { mib } = spec.what else {
        unreachable!("a huge scenario")
    };
    let repeat = set.huge_repeat;
    let filler = make_filler(mib << 20);
    let piped = pipe_phase(server, &filler, repeat, set.request_timeout).await?;

    let mut session = BridgeSession::open(bridge)
        .await
        .map_err(|e| format!("opening the session: {e}"))?;
    let pids = procs::tree_pids(bridge.pid);
    let mut rows = Vec::new();
    let mut id = 1; // initialize took id 1
    for (call, pipe) in Call::BOTH.into_iter().zip(piped) {
        // Peaks per row: the sampled one and the kernel's, both from now.
        bridge.reset_peak();
        let rss_before = reset_kernel_peaks(&pids);
        let cpu = CpuWindow::now(bridge);
        let mut lat = Vec::with_capacity(repeat);
        let mut errors = pipe.errors;
        for _ in 0..repeat {
            id += 1;
            let req = call.request(id, &filler);
            match session.timed(&req, set.request_timeout).await {
                Ok(took) => lat.push(ns(took)),
                Err(e) => errors.add(&e),
            }
        }
        let cpu = cpu.since(bridge);
        let ms = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.1} ms"));
        let (pipe_ms, bridge_ms) = (median_ms(&pipe.moved_ns), median_ms(&lat));
        let ratio = match (pipe_ms, bridge_ms) {
            (Some(p), Some(b)) if p > 0.0 => {
                let over = if b / p > TARGET_RATIO {
                    " (over 1.5×)"
                } else {
                    ""
                };
                format!("×{:.2}{over}", b / p)
            }
            _ => "×—".into(),
        };
        let mut note = format!(
            "{mib} MiB {} ×{repeat}: pipe {}, bridge {}, {ratio}; parse+check of the reply {} (in the bridge time only)",
            call.name(),
            ms(pipe_ms),
            ms(bridge_ms),
            ms(median_ms(&pipe.checked_ns)),
        );
        let peaks = kernel_peaks(&pids, rss_before.as_deref());
        if !peaks.is_empty() {
            note.push_str(&format!("; VmHWM {peaks}"));
        }
        let calls = Some(lat.len());
        rows.push(Row {
            name: format!("{}-{}", spec.name, call.name()),
            rps: None,
            latency: percentiles(lat),
            errors,
            rss_start: bridge.rss_start,
            rss_peak: bridge.peak_rss(),
            cpu,
            calls,
            note,
        });
    }
    Ok(rows)
}

/// Asks for `PIPE_CAPACITY` on the pipe behind `fd` (Linux; a refusal keeps its size).
fn widen(fd: RawFd) {
    // SAFETY: F_SETPIPE_SZ changes the capacity of a pipe we own; it touches no memory of ours.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_CAPACITY) };
    if rc < 0 {
        eprintln!(
            "mcp-bench: the pipe keeps its size: {}",
            std::io::Error::last_os_error()
        );
    }
}
