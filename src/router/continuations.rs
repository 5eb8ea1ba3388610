//! Multi round-trip requests across eras (2026-07-28 `basic/patterns/mrtr`): a modern child
//! answers a session client's request with `resultType: "input_required"`, and the client,
//! of the session era, knows only server-to-client requests. The bridge asks the client each
//! input request as an ordinary server request on the call's event stream, collects the
//! answers under the child's keys, and retries the original request with `inputResponses` and
//! the child's `requestState`, until a complete result arrives. A call waiting for its
//! client's answers is a continuation: plain data, owned by the caller, bounded in time by the
//! server requests' deadlines.

use serde_json::{json, Map, Value};

use super::{Action, Pending, RouteRules, Routes, ServerRequest, StreamTx};
use crate::jsonrpc;

/// Rounds of `input_required` without any input request (the child only handing back its
/// state) after which the call fails rather than loop.
const MAX_BARE_ROUNDS: u8 = 8;

/// The requests that may carry input requests (the specification allows no others).
const INPUT_METHODS: [&str; 3] = ["elicitation/create", "sampling/createMessage", "roots/list"];

/// A client call waiting for its client's answers to the child's input requests.
#[derive(Debug)]
pub(super) struct Continuation {
    /// The call, as it was pending (its client id, stream, progress token, retry template).
    pub(super) call: Pending,
    /// The child's opaque state, echoed back on the retry.
    state: Option<Value>,
    /// Answers so far, under the child's keys.
    answers: Map<String, Value>,
    /// Answers still missing.
    missing: usize,
}

/// What to do with a client's answer to a server request.
#[derive(Debug, PartialEq)]
pub enum ReplyRoute {
    /// Forward the (rewritten) answer to the child: it asked.
    Forward,
    /// Recorded for a call waiting for more answers: nothing to send yet.
    Recorded,
    /// Every answer is in: send this retry of the call to the child (registered already).
    Retry(Value),
    /// The client refused an input request: the call ends with this error on this stream.
    Fail(StreamTx, Value),
}

/// Whether a response's result asks for input.
pub(super) fn asks_for_input(msg: &Value) -> bool {
    msg.get("result")
        .and_then(|r| r.get("resultType"))
        .and_then(Value::as_str)
        == Some("input_required")
}

impl Routes {
    /// The child answered `call` (taken out of the pending table) with `input_required`: ask
    /// the client, or retry at once when the child asked for nothing but handed back state.
    pub(super) fn ask_for_input(
        &mut self,
        mut call: Pending,
        stream: StreamTx,
        msg: Value,
    ) -> Action {
        // Its `--child-concurrency` slot is given back while the client is asked: a person may
        // take long to answer.
        call.slot = None;
        let result = msg.get("result");
        let state = result.and_then(|r| r.get("requestState")).cloned();
        let requests = result
            .and_then(|r| r.get("inputRequests"))
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .cloned();
        let fail = |why: &str| Action::Deliver {
            to: stream.clone(),
            msg: jsonrpc::error_value(call.client_id.clone(), jsonrpc::INTERNAL_ERROR, why),
            last: true,
        };
        let Some(requests) = requests else {
            if call.rounds >= MAX_BARE_ROUNDS {
                return fail("the MCP server kept asking to be retried without saying for what");
            }
            let retry = self.retry(call, stream, state, Map::new());
            return Action::ToChild {
                msg: retry,
                refused: None,
            };
        };
        if !call.sse {
            return fail("the MCP server needs input from the client (elicitation, sampling or roots), which needs an event-stream reply: send Accept: text/event-stream");
        }
        let valid = requests.values().all(|r| {
            let method = r.get("method").and_then(Value::as_str);
            method.is_some_and(|m| INPUT_METHODS.contains(&m))
        });
        if !valid {
            return fail("the MCP server asked for input of a kind the bridge cannot relay");
        }
        if self.continuations.len() >= RouteRules::MAX_WAITING_FOR_INPUT {
            return fail("too many calls are waiting for their clients' input; retry later");
        }
        let continuation = self.alloc();
        let mut asks = Vec::with_capacity(requests.len());
        for (key, request) in &requests {
            let id = self.alloc();
            let mut ask = json!({"jsonrpc": "2.0", "id": id, "method": request["method"]});
            if let Some(params) = request.get("params") {
                ask["params"] = params.clone();
            }
            asks.push(ask);
            let deadline = self.deadline(self.rules.request_timeout);
            let r = ServerRequest {
                owner: call.owner.clone(),
                child_id: Value::Null,
                stream: stream.clone(),
                deadline,
                input: Some((continuation, key.clone())),
            };
            self.server_requests.insert(id, r);
        }
        let waiting = Continuation {
            call,
            state,
            answers: Map::new(),
            missing: requests.len(),
        };
        self.continuations.insert(continuation, waiting);
        Action::Ask {
            to: stream,
            requests: asks,
        }
    }

