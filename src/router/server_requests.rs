//! Requests from the child to a client (sampling, elicitation, roots): which session may
//! receive one, and on which stream. Over stdio nothing says which client request a server
//! request belongs to, so the rule never guesses between two sessions.

use serde_json::{json, Value};

use super::{Action, Owner, Routes, ServerRequest, StreamTx};
use crate::jsonrpc;

impl Routes {
    pub(super) fn child_request(&mut self, mut msg: Value) -> Action {
        let child_id = jsonrpc::id(&msg);
        if jsonrpc::method(&msg) == "ping" {
            return Action::ToChild {
                msg: jsonrpc::result_value(child_id, json!({})),
                refused: None,
            };
        }
        // A request about a task (`_meta` related-task) belongs to the task's owner.
        let target = match self.task_route(&msg, true) {
            Some((owner, Some(stream))) => Ok((owner, stream)),
            Some((_, None)) => Err("the task's session has no open stream"),
            None => self.sole_owner(),
        };
        match target {
            Ok((owner, stream)) => {
                let id = self.alloc();
                jsonrpc::replace_id(&mut msg, json!(id));
                self.server_requests.insert(
                    id,
                    ServerRequest {
                        owner,
                        child_id,
                        stream: stream.clone(),
                    },
                );
                Action::Deliver {
                    to: stream,
                    msg,
                    last: false,
                }
            }
            Err(why) => Action::ToChild {
                msg: jsonrpc::error_value(child_id, jsonrpc::UNROUTABLE_SERVER_REQUEST, why),
                refused: Some(why),
            },
        }
    }

    /// The one session a message not tied to a request can belong to, and the stream to use:
    /// the only session with requests in flight (its newest live SSE request stream), or, with
    /// none in flight, the only session (its standalone stream). Never a guess between two.
    pub(super) fn sole_owner(&self) -> Result<(Owner, StreamTx), &'static str> {
        let mut owner: Option<&Owner> = None;
        for p in self.pending.values().filter(|p| !p.owner.is_empty()) {
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
            .filter(|(_, p)| p.owner == *owner && p.sse && p.stream.is_some())
            .max_by_key(|(&id, _)| id)
            .and_then(|(_, p)| p.stream.clone())
    }

    /// `owner`'s open standalone stream.
    pub(super) fn standalone_of(&self, owner: &Owner) -> Option<StreamTx> {
        let s = self.attached.get(owner)?.standalone.as_ref()?;
        (!s.is_closed()).then(|| s.clone())
    }
}
