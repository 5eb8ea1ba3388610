//! The session front: clients of the session era (revisions up to 2025-11-25, over Streamable
//! HTTP or legacy HTTP+SSE). A session opens with `initialize`, which the bridge answers itself
//! from what the child declared; its requests are forwarded (or answered by the bridge where
//! the child is shared: logging levels, repeated subscriptions, other sessions' tasks), its
//! notifications and replies rewritten and forwarded; it ends with DELETE, expiry or its stream.
//! Transports parse and find the session; everything after that is here.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::{info, warn};

use crate::back::modern::CallerMeta;
use crate::back::ChildEra;
use crate::child::{Forwarded, Forwarding, Outgoing};
use crate::envelope::RawRequest;
use crate::jsonrpc;
use crate::loglevel::LogLevel;
use crate::router::{task_not_found, Outbound, Refused, Registration, StreamTx};
use crate::session::{Session, Transport};
use crate::state::BridgeState;

/// Creates a session bound to a child, attached to its routes, owned by `principal`.
///
/// # Errors
/// `ChildGone` when no child runs or one cannot be started, `TooManySessions` at a limit.
pub async fn open(
    app: &BridgeState,
    transport: Transport,
    principal: Option<Arc<str>>,
    extra_env: &[(String, String)],
) -> Result<Arc<Session>, Refused> {
    // Checked before the place is taken, so that no session opens once draining began
    // (`Running::begin_stop` sets it before it waits for the requests in flight).
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Refused::Draining);
    }
    // Limits: the place is reserved before the first `.await` (starting a child can take
    // long), so no burst of `initialize` requests exceeds `max_sessions`.
    let Some(place) = app.sessions.reserve(app.config.limits.max_sessions) else {
        warn!(
            max = app.config.limits.max_sessions,
            "session refused: limit reached"
        );
        return Err(Refused::TooManySessions);
    };
    let child = app
        .children
        .for_session(principal.as_ref(), extra_env)
        .await?;
    let mut session = Session::new(child.clone(), &app.root, transport, principal);
    session.tools = app.config.tools.clone();
    let session = Arc::new(session);
    child.attach(&session.id, session.principal.clone());
    place.fill(session.clone());
    // A session with a child of its own (or its user's own) dies with it: its streams end and its next request
    // gets 404. A shared child is restarted and hands its sessions over (`children`).
    let dedicated = app.config.supervision.isolation == crate::config::Isolation::User;
    if child.is_single_owner() || dedicated {
        let (cancel, watched) = (session.cancel.clone(), child.clone());
        app.children.tasks().spawn(async move {
            tokio::select! {
                _ = watched.gone() => cancel.cancel(),
                _ = cancel.cancelled() => {}
            }
        });
    }
    let token = session.principal.as_deref().unwrap_or("-");
    info!(session = %session.id, token = %token, "session created");
    Ok(session)
}

/// Answers a session's `initialize` from the child's cached result (the child never sees a
/// second `initialize`), recording the negotiated revision. Returns the JSON-RPC response.
pub fn initialize(session: &Session, msg: &Value) -> Value {
    let child = session.child();
    let init = &child.init;
    let requested = jsonrpc::param(msg, "protocolVersion").and_then(Value::as_str);
    let version = crate::back::legacy::negotiate(requested, &init.protocol_version);
    session.set_protocol_version(version);
    let caller = CallerMeta {
        capabilities: jsonrpc::param(msg, "capabilities")
            .cloned()
            .unwrap_or_default(),
        client_info: jsonrpc::param(msg, "clientInfo")
            .cloned()
            .unwrap_or_default(),
    };
    let client = caller.client_info.get("name").and_then(Value::as_str);
    info!(session = %session.id, version, client = client.unwrap_or("?"), "session initialized");
    session.set_caller(caller);
    jsonrpc::result_value(jsonrpc::id(msg), init.session_result(requested))
}

/// Handles a client request: answered by the bridge (`logging/setLevel`, repeated
/// subscriptions, another session's task, a limit) or forwarded. Either way the response
/// arrives on `reg.stream`, after any messages related to the request.
///
/// # Errors
/// `ChildGone` or `UnknownOwner` (the session ended).
pub async fn request(session: &Session, msg: Value, reg: Registration) -> Result<(), Refused> {
    if let Some(reply) = answer_locally(session, &msg).await? {
        answer(&reg.stream, &reply);
        return Ok(());
    }
    let id = jsonrpc::id(&msg);
    forward(session, Outgoing::Parsed(msg), id, reg).await
}

