//! Scenarios: names, the load run and the idle-sessions run, and their results.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use tokio::task::JoinSet;

use crate::bridge::Bridge;
use crate::client::{self, Kind, Session, SESSION_VERSION};
use crate::http::{Conn, Fail};
use crate::procs;

/// How each session of an idle scenario holds its open stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Streams {
    /// No stream: a session then costs the bridge no connection, so its count is not bound by
    /// open files.
    None,
    /// `GET /mcp` on an HTTP/1.1 connection of its own (one socket at each end per session).
    Http1,
    /// `GET /mcp` as one stream of an HTTP/2 connection that `H2_STREAMS` sessions share.
    Http2,
}

/// Streams per HTTP/2 connection in `idle-N-h2` (the bridge allows 1024).
const H2_STREAMS: usize = 1000;

/// What every 4th call or every call carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Load {
    /// Short texts, answered at once.
    Plain,
    /// Every 4th call of a worker sleeps 1–5 ms in the child: answers come out of order.
    Mixed,
    /// 64 KiB texts both ways.
    Large,
}

#[derive(Clone, Debug)]
pub enum What {
    Load {
        kind: Kind,
        sessions: usize,
        workers: usize,
        load: Load,
        /// HTTP/2: a session's workers share one connection, each call on a stream of its own.
        h2: bool,
    },
    /// Sessions that each hold an open `GET /mcp` stream, or none (`Streams::None`).
    Idle { sessions: usize, streams: Streams },
    /// One call at a time with `mib` MiB both ways, over the child's pipe and through the bridge.
    Huge { mib: usize },
    /// Fresh bridges started one after the other, timed to their URL line and first answer.
    Cold { starts: usize },
}

/// `PREFIX` (then `default`) or `PREFIX-N` with N from 1 to `max`; `None` for other names.
pub fn name_with_count(
    name: &str,
    prefix: &str,
    default: usize,
    max: usize,
    unit: &str,
) -> Option<Result<usize, String>> {
    let rest = name.strip_prefix(prefix)?;
    let Some(n) = rest.strip_prefix('-') else {
        return rest.is_empty().then_some(Ok(default));
    };
    Some(match n.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{name}: {prefix}-N wants {unit} from 1 to {max}")),
    })
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub what: What,
}

pub const DEFAULT_SCENARIOS: &[&str] = &[
    "cold",
    "stream-1x1",
    "stream-16x4",
    "stream-16x4-mixed",
    "stream-16x4-large",
    "json-16x4",
    "sse-16x4",
    "modern-16x4",
    "idle-10000",
    "huge",
];

const LARGE_TEXT: usize = 64 * 1024;
/// Bounds every loop: no worker makes more calls than this, whatever the duration.
const MAX_CALLS_PER_WORKER: u64 = 50_000_000;
const MAX_SESSIONS: usize = 1024;
const MAX_WORKERS: usize = 256;
/// How long opening one idle session (initialize, initialized, GET) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

