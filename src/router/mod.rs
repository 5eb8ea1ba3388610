//! `Routes`: the routing table of one child. It allocates the bridge-side ids the child sees,
//! remembers who asked what, and decides where every message from the child goes.
//! Plain data: no I/O, no `.await`, no locking (the caller holds the child's lock), no HTTP and
//! no notion of a session beyond an opaque owner key; unit-tested without a runtime.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::envelope::Envelope;
use crate::jsonrpc;
use crate::loglevel::LogLevel;

mod continuations;
mod deadlines;
mod fast;
mod from_child;
mod listeners;
mod owners;
mod parked;
mod server_requests;
mod stop;
mod tasks;

pub use continuations::ReplyRoute;
pub use deadlines::Expired;
pub use listeners::Listen;
pub use owners::Carried;
pub use parked::{ResumeError, Resumed, MISSING_CAPABILITY};
pub use stop::Stop;
pub use tasks::task_not_found;

/// The key of whoever owns a request: a session id, as far as this module knows.
pub type Owner = Arc<str>;

/// One message on its way to a client stream.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The serialized JSON-RPC message.
    pub json: Bytes,
    /// True for the response that ends a request's stream.
    pub last: bool,
}

/// The sending end of a client stream (a POST's reply or a session's standalone stream).
/// Besides the bounded queue it carries a `stop` signal: a stream whose client does not read
/// is stopped, which ends its body at once.
#[derive(Debug, Clone)]
pub struct StreamTx {
    tx: mpsc::Sender<Outbound>,
    stop: Stop,
}

/// Two handles are equal when they feed the same stream.
impl PartialEq for StreamTx {
    fn eq(&self, other: &Self) -> bool {
        self.same_stream(other)
    }
}

/// The receiving end of a client stream.
#[derive(Debug)]
pub struct StreamRx {
    /// Queued messages.
    pub rx: mpsc::Receiver<Outbound>,
    /// Set when the stream is to end now (its client stopped reading).
    pub stop: Stop,
}

/// A client stream holding at most `capacity` queued messages.
pub fn stream_channel(capacity: usize) -> (StreamTx, StreamRx) {
    let (tx, rx) = mpsc::channel(capacity);
    let stop = Stop::default();
    (
        StreamTx {
            tx,
            stop: stop.clone(),
        },
        StreamRx { rx, stop },
    )
}

impl StreamTx {
    /// Queues a message without waiting.
    ///
    /// # Errors
    /// `Full` when the client is not reading, `Closed` when the stream has ended.
    pub fn try_send(&self, m: Outbound) -> Result<(), mpsc::error::TrySendError<Outbound>> {
        if self.stop.is_stopped() {
            return Err(mpsc::error::TrySendError::Closed(m));
        }
        self.tx.try_send(m)
    }

    /// Whether the stream has ended or was stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.stop.is_stopped()
    }

    /// Ends the stream now.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Whether two handles feed the same stream.
    pub fn same_stream(&self, other: &StreamTx) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

/// A client request forwarded to the child, waiting for its response.
#[derive(Debug)]
struct Pending {
    owner: Owner,
    client_id: Value,
    /// Where the request's messages go; `None` for the bridge's own requests.
    stream: Option<StreamTx>,
    /// The client's own progress token, when it asked for progress.
    progress: Option<Value>,
    /// True when the stream is SSE, so it can carry notifications and server requests.
    sse: bool,
    /// True for `tasks/list`: the result is filtered to the owner's tasks.
    lists_tasks: bool,
    /// True for `tools/list` when a tool filter applies (`RouteRules::tools`).
    lists_tools: bool,
    /// Its method as a metrics label, and when it was forwarded.
    method: &'static str,
    started: Instant,
    /// True when the request asked for a task (`params.task`): its result may name one.
    task: bool,
    /// When the client stops waiting (`--request-timeout`).
    deadline: Option<Instant>,
    /// The request's slot at the child (`--child-concurrency`): freed with the entry.
    slot: Option<crate::gate::Permit>,
    /// The request as sent, kept to retry it when a modern child answers `input_required`
    /// (`continuations`); `None` when the child cannot or the method may not.
    retry: Option<Box<Value>>,
    /// Retries so far.
    rounds: u8,
    /// Applied to the response before it is delivered (a front's rendering, e.g. the result
    /// fields a modern client needs from a legacy child); the router does not know what.
    finish: Option<Finish>,
}

