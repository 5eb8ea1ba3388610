//! `mcp-bench null-server`: the ceiling. An MCP endpoint with no child behind it that answers
//! the bench's own calls itself, over the same transports: Streamable HTTP (JSON replies,
//! sessions), stateless 2026-07-28 POSTs, and legacy HTTP+SSE (`GET /sse`, `POST /message`,
//! replies as events). It is a minimal HTTP/1.1 server (hyper) that parses each message into a
//! JSON tree and writes its reply: what this machine and this load generator reach with nothing
//! to bridge. `mcp-bench --ceiling` runs each load scenario against it before and after the
//! bridge and puts the bridge's share of it in the notes.
//!
//! It prints its URL on stdout, listens on 127.0.0.1 only, and exits 0 on SIGTERM.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The argument of `mcp-bench` that runs this server.
pub const COMMAND: &str = "null-server";

/// Events queued for one legacy stream at most.
const EVENT_QUEUE: usize = 1024;
/// The longest `ms` an `echo` waits, as in the example server.
const MAX_SLEEP_MS: u64 = 60_000;

/// A legacy stream's body: the events queued for it, as they come.
pub struct Events(mpsc::Receiver<Bytes>);

impl http_body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|e| e.map(|b| Ok(Frame::data(b))))
    }
}

type Body = Either<Full<Bytes>, Events>;

#[derive(Default)]
struct Null {
    next_session: AtomicU64,
    /// Legacy streams by session number.
    streams: Mutex<HashMap<u64, mpsc::Sender<Bytes>>>,
}

fn reply(status: StatusCode, content_type: Option<&str>, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(body)));
    *resp.status_mut() = status;
    if let Some(t) = content_type {
        resp.headers_mut()
            .insert("content-type", t.parse().expect("a valid header value"));
    }
    resp
}

fn empty(status: StatusCode) -> Response<Body> {
    reply(status, None, Bytes::new())
}

/// The answer to a request, after the `ms` an `echo` asks to wait; `None` for a notification.
async fn answer(msg: &Value) -> Option<Value> {
    let id = msg.get("id")?.clone();
    let result = match msg["method"].as_str().unwrap_or("") {
        "initialize" => json!({
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "mcp-bench-null", "version": env!("CARGO_PKG_VERSION")},
        }),
        "tools/call" => {
            let args = &msg["params"]["arguments"];
            let ms = args["ms"].as_u64().unwrap_or(0).min(MAX_SLEEP_MS);
            if ms > 0 {
                // As precise as the example server's `thread::sleep`: tokio's timer rounds up
                // to the next millisecond, which made a 1 ms wait here nearly 2.
                let wait = Duration::from_millis(ms);
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(wait)).await;
            }
            json!({"content": [{"type": "text", "text": args["text"]}], "isError": false})
        }
        "ping" => json!({}),
        other => {
            let error = json!({"code": -32601, "message": format!("method not found: {other}")});
            return Some(json!({"jsonrpc": "2.0", "id": id, "error": error}));
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("a JSON tree serializes"))
}

/// `POST /mcp`: a session's message or a stateless request; the reply is one JSON body.
async fn streamable(null: &Null, msg: Value) -> Response<Body> {
    let Some(ans) = answer(&msg).await else {
        return empty(StatusCode::ACCEPTED);
    };
    let mut resp = reply(StatusCode::OK, Some("application/json"), to_bytes(&ans));
    if msg["method"] == "initialize" {
        let n = null.next_session.fetch_add(1, Ordering::Relaxed);
        let sid = format!("null-{n}").parse().expect("a valid header value");
        resp.headers_mut().insert("mcp-session-id", sid);
    }
    resp
}

/// `GET /sse`: a legacy stream, its first event naming where to POST.
fn open_stream(null: &Null) -> Response<Body> {
    let n = null.next_session.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let endpoint = format!("event: endpoint\ndata: /message?sessionId={n}\n\n");
    // Cannot fail: the channel is new and has room.
    let _ = tx.try_send(Bytes::from(endpoint));
    null.streams.lock().unwrap().insert(n, tx);
    let mut resp = Response::new(Either::Right(Events(rx)));
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().expect("valid"));
    resp
}

/// `POST /message?sessionId=N`: 202 once the reply is on its way to the session's stream.
async fn legacy_message(null: &Null, query: Option<&str>, msg: Value) -> Response<Body> {
    let n = query
        .and_then(|q| q.strip_prefix("sessionId="))
        .and_then(|n| n.parse::<u64>().ok());
    let Some(tx) = n.and_then(|n| null.streams.lock().unwrap().get(&n).cloned()) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let waits = msg_waits(&msg);
    let send = async move {
        if let Some(ans) = answer(&msg).await {
            let event = format!("event: message\ndata: {ans}\n\n");
            let _ = tx.send(Bytes::from(event)).await;
        }
    };
    // A reply that waits goes on a task of its own (the example server answers it on a thread
    // of its own), so that the 202 is not held back; any other is queued before the 202.
    if waits {
        tokio::spawn(send);
    } else {
        send.await;
    }
    empty(StatusCode::ACCEPTED)
}

fn msg_waits(msg: &Value) -> bool {
    msg["params"]["arguments"]["ms"]
        .as_u64()
        .is_some_and(|ms| ms > 0)
}

async fn handle(req: Request<Incoming>, null: Arc<Null>) -> Result<Response<Body>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let query = req.uri().query().map(str::to_owned);
    Ok(match (method, path.as_str()) {
        (Method::GET, "/sse") => open_stream(&null),
        (Method::DELETE, "/mcp") => empty(StatusCode::OK),
        (Method::POST, "/mcp" | "/message") => {
            let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
                return Ok(empty(StatusCode::BAD_REQUEST));
            };
            let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
                return Ok(empty(StatusCode::BAD_REQUEST));
            };
            match path.as_str() {
                "/mcp" => streamable(&null, msg).await,
                _ => legacy_message(&null, query.as_deref(), msg).await,
            }
        }
        (Method::POST | Method::GET | Method::DELETE, _) => empty(StatusCode::NOT_FOUND),
        _ => empty(StatusCode::METHOD_NOT_ALLOWED),
    })
}

async fn serve() -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let mut out = std::io::stdout();
    writeln!(out, "http://{}/mcp", listener.local_addr()?)?;
    out.flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let null = Arc::new(Null::default());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = term.recv() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let null = null.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, null.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Runs the server until SIGTERM; the process's exit status. One thread: with the load
/// generator on the same machine, it measured faster than a worker thread per spare core.
pub fn main() -> i32 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match rt.map(|rt| rt.block_on(serve())) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) | Err(e) => {
            eprintln!("mcp-bench null-server: {e}");
            1
        }
    }
}
