//! The HTTP side: `app(state)` builds the router; `AppState` is what every handler shares.

mod accept;
mod guard;
mod legacy_sse;
mod sse;
mod streamable;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::access::Policy;
use crate::children::Children;
use crate::config::Config;
use crate::error::json_response;
use crate::error::HttpError;
use crate::jsonrpc::{self, Kind};
use crate::router::Refused;
use crate::session::{Session, Sessions};
use guard::Principal;

/// What every handler shares.
pub struct AppState {
    /// The configuration the bridge runs with.
    pub config: Config,
    /// Live sessions.
    pub sessions: Sessions,
    /// The children sessions are bound to.
    pub children: Arc<Children>,
    /// When the bridge started serving.
    pub started: Instant,
    /// Cancelled at shutdown; every session token is its child.
    pub root: CancellationToken,
    /// Host, Origin and token rules for the address the bridge listens on.
    pub policy: Policy,
}

/// The bridge's HTTP router.
pub fn app(state: Arc<AppState>) -> Router {
    let max_body = state.config.limits.max_body;
    let config = &state.config;
    let mut router = Router::new().route("/health", get(health));
    if let Some(path) = &config.mcp_path {
        let methods = get(streamable::get)
            .post(streamable::post)
            .delete(streamable::delete);
        router = router.route(path, methods);
    }
    if let (Some(sse_path), Some(message_path)) = (&config.sse_path, &config.message_path) {
        router = router
            .route(sse_path, get(legacy_sse::open))
            .route(message_path, post(legacy_sse::message));
    }
    router
        .fallback(not_found)
        // The handlers read the body themselves and answer 413 with a JSON-RPC body.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

async fn health(State(app): State<Arc<AppState>>) -> Response {
    let shared = app.children.shared();
    // Shared isolation is degraded while no shared child runs (e.g. during a restart).
    let running = shared.is_empty() || shared.iter().any(|c| c.is_running());
    let children = app.children.status();
    let all = app.children.all();
    let pending: usize = all.iter().map(|c| c.routes().pending_len()).sum();
    let waiting: usize = all.iter().map(|c| c.waiting_for_slot()).sum();
    let body = json!({
        "status": if running { "ok" } else { "degraded" },
        "child": children["pool"].get(0),
        "children": children,
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "sessions": app.sessions.len(),
        "pendingRequests": pending,
        "waitingRequests": waiting,
    });
    let status = if running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body)
}

/// The live session `id` if `principal` may use it (the token that created it), touched.
fn session_for(app: &AppState, id: &str, principal: &Principal) -> Result<Arc<Session>, HttpError> {
    let session = app.sessions.get(id).ok_or(HttpError::SessionNotFound)?;
    if session.cancel.is_cancelled() {
        // Its child exited: the client must initialize again (and gets a new child).
        app.sessions.remove(id);
        app.children.release(&session.child());
        return Err(HttpError::SessionNotFound);
    }
    if session.principal != principal.0 {
        tracing::warn!(session = %session.id, token = principal.0.as_deref(), "session used with another token");
        return Err(HttpError::SessionNotFound);
    }
    session.touch();
    Ok(session)
}

/// The body, or 413 with a JSON-RPC body when it exceeds the limit.
fn read_body(app: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, HttpError> {
    body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::PayloadTooLarge(app.config.limits.max_body),
        _ => HttpError::InvalidRequest(r.body_text()),
    })
}

/// The body as JSON, or 400 with a JSON-RPC parse error.
fn parse_json(body: &[u8]) -> Result<Value, HttpError> {
    serde_json::from_slice(body).map_err(|e| HttpError::ParseError(e.to_string()))
}

/// The message's kind, or 400 with a JSON-RPC invalid-request error.
fn classify(msg: &Value) -> Result<Kind, HttpError> {
    jsonrpc::classify(msg).map_err(|e| HttpError::InvalidRequest(e.to_string()))
}

/// The HTTP error for a message the routing refused.
fn refused(r: Refused) -> HttpError {
    match r {
        Refused::ChildGone => HttpError::ChildGone,
        Refused::UnknownOwner => HttpError::SessionNotFound,
        Refused::NoSuchServerRequest => HttpError::UnknownServerRequest,
        Refused::TooManySessions => HttpError::TooManySessions,
        // Answered in-band by `dispatch::request`; never an HTTP error.
        Refused::TooManyRequests => HttpError::TooManySessions,
    }
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &jsonrpc::error_value(
            serde_json::Value::Null,
            jsonrpc::METHOD_NOT_FOUND,
            "Not Found",
        ),
    )
}