impl Spec {
    /// `KIND-SxC[-mixed|-large]` (KIND: stream, json, sse, modern), `idle-N`, `huge[-N]` or
    /// `cold[-N]`.
    pub fn parse(name: &str) -> Result<Spec, String> {
        if let Some(what) = crate::huge::parse(name).or_else(|| crate::cold::parse(name)) {
            return what.map(|what| Spec {
                name: name.into(),
                what,
            });
        }
        let bad = || format!("unknown scenario {name:?} (see --help)");
        let mut parts = name.split('-');
        let kind = parts.next().ok_or_else(bad)?;
        let shape = parts.next().ok_or_else(bad)?;
        let mut variant = parts.next();
        let mut h2 = false;
        if kind != "idle" && variant == Some("h2") {
            (variant, h2) = (None, true);
        } else if let Some(last) = parts.next() {
            if last != "h2" || kind == "idle" {
                return Err(bad());
            }
            h2 = true;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if kind == "idle" {
            let sessions: usize = shape.parse().map_err(|_| bad())?;
            let streams = match variant {
                None => Streams::Http1,
                Some("bare") => Streams::None,
                Some("h2") => Streams::Http2,
                Some(_) => return Err(bad()),
            };
            if sessions == 0 || sessions > 100_000 {
                return Err(bad());
            }
            return Ok(Spec {
                name: name.into(),
                what: What::Idle { sessions, streams },
            });
        }
        let kind = match kind {
            "stream" => Kind::Stream,
            "json" => Kind::Json,
            "sse" if !h2 => Kind::Sse,
            "modern" => Kind::Modern,
            // `sse-…-h2` too: its stream has a connection of its own (`open_legacy_session`).
            _ => return Err(bad()),
        };
        let (s, c) = shape.split_once('x').ok_or_else(bad)?;
        let sessions: usize = s.parse().map_err(|_| bad())?;
        let workers: usize = c.parse().map_err(|_| bad())?;
        if !(1..=MAX_SESSIONS).contains(&sessions) || !(1..=MAX_WORKERS).contains(&workers) {
            return Err(format!(
                "{name}: 1..={MAX_SESSIONS} sessions and 1..={MAX_WORKERS} workers per session"
            ));
        }
        let load = match variant {
            None => Load::Plain,
            Some("mixed") => Load::Mixed,
            Some("large") => Load::Large,
            Some(_) => return Err(bad()),
        };
        Ok(Spec {
            name: name.into(),
            what: What::Load {
                kind,
                sessions,
                workers,
                load,
                h2,
            },
        })
    }
}

/// Settings shared by every scenario.
pub struct Settings {
    pub duration: Duration,
    pub warmup: Duration,
    pub request_timeout: Duration,
    /// Idle scenario: sessions being opened at the same time.
    pub idle_batch: usize,
    /// Idle scenario: sessions that get a checked call once all are open.
    pub idle_sample: usize,
    /// Huge scenario: timed calls of each kind, over the pipe and through the bridge.
    pub huge_repeat: usize,
}

/// Failed calls by kind, with the first message of each for the report.
#[derive(Default)]
pub struct Errors {
    pub http: u64,
    pub timeout: u64,
    pub rpc: u64,
    pub mismatch: u64,
    pub first: Vec<String>,
}

/// The value of a step run under a timeout; a failure or a timeout is counted, and the
/// connection it used is dropped (it may be unusable).
fn counted<T>(
    done: Result<Result<T, Fail>, tokio::time::error::Elapsed>,
    errors: &mut Errors,
    conn: &mut Option<Conn>,
) -> Option<T> {
    let fail = match done {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(e)) => e,
        Err(_) => Fail::Timeout,
    };
    errors.add(&fail);
    *conn = None;
    None
}

impl Errors {
    pub fn add(&mut self, f: &Fail) {
        match f {
            Fail::Http(_) => self.http += 1,
            Fail::Timeout => self.timeout += 1,
            Fail::Rpc(_) => self.rpc += 1,
            Fail::Mismatch(_) => self.mismatch += 1,
        }
        if self.first.len() < 3 {
            self.first.push(f.to_string());
        }
    }

    fn merge(&mut self, o: Errors) {
        self.http += o.http;
        self.timeout += o.timeout;
        self.rpc += o.rpc;
        self.mismatch += o.mismatch;
        for m in o.first {
            if self.first.len() < 3 {
                self.first.push(m);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.http + self.timeout + self.rpc + self.mismatch
    }

    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            ("http", self.http),
            ("timeout", self.timeout),
            ("json-rpc", self.rpc),
            ("mismatch", self.mismatch),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
        parts.join(", ")
    }
}

/// One line of the results table.
pub struct Row {
    pub name: String,
    pub rps: Option<f64>,
    /// p50, p90, p99, max in milliseconds.
    pub latency: Option<[f64; 4]>,
    pub errors: Errors,
    pub rss_start: u64,
    pub rss_peak: u64,
    pub cpu: Cpu,
    /// Calls completed in the window `cpu` was measured over, for the CPU time per call.
    pub calls: Option<usize>,
    pub note: String,
}

/// CPU use over a window, in % of one core: the bridge's tree (`bridge`), of it the bridge
/// process alone (`bridge_own`; the rest is the child), and this process (`bench`).
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub bridge: f64,
    pub bridge_own: f64,
    pub bench: f64,
    pub secs: f64,
}

