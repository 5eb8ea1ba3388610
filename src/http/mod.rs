//! The HTTP side: `app(state)` maps HTTP onto the bridge's fronts; every handler shares the
//! era-neutral `BridgeState`.

mod accept;
mod guard;
mod legacy_sse;
mod sse;
mod stateless;
mod streamable;
mod top;

pub use top::top;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::error::json_response;
use crate::error::HttpError;
use crate::jsonrpc::{self, Kind};
use crate::router::Refused;
use crate::session::Session;
use crate::state::BridgeState;
use guard::{Identity, Principal};

/// The bridge's HTTP router.
pub fn app(state: Arc<BridgeState>) -> Router {
    let max_body = state.config.limits.max_body;
    let config = &state.config;
    let mut router = Router::new();
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

/// The live session `id` if `principal` may use it (the token that created it), touched.
fn session_for(
    app: &BridgeState,
    id: &str,
    principal: &Principal,
) -> Result<Arc<Session>, HttpError> {
    let session = app.sessions.get(id).ok_or(HttpError::SessionNotFound)?;
    if session.cancel.is_cancelled() {
        // Its child exited: the client must initialize again (and gets a new child).
        if app.sessions.remove(id).is_some() {
            app.children.release(&session.child());
        }
        return Err(HttpError::SessionNotFound);
    }
    if session.principal != principal.0 {
        tracing::warn!(session = %session.id, token = principal.0.as_deref(), "session used with another token");
        return Err(HttpError::SessionNotFound);
    }
    session.touch();
    Ok(session)
}

/// The environment a new session's own child (session or user isolation) gets from its
/// `initialize` request: the `--header-env` headers and the `--claim-env` token claims.
fn child_env(app: &BridgeState, headers: &HeaderMap, identity: &Identity) -> Vec<(String, String)> {
    let sup = &app.config.supervision;
    let from_headers = sup
        .header_env
        .iter()
        .filter_map(|(h, var)| Some((var.clone(), headers.get(h)?.to_str().ok()?.to_owned())));
    let from_claims = sup
        .claim_env
        .iter()
        .filter_map(|(claim, var)| Some((var.clone(), identity.0.as_ref()?.claim_text(claim)?)));
    from_headers.chain(from_claims).collect()
}

/// The body, or 413 with a JSON-RPC body when it exceeds the limit.
/// A request's headers and its body (within the body limit). Taken apart here rather than with
/// axum's `HeaderMap` extractor, which copies the headers: every POST would pay for the copy.
async fn headers_and_body(
    app: &BridgeState,
    req: axum::extract::Request,
) -> Result<(HeaderMap, Bytes), HttpError> {
    use axum::extract::FromRequest as _;
    let (mut parts, body) = req.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let req = axum::extract::Request::from_parts(parts, body);
    let body = read_body(app, Bytes::from_request(req, &()).await)?;
    Ok((headers, body))
}

fn read_body(app: &BridgeState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, HttpError> {
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
        Refused::Draining => HttpError::Draining,
        // Answered in-band by `front::session::request`; never an HTTP error.
        Refused::TooManyRequests => HttpError::TooManySessions,
    }
}

/// 404 with a JSON-RPC body.
pub(crate) async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &jsonrpc::error_value(
            serde_json::Value::Null,
            jsonrpc::METHOD_NOT_FOUND,
            "Not Found",
        ),
    )
}
