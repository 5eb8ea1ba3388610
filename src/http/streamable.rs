//! Streamable HTTP (revisions 2025-03-26 to 2025-11-25) on the MCP path: POST carries one
//! JSON-RPC message, GET opens a session's standalone stream, DELETE ends a session.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::accept::{self, ReplyMode};
use super::{sse, AppState};
use crate::child::ChildHandle;
use crate::error::{json_bytes_response, json_response, HttpError};
use crate::handshake;
use crate::jsonrpc::{self, Kind};
use crate::router::{Outbound, Refused, Registration};
use crate::session::{new_session_id, Session};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

type Handled = Result<Response, HttpError>;

/// POST: one JSON-RPC message from a client.
pub async fn post(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Handled {
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::PayloadTooLarge(app.config.limits.max_body),
        _ => HttpError::InvalidRequest(r.body_text()),
    })?;
    accept::check_content_type(&headers)?;
    let mode = accept::post_reply_mode(&headers)?;
    let msg: Value = serde_json::from_slice(&body).map_err(|e| HttpError::ParseError(e.to_string()))?;
    let kind = jsonrpc::classify(&msg).map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
    if kind == Kind::Request && jsonrpc::method(&msg) == "initialize" {
        return initialize(&app, msg, mode);
    }
    let session = session_of(&app, &headers)?;
    match kind {
        Kind::Request => forward_request(&app, &session, msg, mode).await,
        Kind::Notification => forward_notification(&session, msg).await,
        Kind::Response => forward_reply(&session, msg).await,
    }
}

/// The session named by `Mcp-Session-Id`, after checking `MCP-Protocol-Version`.
fn session_of(app: &AppState, headers: &HeaderMap) -> Result<Arc<Session>, HttpError> {
    let id = headers.get(SESSION_HEADER).ok_or(HttpError::MissingSession)?;
    let id = id.to_str().map_err(|_| HttpError::SessionNotFound)?;
    let session = app.sessions.get(id).ok_or(HttpError::SessionNotFound)?;
    // Absent means 2025-03-26 (transports spec, "Protocol Version Header").
    if let Some(v) = headers.get(VERSION_HEADER) {
        let v = v.to_str().unwrap_or("");
        if !handshake::is_supported(v) {
            return Err(HttpError::UnsupportedVersion(v.into()));
        }
    }
    Ok(session)
}

/// `initialize` is answered by the bridge from the child's cached result; it creates a session.
fn initialize(app: &AppState, msg: Value, mode: ReplyMode) -> Handled {
    let child = &app.child;
    if !child.is_running() {
        return Err(HttpError::ChildGone);
    }
    let requested = jsonrpc::param(&msg, "protocolVersion").and_then(Value::as_str);
    let result = child.init.session_result(requested);
    let version = handshake::negotiate(requested, &child.init.protocol_version);
    let session = Arc::new(Session {
        id: new_session_id(),
        child: child.clone(),
        protocol_version: version,
        cancel: app.root.child_token(),
    });
    child.routes().attach(session.id.clone());
    app.sessions.insert(session.clone());
    let client = jsonrpc::param(&msg, "clientInfo").and_then(|c| c.get("name")).and_then(Value::as_str);
    info!(session = %session.id, version, client = client.unwrap_or("?"), "session created");
    let reply = jsonrpc::to_bytes(&jsonrpc::result_value(jsonrpc::id(&msg), result));
    let mut resp = answer(mode, reply);
    let sid = HeaderValue::from_str(&session.id).expect("session ids are hex");
    resp.headers_mut().insert(SESSION_HEADER, sid);
    Ok(resp)
}

/// A response the bridge gives itself, in the reply mode the client asked for.
fn answer(mode: ReplyMode, json: Bytes) -> Response {
    match mode {
        ReplyMode::Sse => sse::complete(&[&json]),
        ReplyMode::Json => json_bytes_response(StatusCode::OK, json),
    }
}

