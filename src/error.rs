//! `HttpError`: every way an HTTP request is refused, as a status code plus a JSON-RPC error
//! body. Handlers return `Result<Response, HttpError>` and use `?`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::jsonrpc;

/// A refused HTTP request.
#[derive(Debug)]
pub enum HttpError {
    /// The body is not JSON (400, -32700).
    ParseError(String),
    /// The body is JSON but not an acceptable JSON-RPC message (400, -32600).
    InvalidRequest(String),
    /// A request other than `initialize` came without `Mcp-Session-Id` (400).
    MissingSession,
    /// The session id is unknown or was deleted (404).
    SessionNotFound,
    /// `MCP-Protocol-Version` names a revision the bridge does not serve (400).
    UnsupportedVersion(String),
    /// `Content-Type` is not `application/json` (415).
    UnsupportedMediaType,
    /// `Accept` allows neither JSON nor an event stream, as the endpoint needs (406).
    NotAcceptable(&'static str),
    /// The body exceeds the limit (413).
    PayloadTooLarge(usize),
    /// A response from the client names no server request sent to its session (400).
    UnknownServerRequest,
    /// The MCP server process is not running (503).
    ChildGone,
    /// The `Origin` header names an origin that is not allowed (403).
    ForbiddenOrigin,
    /// The `Host` header names a host that is not allowed (421, DNS-rebinding protection).
    MisdirectedHost,
    /// No valid bearer token (401 with `WWW-Authenticate: Bearer`).
    Unauthorized,
    /// The session limit is reached (503).
    TooManySessions,
    /// The bridge is stopping and opens no new session (503 with `Retry-After`): a load
    /// balancer retries elsewhere, a client may open it on another instance.
    Draining,
    /// An OAuth refusal: 401 (no, or no valid, token) or 403 (a scope missing), with its
    /// `WWW-Authenticate` challenge.
    Challenge(crate::oauth::metadata::Challenge),
    /// A JSON-RPC error answering a request with its id (the stateless front's refusals).
    Rpc(RpcError),
}

/// A JSON-RPC error that answers one request, with the HTTP status it goes with.
#[derive(Debug)]
pub struct RpcError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The request's id.
    pub id: Value,
    /// The JSON-RPC error code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// The error's `data`, if any.
    pub data: Option<Value>,
}

impl HttpError {
    fn parts(&self) -> (StatusCode, i64, String) {
        use HttpError::*;
        match self {
            ParseError(e) => (
                StatusCode::BAD_REQUEST,
                jsonrpc::PARSE_ERROR,
                format!("Parse error: {e}"),
            ),
            InvalidRequest(e) => (
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                format!("Invalid Request: {e}"),
            ),
            MissingSession => (
                StatusCode::BAD_REQUEST,
                jsonrpc::BAD_REQUEST,
                "Bad Request: Mcp-Session-Id header is required (initialize first)".into(),
            ),
            SessionNotFound => (
                StatusCode::NOT_FOUND,
                jsonrpc::SESSION_NOT_FOUND,
                "Session not found".into(),
            ),
            UnsupportedVersion(v) => (
                StatusCode::BAD_REQUEST,
                jsonrpc::BAD_REQUEST,
                format!("Bad Request: unsupported MCP-Protocol-Version {v:?}"),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                jsonrpc::BAD_REQUEST,
                "Unsupported Media Type: Content-Type must be application/json".into(),
            ),
            NotAcceptable(what) => (
                StatusCode::NOT_ACCEPTABLE,
                jsonrpc::BAD_REQUEST,
                format!("Not Acceptable: Accept must include {what}"),
            ),
            PayloadTooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                jsonrpc::INVALID_REQUEST,
                format!("Payload Too Large: the body limit is {max} bytes"),
            ),
            UnknownServerRequest => (
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: the response names no request the server sent this session"
                    .into(),
            ),
            ChildGone => (
                StatusCode::SERVICE_UNAVAILABLE,
                jsonrpc::CHILD_EXITED,
                "the MCP server process is not running".into(),
            ),
            ForbiddenOrigin => (
                StatusCode::FORBIDDEN,
                jsonrpc::BAD_REQUEST,
                "Forbidden: Origin not allowed".into(),
            ),
            MisdirectedHost => (
                StatusCode::MISDIRECTED_REQUEST,
                jsonrpc::BAD_REQUEST,
                "Misdirected Request: Host not allowed".into(),
            ),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                jsonrpc::BAD_REQUEST,
                "Unauthorized: a valid bearer token is required".into(),
            ),
            TooManySessions => (
                StatusCode::SERVICE_UNAVAILABLE,
                jsonrpc::BAD_REQUEST,
                "Service Unavailable: too many sessions".into(),
            ),
            Draining => (
                StatusCode::SERVICE_UNAVAILABLE,
                jsonrpc::SHUTTING_DOWN,
                "Service Unavailable: this instance is shutting down and opens no new session; \
                 open it on another instance"
                    .into(),
            ),
            Challenge(c) if c.status == 403 => (
                StatusCode::FORBIDDEN,
                jsonrpc::BAD_REQUEST,
                "Forbidden: the access token lacks a required scope".into(),
            ),
            Challenge(_) => (
                StatusCode::UNAUTHORIZED,
                jsonrpc::BAD_REQUEST,
                "Unauthorized: a valid access token is required".into(),
            ),
            Rpc(e) => (e.status, e.code, e.message.clone()),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if let HttpError::Rpc(e) = self {
            let mut body = jsonrpc::error_value(e.id, e.code, &e.message);
            if let Some(data) = e.data {
                body["error"]["data"] = data;
            }
            return json_response(e.status, &body);
        }
        let (status, code, message) = self.parts();
        tracing::debug!(%status, message, "request refused");
        let mut resp = json_response(status, &jsonrpc::error_value(Value::Null, code, &message));
        match &self {
            HttpError::Unauthorized => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            HttpError::Draining => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            HttpError::Challenge(c) => {
                // The challenge holds only visible ASCII (`metadata::challenge`).
                if let Ok(v) = HeaderValue::from_str(&c.www_authenticate) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        // Read by the metrics layer (`metrics::http`).
        let reason = match self {
            HttpError::TooManySessions | HttpError::PayloadTooLarge(_) => Some("limit"),
            HttpError::Draining => Some("draining"),
            _ => None,
        };
        if let Some(reason) = reason {
            resp.extensions_mut()
                .insert(crate::metrics::http::Refusal(reason));
        }
        resp
    }
}

/// An `application/json` response holding `body`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    json_bytes_response(status, jsonrpc::to_bytes(body))
}

/// An `application/json` response holding already serialized bytes.
pub fn json_bytes_response(status: StatusCode, body: bytes::Bytes) -> Response {
    let mut resp = empty_response(status);
    *resp.body_mut() = axum::body::Body::from(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A response without a body. Its header map allocates at its first header, for the few a
/// response has. (It was made with room for twelve when hyper served every request, because
/// hyper parses a connection's next request into the map of the response it has just sent;
/// plain requests are read without hyper now (`listener::plain`), and the room cost two
/// allocations, one of over a kilobyte, per response: 2 % of the bridge's CPU by `perf`.)
pub fn empty_response(status: StatusCode) -> Response {
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = status;
    resp
}
