//! Time limits: a client request the child does not answer within the request timeout is
//! answered with an error and cancelled at the child; a server request no client answers in
//! time gets an error at the child and a cancellation at the client; a held server request
//! whose session never opens a stream is refused.

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{Outbound, Routes, StreamTx};
use crate::jsonrpc;

/// What `Routes::expire` found overdue.
#[derive(Debug, Default)]
pub struct Expired {
    /// Messages for clients: the error answering a timed-out request (ends its stream), or a
    /// cancellation of a server request.
    pub to_clients: Vec<(StreamTx, Outbound)>,
    /// Lines for the child: cancellations of its timed-out requests, errors for its server
    /// requests.
    pub to_child: Vec<Value>,
}

impl Routes {
    /// The earliest deadline of anything waiting, to know when to look again.
    pub fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending.values().filter_map(|p| p.deadline);
        let server = self.server_requests.values().filter_map(|r| r.deadline);
        let held = self.held.iter().map(|h| h.deadline);
        pending
            .chain(server)
            .chain(held)
            .chain(self.next_parked_deadline())
            .min()
    }

    /// Removes everything whose deadline is at or before `now`, returning what the clients and
    /// the child must be told. A server request sent on the stream of a request that timed out
    /// goes with it (nobody could answer it any more), and its cancellation reaches the client
    /// before the request's error ends that stream.
    pub fn expire(&mut self, now: Instant) -> Expired {
        let mut out = Expired::default();
        let timeout = self.rules.request_timeout.unwrap_or_default();
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        let overdue: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| due(p.deadline))
            .map(|(&id, _)| id)
            .collect();
        let overdue: Vec<(u64, super::Pending)> = overdue
            .into_iter()
            .filter_map(|id| Some((id, self.remove_pending(id)?)))
            .collect();
        let ending: Vec<StreamTx> = overdue
            .iter()
            .filter_map(|(_, p)| p.stream.clone())
            .collect();
        let why = format!("the client did not answer within {timeout:?} (--request-timeout)");
        let mut abandoned = Vec::new();
        self.server_requests.retain(|&id, r| {
            let orphaned = ending.iter().any(|s| s.same_stream(&r.stream));
            if !due(r.deadline) && !orphaned {
                return true;
            }
            match &r.input {
                None => {
                    let error =
                        jsonrpc::error_value(r.child_id.clone(), jsonrpc::REQUEST_TIMEOUT, &why);
                    out.to_child.push(error);
                }
                Some((continuation, _)) => abandoned.push(*continuation),
            }
            let cancel = jsonrpc::cancelled(json!(id), &why);
            out.to_clients
                .push((r.stream.clone(), outbound(&cancel, false)));
            false
        });
        // A call whose client did not give the input its child asked for ends with an error.
        for continuation in abandoned {
            if let Some((stream, client_id)) = self.abandon(continuation) {
                let msg = jsonrpc::error_value(client_id, jsonrpc::REQUEST_TIMEOUT, &why);
                out.to_clients.push((stream, outbound(&msg, true)));
            }
        }
        let why = format!("the MCP server did not answer within {timeout:?} (--request-timeout)");
        for (id, p) in overdue {
            out.to_child.push(jsonrpc::cancelled(json!(id), &why));
            if let Some(stream) = p.stream {
                self.rules
                    .metrics
                    .request_done(p.method, "timeout", p.started.elapsed());
                self.rules.metrics.refused("timeout");
                let msg = jsonrpc::error_value(p.client_id, jsonrpc::REQUEST_TIMEOUT, &why);
                out.to_clients.push((stream, outbound(&msg, true)));
            }
        }
        for parked in self.overdue_parked(now) {
            let lines = self.forget_parked(parked);
            out.to_child.extend(lines);
        }
        let why = "no client stream was opened to carry this request in time";
        self.held.retain(|h| {
            if h.deadline > now {
                return true;
            }
            let id = jsonrpc::id(&h.msg);
            let error = jsonrpc::error_value(id, jsonrpc::UNROUTABLE_SERVER_REQUEST, why);
            out.to_child.push(error);
            false
        });
        out
    }
}

fn outbound(msg: &Value, last: bool) -> Outbound {
    Outbound {
        json: jsonrpc::to_bytes(msg),
        last,
    }
}
