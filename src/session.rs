//! Sessions: the registry of live sessions (Streamable HTTP and legacy HTTP+SSE). A session is
//! a record, not a task: its id, the child it is bound to, its negotiated revision, a token that
//! ends its streams, and the streams its clients left behind (kept for resumption).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::child::ChildHandle;
use crate::router::{StreamRx, StreamTx};

/// A session id as sent in `Mcp-Session-Id` (or the legacy `sessionId` query parameter).
pub type SessionId = Arc<str>;

/// How a session's client talks to the bridge.
pub enum Transport {
    /// Streamable HTTP: one stream per request, plus an optional standalone GET stream.
    Streamable,
    /// Legacy HTTP+SSE (2024-11-05): every message goes on the session's one `GET /sse` stream.
    LegacySse(StreamTx),
}

/// A stream whose client disconnected before it ended, kept so a `GET` with `Last-Event-ID`
/// can resume it.
pub struct Parked {
    /// The stream's number within the session (the first part of its event ids).
    pub stream: u64,
    /// Messages not yet sent.
    pub rx: StreamRx,
    /// The last frames sent, with their sequence numbers, for replay.
    pub ring: VecDeque<(u64, crate::http::Frame)>,
    /// Sequence number of the next frame.
    pub next_seq: u64,
    /// Responses still to come before the stream ends (0: ends with the session).
    pub responses: usize,
}

/// Streams parked per session at most; the oldest is dropped beyond that.
pub const MAX_PARKED: usize = 16;

/// One live session.
pub struct Session {
    /// Its id (also its owner key in the child's routes).
    pub id: SessionId,
    /// The child serving it; after a restart, its successor (see `child`).
    // Lock: taken alone, for a clone.
    child: Mutex<Arc<ChildHandle>>,
    /// The revision negotiated at `initialize` (legacy SSE sessions learn it after the stream
    /// opened).
    version: OnceLock<&'static str>,
    /// What the client declared at `initialize` (capabilities, clientInfo): the `_meta` a
    /// modern child needs on each of its requests.
    caller: OnceLock<crate::back::modern::CallerMeta>,
    /// Cancelled when the session ends: ends its streams.
    pub cancel: CancellationToken,
    /// Its transport.
    pub transport: Transport,
    /// The name of the token that created it; only that token may use it.
    pub principal: Option<Arc<str>>,
    next_stream: AtomicU64,
    /// When the client last sent anything (a request, notification, reply or GET).
    last_seen: Mutex<Instant>,
    // Lock: taken alone, for a push or a take.
    parked: Mutex<VecDeque<Parked>>,
    /// The tools its server hides from clients.
    pub tools: crate::tool_filter::ToolFilter,
}

impl Session {
    /// A new session bound to `child`, ending when `parent` is cancelled.
    pub fn new(
        child: Arc<ChildHandle>,
        parent: &CancellationToken,
        transport: Transport,
        principal: Option<Arc<str>>,
    ) -> Session {
        Session {
            principal,
            id: new_session_id(),
            child: Mutex::new(child),
            version: OnceLock::new(),
            caller: OnceLock::new(),
            cancel: parent.child_token(),
            transport,
            next_stream: AtomicU64::new(1),
            last_seen: Mutex::new(Instant::now()),
            parked: Mutex::new(VecDeque::new()),
            tools: crate::tool_filter::ToolFilter::default(),
        }
    }

    /// The child serving the session now: the one it was bound to, or, when that one was
    /// restarted, the process that took over its sessions.
    pub fn child(&self) -> Arc<ChildHandle> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(next) = child.successor() {
            *child = next;
        }
        child.clone()
    }

    /// The negotiated revision (the oldest one before `initialize`).
    pub fn protocol_version(&self) -> &'static str {
        self.version
            .get()
            .copied()
            .unwrap_or(crate::back::legacy::SUPPORTED_VERSIONS[0])
    }

    /// Records the revision negotiated at `initialize` (the first one sticks).
    pub fn set_protocol_version(&self, v: &'static str) {
        let _ = self.version.set(v);
    }

    /// Records what the client declared at `initialize` (the first one sticks).
    pub fn set_caller(&self, caller: crate::back::modern::CallerMeta) {
        let _ = self.caller.set(caller);
    }

    /// What the client declared at `initialize` (nothing before).
    pub fn caller(&self) -> &crate::back::modern::CallerMeta {
        static NONE: OnceLock<crate::back::modern::CallerMeta> = OnceLock::new();
        self.caller
            .get()
            .unwrap_or_else(|| NONE.get_or_init(Default::default))
    }

    /// Records activity from the client.
    pub fn touch(&self) {
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// How long the client has been silent at `now`.
    pub fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(*self.last_seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A fresh stream number, unique within the session.
    pub fn next_stream(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    fn parked(&self) -> MutexGuard<'_, VecDeque<Parked>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a disconnected stream for resumption (bounded by `MAX_PARKED`).
    pub fn park(&self, p: Parked) {
        let mut parked = self.parked();
        if parked.len() == MAX_PARKED {
            parked.pop_front();
        }
        parked.push_back(p);
    }

    /// Takes back a parked stream.
    pub fn unpark(&self, stream: u64) -> Option<Parked> {
        let mut parked = self.parked();
        let i = parked.iter().position(|p| p.stream == stream)?;
        parked.remove(i)
    }
}

/// A fresh, unguessable session id: the instance id, a dot, then 64 hex digits from two random
/// v4 UUIDs (244 random bits). The prefix lets a load balancer find the session's instance.
pub fn new_session_id() -> SessionId {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("{}.{}{}", crate::instance::id(), a.simple(), b.simple()).into()
}

/// The registry of live sessions.
#[derive(Default)]
pub struct Sessions {
    // Lock: map operations only, never held across `.await` nor while taking a child's lock.
    state: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    map: HashMap<SessionId, Arc<Session>>,
    /// Places reserved for sessions being opened: with `map` they never exceed the limit.
    opening: usize,
}

/// A place reserved in the registry for a session being opened; given back when dropped
/// unless the session took it.
pub struct Place<'a> {
    sessions: &'a Sessions,
}

impl Place<'_> {
    /// Registers the session in the reserved place.
    pub fn fill(self, s: Arc<Session>) {
        let mut state = self.sessions.state();
        state.opening -= 1;
        state.map.insert(s.id.clone(), s);
        drop(state);
        std::mem::forget(self);
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.sessions.state().opening -= 1;
    }
}