impl Cpu {
    /// Microseconds of CPU per call: (bridge, child, bench).
    pub fn per_call(&self, calls: usize) -> Option<(f64, f64, f64)> {
        if calls == 0 {
            return None;
        }
        let us = |pct: f64| pct / 100.0 * self.secs * 1e6 / calls as f64;
        Some((
            us(self.bridge_own),
            us((self.bridge - self.bridge_own).max(0.0)),
            us(self.bench),
        ))
    }
}

/// CPU use of the bridge tree, of the bridge alone and of this process between two points.
pub struct CpuWindow {
    at: Instant,
    usage: procs::Usage,
    own: u64,
}

impl CpuWindow {
    pub fn now(bridge: &Bridge) -> CpuWindow {
        CpuWindow {
            at: Instant::now(),
            usage: bridge.usage(),
            own: procs::own_ticks(),
        }
    }

    /// The CPU use since `self`.
    pub fn since(&self, bridge: &Bridge) -> Cpu {
        let end = CpuWindow::now(bridge);
        let secs = (end.at - self.at).as_secs_f64().max(1e-3);
        let pct = |a: u64, b: u64| {
            100.0 * b.saturating_sub(a) as f64 / (secs * procs::ticks_per_second())
        };
        Cpu {
            bridge: pct(self.usage.ticks, end.usage.ticks),
            bridge_own: pct(self.usage.root_ticks, end.usage.root_ticks),
            bench: pct(self.own, end.own),
            secs,
        }
    }
}

pub fn percentiles(mut lat_ns: Vec<u64>) -> Option<[f64; 4]> {
    if lat_ns.is_empty() {
        return None;
    }
    lat_ns.sort_unstable();
    let at = |q: f64| {
        let i = ((q * lat_ns.len() as f64).ceil() as usize).clamp(1, lat_ns.len()) - 1;
        lat_ns[i] as f64 / 1e6
    };
    Some([at(0.50), at(0.90), at(0.99), at(1.0)])
}

/// A text of its own for every call: `s3-w1-17` (session, worker, id), padded to 64 KiB with
/// `filler` for large calls.
fn call_text(load: Load, filler: &str, s: usize, w: usize, id: u64) -> String {
    let tag = format!("s{s}-w{w}-{id}");
    if load == Load::Large {
        let mut t = String::with_capacity(LARGE_TEXT);
        t.push_str(&tag);
        t.push_str(&filler[tag.len()..]);
        t
    } else {
        tag
    }
}

struct Worker {
    kind: Kind,
    load: Load,
    addr: SocketAddr,
    mcp_path: String,
    session: Arc<Session>,
    s: usize,
    w: usize,
    conn: Option<Conn>,
    h2: bool,
    filler: Arc<str>,
}

struct WorkerOut {
    lat_ns: Vec<u64>,
    errors: Errors,
}

