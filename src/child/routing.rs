//! What sessions ask of a child's routes, by name: attach and detach, forward a request, a
//! notification or a reply, open a standalone stream, subscriptions, logging levels, tasks,
//! counts. Each takes the routes' lock for map operations only, never across an `.await`;
//! nothing outside `child` touches the routing table itself.

use std::sync::Arc;

use serde_json::Value;
use tracing::debug;

use super::ChildHandle;
use crate::back::modern::{self, CallerMeta};
use crate::back::ChildEra;
use crate::envelope::RawRequest;
use crate::jsonrpc;
use crate::loglevel::LogLevel;
use crate::router::{
    InputKinds, Listen, Outbound, Owner, Refused, Registration, ReplyRoute, ResumeError, Resumed,
    StreamTx,
};

/// A client request for the child: parsed, or as received (the fast path, `envelope`).
#[derive(Debug)]
pub enum Outgoing {
    /// Parsed: rewritten as a value.
    Parsed(Value),
    /// A plain request forwarded as its own bytes.
    Raw(RawRequest),
}

impl Outgoing {
    fn method(&self) -> &str {
        match self {
            Outgoing::Parsed(msg) => jsonrpc::method(msg),
            Outgoing::Raw(req) => req.method(),
        }
    }
}

impl From<Value> for Outgoing {
    fn from(msg: Value) -> Self {
        Outgoing::Parsed(msg)
    }
}

/// How a forwarded request fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Written to the child; its answer comes on the request's stream.
    Sent,
    /// Not forwarded, for this reason (a limit); the caller answers it with an error.
    Refused(&'static str),
}

/// How a front wants a request forwarded.
#[derive(Default)]
pub struct Forwarding<'a> {
    /// A session client's `_meta`, stamped on the request for a modern child; `None` when the
    /// request carries its own (a modern client) or the child needs none.
    pub caller: Option<&'a CallerMeta>,
    /// Applied to the response before it is delivered (the front's rendering).
    pub finish: Option<crate::router::Finish>,
}

/// What a detach left to tell the child.
#[derive(Debug, Default)]
pub struct Detached {
    lines: Vec<Value>,
    relisten: bool,
}

impl Detached {
    /// Whether the child needs to hear nothing.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && !self.relisten
    }
}

/// Undoes a registration if the caller is dropped before the line reached the child's queue.
struct Unregister<'a> {
    child: &'a ChildHandle,
    id: Option<u64>,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.child.routes().unregister(id);
        }
    }
}

impl ChildHandle {
    /// Attaches a session, belonging to `principal` (its token's name).
    pub fn attach(&self, owner: &Owner, principal: Option<Arc<str>>) {
        self.routes().attach(owner.clone(), principal);
    }

    /// Attaches a stateless client's request: the input requests it can answer (by method)
    /// reach it as an `input_required` result.
    pub fn attach_stateless(
        &self,
        owner: &Owner,
        principal: Option<Arc<str>>,
        input_methods: InputKinds,
    ) {
        self.routes()
            .attach_stateless(owner.clone(), principal, input_methods);
    }

    /// Resumes a call parked while its stateless client was asked for input: the child gets
    /// the retry's answers and the call's result goes to the retry (`reg`).
    ///
    /// # Errors
    /// `Gone` when the call ended meanwhile; `ChildGone` when the child cannot be written.
    pub async fn resume(
        &self,
        parked: u64,
        owner: &Owner,
        msg: &Value,
        reg: Registration,
    ) -> Result<Resumed, ResumeError> {
        let resumed = self.routes().resume(parked, owner, msg, reg)?;
        if let Resumed::Answer(lines) = &resumed {
            for line in lines {
                if self.send_line(line).await.is_err() {
                    return Err(ResumeError::Gone);
                }
            }
        }
        Ok(resumed)
    }

    /// Makes a stateless request a listener of this (legacy) child's notifications,
    /// subscribing the child to `uris` where nobody had.
    ///
    /// # Errors
    /// `ChildGone`.
    pub async fn listen(
        &self,
        owner: &Owner,
        listen: Listen,
        uris: &[String],
    ) -> Result<(), Refused> {
        let lines = self.routes().listen(owner, listen, uris);
        for line in lines {
            self.send_line(&line).await?;
        }
        Ok(())
    }

    /// Whether this child only ever serves one session (session isolation).
    pub fn is_single_owner(&self) -> bool {
        self.routes().rules().single_owner
    }

    /// Sessions attached.
    pub fn sessions(&self) -> usize {
        self.routes().attached_len()
    }

    /// Client requests at the child, waiting for their answer.
    pub fn waiting_clients(&self) -> usize {
        self.routes().waiting_clients()
    }

