//! The MCP client side: sessions of each transport and one checked `echo` call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::{body_bytes, check_echo, read_reply, Conn, Fail, SseParser};

/// The session revision the bench asks for at `initialize`.
pub const SESSION_VERSION: &str = "2025-11-25";
/// The stateless revision: no session, `_meta` on every request.
pub const STATELESS_VERSION: &str = "2026-07-28";
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How calls reach the bridge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Streamable HTTP session; `Accept` lists both types, so a reply ready at once is one JSON
    /// body, and one with messages before it (or a slow one) an event stream.
    Stream,
    /// Streamable HTTP session; `Accept: application/json`, so replies are JSON bodies.
    Json,
    /// Legacy HTTP+SSE: POST `/message?sessionId=…` (202), the reply arrives on `GET /sse`.
    Sse,
    /// Stateless 2026-07-28: no session, `_meta` and the `Mcp-*` headers on every POST.
    Modern,
}

fn client_info() -> Value {
    json!({"name": "mcp-bench", "version": env!("CARGO_PKG_VERSION")})
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("serializable"))
}

fn initialize_body(id: u64) -> Bytes {
    to_bytes(
        &json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": SESSION_VERSION, "capabilities": {}, "clientInfo": client_info()}}),
    )
}

fn initialized_body() -> Bytes {
    to_bytes(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
}

/// `tools/call echo {text, ms}`; with the 2026-07-28 `_meta` when `stateless`.
pub fn echo_body(id: u64, text: &str, ms: u64, stateless: bool) -> Bytes {
    let mut args = json!({"text": text});
    if ms > 0 {
        args["ms"] = json!(ms);
    }
    let mut params = json!({"name": "echo", "arguments": args});
    if stateless {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": client_info(),
        });
    }
    to_bytes(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}))
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A legacy session: where to POST, and the replies awaited on its stream.
pub struct Legacy {
    post_path: String,
    pending: Pending,
    reader: JoinHandle<()>,
}

/// One session (or, for stateless calls, one id space shared by its workers).
pub struct Session {
    /// The last request id used; ids go 1, 2, 3, … in every session.
    pub last_id: AtomicU64,
    pub sid: Option<String>,
    pub legacy: Option<Legacy>,
}

impl Session {
    pub fn stateless() -> Session {
        Session {
            last_id: AtomicU64::new(0),
            sid: None,
            legacy: None,
        }
    }

    /// Forgets a request that timed out (legacy: its reply will never be awaited).
    pub fn forget(&self, id: u64) {
        if let Some(l) = &self.legacy {
            l.pending.lock().unwrap().remove(&id);
        }
    }

    /// Whether the legacy stream has ended.
    pub fn stream_ended(&self) -> bool {
        self.legacy.as_ref().is_some_and(|l| l.reader.is_finished())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(l) = &self.legacy {
            l.reader.abort();
        }
    }
}