impl Sessions {
    fn state(&self) -> MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a place for one more session, unless `max` are live or being opened. Taken
    /// before anything is awaited, so no burst of `initialize` requests exceeds the limit.
    pub fn reserve(&self, max: usize) -> Option<Place<'_>> {
        let mut state = self.state();
        if state.map.len() + state.opening >= max {
            return None;
        }
        state.opening += 1;
        Some(Place { sessions: self })
    }

    /// Adds a session (without a reservation: tests and callers that do not limit).
    pub fn insert(&self, s: Arc<Session>) {
        self.state().map.insert(s.id.clone(), s);
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.state().map.get(id).cloned()
    }

    /// Removes and returns a session.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.state().map.remove(id)
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.state().map.len()
    }

    /// Every live session (for counting at a metrics scrape).
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.state().map.values().cloned().collect()
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes and returns the sessions silent for longer than `timeout` at `now`, and those
    /// already ended (their child exited). A session with a request in flight is not idle: its
    /// clock restarts instead.
    pub fn take_expired(&self, now: Instant, timeout: Duration) -> Vec<Arc<Session>> {
        let idle: Vec<Arc<Session>> = self
            .state()
            .map
            .values()
            .filter(|s| s.idle_for(now) > timeout || s.cancel.is_cancelled())
            .cloned()
            .collect();
        let mut expired = Vec::new();
        for s in idle {
            if !s.cancel.is_cancelled() && s.child().has_pending(&s.id) {
                s.touch();
            } else if let Some(s) = self.remove(&s.id) {
                expired.push(s);
            }
        }
        expired
    }

    /// Removes every session (shutdown).
    pub fn drain(&self) -> Vec<Arc<Session>> {
        self.state().map.drain().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{stream_channel, Registration};
    use serde_json::json;

    #[tokio::test(start_paused = true)]
    async fn sessions_expire_after_the_timeout_unless_a_request_is_in_flight() {
        let child = crate::child::handle_for_tests();
        let root = CancellationToken::new();
        let sessions = Sessions::default();
        let mk = || {
            let s = Arc::new(Session::new(
                child.clone(),
                &root,
                Transport::Streamable,
                None,
            ));
            child.attach(&s.id, None);
            sessions.insert(s.clone());
            s
        };
        let (idle, active, busy) = (mk(), mk(), mk());
        let timeout = Duration::from_secs(30 * 60);
        let mut call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"});
        let (tx, _rx) = stream_channel(4);
        let reg = Registration {
            stream: tx,
            sse: true,
        };
        child.register_for_tests(&busy.id, &mut call, reg);

        tokio::time::advance(Duration::from_secs(20 * 60)).await;
        active.touch();
        assert!(sessions.take_expired(Instant::now(), timeout).is_empty());
        tokio::time::advance(Duration::from_secs(11 * 60)).await;
        let expired: Vec<SessionId> = sessions
            .take_expired(Instant::now(), timeout)
            .into_iter()
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(
            expired,
            vec![idle.id.clone()],
            "only the silent session without work expires"
        );
        assert!(sessions.get(&active.id).is_some() && sessions.get(&busy.id).is_some());
        // The busy session's clock restarted when it was found busy.
        assert!(busy.idle_for(Instant::now()) < Duration::from_secs(1));
    }

    #[test]
    fn session_ids_name_their_instance_then_64_random_hex_digits() {
        let a = new_session_id();
        let b = new_session_id();
        let (instance, random) = a.split_once('.').expect("a dot after the instance");
        assert_eq!(instance, crate::instance::id());
        assert_eq!(random.len(), 64);
        assert!(random.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
