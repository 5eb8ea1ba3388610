//! What happens to a client message once its transport has parsed it and found its session,
//! whatever the transport: requests are registered and forwarded (or answered by the bridge),
//! notifications and replies are rewritten and forwarded, sessions are opened and ended.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::child::ChildHandle;
use crate::http::AppState;
use crate::jsonrpc;
use crate::loglevel::LogLevel;
use crate::router::{task_not_found, Outbound, Refused, Registration, StreamTx};
use crate::session::{Session, Transport};

/// Creates a session bound to the child, attached to its routes, owned by `principal`.
///
/// # Errors
/// `ChildGone` when the child is not running, `TooManySessions` at the limit.
pub async fn open_session(
    app: &AppState,
    transport: Transport,
    principal: Option<Arc<str>>,
    extra_env: &[(String, String)],
) -> Result<Arc<Session>, Refused> {
    // Limits: the place is reserved before the first `.await` (starting a child can take
    // long), so no burst of `initialize` requests exceeds `max_sessions`.
    let Some(place) = app.sessions.reserve(app.config.limits.max_sessions) else {
        warn!(
            max = app.config.limits.max_sessions,
            "session refused: limit reached"
        );
        return Err(Refused::TooManySessions);
    };
    let child = app.children.for_session(extra_env).await?;
    let session = Arc::new(Session::new(child.clone(), &app.root, transport, principal));
    child
        .routes()
        .attach(session.id.clone(), session.principal.clone());
    place.fill(session.clone());
    // A session with a child of its own dies with it: its streams end and its next request
    // gets 404. A shared child is restarted and hands its sessions over (`children`).
    if child.routes().rules().single_owner {
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
    let version = crate::handshake::negotiate(requested, &init.protocol_version);
    session.set_protocol_version(version);
    let client = jsonrpc::param(msg, "clientInfo")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    info!(session = %session.id, version, client = client.unwrap_or("?"), "session initialized");
    jsonrpc::result_value(jsonrpc::id(msg), init.session_result(requested))
}

/// Undoes a registration if the caller is dropped before the line reached the child's queue.
struct Unregister<'a> {
    child: &'a ChildHandle,
    id: Option<u64>,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.child.routes().unregister(id);
        }
    }
}

/// Handles a client request: answered by the bridge (`logging/setLevel`, repeated
/// subscriptions, another session's task) or registered and forwarded. Either way the response
/// arrives on `reg.stream`, after any messages related to the request.
///
/// # Errors
/// `ChildGone` or `UnknownOwner` (the session ended).
pub async fn request(session: &Session, mut msg: Value, reg: Registration) -> Result<(), Refused> {
    if let Some(reply) = answer_locally(session, &msg).await? {
        // The receiver is the caller's own; it is still there.
        let _ = reg.stream.try_send(Outbound {
            json: jsonrpc::to_bytes(&reply),
            last: true,
        });
        return Ok(());
    }
    let child = &session.child();
    // `--child-concurrency`: wait (fairly, bounded) for a slot at the child.
    let Ok(slot) = child.slot(&session.id).await else {
        let why = "too many requests are waiting for the MCP server (--child-concurrency, --max-waiting); retry later";
        return refuse(&reg, &msg, why);
    };
    // Lock: register before the line is queued, so a fast response always finds its route.
    let (registered, held) = {
        let mut routes = child.routes();
        let registered = routes.register(&session.id, &mut msg, reg.clone());
        if let (Ok(id), Some(slot)) = (&registered, slot) {
            routes.hold_slot(*id, slot);
        }
        let held = match registered {
            Ok(_) if reg.sse => routes.release_held(&session.id, &reg.stream),
            _ => Vec::new(),
        };
        (registered, held)
    };
    send_all(&reg.stream, held);
    let id = match registered {
        Err(Refused::TooManyRequests) => {
            let why = "too many requests in flight for this session; retry when some complete";
            return refuse(&reg, &msg, why);
        }
        other => other?,
    };
    let mut guard = Unregister {
        child,
        id: Some(id),
    };
    debug!(session = %session.id, id, method = jsonrpc::method(&msg), "request");
    child
        .send(jsonrpc::to_bytes(&msg))
        .await
        .map_err(|_| Refused::ChildGone)?;
    guard.id = None;
    Ok(())
}