async fn expect_accepted(
    conn: &mut Conn,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<(), Fail> {
    let resp = conn.send(Method::POST, path, headers, body).await?;
    let status = resp.status();
    let body = body_bytes(resp).await?;
    if status != StatusCode::ACCEPTED {
        return Err(Fail::Http(format!(
            "expected 202, got {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(160)])
        )));
    }
    Ok(())
}

fn check_initialize(msg: &Value, id: u64) -> Result<(), Fail> {
    if msg["id"].as_u64() != Some(id) {
        return Err(Fail::Mismatch(format!("initialize: got id {}", msg["id"])));
    }
    if msg["result"]["protocolVersion"].as_str() != Some(SESSION_VERSION) {
        return Err(Fail::Rpc(format!("initialize answered {msg}")));
    }
    Ok(())
}

/// `initialize` + `notifications/initialized` on `/mcp`; the session uses id 1.
pub async fn open_stream_session(conn: &mut Conn, path: &str) -> Result<Session, Fail> {
    let resp = conn
        .send(
            Method::POST,
            path,
            &[("accept", ACCEPT_BOTH)],
            initialize_body(1),
        )
        .await?;
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let msg = read_reply(resp).await?;
    check_initialize(&msg, 1)?;
    let sid = sid.ok_or_else(|| Fail::Http("initialize without Mcp-Session-Id".into()))?;
    let headers = [
        ("accept", ACCEPT_BOTH),
        ("mcp-session-id", sid.as_str()),
        ("mcp-protocol-version", SESSION_VERSION),
    ];
    expect_accepted(conn, path, &headers, initialized_body()).await?;
    Ok(Session {
        last_id: AtomicU64::new(1),
        sid: Some(sid),
        legacy: None,
    })
}

/// `GET /sse`, its `endpoint` event, then `initialize` (id 1) and `notifications/initialized`
/// through `/message`. The stream stays open, read by a task of its own.
pub async fn open_legacy_session(addr: SocketAddr, sse_path: &str) -> Result<Session, Fail> {
    let mut stream = Conn::open(addr).await?;
    let resp = stream
        .send(
            Method::GET,
            sse_path,
            &[("accept", "text/event-stream")],
            Bytes::new(),
        )
        .await?;
    if resp.status() != StatusCode::OK {
        return Err(Fail::Http(format!("GET {sse_path}: {}", resp.status())));
    }
    let pending: Pending = Arc::default();
    let (endpoint_tx, endpoint_rx) = oneshot::channel();
    let reader = {
        let pending = pending.clone();
        tokio::spawn(async move {
            let _stream = stream; // the connection lives as long as its reader
            let mut body = resp.into_body();
            let mut parser = SseParser::default();
            let mut endpoint_tx = Some(endpoint_tx);
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                for ev in parser.push(&data) {
                    if ev.event == "endpoint" {
                        if let Some(tx) = endpoint_tx.take() {
                            let _ = tx.send(ev.data);
                        }
                    } else if let Some(msg) = ev.response() {
                        let waiter = msg["id"]
                            .as_u64()
                            .and_then(|id| pending.lock().unwrap().remove(&id));
                        if let Some(tx) = waiter {
                            let _ = tx.send(msg);
                        }
                    }
                }
            }
        })
    };
    let endpoint = match tokio::time::timeout(SETUP_TIMEOUT, endpoint_rx).await {
        Ok(Ok(e)) => e,
        _ => {
            reader.abort();
            return Err(Fail::Http("no endpoint event on the legacy stream".into()));
        }
    };
    // The endpoint may be a path or an absolute URL of the same origin.
    let post_path = match endpoint.strip_prefix("http://") {
        Some(rest) => rest[rest.find('/').unwrap_or(rest.len())..].to_owned(),
        None => endpoint,
    };
    let session = Session {
        last_id: AtomicU64::new(1),
        sid: None,
        legacy: Some(Legacy {
            post_path,
            pending,
            reader,
        }),
    };
    let mut conn = Conn::open(addr).await?;
    let msg = legacy_request(&session, &mut conn, 1, initialize_body(1)).await?;
    check_initialize(&msg, 1)?;
    let path = session.legacy.as_ref().unwrap().post_path.clone();
    expect_accepted(
        &mut conn,
        &path,
        &[("accept", ACCEPT_BOTH)],
        initialized_body(),
    )
    .await?;
    Ok(session)
}

/// POSTs a request to a legacy session's endpoint and waits for its reply on the stream.
async fn legacy_request(
    session: &Session,
    conn: &mut Conn,
    id: u64,
    body: Bytes,
) -> Result<Value, Fail> {
    let legacy = session.legacy.as_ref().expect("a legacy session");
    let (tx, rx) = oneshot::channel();
    if legacy.pending.lock().unwrap().insert(id, tx).is_some() {
        return Err(Fail::Mismatch(format!("id {id} was already awaited")));
    }
    let posted = expect_accepted(conn, &legacy.post_path, &[("accept", ACCEPT_BOTH)], body).await;
    if let Err(e) = posted {
        legacy.pending.lock().unwrap().remove(&id);
        return Err(e);
    }
    rx.await
        .map_err(|_| Fail::Http("the legacy stream ended".into()))
}

/// One `echo` call on `session` through `conn`, checked: `Ok` only for the right id and text.
pub async fn echo(
    kind: Kind,
    conn: &mut Conn,
    mcp_path: &str,
    session: &Session,
    id: u64,
    text: &str,
    ms: u64,
) -> Result<(), Fail> {
    let msg = match kind {
        Kind::Stream | Kind::Json => {
            let accept = if kind == Kind::Json {
                "application/json"
            } else {
                ACCEPT_BOTH
            };
            let sid = session.sid.as_deref().unwrap_or_default();
            let headers = [
                ("accept", accept),
                ("mcp-session-id", sid),
                ("mcp-protocol-version", SESSION_VERSION),
            ];
            let resp = conn
                .send(
                    Method::POST,
                    mcp_path,
                    &headers,
                    echo_body(id, text, ms, false),
                )
                .await?;
            read_reply(resp).await?
        }
        Kind::Modern => {
            let headers = [
                ("accept", ACCEPT_BOTH),
                ("mcp-protocol-version", STATELESS_VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ];
            let resp = conn
                .send(
                    Method::POST,
                    mcp_path,
                    &headers,
                    echo_body(id, text, ms, true),
                )
                .await?;
            read_reply(resp).await?
        }
        Kind::Sse => legacy_request(session, conn, id, echo_body(id, text, ms, false)).await?,
    };
    check_echo(&msg, id, text)
}
