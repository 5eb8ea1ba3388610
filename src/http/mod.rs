//! The HTTP side: `serve(state, request)` maps HTTP onto the bridge's fronts; every handler
//! shares the era-neutral `BridgeState`.

mod accept;
mod guard;
mod legacy_sse;
mod sse;
mod stateless;
mod streamable;
mod top;

pub use sse::Frame;
pub use top::top;

use std::sync::Arc;

use std::pin::Pin;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::Instrument as _;

use crate::error::json_response;
use crate::error::HttpError;
use crate::jsonrpc::{self, Kind};
use crate::router::Refused;
use crate::session::Session;
use crate::state::BridgeState;
use guard::{Identity, Principal};

/// Serves one request of a server: in a `request` span (JSON logs), counted (metrics), through
/// the guard, to its route. Plain calls, not a tower stack: nothing is boxed or cloned per
/// request on the way (a layer cost every request a boxed future and a service clone).
pub async fn serve(app: Arc<BridgeState>, req: Request) -> Response {
    if crate::logs::request_spans() {
        let span = crate::logs::request_span(&app.name, &req);
        return counted(app, req).instrument(span).await;
    }
    counted(app, req).await
}

async fn counted(app: Arc<BridgeState>, req: Request) -> Response {
    let metrics = app.config.metrics.clone();
    crate::metrics::http::record(&metrics, req, |req| guard::guard(app, req)).await
}

/// The handler of a request the guard let through, by path and method.
async fn route(
    app: Arc<BridgeState>,
    req: Request,
    principal: Principal,
    identity: Identity,
) -> Response {
    let config = &app.config;
    let path = req.uri().path();
    let is = |p: &Option<String>| p.as_deref() == Some(path);
    let legacy = config.sse_path.is_some() && config.message_path.is_some();
    let handled = if is(&config.mcp_path) {
        match *req.method() {
            Method::POST => streamable::post(app, principal, identity, req).await,
            Method::GET => streamable::get(app, principal, into_headers(req)).await,
            Method::DELETE => streamable::delete(app, principal, into_headers(req)).await,
            _ => return method_not_allowed("GET,POST,DELETE"),
        }
    } else if legacy && is(&config.sse_path) {
        match *req.method() {
            Method::GET => legacy_sse::open(app, principal, identity, into_headers(req)).await,
            _ => return method_not_allowed("GET"),
        }
    } else if legacy && is(&config.message_path) {
        match *req.method() {
            Method::POST => legacy_sse::message(app, principal, req).await,
            _ => return method_not_allowed("POST"),
        }
    } else {
        return not_found();
    };
    handled.into_response()
}

fn into_headers(req: Request) -> HeaderMap {
    req.into_parts().0.headers
}

/// 405 with the methods the path takes.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut resp = StatusCode::METHOD_NOT_ALLOWED.into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
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

/// A request's headers and its body (within the body limit, or 413 with a JSON-RPC body).
async fn headers_and_body(
    app: &BridgeState,
    req: Request,
) -> Result<(HeaderMap, Bytes), HttpError> {
    let (parts, body) = req.into_parts();
    let body = read_body(body, app.config.limits.max_body).await?;
    Ok((parts.headers, body))
}

/// The whole body, refused as soon as it is known to exceed `max` (declared or counted). A body
/// that came as one piece is passed on as it is, not copied.
async fn read_body(mut body: Body, max: usize) -> Result<Bytes, HttpError> {
    use http_body::Body as _;
    let too_large = || HttpError::PayloadTooLarge(max);
    if body.size_hint().lower() > max as u64 {
        return Err(too_large());
    }
    let (mut first, mut joined): (Option<Bytes>, Vec<u8>) = (None, Vec::new());
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| {
            HttpError::InvalidRequest(format!("Failed to read the request body: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let had = first.as_ref().map_or(0, Bytes::len) + joined.len();
        if had + data.len() > max {
            return Err(too_large());
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    joined.extend_from_slice(&earlier);
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
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
pub(crate) fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &jsonrpc::error_value(
            serde_json::Value::Null,
            jsonrpc::METHOD_NOT_FOUND,
            "Not Found",
        ),
    )
}