/// What the table keeps of a request, read from it before it is rewritten.
#[derive(Debug, Clone, Copy)]
struct Entry {
    lists_tasks: bool,
    lists_tools: bool,
    method: &'static str,
    task: bool,
    deadline: Option<Instant>,
}

/// A request from the child forwarded to a client under a bridge id.
#[derive(Debug)]
struct ServerRequest {
    owner: Owner,
    child_id: Value,
    stream: StreamTx,
    /// When the child gets an error instead of the client's answer.
    deadline: Option<Instant>,
    /// For an input request the bridge made of a modern child's `input_required`: the
    /// continuation waiting for the answer, and the child's key for it (`child_id` is then
    /// null: the child asked nothing itself).
    input: Option<(u64, String)>,
}

/// A request from the child whose session is certain but has no stream to carry it yet: it
/// waits (bounded in count and time) for the session to open one.
#[derive(Debug)]
struct Held {
    /// The session it belongs to; `None` while no session is attached to a child that only
    /// ever serves one (session isolation): the next one to attach.
    owner: Option<Owner>,
    /// The request, under the child's id.
    msg: Value,
    deadline: Instant,
}

/// What a session has told this child's routing about itself.
#[derive(Debug, Default)]
struct Attached {
    /// Who the session belongs to (its token's name); `None` without authentication.
    principal: Option<Arc<str>>,
    standalone: Option<StreamTx>,
    /// Requests of this owner at the child.
    in_flight: usize,
    log_level: Option<LogLevel>,
    subscriptions: HashSet<String>,
    /// A stateless client: the input requests it can answer (by method), asked of it as an
    /// `input_required` result (`parked`); `None` for a session, asked by server requests.
    input_methods: Option<InputKinds>,
    /// A stateless listener (`subscriptions/listen`): what it hears, and where.
    listen: Option<listeners::Listen>,
    /// The owner of a parked call: the child is waiting for answers to what it asked, so a new
    /// server request is not its (see `sole_owner`).
    parked: bool,
}

/// The input requests a stateless client can answer: those whose capability it declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputKinds {
    /// `elicitation/create`.
    pub elicitation: bool,
    /// `sampling/createMessage`.
    pub sampling: bool,
    /// `roots/list`.
    pub roots: bool,
}

impl InputKinds {
    /// Whether a client with these can answer a request for `method`.
    pub fn allows(&self, method: &str) -> bool {
        match method {
            "elicitation/create" => self.elicitation,
            "sampling/createMessage" => self.sampling,
            "roots/list" => self.roots,
            _ => false,
        }
    }
}

/// How a client request is to be registered.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Where its progress and response go.
    pub stream: StreamTx,
    /// Whether that stream is SSE (can carry notifications and server requests).
    pub sse: bool,
}

/// Why a client message cannot be routed to the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The child has exited; nothing reaches it any more.
    ChildGone,
    /// The owner is not attached to this child (session ended).
    UnknownOwner,
    /// The owner already has the maximum number of requests in flight.
    TooManyRequests,
    /// The session limit is reached.
    TooManySessions,
    /// The server is stopping: it opens no new session.
    Draining,
    /// A response names no server request sent to this owner.
    NoSuchServerRequest,
}

/// A front's rendering of a response, applied before delivery with the child's `RouteRules::
/// finish_context`; the router does not know what it does.
#[derive(Debug, Clone, Copy)]
pub struct Finish {
    /// Renders the parsed response.
    pub value: fn(&mut Value, &Value),
    /// The same rendering as an insertion into the response's bytes (read as the envelope):
    /// where, and what. `None` when only `value` can render this response.
    pub bytes: FinishBytes,
}

