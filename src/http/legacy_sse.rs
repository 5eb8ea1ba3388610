//! The legacy HTTP+SSE transport (revision 2024-11-05): `GET` on the SSE path opens a session
//! whose first event, `endpoint`, names the message URL; clients POST each message there and
//! every reply arrives as a `message` event on that one stream. The session ends with it.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::{debug, info};

use super::guard::{Identity, Principal};
use super::sse::{self, EventStream};
use super::{accept, refused};
use crate::envelope::RawRequest;
use crate::error::HttpError;
use crate::front;
use crate::jsonrpc::{self, Kind};
use crate::router::{stream_channel, Outbound, Registration, StreamTx};
use crate::session::{Session, Transport};
use crate::state::BridgeState;

type Handled = Result<Response, HttpError>;

/// Ends the session when its stream's body is dropped (client gone, or shutdown).
struct EndSessionOnDrop {
    app: Arc<BridgeState>,
    session: Arc<Session>,
}

impl Drop for EndSessionOnDrop {
    fn drop(&mut self) {
        let Some(session) = self.app.sessions.remove(&self.session.id) else {
            return;
        };
        info!(session = %session.id, "legacy SSE stream closed; session ended");
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let app = self.app.clone();
            let tasks = app.children.tasks().clone();
            tasks.spawn_on(
                async move { front::session::end(&app, &session).await },
                &rt,
            );
        }
    }
}

/// GET on the SSE path: a new session and its stream, starting with the `endpoint` event.
pub async fn open(
    app: Arc<BridgeState>,
    principal: Principal,
    identity: Identity,
    headers: HeaderMap,
) -> Handled {
    accept::check_get_accept(&headers)?;
    let message_path = app
        .config
        .message_path
        .clone()
        .ok_or(HttpError::SessionNotFound)?;
    let (tx, rx) = stream_channel(app.config.limits.stream_queue);
    let transport = Transport::LegacySse(tx.clone());
    let extra_env = super::child_env(&app, &headers, &identity);
    let session = front::session::open(&app, transport, principal.0, &extra_env)
        .await
        .map_err(refused)?;
    // Messages not tied to a request (broadcasts, logging) go on the same stream.
    front::session::open_standalone(&session, tx).map_err(refused)?;
    info!(session = %session.id, "legacy SSE session opened");
    let endpoint = format!("{message_path}?sessionId={}", session.id);
    let guard = EndSessionOnDrop {
        app: app.clone(),
        session: session.clone(),
    };
    let stream = EventStream {
        prelude: vec![sse::frame(None, Some("endpoint"), endpoint.as_bytes())],
        on_drop: Some(Box::new(guard)),
        ..EventStream::new(rx, session.cancel.clone(), app.config.keep_alive)
    };
    Ok(stream.into_response())
}

/// The session named in the query (`sessionId`, or `session_id` as some SDKs write it).
fn session_of(
    app: &BridgeState,
    query: Option<&str>,
    principal: &Principal,
) -> Result<(Arc<Session>, StreamTx), HttpError> {
    let id = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "sessionId" || *k == "session_id")
        .map(|(_, v)| v)
        .ok_or(HttpError::MissingSession)?;
    let session = super::session_for(app, id, principal)?;
    match &session.transport {
        Transport::LegacySse(tx) => {
            let tx = tx.clone();
            Ok((session, tx))
        }
        Transport::Streamable => Err(HttpError::SessionNotFound),
    }
}

/// POST on the message path: one JSON-RPC message; the reply goes on the session's stream.
pub async fn message(
    app: Arc<BridgeState>,
    principal: Principal,
    req: axum::extract::Request,
) -> Handled {
    // A clone of the URI shares its bytes (no copy).
    let uri = req.uri().clone();
    let (headers, body) = super::headers_and_body(&app, req).await?;
    let (session, stream) = session_of(&app, uri.query(), &principal)?;
    accept::check_content_type(&headers)?;
    // The fast path: a plain request goes on as its own bytes (`envelope`).
    if let Some(req) = RawRequest::new(&body) {
        let reg = Registration { stream, sse: true };
        front::session::request_plain(&session, req, reg)
            .await
            .map_err(refused)?;
        return Ok(crate::error::empty_response(StatusCode::ACCEPTED));
    }
    let msg = super::parse_json(&body)?;
    match super::classify(&msg)? {
        Kind::Request if jsonrpc::method(&msg) == "initialize" => {
            let reply = front::session::initialize(&session, &msg);
            let out = Outbound {
                json: jsonrpc::to_bytes(&reply),
                last: true,
            };
            // A full queue here means the client is not reading its stream.
            stream
                .try_send(out)
                .map_err(|_| HttpError::SessionNotFound)?;
        }
        Kind::Request => {
            let reg = Registration { stream, sse: true };
            front::session::request(&session, msg, reg)
                .await
                .map_err(refused)?;
        }
        Kind::Notification => front::session::notification(&session, msg)
            .await
            .map_err(refused)?,
        Kind::Response => front::session::reply(&session, msg)
            .await
            .map_err(refused)?,
    }
    debug!(session = %session.id, "message accepted");
    Ok(crate::error::empty_response(StatusCode::ACCEPTED))
}