/// Answers a request the bridge will not forward with a JSON-RPC error (-32052) on its own
/// stream; the session stays usable.
fn refuse(reg: &Registration, msg: &Value, why: &str) -> Result<(), Refused> {
    let reply = jsonrpc::error_value(jsonrpc::id(msg), jsonrpc::TOO_MANY_REQUESTS, why);
    // The receiver is the caller's own; it is still there.
    let _ = reg.stream.try_send(Outbound {
        json: jsonrpc::to_bytes(&reply),
        last: true,
    });
    Ok(())
}

/// Makes `tx` the session's standalone stream; the server requests held for the session go
/// out on it at once.
///
/// # Errors
/// `ChildGone` or `UnknownOwner` (the session ended).
pub fn open_standalone(session: &Session, tx: StreamTx) -> Result<(), Refused> {
    let held = session
        .child()
        .routes()
        .set_standalone(&session.id, tx.clone())?;
    send_all(&tx, held);
    Ok(())
}

/// Queues messages that are not responses on a client stream.
fn send_all(stream: &StreamTx, msgs: Vec<Value>) {
    for msg in msgs {
        // Ordering: they precede anything the child sends later on this stream.
        let _ = stream.try_send(Outbound {
            json: jsonrpc::to_bytes(&msg),
            last: false,
        });
    }
}

/// The bridge's own response to requests that concern the shared child's per-session state,
/// or `None` when the child must answer.
async fn answer_locally(session: &Session, msg: &Value) -> Result<Option<Value>, Refused> {
    let child = &session.child();
    let ok = || Ok(Some(jsonrpc::result_value(jsonrpc::id(msg), json!({}))));
    let uri = || {
        jsonrpc::param(msg, "uri")
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    match jsonrpc::method(msg) {
        "logging/setLevel" => {
            let level = jsonrpc::param(msg, "level")
                .and_then(Value::as_str)
                .and_then(LogLevel::parse);
            let Some(level) = level else { return Ok(None) }; // let the child explain the error
            let change = child.routes().set_log_level(&session.id, level);
            if let Some(level) = change {
                let line = child.routes().set_level_request(level);
                child
                    .send(jsonrpc::to_bytes(&line))
                    .await
                    .map_err(|_| Refused::ChildGone)?;
            }
            ok()
        }
        // The child is subscribed once for all sessions; later subscribers are only recorded.
        "resources/subscribe" if !child.routes().subscribe(&session.id, uri()) => ok(),
        "resources/unsubscribe" if !child.routes().unsubscribe(&session.id, uri()) => ok(),
        "tasks/get" | "tasks/result" | "tasks/cancel"
            if !child.routes().may_use_task(&session.id, msg) =>
        {
            Ok(Some(task_not_found(jsonrpc::id(msg))))
        }
        _ => Ok(None),
    }
}

/// Handles a client notification: `initialized` stays with the bridge, `cancelled` is
/// rewritten to the child's id (or dropped when nothing is in flight), others pass through.
///
/// # Errors
/// `ChildGone`.
pub async fn notification(session: &Session, mut msg: Value) -> Result<(), Refused> {
    let method = jsonrpc::method(&msg);
    // The child was initialized once, by the bridge.
    if method == "notifications/initialized" {
        return Ok(());
    }
    if method == "notifications/cancelled"
        && !session
            .child()
            .routes()
            .cancel_from_client(&session.id, &mut msg)
    {
        debug!(session = %session.id, "cancellation for no request in flight");
        return Ok(());
    }
    session
        .child()
        .send(jsonrpc::to_bytes(&msg))
        .await
        .map_err(|_| Refused::ChildGone)
}

/// Handles a client's response to a server request: only the session it was sent to may
/// answer, and the child gets its own id back.
///
/// # Errors
/// `NoSuchServerRequest` or `ChildGone`.
pub async fn reply(session: &Session, mut msg: Value) -> Result<(), Refused> {
    session
        .child()
        .routes()
        .reply_from_client(&session.id, &mut msg)?;
    session
        .child()
        .send(jsonrpc::to_bytes(&msg))
        .await
        .map_err(|_| Refused::ChildGone)
}

/// Ends a session already removed from the registry: its streams close, its requests are
/// cancelled at the child, its subscriptions and logging level are released.
pub async fn end_session(app: &AppState, session: &Arc<Session>) {
    session.cancel.cancel();
    let mut child = session.child();
    loop {
        let to_child = child.routes().detach(&session.id);
        for msg in to_child {
            // The child may be gone already; then there is nothing left to cancel.
            let _ = child.send(jsonrpc::to_bytes(&msg)).await;
        }
        // A restart may have handed the session to a successor meanwhile: leave it too.
        match child.successor() {
            Some(next) => child = next,
            None => break,
        }
    }
    app.children.release(&child);
}