/// Undoes a registration if the handler is dropped before its line reached the child queue.
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

async fn forward_request(app: &AppState, session: &Session, mut msg: Value, mode: ReplyMode) -> Handled {
    let (tx, rx) = mpsc::channel(app.config.limits.stream_queue);
    let child = &session.child;
    let reg = Registration { stream: tx, sse: mode == ReplyMode::Sse };
    // Lock: register before the line is queued, so a fast response always finds its route.
    let id = child.routes().register(&session.id, &mut msg, reg).map_err(refused)?;
    let mut guard = Unregister { child, id: Some(id) };
    debug!(session = %session.id, id, method = jsonrpc::method(&msg), "request");
    child.send(jsonrpc::to_bytes(&msg)).await.map_err(|_| HttpError::ChildGone)?;
    guard.id = None;
    match mode {
        ReplyMode::Sse => Ok(sse::response(rx, session.cancel.clone(), app.config.keep_alive)),
        ReplyMode::Json => Ok(await_json_reply(rx, jsonrpc::id(&msg)).await),
    }
}

/// JSON mode: wait for the response; notifications cannot travel in a single JSON body.
async fn await_json_reply(mut rx: mpsc::Receiver<Outbound>, _bridge_id: Value) -> Response {
    while let Some(Outbound { json, last }) = rx.recv().await {
        if last {
            return json_bytes_response(StatusCode::OK, json);
        }
    }
    // The request was cancelled or its session ended: no response will come.
    StatusCode::NO_CONTENT.into_response()
}

fn refused(r: Refused) -> HttpError {
    match r {
        Refused::ChildGone => HttpError::ChildGone,
        Refused::UnknownOwner => HttpError::SessionNotFound,
        Refused::NoSuchServerRequest => HttpError::UnknownServerRequest,
    }
}

async fn forward_notification(session: &Session, mut msg: Value) -> Handled {
    match jsonrpc::method(&msg) {
        // The child was initialized once by the bridge.
        "notifications/initialized" => return Ok(StatusCode::ACCEPTED.into_response()),
        "notifications/cancelled" => {
            if !session.child.routes().cancel_from_client(&session.id, &mut msg) {
                debug!(session = %session.id, "cancellation for no request in flight");
                return Ok(StatusCode::ACCEPTED.into_response());
            }
        }
        _ => {}
    }
    session.child.send(jsonrpc::to_bytes(&msg)).await.map_err(|_| HttpError::ChildGone)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn forward_reply(session: &Session, mut msg: Value) -> Handled {
    session.child.routes().reply_from_client(&session.id, &mut msg).map_err(refused)?;
    session.child.send(jsonrpc::to_bytes(&msg)).await.map_err(|_| HttpError::ChildGone)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// GET: the session's standalone stream, for server messages not tied to a request.
pub async fn get(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Handled {
    accept::check_get_accept(&headers)?;
    let session = session_of(&app, &headers)?;
    let (tx, rx) = mpsc::channel(app.config.limits.stream_queue);
    session.child.routes().set_standalone(&session.id, tx).map_err(refused)?;
    debug!(session = %session.id, "standalone stream opened");
    Ok(sse::response(rx, session.cancel.clone(), app.config.keep_alive))
}

/// DELETE: ends the session; its running requests are cancelled at the child.
pub async fn delete(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Handled {
    let session = session_of(&app, &headers)?;
    let Some(session) = app.sessions.remove(&session.id) else {
        return Err(HttpError::SessionNotFound);
    };
    end_session(&session).await;
    info!(session = %session.id, "session deleted");
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}

/// Ends a removed session: its streams close and the child forgets it.
pub async fn end_session(session: &Session) {
    session.cancel.cancel();
    let to_child = session.child.routes().detach(&session.id);
    for msg in to_child {
        // The child may be gone already; then there is nothing left to cancel.
        let _ = session.child.send(jsonrpc::to_bytes(&msg)).await;
    }
}
