//! Streamable HTTP (revisions 2025-03-26 to 2025-11-25) on the MCP path: POST carries one
//! JSON-RPC message (or a 2025-03-26 batch), GET opens a session's standalone stream or resumes
//! a stream with `Last-Event-ID`, DELETE ends a session.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::{debug, info};

use super::accept::{self, ReplyMode};
use super::guard::{Identity, Principal};
use super::refused;
use super::sse::{self, EventStream};
use crate::back::legacy as handshake;
use crate::envelope::RawRequest;
use crate::error::{json_bytes_response, json_response, HttpError};
use crate::front;
use crate::jsonrpc::{self, Kind};
use crate::router::{stream_channel, Outbound, Registration, StreamRx};
use crate::session::{Session, Transport};
use crate::state::BridgeState;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";
/// The only revision whose clients may send JSON-RPC batches.
const BATCH_VERSION: &str = "2025-03-26";

type Handled = Result<Response, HttpError>;

/// POST: one JSON-RPC message, or a batch, from a client.
pub async fn post(
    app: Arc<BridgeState>,
    principal: Principal,
    identity: Identity,
    req: axum::extract::Request,
) -> Handled {
    let (headers, body) = super::headers_and_body(&app, req).await?;
    accept::check_content_type(&headers)?;
    let mode = accept::post_reply_mode(&headers)?;
    // The fast path: a session's plain request goes on as its own bytes (`envelope`).
    if headers.contains_key(SESSION_HEADER) {
        if let Some(req) = RawRequest::new(&body) {
            let session = session_of(&app, &headers, &principal)?;
            return call(&app, &session, Call::Plain(req), mode).await;
        }
    }
    let plain = super::stateless::post_plain(&app, &principal, &identity, &headers, &body, mode);
    if let Some(handled) = plain.await {
        return handled;
    }
    let msg: Value = super::parse_json(&body)?;
    // A request carrying the 2026-07-28 `_meta` is served statelessly, whatever the session
    // headers say (a dual-era endpoint: `initialize` still opens a session).
    if is_stateless(&headers, &msg) && super::classify(&msg)? == Kind::Request {
        return super::stateless::post(&app, principal, &identity, &headers, msg, mode).await;
    }
    if let Value::Array(batch) = msg {
        let session = session_of(&app, &headers, &principal)?;
        return post_batch(&app, &session, batch, mode).await;
    }
    let kind = super::classify(&msg)?;
    if kind == Kind::Request && jsonrpc::method(&msg) == "initialize" {
        return initialize(&app, &headers, &msg, mode, principal, identity).await;
    }
    let session = session_of(&app, &headers, &principal)?;
    match kind {
        Kind::Request => call(&app, &session, Call::Parsed(msg), mode).await,
        Kind::Notification => {
            front::session::notification(&session, msg)
                .await
                .map_err(refused)?;
            Ok(crate::error::empty_response(StatusCode::ACCEPTED))
        }
        Kind::Response => {
            front::session::reply(&session, msg)
                .await
                .map_err(refused)?;
            Ok(crate::error::empty_response(StatusCode::ACCEPTED))
        }
    }
}

/// A session's request, parsed or on the fast path.
enum Call {
    Parsed(Value),
    Plain(RawRequest),
}

/// Forwards one request of a session and replies with what comes back on its stream.
async fn call(app: &BridgeState, session: &Arc<Session>, call: Call, mode: ReplyMode) -> Handled {
    let (tx, rx) = stream_channel(app.config.limits.stream_queue);
    let reg = Registration {
        stream: tx,
        sse: mode.streams(),
    };
    match call {
        Call::Parsed(msg) => front::session::request(session, msg, reg).await,
        Call::Plain(req) => front::session::request_plain(session, req, reg).await,
    }
    .map_err(refused)?;
    Ok(reply(app, session, rx, Carried::Request, mode).await)
}