    /// Whether `owner` has a request at the child.
    pub fn has_pending(&self, owner: &Owner) -> bool {
        self.routes().has_pending(owner)
    }

    /// Where this child's server records its metrics.
    pub fn metrics(&self) -> crate::metrics::ServerMetrics {
        self.routes().rules().metrics.clone()
    }

    /// Forwards a client request: waits (fairly, bounded) for a `--child-concurrency` slot,
    /// registers it under a fresh bridge id (before the line is queued, so a fast answer always
    /// finds its route), sends the server requests held for the session on its stream, and
    /// queues the line.
    ///
    /// # Errors
    /// `ChildGone` or `UnknownOwner` (the session ended).
    pub async fn forward_request(
        &self,
        owner: &Owner,
        msg: impl Into<Outgoing>,
        reg: Registration,
        how: Forwarding<'_>,
    ) -> Result<Forwarded, Refused> {
        let mut msg = msg.into();
        let Ok(slot) = self.slot(owner).await else {
            return Ok(Forwarded::Refused(
                "too many requests are waiting for the MCP server (--child-concurrency, --max-waiting); retry later",
            ));
        };
        let stream = reg.stream.clone();
        let sse = reg.sse;
        // Lock: registration, its slot and the held server requests in one critical section.
        let (registered, held) = {
            let mut routes = self.routes();
            let registered = match &mut msg {
                Outgoing::Parsed(msg) => self.register_parsed(&mut routes, owner, msg, reg, &how),
                Outgoing::Raw(req) => routes.register_raw(owner, req, reg),
            };
            if let (Ok((id, _)), Some(slot)) = (&registered, slot) {
                routes.hold_slot(*id, slot);
            }
            if let (Ok((id, _)), Some(finish)) = (&registered, how.finish) {
                routes.finish_with(*id, finish);
            }
            let held = match registered {
                Ok(_) if sse => routes.release_held(owner, &stream),
                _ => Vec::new(),
            };
            (registered, held)
        };
        send_all(&stream, held);
        let (id, line) = match registered {
            Err(Refused::TooManyRequests) => {
                return Ok(Forwarded::Refused(
                    "too many requests in flight for this session; retry when some complete",
                ))
            }
            other => other?,
        };
        let mut guard = Unregister {
            child: self,
            id: Some(id),
        };
        debug!(session = %owner, id, method = msg.method(), "request");
        self.send(line).await.map_err(|_| Refused::ChildGone)?;
        guard.id = None;
        Ok(Forwarded::Sent)
    }

    /// `forward_request`'s registration of a parsed request, stamped for a modern child.
    fn register_parsed(
        &self,
        routes: &mut crate::router::Routes,
        owner: &Owner,
        msg: &mut Value,
        reg: Registration,
        how: &Forwarding<'_>,
    ) -> Result<(u64, bytes::Bytes), Refused> {
        // A modern child needs the caller's `_meta` on every request (its log level is the
        // one the session set with `logging/setLevel`).
        let session_to_modern = match (&self.era, how.caller) {
            (ChildEra::Modern { version }, Some(caller)) => {
                let level = routes.log_level(owner).map(|l| l.as_str());
                modern::stamp(msg, version, caller, level);
                true
            }
            _ => false,
        };
        let id = routes.register(owner, msg, reg)?;
        // A session client knows only server requests: the child's input requests are asked
        // of it as such, and the call retried.
        if session_to_modern {
            routes.retry_on_input(id, msg);
        }
        Ok((id, jsonrpc::to_bytes(msg)))
    }

    /// Forwards a client notification; a `notifications/cancelled` is rewritten to the child's
    /// id for that request, and dropped when the request is not in flight.
    ///
    /// # Errors
    /// `ChildGone`.
    pub async fn forward_notification(&self, owner: &Owner, mut msg: Value) -> Result<(), Refused> {
        if jsonrpc::method(&msg) == "notifications/cancelled"
            && !self.routes().cancel_from_client(owner, &mut msg)
        {
            debug!(session = %owner, "cancellation for no request in flight");
            return Ok(());
        }
        self.send_line(&msg).await
    }

    /// Forwards a client's answer to a server request: only the session it was sent to may
    /// answer, and the child gets its own id back.
    ///
    /// # Errors
    /// `NoSuchServerRequest` or `ChildGone`.
    pub async fn forward_reply(&self, owner: &Owner, mut msg: Value) -> Result<(), Refused> {
        let route = self.routes().reply_from_client(owner, &mut msg)?;
        match route {
            ReplyRoute::Forward => self.send_line(&msg).await,
            ReplyRoute::Recorded => Ok(()),
            ReplyRoute::Retry(retry) => self.send_line(&retry).await,
            ReplyRoute::Fail(stream, error) => {
                let _ = stream.try_send(Outbound {
                    json: jsonrpc::to_bytes(&error),
                    last: true,
                });
                Ok(())
            }
        }
    }