/// Handles a plain request (`envelope::RawRequest`: one the bridge never answers itself),
/// forwarded as its own bytes. A modern child needs the session's `_meta` stamped on it, and a
/// call may name a tool the server hides: those take the full path.
///
/// # Errors
/// As `request`.
pub async fn request_plain(
    session: &Session,
    req: RawRequest,
    reg: Registration,
) -> Result<(), Refused> {
    let hidden_maybe = !session.tools.is_empty() && req.method() == "tools/call";
    if hidden_maybe || matches!(session.child().era, ChildEra::Modern { .. }) {
        return request(session, req.parse(), reg).await;
    }
    let id = req.client_id();
    forward(session, Outgoing::Raw(req), id, reg).await
}

/// Forwards a request to the session's child; a limit's refusal is answered under `id`.
async fn forward(
    session: &Session,
    msg: Outgoing,
    id: Value,
    reg: Registration,
) -> Result<(), Refused> {
    let stream = reg.stream.clone();
    let how = Forwarding {
        caller: Some(session.caller()),
        finish: None,
    };
    match session
        .child()
        .forward_request(&session.id, msg, reg, how)
        .await?
    {
        Forwarded::Sent => {}
        Forwarded::Refused(why) => {
            session.child().metrics().refused("limit");
            let reply = jsonrpc::error_value(id, jsonrpc::TOO_MANY_REQUESTS, why);
            answer(&stream, &reply);
        }
    }
    Ok(())
}

/// Puts the bridge's own response on a request's stream (its caller's: it is still there).
fn answer(stream: &StreamTx, reply: &Value) {
    let _ = stream.try_send(Outbound {
        json: jsonrpc::to_bytes(reply),
        last: true,
    });
}

/// The bridge's own response to requests that concern the shared child's per-session state,
/// or `None` when the child must answer.
async fn answer_locally(session: &Session, msg: &Value) -> Result<Option<Value>, Refused> {
    let child = session.child();
    let ok = || Ok(Some(jsonrpc::result_value(jsonrpc::id(msg), json!({}))));
    let uri = || {
        jsonrpc::param(msg, "uri")
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let modern = matches!(child.era, ChildEra::Modern { .. });
    match jsonrpc::method(msg) {
        // A modern child has no `ping`; the bridge is who the client can reach.
        "ping" if modern => ok(),
        "logging/setLevel" => {
            let level = jsonrpc::param(msg, "level")
                .and_then(Value::as_str)
                .and_then(LogLevel::parse);
            let Some(level) = level else { return Ok(None) }; // let the child explain the error
            child.set_log_level(&session.id, level).await?;
            ok()
        }
        // The child is subscribed once for all sessions (a modern one through the bridge's
        // listen); later subscribers are only recorded. A first subscriber of a legacy child
        // goes on to the child, which answers it.
        "resources/subscribe" => match child.subscribe(&session.id, uri()).await {
            true => Ok(None),
            false => ok(),
        },
        "resources/unsubscribe" => match child.unsubscribe(&session.id, uri()).await {
            true => Ok(None),
            false => ok(),
        },
        "tools/call" => Ok(session.tools.refuse_call(msg)),
        "tasks/get" | "tasks/result" | "tasks/cancel" if !child.may_use_task(&session.id, msg) => {
            Ok(Some(task_not_found(jsonrpc::id(msg))))
        }
        _ => Ok(None),
    }
}

/// Handles a client notification: `initialized` stays with the bridge (the child was
/// initialized once, by the bridge); others are forwarded.
///
/// # Errors
/// `ChildGone`.
pub async fn notification(session: &Session, msg: Value) -> Result<(), Refused> {
    let child = session.child();
    match jsonrpc::method(&msg) {
        "notifications/initialized" => return Ok(()),
        // Gone in 2026-07-28: a modern child asks for nothing, so it needs no such hint.
        "notifications/roots/list_changed" if matches!(child.era, ChildEra::Modern { .. }) => {
            return Ok(())
        }
        _ => {}
    }
    child.forward_notification(&session.id, msg).await
}

/// Handles a client's response to a server request.
///
/// # Errors
/// `NoSuchServerRequest` or `ChildGone`.
pub async fn reply(session: &Session, msg: Value) -> Result<(), Refused> {
    session.child().forward_reply(&session.id, msg).await
}

/// Makes `tx` the session's standalone stream (a GET, or the legacy SSE stream).
///
/// # Errors
/// `ChildGone` or `UnknownOwner` (the session ended).
pub fn open_standalone(session: &Session, tx: StreamTx) -> Result<(), Refused> {
    session.child().open_standalone(&session.id, tx)
}

/// Ends a session already removed from the registry: its streams close, its requests are
/// cancelled at the child, its subscriptions and logging level are released.
pub async fn end(app: &BridgeState, session: &Arc<Session>) {
    session.cancel.cancel();
    let mut child = session.child();
    loop {
        child.detach(&session.id).await;
        // A restart may have handed the session to a successor meanwhile: leave it too.
        match child.successor() {
            Some(next) => child = next,
            None => break,
        }
    }
    app.children.release(&child);
}
