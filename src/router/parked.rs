//! Server requests for stateless clients (a legacy child's sampling, elicitation or roots
//! request while a 2026-07-28 client's request is in flight). Such a client takes no server
//! requests: its request is answered with `input_required` instead, listing the child's
//! requests under keys of the bridge's own, and the call stays running at the child, parked
//! under an owner of its own (so the client closing that reply does not cancel it). When the
//! client retries with `inputResponses` (and the `requestState` naming the parking), the child
//! gets its answers and the call's result goes to the retry. Plain data, like the rest of the
//! router; minting and checking the `requestState` is the front's.

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::{Action, Owner, Registration, Routes, StreamTx};
use crate::jsonrpc;

/// JSON-RPC error: the client did not declare the capability a request needs (2026-07-28).
pub const MISSING_CAPABILITY: i64 = -32021;

/// A call parked at the child while its stateless client is asked for input.
#[derive(Debug)]
pub(super) struct Parked {
    /// The call's bridge id at the child.
    call: u64,
    /// The owner it is parked under.
    owner: Owner,
    /// The child's requests, by the bridge's key: (the child's id, the request as the client
    /// sees it).
    asks: Map<String, Value>,
    /// The child's ids, by the same keys.
    child_ids: Map<String, Value>,
    /// When the client's retry must have come.
    deadline: Instant,
    /// Where and to whom the `input_required` answer goes, until it is sent (`announce`): the
    /// child may ask several things at once, and they go out together.
    announce: Option<(StreamTx, Value, Option<std::sync::Arc<str>>)>,
}

/// What a stateless client's retry does.
#[derive(Debug, PartialEq)]
pub enum Resumed {
    /// Answers for the child's requests, to send it; the call's result goes to the retry.
    Answer(Vec<Value>),
    /// Not every input request is answered: ask again, these.
    AskAgain(Map<String, Value>),
}

/// Why a retry cannot resume a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// The call is gone (answered, expired or cancelled meanwhile).
    Gone,
    /// `inputResponses` is not an object of objects.
    Invalid,
}

impl Routes {
    /// Whether `owner` takes input requests as an `input_required` result (a stateless client).
    pub(super) fn asks_by_result(&self, owner: &Owner) -> bool {
        self.attached
            .get(owner)
            .is_some_and(|a| a.input_methods.is_some())
    }

    /// The child asked `msg` while `owner`'s call was in flight: answer the call with
    /// `input_required` (or add to the asks of a call parked already).
    pub(super) fn ask_by_result(&mut self, owner: &Owner, msg: Value) -> Action {
        let child_id = jsonrpc::id(&msg);
        let method = jsonrpc::method(&msg).to_owned();
        let call = self
            .pending
            .iter()
            .filter(|(_, p)| p.owner == *owner)
            .map(|(&id, _)| id)
            .max();
        let Some(call) = call else {
            let why = "the stateless request this server request belongs to has ended";
            return refuse(child_id, method, why);
        };
        let ask = json!({"method": method, "params": msg.get("params").cloned().unwrap_or_else(|| json!({}))});
        // A call parked already: the new request joins its asks, and the client's retry, which
        // cannot answer it yet, is asked again.
        if let Some(parked) = self.parked.values_mut().find(|p| p.call == call) {
            let key = format!("input-{}", parked.asks.len() + 1);
            parked.asks.insert(key.clone(), ask);
            parked.child_ids.insert(key, child_id);
            return Action::Drop {
                why: "server request added to a parked call's input requests",
                warn: false,
            };
        }
        let allowed = self
            .attached
            .get(owner)
            .and_then(|a| a.input_methods)
            .is_some_and(|m| m.allows(&method));
        let Some(p) = self.pending.get(&call) else {
            return refuse(child_id, method, "no call");
        };
        let (stream, client_id, principal) = (
            p.stream.clone(),
            p.client_id.clone(),
            self.attached.get(owner).and_then(|a| a.principal.clone()),
        );
        let Some(stream) = stream else {
            return refuse(child_id, method, "no call");
        };
        if !allowed {
            // 2026-07-28 `basic/patterns/mrtr`: a server MUST NOT send input requests the
            // client has not declared support for. The child is told so (-32021, naming the
            // capability); a server that cannot do without it fails the call, often with that
            // very error, and one that can goes on.
            let capability = method.split('/').next().unwrap_or_default().to_owned();
            let why = format!("the client did not declare the {capability} capability");
            let mut refusal = jsonrpc::error_value(child_id, MISSING_CAPABILITY, &why);
            refusal["error"]["data"] = json!({"requiredCapabilities": {capability: {}}});
            return Action::ToChild {
                msg: refusal,
                refused: None,
            };
        }
        if self.parked.len() >= super::RouteRules::MAX_WAITING_FOR_INPUT {
            let why = "too many stateless calls are waiting for their clients' input";
            return refuse(child_id, method, why);
        }
        let id = self.alloc();
        let parking: Owner = format!("parked-{id}").into();
        let methods = self
            .attached
            .get(owner)
            .and_then(|a| a.input_methods)
            .unwrap_or_default();
        self.attach_stateless(parking.clone(), principal.clone(), methods);
        if let Some(a) = self.attached.get_mut(&parking) {
            a.parked = true;
        }
        self.reown(call, &parking);
        let key = "input-1".to_owned();
        let mut asks = Map::new();
        asks.insert(key.clone(), ask);
        let mut child_ids = Map::new();
        child_ids.insert(key, child_id);
        let deadline = Instant::now() + self.rules.hold_for();
        self.parked.insert(
            id,
            Parked {
                call,
                owner: parking,
                asks,
                child_ids,
                deadline,
                announce: Some((stream, client_id, principal)),
            },
        );
        Action::Drop {
            why: "call parked; its client hears once the child has asked all it asks at once",
            warn: false,
        }
    }