/// Whether a POST is a 2026-07-28 request: its `_meta` names a revision, or, without a
/// session, its `MCP-Protocol-Version` header names one that is not of the session era (a
/// request missing its `_meta` is then refused the 2026-07-28 way, with -32602).
fn is_stateless(headers: &HeaderMap, msg: &Value) -> bool {
    if front::stateless::is_modern(msg) {
        return true;
    }
    if headers.contains_key(SESSION_HEADER) || jsonrpc::method(msg) == "initialize" {
        return false;
    }
    let version = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    version.is_some_and(|v| !handshake::is_supported(v))
}

/// The session named by `Mcp-Session-Id`, after checking `MCP-Protocol-Version`.
fn session_of(
    app: &BridgeState,
    headers: &HeaderMap,
    principal: &Principal,
) -> Result<Arc<Session>, HttpError> {
    let id = headers
        .get(SESSION_HEADER)
        .ok_or(HttpError::MissingSession)?;
    let id = id.to_str().map_err(|_| HttpError::SessionNotFound)?;
    let session = super::session_for(app, id, principal)?;
    if !matches!(session.transport, Transport::Streamable) {
        return Err(HttpError::SessionNotFound);
    }
    // Absent means 2025-03-26 (transports spec, "Protocol Version Header").
    if let Some(v) = headers.get(VERSION_HEADER) {
        let v = v.to_str().unwrap_or("");
        if !handshake::is_supported(v) {
            return Err(HttpError::UnsupportedVersion(v.into()));
        }
    }
    Ok(session)
}

/// `initialize` creates a session and is answered by the bridge from the child's cached result.
async fn initialize(
    app: &BridgeState,
    headers: &HeaderMap,
    msg: &Value,
    mode: ReplyMode,
    principal: Principal,
    identity: Identity,
) -> Handled {
    // Session or user isolation: chosen headers and claims become the new child's environment.
    let extra_env = super::child_env(app, headers, &identity);
    let session = front::session::open(app, Transport::Streamable, principal.0, &extra_env)
        .await
        .map_err(refused)?;
    let reply = jsonrpc::to_bytes(&front::session::initialize(&session, msg));
    let mut resp = match mode {
        ReplyMode::Sse => sse::complete_message(&[], None, reply),
        ReplyMode::Either | ReplyMode::Json => json_bytes_response(StatusCode::OK, reply),
    };
    let sid = HeaderValue::from_str(&session.id).expect("session ids are hex");
    resp.headers_mut().insert(SESSION_HEADER, sid);
    Ok(resp)
}

/// What a POST carried: one request, or a batch holding this many requests.
#[derive(Clone, Copy)]
enum Carried {
    Request,
    Batch(usize),
}

impl Carried {
    /// How many responses the reply waits for.
    fn responses(self) -> usize {
        match self {
            Carried::Request => 1,
            Carried::Batch(n) => n,
        }
    }
}

/// The reply to a POST whose requests' messages arrive on `rx`.
async fn reply(
    app: &BridgeState,
    session: &Arc<Session>,
    rx: StreamRx,
    carried: Carried,
    mode: ReplyMode,
) -> Response {
    let responses = carried.responses();
    match mode {
        ReplyMode::Sse | ReplyMode::Either => {
            // A batch's answer as JSON is an array of all its responses: only a stream can
            // carry them as they come.
            let json = mode == ReplyMode::Either && matches!(carried, Carried::Request);
            sse::request_reply(session, rx, responses, app.config.keep_alive, json).await
        }
        ReplyMode::Json => json_reply(rx, carried).await,
    }
}

