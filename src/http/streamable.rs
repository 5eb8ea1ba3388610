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
use crate::error::{json_bytes_response, json_response, HttpError};
use crate::jsonrpc::{self, Kind};
use crate::router::{Outbound, Refused, Registration};
use crate::session::Session;
use crate::{dispatch, handshake};

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
    let msg: Value =
        serde_json::from_slice(&body).map_err(|e| HttpError::ParseError(e.to_string()))?;
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
    let id = headers
        .get(SESSION_HEADER)
        .ok_or(HttpError::MissingSession)?;
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
    let (session, reply) =
        dispatch::open_session(&app.sessions, &app.child, &app.root, &msg).map_err(refused)?;
    let mut resp = answer(mode, jsonrpc::to_bytes(&reply));
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

async fn forward_request(
    app: &AppState,
    session: &Session,
    msg: Value,
    mode: ReplyMode,
) -> Handled {
    let (tx, rx) = mpsc::channel(app.config.limits.stream_queue);
    let reg = Registration {
        stream: tx,
        sse: mode == ReplyMode::Sse,
    };
    dispatch::request(session, msg, reg)
        .await
        .map_err(refused)?;
    match mode {
        ReplyMode::Sse => {
            Ok(sse::request_reply(rx, session.cancel.clone(), app.config.keep_alive).await)
        }
        ReplyMode::Json => Ok(await_json_reply(rx).await),
    }
}

/// JSON mode: wait for the response; notifications cannot travel in a single JSON body.
async fn await_json_reply(mut rx: mpsc::Receiver<Outbound>) -> Response {
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

async fn forward_notification(session: &Session, msg: Value) -> Handled {
    dispatch::notification(session, msg)
        .await
        .map_err(refused)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn forward_reply(session: &Session, msg: Value) -> Handled {
    dispatch::reply(session, msg).await.map_err(refused)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// GET: the session's standalone stream, for server messages not tied to a request.
pub async fn get(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Handled {
    accept::check_get_accept(&headers)?;
    let session = session_of(&app, &headers)?;
    let (tx, rx) = mpsc::channel(app.config.limits.stream_queue);
    session
        .child
        .routes()
        .set_standalone(&session.id, tx)
        .map_err(refused)?;
    debug!(session = %session.id, "standalone stream opened");
    let end = session.cancel.clone();
    Ok(sse::response(rx, end, app.config.keep_alive, None))
}

/// DELETE: ends the session; its running requests are cancelled at the child.
pub async fn delete(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Handled {
    let session = session_of(&app, &headers)?;
    let Some(session) = app.sessions.remove(&session.id) else {
        return Err(HttpError::SessionNotFound);
    };
    dispatch::end_session(&session).await;
    info!(session = %session.id, "session deleted");
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}
