//! The middleware in front of every route: `Host` (DNS rebinding, 421), `Origin` (403), CORS
//! preflight and headers, and bearer-token authentication (401) for the MCP endpoints. The
//! token's name travels on as the request's `Principal`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::error::HttpError;
use crate::state::BridgeState;

/// The name of the token a request authenticated with (`None` when no tokens are configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal(pub Option<Arc<str>>);

const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str =
    "Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";
const EXPOSE_HEADERS: &str = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate";

/// Applies the access policy, then runs the route.
pub async fn guard(State(app): State<Arc<BridgeState>>, mut req: Request, next: Next) -> Response {
    let policy = &app.policy;
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !policy.host_allowed(host) {
        warn!(
            host,
            "request refused: Host not allowed (DNS-rebinding protection)"
        );
        return HttpError::MisdirectedHost.into_response();
    }
    let origin = headers.get(header::ORIGIN).cloned();
    if let Some(o) = &origin {
        if !o.to_str().is_ok_and(|o| policy.origin_allowed(o)) {
            warn!(origin = ?o, "request refused: Origin not allowed");
            return HttpError::ForbiddenOrigin.into_response();
        }
        if req.method() == Method::OPTIONS {
            return preflight(o.clone());
        }
    }
    let principal = if policy.requires_token() && req.uri().path() != "/health" {
        let presented = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        match policy.authenticate(presented) {
            Some(name) => Some(name),
            None => {
                warn!(
                    path = req.uri().path(),
                    "request refused: missing or unknown bearer token"
                );
                return with_cors(HttpError::Unauthorized.into_response(), origin);
            }
        }
    } else {
        None
    };
    req.extensions_mut().insert(Principal(principal));
    with_cors(next.run(req).await, origin)
}

fn preflight(origin: HeaderValue) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    with_cors(resp, Some(origin))
}

fn with_cors(mut resp: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(origin) = origin {
        let h: &mut HeaderMap = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}
