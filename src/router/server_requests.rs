//! Requests from the child to a client (sampling, elicitation, roots): which session may
//! receive one, and on which stream. Over stdio nothing says which client request a server
//! request belongs to, so the rule never guesses between two sessions, nor lets a request
//! reach a user other than the one it can be attributed to. When the session is certain but
//! has no stream yet, the request is held until it opens one.

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{Action, Held, Owner, Refusal, RouteRules, Routes, ServerRequest, StreamTx};
use crate::jsonrpc;

/// Where a server request goes.
enum Target {
    /// To this session, on this stream.
    Send(Owner, StreamTx),
    /// To this session (or, for `None`, the next to attach) once it has a stream.
    Hold(Option<Owner>),
    /// Nowhere: the child gets an error saying why.
    Refuse(&'static str),
}

impl Routes {
    pub(super) fn child_request(&mut self, msg: Value) -> Action {
        let child_id = jsonrpc::id(&msg);
        if jsonrpc::method(&msg) == "ping" {
            return Action::ToChild {
                msg: jsonrpc::result_value(child_id, json!({})),
                refused: None,
            };
        }
        let why = match self.server_request_target(&msg) {
            Target::Send(owner, _) | Target::Hold(Some(owner)) if self.asks_by_result(&owner) => {
                return self.ask_by_result(&owner, msg)
            }
            Target::Send(owner, stream) => return self.send_server_request(owner, msg, stream),
            Target::Hold(owner) if self.held.len() < RouteRules::MAX_HELD => {
                let deadline = Instant::now() + self.rules.hold_for();
                self.held.push_back(Held {
                    owner,
                    msg,
                    deadline,
                });
                return Action::Drop {
                    why: "server request held until its session opens a stream",
                    warn: false,
                };
            }
            Target::Hold(_) => "too many server requests are waiting for their session's stream",
            Target::Refuse(why) => why,
        };
        let refused = Refusal {
            method: jsonrpc::method(&msg).to_owned(),
            why,
        };
        Action::ToChild {
            msg: jsonrpc::error_value(child_id, jsonrpc::UNROUTABLE_SERVER_REQUEST, why),
            refused: Some(refused),
        }
    }

    /// The rule: a request about a task (`_meta` related-task) belongs to the task's owner;
    /// on a child whose session is certain (session isolation, or a single session), to that
    /// session; otherwise to the only session with requests in flight, or the only session,
    /// and then only while every session of the child belongs to one user.
    fn server_request_target(&self, msg: &Value) -> Target {
        if let Some((owner, stream)) = self.task_route(msg, true) {
            return match stream {
                Some(s) => Target::Send(owner, s),
                None => Target::Hold(Some(owner)),
            };
        }
        // Requests the child sends at once for a call just parked (not announced yet) join it.
        if let Some(owner) = self.unannounced_owner().filter(|_| self.one_user()) {
            return Target::Hold(Some(owner));
        }
        if let Some(owner) = self.certain_owner() {
            let stream = owner.as_ref().and_then(|o| {
                self.newest_request_stream(o)
                    .or_else(|| self.standalone_of(o))
            });
            return match (owner, stream) {
                (Some(o), Some(s)) => Target::Send(o, s),
                (owner, _) => Target::Hold(owner),
            };
        }
        match self.sole_owner() {
            Ok((owner, stream)) => Target::Send(owner, stream),
            Err(why) => Target::Refuse(why),
        }
    }

    fn send_server_request(&mut self, owner: Owner, mut msg: Value, stream: StreamTx) -> Action {
        let id = self.alloc();
        let child_id = jsonrpc::replace_id(&mut msg, json!(id));
        let deadline = self.deadline(self.rules.request_timeout);
        self.server_requests.insert(
            id,
            ServerRequest {
                owner,
                child_id,
                stream: stream.clone(),
                deadline,
                input: None,
            },
        );
        Action::Deliver {
            to: stream,
            msg,
            last: false,
        }
    }