    /// Makes `tx` the session's standalone stream; the server requests held for the session go
    /// out on it at once.
    ///
    /// # Errors
    /// `ChildGone` or `UnknownOwner`.
    pub fn open_standalone(&self, owner: &Owner, tx: StreamTx) -> Result<(), Refused> {
        let held = self.routes().set_standalone(owner, tx.clone())?;
        send_all(&tx, held);
        Ok(())
    }

    /// Records a session's logging level; tells the child when the most verbose level any
    /// session wants changed.
    ///
    /// # Errors
    /// `ChildGone`.
    pub async fn set_log_level(&self, owner: &Owner, level: LogLevel) -> Result<(), Refused> {
        let line = {
            let mut routes = self.routes();
            let change = routes.set_log_level(owner, level);
            // A modern child hears the level with each request instead (`forward_request`).
            let legacy = self.era == ChildEra::Legacy;
            change
                .filter(|_| legacy)
                .map(|level| routes.set_level_request(level))
        };
        match line {
            Some(line) => self.send_line(&line).await,
            None => Ok(()),
        }
    }

    /// Records a subscription; true when a legacy child must be told (the first subscriber).
    /// A modern child hears it through the bridge's listen, opened again with the new set.
    pub async fn subscribe(&self, owner: &Owner, uri: &str) -> bool {
        let first = self.routes().subscribe(owner, uri);
        self.changed_subscriptions(first).await
    }

    /// Drops a subscription; true when a legacy child must be told (the last subscriber left).
    pub async fn unsubscribe(&self, owner: &Owner, uri: &str) -> bool {
        let last = self.routes().unsubscribe(owner, uri);
        self.changed_subscriptions(last).await
    }

    async fn changed_subscriptions(&self, changed: bool) -> bool {
        if self.era == ChildEra::Legacy {
            return changed;
        }
        if changed {
            // The child may be gone; then there is nothing to listen to.
            let _ = self.relisten().await;
        }
        false
    }

    /// (Re)opens the bridge's `subscriptions/listen` at a modern child, with every URI a
    /// session is subscribed to, and cancels the one it replaces.
    ///
    /// # Errors
    /// `ChildGone`.
    pub async fn relisten(&self) -> Result<(), Refused> {
        let lines = {
            let mut routes = self.routes();
            let listen = modern::listen_request(&routes.subscribed_uris());
            routes.replace_listen(listen)
        };
        for line in lines {
            self.send_line(&line).await?;
        }
        Ok(())
    }

    /// Whether `owner` may act on the task a `tasks/*` request names.
    pub fn may_use_task(&self, owner: &Owner, msg: &Value) -> bool {
        self.routes().may_use_task(owner, msg)
    }

    /// Detaches a session that ended: its requests still running are cancelled at the child,
    /// its server requests refused, its subscriptions and logging level released.
    pub async fn detach(&self, owner: &Owner) {
        let detached = self.detach_now(owner);
        self.finish_detach(detached).await;
    }

    /// The part of `detach` that takes no wait: the owner is gone from the routes; what the
    /// child must still be told is returned, for `finish_detach` (nothing, for most requests).
    pub fn detach_now(&self, owner: &Owner) -> Detached {
        let mut routes = self.routes();
        let legacy = self.era == ChildEra::Legacy;
        let before = (!legacy).then(|| routes.subscribed_uris());
        let lines = routes.detach_from(owner, legacy);
        let relisten = before.is_some_and(|b| b != routes.subscribed_uris());
        Detached { lines, relisten }
    }

    /// Tells the child what a detach left to tell it.
    pub async fn finish_detach(&self, detached: Detached) {
        if detached.relisten {
            // The child may be gone; then there is nothing to listen to.
            let _ = self.relisten().await;
        }
        for msg in detached.lines {
            // The child may be gone already; then there is nothing left to cancel.
            if self.send_line(&msg).await.is_err() {
                break;
            }
        }
    }

    async fn send_line(&self, msg: &Value) -> Result<(), Refused> {
        self.send(jsonrpc::to_bytes(msg))
            .await
            .map_err(|_| Refused::ChildGone)
    }
}

/// Queues messages that are not responses on a client stream.
fn send_all(stream: &StreamTx, msgs: Vec<Value>) {
    for msg in msgs {
        // Ordering: they precede anything the child sends later on this stream.
        let _ = stream.try_send(Outbound {
            json: jsonrpc::to_bytes(&msg),
            last: false,
        });
    }
}
