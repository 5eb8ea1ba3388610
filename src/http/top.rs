//! The bridge's top-level routes: the probes (`/health` for liveness with details, `/ready`
//! for readiness, each also per server at `/servers/NAME/health|ready`), and the dispatch of
//! every other request to the server whose routes serve it: `/servers/NAME/…` to server NAME,
//! anything else to the default server. The set of servers may change while serving (a
//! reload), so the dispatch looks it up per request.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{json_response, HttpError};
use crate::servers::{slot_readiness, Servers, Slot, PREFIX};

/// What the listener serves.
pub fn top(servers: Arc<Servers>) -> crate::listener::App {
    Arc::new(move |req| Box::pin(dispatch(servers.clone(), req)))
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The probes answer only requests the servers' guard would let through (Host, Origin).
fn probe_refused(servers: &Servers, req: &Request) -> Option<Response> {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !servers.policy.host_allowed(host) {
        return Some(HttpError::MisdirectedHost.into_response());
    }
    let origin = headers.get(header::ORIGIN).map(|o| o.to_str());
    if origin.is_some_and(|o| !o.is_ok_and(|o| servers.policy.origin_allowed(o))) {
        return Some(HttpError::ForbiddenOrigin.into_response());
    }
    None
}

fn health(servers: &Servers, req: &Request) -> Response {
    if let Some(refused) = probe_refused(servers, req) {
        return refused;
    }
    let (alive, body) = servers.health();
    with_cors(req, json_response(status(alive), &body))
}

fn ready(servers: &Servers, req: &Request) -> Response {
    if let Some(refused) = probe_refused(servers, req) {
        return refused;
    }
    let (ready, body) = servers.readiness();
    with_cors(req, json_response(status(ready), &body))
}

/// A browser page of an allowed origin may read the probes (the origin was checked).
fn with_cors(req: &Request, mut resp: Response) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.append(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    resp
}

/// A probe of one server (`rest` is `/health` or `/ready`).
fn server_probe(servers: &Servers, name: &str, slot: &Slot, rest: &str) -> Response {
    let (ready, state) = slot_readiness(slot);
    let ready = ready && !servers.is_shutting_down();
    if rest == "/ready" {
        return json_response(
            status(ready),
            &json!({"server": name, "ready": ready, "state": state}),
        );
    }
    match slot {
        Slot::Running(r) => {
            let (alive, mut body) = r.health();
            body["server"] = name.into();
            json_response(status(alive), &body)
        }
        Slot::Starting | Slot::Failed(_) => json_response(
            StatusCode::OK,
            &json!({"server": name, "status": state, "ready": false, "state": state}),
        ),
    }
}

/// Hands a request to the server that serves its path.
async fn dispatch(servers: Arc<Servers>, mut req: Request) -> Response {
    let probe: Option<fn(&Servers, &Request) -> Response> = match req.uri().path() {
        "/health" => Some(health),
        "/ready" => Some(ready),
        _ => None,
    };
    if let Some(probe) = probe {
        return match *req.method() {
            Method::GET | Method::HEAD => probe(&servers, &req),
            _ => super::method_not_allowed("GET,HEAD"),
        };
    }
    if let Some(rest) = req.uri().path().strip_prefix(PREFIX) {
        let (name, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Some(slot) = servers.get(name) {
            if tail == "/health" || tail == "/ready" {
                if let Some(refused) = probe_refused(&servers, &req) {
                    return refused;
                }
                return with_cors(&req, server_probe(&servers, name, &slot, tail));
            }
            return serve(slot, req).await;
        }
    }
    match servers.default_server() {
        Some(Slot::Running(r)) => {
            if let Some(prefix) = &r.prefix {
                prefix_path(&mut req, prefix);
            }
            serve(Slot::Running(r), req).await
        }
        Some(other) => serve(other, req).await,
        None => super::not_found(),
    }
}

async fn serve(slot: Slot, req: Request) -> Response {
    match slot {
        Slot::Running(r) => super::serve(r.state.clone(), req).await,
        Slot::Starting | Slot::Failed(_) => HttpError::ChildGone.into_response(),
    }
}

/// Rewrites a default path (`/mcp?x`) to the server's own (`/servers/NAME/mcp?x`).
fn prefix_path(req: &mut Request, prefix: &str) {
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    if let Ok(uri) = format!("{prefix}{pq}").parse::<Uri>() {
        *req.uri_mut() = uri;
    }
}