impl Worker {
    async fn call(&mut self, id: u64, text: &str, ms: u64) -> Result<(), Fail> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open_as(self.addr, self.h2).await?);
        }
        let conn = self.conn.as_mut().expect("opened above");
        client::echo(self.kind, conn, &self.mcp_path, &self.session, id, text, ms).await
    }

    /// Calls until `end` (at most MAX_CALLS_PER_WORKER); latencies of calls that complete
    /// between `warm` and `end`; every failure, warm-up included.
    async fn run(mut self, warm: Instant, end: Instant, timeout: Duration) -> WorkerOut {
        let mut out = WorkerOut {
            lat_ns: Vec::with_capacity(1 << 16),
            errors: Errors::default(),
        };
        let mut n: u64 = 0;
        while n < MAX_CALLS_PER_WORKER && Instant::now() < end {
            n += 1;
            let id = self.session.last_id.fetch_add(1, Ordering::Relaxed) + 1;
            let ms = if self.load == Load::Mixed && n % 4 == 0 {
                1 + (n / 4) % 5
            } else {
                0
            };
            let text = call_text(self.load, &self.filler, self.s, self.w, id);
            let start = Instant::now();
            let result = tokio::time::timeout(timeout, self.call(id, &text, ms)).await;
            let done = Instant::now();
            match result {
                Ok(Ok(())) => {
                    if done >= warm && done <= end {
                        out.lat_ns.push((done - start).as_nanos() as u64);
                    }
                }
                Ok(Err(f)) => {
                    out.errors.add(&f);
                    if matches!(f, Fail::Http(_)) {
                        // The connection may be unusable: a new one, after a pause that keeps
                        // a dead bridge from turning this loop into a spin.
                        self.conn = None;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Err(_) => {
                    out.errors.add(&Fail::Timeout);
                    self.session.forget(id);
                    self.conn = None;
                }
            }
        }
        out
    }
}

/// Sessions and workers as the spec says, `warmup` then `duration` of calls.
pub async fn run_load(spec: &Spec, set: &Settings, bridge: &Bridge) -> Result<Row, String> {
    let What::Load {
        kind,
        sessions,
        workers,
        load,
        h2,
    } = spec.what
    else {
        unreachable!("a load scenario")
    };
    let addr = bridge.addr;
    let filler: Arc<str> = crate::huge::make_filler(LARGE_TEXT).into();
    let setup_err = |s: usize, e: Fail| format!("setting up session {s}: {e}");
    let mut all = Vec::with_capacity(sessions * workers);
    for s in 0..sessions {
        let mut first = Conn::open_as(addr, h2).await.map_err(|e| setup_err(s, e))?;
        let session = match kind {
            Kind::Stream | Kind::Json => {
                client::open_stream_session(&mut first, &bridge.mcp_path).await
            }
            Kind::Sse => client::open_legacy_session(addr, "/sse").await,
            Kind::Modern => Ok(Session::stateless()),
        };
        let session = Arc::new(session.map_err(|e| setup_err(s, e))?);
        // HTTP/2: every worker of the session gets a handle on this one connection.
        let shared = first.share();
        let mut first = Some(first);
        for w in 0..workers {
            let conn = match (first.take(), h2) {
                (Some(c), _) => c,
                (None, true) => shared.as_ref().and_then(Conn::share).expect("HTTP/2"),
                (None, false) => Conn::open(addr).await.map_err(|e| setup_err(s, e))?,
            };
            all.push(Worker {
                kind,
                load,
                addr,
                mcp_path: bridge.mcp_path.clone(),
                session: session.clone(),
                s,
                w,
                conn: Some(conn),
                h2,
                filler: filler.clone(),
            });
        }
    }
    let start = Instant::now();
    let warm = start + set.warmup;
    let end = warm + set.duration;
    let mut tasks = JoinSet::new();
    let sessions_alive: Vec<Arc<Session>> = all.iter().map(|w| w.session.clone()).collect();
    for w in all {
        tasks.spawn(w.run(warm, end, set.request_timeout));
    }
    tokio::time::sleep_until(warm.into()).await;
    let cpu = CpuWindow::now(bridge);
    tokio::time::sleep_until(end.into()).await;
    let cpu = cpu.since(bridge);
    let mut lat = Vec::new();
    let mut errors = Errors::default();
    // Every worker stops at `end`, after at most one call (bounded by the request timeout).
    let deadline = end + set.request_timeout + Duration::from_secs(5);
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline.into(), tasks.join_next()).await {
        let out = joined.map_err(|e| format!("a worker failed: {e}"))?;
        lat.extend(out.lat_ns);
        errors.merge(out.errors);
    }
    if !tasks.is_empty() {
        return Err(format!("{} workers did not stop", tasks.len()));
    }
    let ended = sessions_alive.iter().filter(|s| s.stream_ended()).count();
    let calls = lat.len();
    let mut note = format!(
        "{sessions} session(s) x {workers} worker(s), {calls} calls in {:.0} s",
        set.duration.as_secs_f64()
    );
    if ended > 0 {
        note.push_str(&format!(", {ended} legacy stream(s) ended early"));
    }
    Ok(Row {
        name: spec.name.clone(),
        rps: Some(calls as f64 / set.duration.as_secs_f64()),
        latency: percentiles(lat),
        errors,
        rss_start: bridge.rss_start,
        rss_peak: bridge.peak_rss(),
        cpu,
        calls: Some(calls),
        note,
    })
}