    /// The owner of the one call parked and not announced yet, if there is exactly one.
    pub(super) fn unannounced_owner(&self) -> Option<Owner> {
        let mut fresh = self.parked.values().filter(|p| p.announce.is_some());
        match (fresh.next(), fresh.next()) {
            (Some(p), None) => Some(p.owner.clone()),
            _ => None,
        }
    }

    /// Whether a parked call's client has not heard of it yet.
    pub fn has_unannounced(&self) -> bool {
        self.parked.values().any(|p| p.announce.is_some())
    }

    /// The `input_required` answers of the calls parked since the last time: each lists every
    /// request the child asked for it so far.
    pub fn announce(&mut self) -> Vec<Action> {
        self.parked
            .iter_mut()
            .filter_map(|(&id, p)| {
                let (to, client_id, caller) = p.announce.take()?;
                Some(Action::AskByResult {
                    to,
                    client_id,
                    parked: id,
                    caller,
                    asks: p.asks.clone(),
                })
            })
            .collect()
    }

    /// Moves pending call `id` to `owner`, keeping both owners' counts right.
    fn reown(&mut self, id: u64, owner: &Owner) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut p.owner, owner.clone());
        if let Some(a) = self.attached.get_mut(&old) {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
        if let Some(a) = self.attached.get_mut(owner) {
            a.in_flight += 1;
        }
    }

    /// A stateless client's retry (`msg`, from `owner`, with its `inputResponses`) of the call
    /// parked as `parked`: hands the answers to the child and the call to the retry, or says
    /// which input requests are still unanswered.
    ///
    /// # Errors
    /// `Gone` when the call ended meanwhile.
    pub fn resume(
        &mut self,
        parked: u64,
        owner: &Owner,
        msg: &Value,
        reg: Registration,
    ) -> Result<Resumed, ResumeError> {
        let p = self.parked.get(&parked).ok_or(ResumeError::Gone)?;
        if !self.pending.contains_key(&p.call) {
            self.forget_parked(parked);
            return Err(ResumeError::Gone);
        }
        let answers = match jsonrpc::param(msg, "inputResponses") {
            None => None,
            Some(Value::Object(a)) if a.values().all(Value::is_object) => Some(a),
            Some(_) => return Err(ResumeError::Invalid),
        };
        let missing: Map<String, Value> = p
            .asks
            .iter()
            .filter(|(k, _)| !answers.is_some_and(|a| a.get(*k).is_some_and(Value::is_object)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !missing.is_empty() {
            return Ok(Resumed::AskAgain(p.asks.clone()));
        }
        let Some(p) = self.parked.remove(&parked) else {
            return Err(ResumeError::Gone);
        };
        let lines = p
            .child_ids
            .iter()
            .map(|(k, child_id)| {
                let answer = answers.and_then(|a| a.get(k)).cloned().unwrap_or_default();
                jsonrpc::result_value(child_id.clone(), answer)
            })
            .collect();
        self.reown(p.call, owner);
        self.attached.remove(&p.owner);
        let deadline = self.deadline(self.rules.request_timeout);
        if let Some(call) = self.pending.get_mut(&p.call) {
            call.client_id = jsonrpc::id(msg);
            call.stream = Some(reg.stream);
            call.sse = reg.sse;
            call.progress = jsonrpc::progress_token(msg).cloned();
            call.deadline = deadline;
        }
        Ok(Resumed::Answer(lines))
    }

    /// Drops a parking and its owner; the child gets errors for its requests and a
    /// cancellation of the call (returned).
    pub(super) fn forget_parked(&mut self, parked: u64) -> Vec<Value> {
        let Some(p) = self.parked.remove(&parked) else {
            return Vec::new();
        };
        let why = "the client did not retry with the input the server asked for in time";
        let mut to_child: Vec<Value> = p
            .child_ids
            .values()
            .map(|id| jsonrpc::error_value(id.clone(), jsonrpc::REQUEST_TIMEOUT, why))
            .collect();
        if self.remove_pending(p.call).is_some() {
            to_child.push(jsonrpc::cancelled(json!(p.call), why));
        }
        self.attached.remove(&p.owner);
        to_child
    }

    /// The parkings whose deadline passed at `now`.
    pub(super) fn overdue_parked(&self, now: Instant) -> Vec<u64> {
        self.parked
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&id, _)| id)
            .collect()
    }

    /// The earliest deadline of a parking.
    pub(super) fn next_parked_deadline(&self) -> Option<Instant> {
        self.parked.values().map(|p| p.deadline).min()
    }
}

fn refuse(child_id: Value, method: String, why: &'static str) -> Action {
    Action::ToChild {
        msg: jsonrpc::error_value(child_id, jsonrpc::UNROUTABLE_SERVER_REQUEST, why),
        refused: Some(super::Refusal { method, why }),
    }
}