/// JSON mode: the response (or a batch's responses as an array, even of one); related
/// notifications cannot travel in a single JSON body and are left out.
async fn json_reply(mut rx: StreamRx, carried: Carried) -> Response {
    let responses = carried.responses();
    let mut got = Vec::with_capacity(responses);
    while got.len() < responses {
        let next = tokio::select! {
            m = rx.rx.recv() => m,
            _ = rx.stop.stopped() => None,
        };
        match next {
            Some(Outbound { json, last: true }) => got.push(json),
            Some(_) => {}
            None => break,
        }
    }
    match (got.pop(), carried) {
        // The request was cancelled or its session ended: no response will come.
        (None, _) => StatusCode::NO_CONTENT.into_response(),
        (Some(one), Carried::Request) => json_bytes_response(StatusCode::OK, one),
        (Some(last), Carried::Batch(_)) => {
            got.push(last);
            let items: Vec<&[u8]> = got.iter().map(|b| &b[..]).collect();
            let body = [b"[".as_slice(), &items.join(b",".as_slice()), b"]"].concat();
            json_bytes_response(StatusCode::OK, body.into())
        }
    }
}

/// A 2025-03-26 batch: notifications and responses are forwarded, requests share one reply.
async fn post_batch(
    app: &BridgeState,
    session: &Arc<Session>,
    batch: Vec<Value>,
    mode: ReplyMode,
) -> Handled {
    if session.protocol_version() != BATCH_VERSION {
        let why = format!(
            "JSON-RPC batches are not part of revision {}",
            session.protocol_version()
        );
        return Err(HttpError::InvalidRequest(why));
    }
    if batch.is_empty() {
        return Err(HttpError::InvalidRequest("empty batch".into()));
    }
    let kinds = batch
        .iter()
        .map(super::classify)
        .collect::<Result<Vec<_>, _>>()?;
    if batch.iter().any(|m| jsonrpc::method(m) == "initialize") {
        return Err(HttpError::InvalidRequest(
            "initialize must not be part of a batch".into(),
        ));
    }
    let requests = kinds.iter().filter(|k| **k == Kind::Request).count();
    let (tx, rx) = stream_channel(app.config.limits.stream_queue.max(requests));
    for (msg, kind) in batch.into_iter().zip(kinds) {
        match kind {
            Kind::Request => {
                let reg = Registration {
                    stream: tx.clone(),
                    sse: mode.streams(),
                };
                front::session::request(session, msg, reg).await
            }
            Kind::Notification => front::session::notification(session, msg).await,
            Kind::Response => front::session::reply(session, msg).await,
        }
        .map_err(refused)?;
    }
    drop(tx);
    if requests == 0 {
        return Ok(crate::error::empty_response(StatusCode::ACCEPTED));
    }
    Ok(reply(app, session, rx, Carried::Batch(requests), mode).await)
}

/// GET: resumes the stream named by `Last-Event-ID`, or opens the session's standalone stream
/// for server messages not tied to a request.
pub async fn get(app: Arc<BridgeState>, principal: Principal, headers: HeaderMap) -> Handled {
    accept::check_get_accept(&headers)?;
    let session = session_of(&app, &headers, &principal)?;
    let keep_alive = app.config.keep_alive;
    let last = headers
        .get(LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(sse::parse_event_id);
    if let Some((stream, seq)) = last {
        if let Some(parked) = session.unpark(stream) {
            debug!(session = %session.id, stream, after = seq, "stream resumed");
            return Ok(EventStream::resume(session, parked, seq, keep_alive).into_response());
        }
    }
    let (tx, rx) = stream_channel(app.config.limits.stream_queue);
    front::session::open_standalone(&session, tx).map_err(refused)?;
    debug!(session = %session.id, "standalone stream opened");
    let ids = sse::EventIds::new(session.clone());
    let prelude = if sse::primes(&session) {
        vec![ids.priming()]
    } else {
        vec![]
    };
    let stream = EventStream {
        prelude,
        ids: Some(ids),
        ..EventStream::new(rx, session.cancel.clone(), keep_alive)
    };
    Ok(stream.into_response())
}

/// DELETE: ends the session; its running requests are cancelled at the child.
pub async fn delete(app: Arc<BridgeState>, principal: Principal, headers: HeaderMap) -> Handled {
    let session = session_of(&app, &headers, &principal)?;
    let Some(session) = app.sessions.remove(&session.id) else {
        return Err(HttpError::SessionNotFound);
    };
    front::session::end(&app, &session).await;
    info!(session = %session.id, "session deleted");
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}