/// Opens `GET /mcp` for a session and keeps reading it in a task of its own; `closed` counts
/// the streams that ended.
async fn hold_stream(
    addr: SocketAddr,
    path: &str,
    sid: &str,
    closed: Arc<AtomicU64>,
) -> Result<tokio::task::JoinHandle<()>, Fail> {
    let mut conn = Conn::open(addr).await?;
    let resp = conn
        .send(Method::GET, path, &stream_headers(sid), Bytes::new())
        .await?;
    keep_stream(resp, path, conn, closed)
}

/// The same as `hold_stream`, as a stream of `conn`, an HTTP/2 connection.
async fn hold_h2_stream(
    conn: &mut Conn,
    path: &str,
    sid: &str,
    closed: Arc<AtomicU64>,
) -> Result<tokio::task::JoinHandle<()>, Fail> {
    let resp = conn
        .send(Method::GET, path, &stream_headers(sid), Bytes::new())
        .await?;
    keep_stream(resp, path, (), closed)
}

fn stream_headers(sid: &str) -> [(&'static str, &str); 3] {
    [
        ("accept", "text/event-stream"),
        ("mcp-session-id", sid),
        ("mcp-protocol-version", SESSION_VERSION),
    ]
}

/// Checks that `resp` opened an event stream, then reads it in a task of its own (which keeps
/// `conn`) until it ends, counted in `closed`.
fn keep_stream<C: Send + 'static>(
    resp: hyper::Response<hyper::body::Incoming>,
    path: &str,
    conn: C,
    closed: Arc<AtomicU64>,
) -> Result<tokio::task::JoinHandle<()>, Fail> {
    let is_sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if resp.status() != StatusCode::OK || !is_sse {
        return Err(Fail::Http(format!("GET {path}: {}", resp.status())));
    }
    Ok(tokio::spawn(async move {
        let _conn = conn;
        let mut body = resp.into_body();
        while let Some(Ok(_)) = body.frame().await {}
        closed.fetch_add(1, Ordering::Relaxed);
    }))
}