/// `Finish::bytes`: given the response's bytes, its envelope and the finish context, the
/// offset to insert at and the bytes to insert.
pub type FinishBytes = fn(&[u8], &Envelope<'_>, &Value) -> Option<Insertion>;

/// Bytes to insert at an offset.
pub type Insertion = (usize, Vec<u8>);

/// The bounds and rules one child's routing applies.
#[derive(Debug, Clone)]
pub struct RouteRules {
    /// Requests one owner may have in flight.
    pub max_in_flight: usize,
    /// How long a client request may wait for the child's answer, and a server request for
    /// the client's (`None`: no limit).
    pub request_timeout: Option<Duration>,
    /// The child only ever serves one session (session isolation): every message from it
    /// belongs to that session.
    pub single_owner: bool,
    /// What every `Finish` is given besides the response (the child's server info).
    pub finish_context: Value,
    /// The tools hidden from `tools/list` results.
    pub tools: crate::tool_filter::ToolFilter,
    /// Where answers, timeouts and dropped streams are counted.
    pub metrics: crate::metrics::ServerMetrics,
    /// Learns the `Mcp-Param-*` annotations of every `tools/list` answer.
    pub param_headers: crate::param_headers::ParamHeaders,
}

impl RouteRules {
    /// Server requests held per child at most, waiting for their session to open a stream.
    pub const MAX_HELD: usize = 16;
    /// Calls per child waiting for their client's input at most (continuations and parked
    /// calls each): beyond it such a call fails rather than wait.
    pub const MAX_WAITING_FOR_INPUT: usize = 1024;
    /// How long a server request is held at most (less when the request timeout is shorter).
    pub const HOLD_FOR: Duration = Duration::from_secs(60);

    /// Rules allowing `max_in_flight` requests per owner, without timeouts, for a shared child.
    pub fn new(max_in_flight: usize) -> Self {
        RouteRules {
            max_in_flight,
            request_timeout: None,
            single_owner: false,
            finish_context: Value::Null,
            tools: crate::tool_filter::ToolFilter::default(),
            metrics: crate::metrics::ServerMetrics::default(),
            param_headers: crate::param_headers::ParamHeaders::default(),
        }
    }

    /// How long a server request is held for its session's stream.
    fn hold_for(&self) -> Duration {
        self.request_timeout
            .map_or(Self::HOLD_FOR, |t| t.min(Self::HOLD_FOR))
    }

    /// The shortest time anything registered now may wait before its deadline.
    pub fn shortest_wait(&self) -> Duration {
        self.hold_for()
    }
}

/// A server request the bridge answered for the client (refused): what to log.
#[derive(Debug)]
pub struct Refusal {
    /// The method the child asked for.
    pub method: String,
    /// Why it was refused.
    pub why: &'static str,
}

/// What to do with a message from the child.
#[derive(Debug)]
pub enum Action {
    /// Send `msg` on one stream; `last` ends a request's stream.
    Deliver {
        /// Target stream.
        to: StreamTx,
        /// Rewritten message.
        msg: Value,
        /// Whether this is the response that ends the stream.
        last: bool,
    },
    /// Send `json`, already rewritten, on one stream (the fast path's `Deliver`).
    Send {
        /// Target stream.
        to: StreamTx,
        /// The message's bytes.
        json: bytes::Bytes,
        /// Whether this is the response that ends the stream.
        last: bool,
    },
    /// Send `msg` on each of several streams.
    Broadcast {
        /// Target streams.
        to: Vec<StreamTx>,
        /// The message, unchanged.
        msg: Value,
    },
    /// Send these server requests (input requests of a modern child's `input_required`) on
    /// the call's stream.
    Ask {
        /// The call's stream.
        to: StreamTx,
        /// The requests, under bridge ids.
        requests: Vec<Value>,
    },
    /// Answer a stateless client's call with `input_required`: the child's requests under the
    /// bridge's keys, and a `requestState` naming the parking (minted for `caller`).
    AskByResult {
        /// The call's stream.
        to: StreamTx,
        /// The call's id, as the client sent it.
        client_id: Value,
        /// The parking the `requestState` names.
        parked: u64,
        /// Who the state is for.
        caller: Option<Arc<str>>,
        /// The input requests, by key.
        asks: Map<String, Value>,
    },
    /// Several of these, in order.
    Several(Vec<Action>),
    /// Write `msg` back to the child (ping answers, refused server requests).
    ToChild {
        /// The reply.
        msg: Value,
        /// What was refused and why, to log; `None` for ordinary answers.
        refused: Option<Refusal>,
    },
    /// Deliver nothing. `warn` says whether this deserves more than a debug log.
    Drop {
        /// Why.
        why: &'static str,
        /// Log at warn rather than debug.
        warn: bool,
    },
}

/// The routing table of one child.
#[derive(Debug)]
pub struct Routes {
    next_id: u64,
    rules: RouteRules,
    pending: HashMap<u64, Pending>,
    server_requests: HashMap<u64, ServerRequest>,
    held: VecDeque<Held>,
    /// Calls waiting for their client's answers to a modern child's input requests.
    continuations: HashMap<u64, continuations::Continuation>,
    /// Calls of stateless clients parked at a legacy child while they are asked for input.
    parked: HashMap<u64, parked::Parked>,
    /// The bridge's own `subscriptions/listen` at a modern child, for its session clients'
    /// standalone streams and resource subscriptions.
    bridge_listen: Option<u64>,
    /// Whether a message that could not be attributed to one user was dropped already (the
    /// first such drop is a warning, later ones are debug logs).
    warned_unattributable: bool,
    attached: HashMap<Owner, Attached>,
    /// The level the child was last told (the most verbose any owner asked for).
    child_log_level: Option<LogLevel>,
    /// Task id → the owner whose request created it.
    tasks: HashMap<String, Owner>,
    closed: bool,
}

impl Routes {
    /// An empty table whose first bridge id is `first_id` (ids below are the bridge's own).
    pub fn new(first_id: u64, rules: RouteRules) -> Self {
        Routes {
            next_id: first_id,
            rules,
            pending: HashMap::new(),
            server_requests: HashMap::new(),
            held: VecDeque::new(),
            continuations: HashMap::new(),
            parked: HashMap::new(),
            bridge_listen: None,
            warned_unattributable: false,
            attached: HashMap::new(),
            child_log_level: None,
            tasks: HashMap::new(),
            closed: false,
        }
    }

    /// The rules this table applies.
    pub fn rules(&self) -> &RouteRules {
        &self.rules
    }

    /// When a request of `method` registered now times out: a subscription stream stays open
    /// as long as its client wants, so it never does.
    fn deadline_of(&self, method: &str) -> Option<Instant> {
        match method {
            "subscriptions/listen" => None,
            _ => self.deadline(self.rules.request_timeout),
        }
    }

    fn deadline(&self, after: Option<Duration>) -> Option<Instant> {
        after.map(|d| Instant::now() + d)
    }

    fn alloc(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds an owner (a session) to this child, belonging to `principal` (its token's name).
    pub fn attach(&mut self, owner: Owner, principal: Option<Arc<str>>) {
        self.attached.entry(owner).or_default().principal = principal;
    }

    /// Adds a stateless client's request as an owner: input requests reach it as an
    /// `input_required` result, for the methods in `input_methods` (what it declared).
    pub fn attach_stateless(
        &mut self,
        owner: Owner,
        principal: Option<Arc<str>>,
        input_methods: InputKinds,
    ) {
        let a = self.attached.entry(owner).or_default();
        a.principal = principal;
        a.input_methods = Some(input_methods);
    }

    /// Whether the child has gone.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Number of owners (sessions) attached.
    pub fn attached_len(&self) -> usize {
        self.attached.len()
    }

    /// Whether `owner` has a request at the child.
    pub fn has_pending(&self, owner: &Owner) -> bool {
        self.attached.get(owner).is_some_and(|a| a.in_flight > 0)
    }

    /// Removes a pending request, keeping its owner's count right.
    fn remove_pending(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if let Some(a) = self.attached.get_mut(&p.owner) {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
        Some(p)
    }

    /// Number of client requests forwarded and not yet answered.
    pub fn waiting_clients(&self) -> usize {
        self.pending.values().filter(|p| p.stream.is_some()).count()
    }

    /// Number of requests forwarded and not yet answered.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Registers a client request: allocates its bridge id, rewrites `msg`'s id (and progress
    /// token) to it, and records where its response goes. Call before the line is written.
    ///
    /// # Errors
    /// `ChildGone` or `UnknownOwner`; `msg` is then unchanged.
    pub fn register(
        &mut self,
        owner: &Owner,
        msg: &mut Value,
        reg: Registration,
    ) -> Result<u64, Refused> {
        let entry = self.entry(jsonrpc::method(msg), jsonrpc::param(msg, "task").is_some());
        let id = self.admit(owner)?;
        let client_id = jsonrpc::replace_id(msg, json!(id));
        // The bridge id doubles as the progress token the child sees: unique while pending.
        let progress = jsonrpc::replace_progress_token(msg, json!(id));
        self.record_pending(id, owner, client_id, progress, entry, reg);
        Ok(id)
    }

    /// What the table keeps of a request of `method`.
    fn entry(&self, method: &str, task: bool) -> Entry {
        Entry {
            lists_tasks: method == "tasks/list",
            // Every list answer is read: for the tool filter, and for `Mcp-Param-*` headers.
            lists_tools: method == "tools/list",
            method: crate::metrics::method_label(method),
            task,
            deadline: self.deadline_of(method),
        }
    }

    /// The checks of `register`, and the id the request gets when they pass.
    fn admit(&mut self, owner: &Owner) -> Result<u64, Refused> {
        if self.closed {
            return Err(Refused::ChildGone);
        }
        let a = self.attached.get(owner).ok_or(Refused::UnknownOwner)?;
        if a.in_flight >= self.rules.max_in_flight {
            return Err(Refused::TooManyRequests);
        }
        Ok(self.alloc())
    }

    /// Records admitted request `id` (see `admit`) as waiting for its response.
    fn record_pending(
        &mut self,
        id: u64,
        owner: &Owner,
        client_id: Value,
        progress: Option<Value>,
        entry: Entry,
        reg: Registration,
    ) {
        let Some(owner) = self.attached.get_key_value(owner).map(|(o, _)| o.clone()) else {
            return;
        };
        if let Some(a) = self.attached.get_mut(&owner) {
            a.in_flight += 1;
        }
        let pending = Pending {
            owner,
            client_id,
            stream: Some(reg.stream),
            progress,
            sse: reg.sse,
            lists_tasks: entry.lists_tasks,
            lists_tools: entry.lists_tools,
            method: entry.method,
            started: Instant::now(),
            task: entry.task,
            deadline: entry.deadline,
            slot: None,
            retry: None,
            rounds: 0,
            finish: None,
        };
        let prev = self.pending.insert(id, pending);
        assert!(prev.is_none(), "bridge id {id} allocated twice");
    }

    /// Ties a `--child-concurrency` slot to a registered request: it is freed when the request
    /// leaves the table (answered, cancelled, timed out, or its session or child gone).
    pub fn hold_slot(&mut self, id: u64, slot: crate::gate::Permit) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.slot = Some(slot);
        }
    }

    /// Keeps registered request `id` (as `msg`, its line to the child) to retry it when the
    /// child answers `input_required`: its client is asked for the input instead of seeing
    /// that result (`continuations`). Only the requests that may ask for input are kept.
    pub fn retry_on_input(&mut self, id: u64, msg: &Value) {
        let may_ask = matches!(
            jsonrpc::method(msg),
            "tools/call" | "resources/read" | "prompts/get"
        );
        if let Some(p) = self.pending.get_mut(&id).filter(|_| may_ask) {
            p.retry = Some(Box::new(msg.clone()));
        }
    }

    /// Has the response of registered request `id` passed through `finish` before delivery.
    pub fn finish_with(&mut self, id: u64, finish: Finish) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.finish = Some(finish);
        }
    }

    /// Registers a request the bridge itself sends to the child; its response is dropped.
    pub fn register_internal(&mut self, msg: &mut Value) -> u64 {
        let id = self.alloc();
        jsonrpc::replace_id(msg, json!(id));
        let deadline = self.deadline_of(jsonrpc::method(msg));
        self.pending.insert(
            id,
            Pending {
                owner: Owner::from(""),
                client_id: Value::Null,
                stream: None,
                progress: None,
                sse: false,
                lists_tasks: false,
                lists_tools: false,
                method: "other",
                started: Instant::now(),
                task: false,
                deadline,
                slot: None,
                retry: None,
                rounds: 0,
                finish: None,
            },
        );
        id
    }

    /// The URIs any owner is subscribed to, sorted.
    pub fn subscribed_uris(&self) -> Vec<String> {
        let mut uris: Vec<String> = self
            .attached
            .values()
            .flat_map(|a| a.subscriptions.iter().cloned())
            .collect();
        uris.sort_unstable();
        uris.dedup();
        uris
    }

    /// Makes `listen` (a `subscriptions/listen` of the bridge's own, for a modern child) the
    /// one the bridge holds open: registers it, and returns the lines for the child: the new
    /// listen, then the cancellation of the one it replaces.
    pub fn replace_listen(&mut self, mut listen: Value) -> Vec<Value> {
        let id = self.register_internal(&mut listen);
        let mut lines = vec![listen];
        if let Some(old) = self.bridge_listen.replace(id) {
            if self.remove_pending(old).is_some() {
                lines.push(jsonrpc::cancelled(
                    json!(old),
                    "replaced by a listen with another filter",
                ));
            }
        }
        lines
    }

    /// Takes a waiting client request out of the table (its response cannot be delivered):
    /// its stream and the client's id, so the caller can answer it with an error.
    pub fn take_waiting(&mut self, id: u64) -> Option<(StreamTx, Value)> {
        let p = self.remove_pending(id)?;
        Some((p.stream?, p.client_id))
    }

    /// Forgets a registration whose line never reached the child (the handler was dropped).
    pub fn unregister(&mut self, id: u64) {
        self.remove_pending(id);
    }

    /// Rewrites a client's `notifications/cancelled` to the child's id for that request and
    /// forgets the request: its stream ends without a response, and a late response from the
    /// child is recognised (its id is below `next_id`) and dropped quietly. Returns false when
    /// the owner has no such request in flight (nothing to forward).
    pub fn cancel_from_client(&mut self, owner: &Owner, msg: &mut Value) -> bool {
        let Some(target) = jsonrpc::param(msg, "requestId") else {
            return false;
        };
        let found = self
            .pending
            .iter()
            .find(|(_, p)| p.owner == *owner && p.client_id == *target)
            .map(|(&id, _)| id);
        let Some(id) = found else {
            // A call waiting for its client's input has nothing at the child to cancel.
            let target = target.clone();
            self.forget_continuations(|p| p.owner == *owner && p.client_id == target);
            return false;
        };
        self.remove_pending(id);
        jsonrpc::replace_param(msg, "requestId", json!(id));
        true
    }

    /// Takes a client's response to a server request: rewritten to the child's id when the
    /// child asked, or recorded for the call whose input it is (see `ReplyRoute`).
    ///
    /// # Errors
    /// `NoSuchServerRequest` when the id names no request sent to this owner.
    pub fn reply_from_client(
        &mut self,
        owner: &Owner,
        msg: &mut Value,
    ) -> Result<ReplyRoute, Refused> {
        let id = jsonrpc::as_bridge_id(&jsonrpc::id(msg)).ok_or(Refused::NoSuchServerRequest)?;
        match self.server_requests.get(&id) {
            Some(r) if r.owner == *owner => {}
            _ => return Err(Refused::NoSuchServerRequest),
        }
        let r = self.server_requests.remove(&id).expect("checked above");
        if let Some((continuation, key)) = r.input {
            return Ok(self.record_input(continuation, key, msg));
        }
        jsonrpc::replace_id(msg, r.child_id);
        Ok(ReplyRoute::Forward)
    }

    /// Forgets a stream whose client stopped reading: its requests are cancelled at the child
    /// (the returned lines), server requests sent on it are refused, and an owner's standalone
    /// slot holding it is emptied.
    pub fn drop_stream(&mut self, stream: &StreamTx) -> Vec<Value> {
        let on_it = |s: &Option<StreamTx>| s.as_ref().is_some_and(|s| s.same_stream(stream));
        let to_child = self.forget(
            |p| on_it(&p.stream),
            |r| r.stream.same_stream(stream),
            "the client stopped reading its stream",
        );
        for a in self.attached.values_mut() {
            if on_it(&a.standalone) {
                a.standalone = None;
            }
        }
        to_child
    }

    /// Forgets the pending requests and server requests that match: the child gets a
    /// `notifications/cancelled` for each such request and an error (saying `why`) for each
    /// such server request; those are the returned lines.
    fn forget(
        &mut self,
        pending: impl Fn(&Pending) -> bool,
        server_request: impl Fn(&ServerRequest) -> bool,
        why: &str,
    ) -> Vec<Value> {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| pending(p))
            .map(|(&id, _)| id)
            .collect();
        let mut to_child: Vec<Value> = ids
            .into_iter()
            .filter_map(|id| {
                self.remove_pending(id)
                    .map(|_| jsonrpc::cancelled(json!(id), why))
            })
            .collect();
        self.forget_continuations(&pending);
        self.server_requests.retain(|_, r| {
            if !server_request(r) {
                return true;
            }
            if r.input.is_none() {
                let error = jsonrpc::error_value(r.child_id.clone(), jsonrpc::INTERNAL_ERROR, why);
                to_child.push(error);
            }
            false
        });
        to_child
    }

    /// Gives up the held server requests of `owner`: the child gets an error for each.
    fn forget_held(&mut self, owner: &Owner, why: &str) -> Vec<Value> {
        let mut to_child = Vec::new();
        self.held.retain(|h| {
            if h.owner.as_ref() != Some(owner) {
                return true;
            }
            let id = jsonrpc::id(&h.msg);
            to_child.push(jsonrpc::error_value(id, jsonrpc::INTERNAL_ERROR, why));
            false
        });
        to_child
    }

    /// Marks the child gone: returns every request still waiting (its stream and the client's
    /// id) so each gets an error, ends standalone streams, and refuses all later registrations.
    pub fn close(&mut self) -> Vec<(StreamTx, Value)> {
        self.closed = true;
        self.server_requests.clear();
        self.held.clear();
        self.parked.clear();
        // A call waiting for input gets the same error as those at the child.
        let waiting_input: Vec<(StreamTx, Value)> = self
            .continuations
            .drain()
            .filter_map(|(_, c)| Some((c.call.stream?, c.call.client_id)))
            .collect();
        // The owners stay, with their standalone streams, until `take_owners` hands them to a
        // successor or their sessions end.
        for a in self.attached.values_mut() {
            a.in_flight = 0;
        }
        self.pending
            .drain()
            .filter_map(|(_, p)| p.stream.map(|s| (s, p.client_id)))
            .chain(waiting_input)
            .collect()
    }
}

#[cfg(test)]
mod attribution_tests;
#[cfg(test)]
mod continuation_tests;
#[cfg(test)]
mod deadline_tests;
#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod parked_tests;
#[cfg(test)]
mod tests;