    /// The session every message of this child belongs to, when that is certain: the one
    /// session of a child that serves only one (`Some(None)` before it attaches), or the only
    /// session attached.
    fn certain_owner(&self) -> Option<Option<Owner>> {
        let mut owners = self
            .attached
            .iter()
            .filter(|(_, a)| !a.parked)
            .map(|(o, _)| o);
        match (owners.next(), owners.next()) {
            (first, None) if self.rules.single_owner => Some(first.cloned()),
            (Some(only), None) => Some(Some(only.clone())),
            _ => None,
        }
    }

    /// Sends `owner` the server requests held for it on `stream`, which it just opened
    /// (a standalone stream, or a request's event stream). Returns the messages to deliver.
    pub fn release_held(&mut self, owner: &Owner, stream: &StreamTx) -> Vec<Value> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let single = self.rules.single_owner;
        let (mine, others): (Vec<Held>, Vec<Held>) = self
            .held
            .drain(..)
            .partition(|h| h.owner.as_ref().map_or(single, |o| o == owner));
        self.held = others.into();
        mine.into_iter()
            .filter_map(
                |h| match self.send_server_request(owner.clone(), h.msg, stream.clone()) {
                    Action::Deliver { msg, .. } => Some(msg),
                    _ => None,
                },
            )
            .collect()
    }

    /// Whether every attached session belongs to one user (or none is attached): then a
    /// message that reaches any of them reaches no other user.
    pub(super) fn one_user(&self) -> bool {
        let mut principals = self.attached.values().map(|a| &a.principal);
        match principals.next() {
            None => true,
            Some(first) => principals.all(|p| p == first),
        }
    }

    /// The one session a message not tied to a request can belong to, and the stream to use:
    /// the only session with requests in flight (its newest live SSE request stream), or, with
    /// none in flight, the only session (its standalone stream). Never a guess between two,
    /// and never while sessions of several users share the child.
    pub(super) fn sole_owner(&self) -> Result<(Owner, StreamTx), &'static str> {
        if !self.one_user() {
            return Err("sessions of several users share this child: the message cannot be attributed to one of them");
        }
        let mut owner: Option<&Owner> = None;
        // A parked call waits for the answers to what its child asked already: what the child
        // asks now is for another call.
        let parked = |o: &Owner| self.attached.get(o).is_some_and(|a| a.parked);
        for p in self
            .pending
            .values()
            .filter(|p| !p.owner.is_empty() && !parked(&p.owner))
        {
            match owner {
                Some(o) if *o != p.owner => {
                    return Err("more than one session has requests in flight")
                }
                _ => owner = Some(&p.owner),
            }
        }
        if let Some(owner) = owner {
            return match self.newest_request_stream(owner) {
                Some(s) => Ok((owner.clone(), s)),
                // A stateless client is asked by its call's result, on whatever stream.
                None if self.asks_by_result(owner) => self
                    .pending
                    .values()
                    .find(|p| p.owner == *owner)
                    .and_then(|p| p.stream.clone())
                    .map(|s| (owner.clone(), s))
                    .ok_or("the session's requests have no open event stream"),
                None => Err("the session's requests have no open event stream"),
            };
        }
        let mut sessions = self.attached.iter();
        match (sessions.next(), sessions.next()) {
            (Some((o, a)), None) => match &a.standalone {
                Some(s) if !s.is_closed() => Ok((o.clone(), s.clone())),
                _ => Err("the only session has no open standalone stream"),
            },
            (None, _) => Err("no session is connected"),
            _ => Err("no request in flight and more than one session connected"),
        }
    }

    /// The stream of `owner`'s newest request still waiting on an SSE reply.
    pub(super) fn newest_request_stream(&self, owner: &Owner) -> Option<StreamTx> {
        self.pending
            .iter()
            .filter(|(_, p)| {
                p.owner == *owner && p.sse && p.stream.as_ref().is_some_and(|s| !s.is_closed())
            })
            .max_by_key(|(&id, _)| id)
            .and_then(|(_, p)| p.stream.clone())
    }

    /// `owner`'s open standalone stream.
    pub(super) fn standalone_of(&self, owner: &Owner) -> Option<StreamTx> {
        let s = self.attached.get(owner)?.standalone.as_ref()?;
        (!s.is_closed()).then(|| s.clone())
    }
}