/// `sessions` sessions, each with an open `GET /mcp` stream (or none when not `streams`), opened
/// `idle_batch` at a time; then the tree's RSS, and a checked call on `idle_sample` of them.
pub async fn run_idle(spec: &Spec, set: &Settings, bridge: &Bridge) -> Result<Row, String> {
    let What::Idle { sessions, streams } = spec.what else {
        unreachable!("an idle scenario")
    };
    let addr = bridge.addr;
    let cpu = CpuWindow::now(bridge);
    let started = Instant::now();
    // Opening is bounded in time as well as in count.
    let deadline = started + Duration::from_secs(120);
    let closed = Arc::new(AtomicU64::new(0));
    let batch = set.idle_batch.clamp(1, sessions);
    let mut openers = JoinSet::new();
    for k in 0..batch {
        let (path, closed) = (bridge.mcp_path.clone(), closed.clone());
        openers.spawn(async move {
            let mut opened = Vec::new();
            let mut errors = Errors::default();
            let mut conn: Option<Conn> = None;
            let mut h2: Option<Conn> = None;
            for _ in (k..sessions).step_by(batch) {
                if Instant::now() >= deadline {
                    errors.add(&Fail::Timeout);
                    continue;
                }
                let one = async {
                    if conn.is_none() {
                        conn = Some(Conn::open(addr).await?);
                    }
                    let c = conn.as_mut().expect("opened above");
                    let session = client::open_stream_session(c, &path).await?;
                    let sid = session.sid.clone().expect("a session id");
                    let holder = match streams {
                        Streams::None => None,
                        Streams::Http1 => {
                            Some(hold_stream(addr, &path, &sid, closed.clone()).await?)
                        }
                        Streams::Http2 => {
                            if !h2.as_ref().is_some_and(|c| c.sent < H2_STREAMS) {
                                h2 = Some(Conn::open_h2(addr).await?);
                            }
                            let c = h2.as_mut().expect("opened above");
                            Some(hold_h2_stream(c, &path, &sid, closed.clone()).await?)
                        }
                    };
                    Ok::<_, Fail>((session, holder))
                };
                let done = tokio::time::timeout(OPEN_TIMEOUT, one).await;
                if let Some((session, holder)) = counted(done, &mut errors, &mut conn) {
                    opened.push((Arc::new(session), holder));
                }
            }
            (opened, errors)
        });
    }
    let mut open = Vec::with_capacity(sessions);
    let mut errors = Errors::default();
    while let Some(joined) = openers.join_next().await {
        let (opened, errs) = joined.map_err(|e| format!("an opener failed: {e}"))?;
        open.extend(opened);
        errors.merge(errs);
    }
    let open_secs = started.elapsed().as_secs_f64();
    // Let the bridge settle, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_open = bridge.usage().rss_bytes;
    let n = open.len();

    // A checked call on a sample of the sessions, 4 at a time, each caller on its own connection.
    let sample: Vec<(usize, Arc<Session>)> = {
        let want = set.idle_sample.clamp(1, n.max(1)).min(n);
        (0..want)
            .map(|i| i * n / want)
            .map(|k| (k, open[k].0.clone()))
            .collect()
    };
    let mut callers = JoinSet::new();
    for part in 0..4 {
        let mine: Vec<(usize, Arc<Session>)> =
            sample.iter().skip(part).step_by(4).cloned().collect();
        let path = bridge.mcp_path.clone();
        let timeout = set.request_timeout;
        callers.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = Errors::default();
            let mut conn: Option<Conn> = None;
            for (i, session) in mine {
                let id = session.last_id.fetch_add(1, Ordering::Relaxed) + 1;
                let text = format!("idle-s{i}-{id}");
                let start = Instant::now();
                let call = async {
                    if conn.is_none() {
                        conn = Some(Conn::open(addr).await?);
                    }
                    let c = conn.as_mut().expect("opened above");
                    client::echo(Kind::Stream, c, &path, &session, id, &text, 0).await
                };
                let done = tokio::time::timeout(timeout, call).await;
                if counted(done, &mut errors, &mut conn).is_some() {
                    lat.push(start.elapsed().as_nanos() as u64);
                }
            }
            (lat, errors)
        });
    }
    let mut lat = Vec::new();
    while let Some(joined) = callers.join_next().await {
        let (l, e) = joined.map_err(|e| format!("a caller failed: {e}"))?;
        lat.extend(l);
        errors.merge(e);
    }
    let sampled = lat.len();
    let ended = closed.load(Ordering::Relaxed);
    if ended > 0 {
        errors.http += ended;
        errors
            .first
            .push(format!("{ended} stream(s) ended while held"));
    }
    let cpu = cpu.since(bridge);
    let rss_peak = bridge.peak_rss();
    for holder in open.iter().filter_map(|(_, h)| h.as_ref()) {
        holder.abort();
    }
    let per_session = if n > 0 {
        rss_open.saturating_sub(bridge.rss_start) as f64 / n as f64 / 1024.0
    } else {
        0.0
    };
    Ok(Row {
        name: spec.name.clone(),
        rps: None,
        latency: percentiles(lat),
        errors,
        rss_start: bridge.rss_start,
        rss_peak,
        cpu,
        calls: None,
        note: format!(
            "{n} of {sessions} {} open in {open_secs:.1} s: {:.1} MiB, {per_session:.1} KiB/session; latency of {sampled} calls on them",
            match streams {
                Streams::None => "sessions (no stream)",
                Streams::Http1 => "streams",
                Streams::Http2 => "streams over HTTP/2",
            },
            rss_open as f64 / (1 << 20) as f64
        ),
    })
}