    /// Records a client's answer to input request `key` of `continuation`.
    pub(super) fn record_input(
        &mut self,
        continuation: u64,
        key: String,
        msg: &Value,
    ) -> ReplyRoute {
        let Some(c) = self.continuations.get_mut(&continuation) else {
            return ReplyRoute::Recorded;
        };
        if let Some(error) = msg.get("error") {
            let Some(c) = self.continuations.remove(&continuation) else {
                return ReplyRoute::Recorded;
            };
            self.forget_inputs(continuation);
            let why = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("refused");
            let message =
                format!("the client did not provide the input the MCP server asked for: {why}");
            let reply =
                jsonrpc::error_value(c.call.client_id.clone(), jsonrpc::INTERNAL_ERROR, &message);
            return match c.call.stream {
                Some(stream) => ReplyRoute::Fail(stream, reply),
                None => ReplyRoute::Recorded,
            };
        }
        let answer = msg.get("result").cloned().unwrap_or_else(|| json!({}));
        if c.answers.insert(key, answer).is_none() {
            c.missing = c.missing.saturating_sub(1);
        }
        if c.missing > 0 {
            return ReplyRoute::Recorded;
        }
        let Some(c) = self.continuations.remove(&continuation) else {
            return ReplyRoute::Recorded;
        };
        let Some(stream) = c.call.stream.clone() else {
            return ReplyRoute::Recorded;
        };
        ReplyRoute::Retry(self.retry(c.call, stream, c.state, c.answers))
    }

    /// Registers and returns the retry of `call`: its original request under a fresh bridge
    /// id, with the answers and the child's state.
    fn retry(
        &mut self,
        mut call: Pending,
        stream: StreamTx,
        state: Option<Value>,
        answers: Map<String, Value>,
    ) -> Value {
        let id = self.alloc();
        let mut msg = call.retry.as_deref().cloned().unwrap_or_default();
        jsonrpc::replace_id(&mut msg, json!(id));
        jsonrpc::replace_progress_token(&mut msg, json!(id));
        if let Some(params) = msg.get_mut("params").and_then(Value::as_object_mut) {
            params.remove("inputResponses");
            params.remove("requestState");
            if !answers.is_empty() {
                params.insert("inputResponses".into(), Value::Object(answers));
            }
            if let Some(state) = state {
                params.insert("requestState".into(), state);
            }
        }
        call.stream = Some(stream);
        call.deadline = self.deadline(self.rules.request_timeout);
        call.rounds = call.rounds.saturating_add(1);
        if let Some(a) = self.attached.get_mut(&call.owner) {
            a.in_flight += 1;
        }
        self.pending.insert(id, call);
        msg
    }

    /// Drops the input requests still out for `continuation`.
    fn forget_inputs(&mut self, continuation: u64) {
        self.server_requests
            .retain(|_, r| !matches!(&r.input, Some((c, _)) if *c == continuation));
    }

    /// Ends the continuations whose call matches (its session ended, its stream stopped, its
    /// client cancelled it), with their input requests.
    pub(super) fn forget_continuations(&mut self, matches: impl Fn(&Pending) -> bool) {
        let gone: Vec<u64> = self
            .continuations
            .iter()
            .filter(|(_, c)| matches(&c.call))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.continuations.remove(&id);
            self.forget_inputs(id);
        }
    }

    /// The call a continuation holds, for an answer that will not come (its input request
    /// timed out): its client id and stream, so the caller can fail it.
    pub(super) fn abandon(&mut self, continuation: u64) -> Option<(StreamTx, Value)> {
        let c = self.continuations.remove(&continuation)?;
        self.forget_inputs(continuation);
        Some((c.call.stream?, c.call.client_id))
    }
}
