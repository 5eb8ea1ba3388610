//! The HTTP side: `app(state)` builds the router; `AppState` is what every handler shares.

mod accept;
mod sse;
mod streamable;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::child::ChildHandle;
use crate::config::Config;
use crate::error::json_response;
use crate::jsonrpc;
use crate::session::Sessions;

/// What every handler shares.
pub struct AppState {
    /// The configuration the bridge runs with.
    pub config: Config,
    /// Live sessions.
    pub sessions: Sessions,
    /// The child new sessions are bound to.
    pub child: Arc<ChildHandle>,
    /// When the bridge started serving.
    pub started: Instant,
    /// Cancelled at shutdown; every session token is its child.
    pub root: CancellationToken,
}

/// The bridge's HTTP router.
pub fn app(state: Arc<AppState>) -> Router {
    let max_body = state.config.limits.max_body;
    Router::new()
        .route(
            &state.config.mcp_path,
            get(streamable::get)
                .post(streamable::post)
                .delete(streamable::delete),
        )
        .route("/health", get(health))
        .fallback(not_found)
        // The handlers read the body themselves and answer 413 with a JSON-RPC body.
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn health(State(app): State<Arc<AppState>>) -> Response {
    let child = &app.child;
    let running = child.is_running();
    let body = json!({
        "status": if running { "ok" } else { "degraded" },
        "child": {
            "pid": child.pid,
            "state": if running { "running" } else { "exited" },
            "protocolVersion": child.init.protocol_version,
            "server": child.init.result.get("serverInfo"),
        },
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "sessions": app.sessions.len(),
        "pendingRequests": child.routes().pending_len(),
    });
    let status = if running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body)
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