/// The header of the table `Row::markdown` fills.
pub fn table_header() -> String {
    "| scenario | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | RSS start MiB | RSS peak MiB | bridge CPU % | bench CPU % | CPU µs per call: bridge · child · bench | notes |\n\
     |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        .into()
}

pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl Row {
    pub fn markdown(&self) -> String {
        let mib = |b: u64| format!("{:.1}", b as f64 / (1 << 20) as f64);
        let rps = self.rps.map_or("—".into(), thousands);
        let lat = match self.latency {
            Some(l) => l.map(|v| format!("{v:.3}")).join(" | "),
            None => "— | — | — | —".into(),
        };
        let per_call = match self.calls.and_then(|n| self.cpu.per_call(n)) {
            Some((bridge, child, bench)) => [bridge, child, bench]
                .map(|us| match us < 100.0 {
                    true => format!("{us:.1}"),
                    false => thousands(us),
                })
                .join(" · "),
            None => "—".into(),
        };
        let mut note = self.note.clone();
        if self.errors.total() > 0 {
            note.push_str(&format!("; errors: {}", self.errors.summary()));
        }
        format!(
            "| `{}` | {rps} | {lat} | {} | {} | {} | {:.0} | {:.0} | {per_call} | {note} |",
            self.name,
            self.errors.total(),
            mib(self.rss_start),
            mib(self.rss_peak),
            self.cpu.bridge,
            self.cpu.bench,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_call() {
        // 2 s at 90 % for the tree, 60 % of it the bridge's; 50 % for the bench; 100,000 calls.
        let cpu = Cpu {
            bridge: 90.0,
            bridge_own: 60.0,
            bench: 50.0,
            secs: 2.0,
        };
        let (bridge, child, bench) = cpu.per_call(100_000).unwrap();
        for (got, want) in [(bridge, 12.0), (child, 6.0), (bench, 10.0)] {
            assert!((got - want).abs() < 1e-9, "{got} against {want}");
        }
        assert!(cpu.per_call(0).is_none());
    }

    #[test]
    fn scenario_names() {
        let idle = |name: &str| match Spec::parse(name).map(|s| s.what) {
            Ok(What::Idle { sessions, streams }) => Some((sessions, streams)),
            _ => None,
        };
        assert_eq!(idle("idle-10000"), Some((10_000, Streams::Http1)));
        assert_eq!(idle("idle-100000-bare"), Some((100_000, Streams::None)));
        assert_eq!(idle("idle-100000-h2"), Some((100_000, Streams::Http2)));
        let cold = |name: &str| match Spec::parse(name).map(|s| s.what) {
            Ok(What::Cold { starts }) => Some(starts),
            _ => None,
        };
        assert_eq!(cold("cold"), Some(20));
        assert_eq!(cold("cold-5"), Some(5));
        for bad in ["cold-0", "cold-1001", "cold-x", "coldest"] {
            assert_eq!(cold(bad), None, "{bad}");
        }
        for bad in ["idle-0", "idle-100001-bare", "idle-10-naked", "idle-x"] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            Spec::parse("modern-16x4-mixed").map(|s| s.what),
            Ok(What::Load {
                kind: Kind::Modern,
                sessions: 16,
                workers: 4,
                load: Load::Mixed,
                h2: false,
            })
        ));
        for (name, load) in [
            ("stream-16x4-h2", Load::Plain),
            ("json-1x1-large-h2", Load::Large),
        ] {
            assert!(
                matches!(Spec::parse(name).map(|s| s.what), Ok(What::Load { load: l, h2: true, .. }) if l == load),
                "{name}"
            );
        }
        for bad in [
            "sse-16x4-h2",
            "stream-16x4-h2-mixed",
            "stream-16x4-mixed-h2-h2",
            "idle-10-bare-h2",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }
}
