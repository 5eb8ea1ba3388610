//! The middleware in front of every route: `Host` (DNS rebinding, 421), `Origin` (403), CORS
//! preflight and headers, and bearer-token authentication (401) for the MCP endpoints: a static
//! token, or an OAuth access token (401 or 403 with a challenge naming the metadata). The
//! token's name, or the OAuth subject, travels on as the request's `Principal`; `/.well-known/`
//! documents are public.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::error::HttpError;
use crate::state::BridgeState;

/// Who a request authenticated as: a static token's name, or an OAuth subject's `iss#sub`
/// (`None` when the bridge requires no token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal(pub Option<Arc<str>>);

/// The verified OAuth token's subject and claims, when the request carried one.
#[derive(Debug, Clone, Default)]
pub struct Identity(pub Option<Arc<crate::oauth::Subject>>);

const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str =
    "Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";
const EXPOSE_HEADERS: &str = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate";

/// Applies the access policy, then runs the route.
pub async fn guard(app: Arc<BridgeState>, req: Request) -> Response {
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
    if req.uri().path().starts_with("/.well-known/") {
        return well_known(&app, &req);
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
    let needs_token = policy.requires_token() || app.oauth.is_some();
    let mut identity = Identity::default();
    let principal = if needs_token && req.uri().path() != "/health" {
        let presented = headers.get(header::AUTHORIZATION).cloned();
        let presented = presented.as_ref().map(HeaderValue::as_bytes);
        match (policy.authenticate(presented), &app.oauth) {
            (Some(name), _) => Some(name),
            (None, Some(oauth)) => match oauth.authenticate(presented, req.uri().path()).await {
                Ok(subject) => {
                    let principal = subject.principal.clone();
                    identity = Identity(Some(Arc::new(subject)));
                    Some(principal)
                }
                Err(challenge) => {
                    let refused = HttpError::Challenge(challenge).into_response();
                    return with_cors(refused, origin);
                }
            },
            (None, None) => {
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
    let resp = super::route(app, req, Principal(principal), identity).await;
    with_cors(resp, origin)
}

/// A `/.well-known/` document, public and readable from any origin: the protected-resource
/// metadata when OAuth is on, 404 otherwise. (Without OAuth a 401 here would send clients
/// looking for an authorization server into a sign-in that can never finish.)
fn well_known(app: &BridgeState, req: &Request) -> Response {
    let doc = app
        .oauth
        .as_ref()
        .and_then(|o| o.metadata_at(req.uri().path()));
    let mut resp = match doc {
        Some(_) if req.method() == Method::OPTIONS => StatusCode::NO_CONTENT.into_response(),
        Some(doc) => crate::error::json_bytes_response(StatusCode::OK, doc),
        None => crate::error::json_response(
            StatusCode::NOT_FOUND,
            &crate::jsonrpc::error_value(
                serde_json::Value::Null,
                crate::jsonrpc::METHOD_NOT_FOUND,
                "Not Found",
            ),
        ),
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("MCP-Protocol-Version"),
    );
    resp
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
