//! Test support: an in-process bridge in front of the fixture server, an MCP client over
//! Streamable HTTP, and an incremental SSE reader. Every wait is bounded by `WAIT`.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use mcp_http_bridge::{Bridge, Config};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The fixture stdio MCP server.
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_fake-mcp-server");
/// The bridge binary.
pub const BRIDGE: &str = env!("CARGO_BIN_EXE_mcp-http-bridge");
/// The modern (2026-07-28 only) example server.
pub const MODERN_FIXTURE: &str = env!("CARGO_BIN_EXE_modern-mcp-server");
/// Upper bound of any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);
/// Accept header of a client that takes both reply kinds.
pub const BOTH: &str = "application/json, text/event-stream";
/// Accept header of a client that takes JSON only.
pub const JSON_ONLY: &str = "application/json";

/// Awaits `f`, failing the test if it takes longer than `WAIT`.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A bridge running in this process.
pub struct TestBridge {
    /// The MCP endpoint.
    pub url: String,
    /// `http://host:port`.
    pub base: String,
    /// The legacy SSE endpoint.
    pub sse_url: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestBridge {
    /// A bridge with default settings in front of the fixture.
    pub async fn start() -> TestBridge {
        Self::start_with(|_| {}).await
    }

    /// A bridge whose config `tweak` adjusts.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestBridge {
        Self::launch(tweak, None).await
    }

    /// A bridge whose config `tweak` adjusts, serving its metrics; returns the metrics URL.
    pub async fn start_with_metrics(tweak: impl FnOnce(&mut Config)) -> (TestBridge, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let bridge = Self::launch(tweak, Some(listener)).await;
        (bridge, url)
    }

    async fn launch(tweak: impl FnOnce(&mut Config), metrics: Option<TcpListener>) -> TestBridge {
        let mut config = Config::new(FIXTURE, Vec::<String>::new());
        config.shutdown_grace = Duration::from_secs(2);
        tweak(&mut config);
        let recorder = std::sync::Arc::new(mcp_http_bridge::metrics::Metrics::new());
        if metrics.is_some() {
            config.metrics = recorder.server("default");
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let path = config.mcp_path.clone().unwrap_or_default();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let sse_path = config.sse_path.clone();
        let mut bridge = within("bridge start", Bridge::start(config))
            .await
            .expect("bridge starts");
        if let Some(listener) = metrics {
            bridge = bridge.with_metrics(recorder, listener);
        }
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(bridge.serve(listener, shutdown.clone()));
        TestBridge {
            url: format!("{scheme}://{addr}{path}"),
            base: format!("{scheme}://{addr}"),
            sse_url: format!("{scheme}://{addr}{}", sse_path.unwrap_or_default()),
            shutdown,
            task: Some(task),
        }
    }

    /// A client with a fresh, initialized session.
    pub async fn client(&self) -> Client {
        let mut c = Client::new(&self.url);
        c.initialize().await;
        c
    }

    /// A client with a fresh, initialized session, sending `Authorization: Bearer <token>`
    /// with every request.
    pub async fn client_with_token(&self, token: &str) -> Client {
        let mut c = Client::new(&self.url);
        let bearer = format!("Bearer {token}");
        c.http = reqwest::Client::builder()
            .default_headers(headers(&[("authorization", &bearer)]))
            .build()
            .unwrap();
        c.initialize().await;
        c
    }

    /// Waits for the bridge to end on its own (e.g. after the child exited).
    pub async fn finished(&mut self) -> anyhow::Result<()> {
        within("bridge end", self.task.take().unwrap())
            .await
            .unwrap()
    }

    /// Stops the bridge as a signal would, and returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.finished().await
    }

    /// Waits until exactly `n` requests are at the child (per `/health`).
    pub async fn wait_pending(&self, n: u64) {
        within("pending requests", async {
            while self.health().await["pendingRequests"] != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
    }

    /// GET /health as JSON.
    pub async fn health(&self) -> Value {
        reqwest::get(format!("{}/health", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A raw reply: status, headers, and the body's JSON-RPC messages (one for JSON, each event's
/// data for SSE).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub messages: Vec<Value>,
}

impl Reply {
    /// The last message (the response, for a request).
    pub fn last(&self) -> &Value {
        self.messages
            .last()
            .unwrap_or_else(|| panic!("no message in {self:?}"))
    }

    /// Whether the body was an event stream.
    pub fn is_sse(&self) -> bool {
        self.headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"))
    }
}

/// An MCP client over Streamable HTTP.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
}

impl Client {
    pub fn new(url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            session: None,
        }
    }

    /// A POST with the session header (if any) and the given Accept.
    pub fn post(&self, accept: &str) -> reqwest::RequestBuilder {
        let mut b = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", accept);
        if let Some(s) = &self.session {
            b = b.header("mcp-session-id", s);
        }
        b
    }

    /// POSTs `body` and reads the whole reply.
    pub async fn send_raw(&self, accept: &str, body: impl Into<reqwest::Body>) -> Reply {
        let resp = within("POST", self.post(accept).body(body).send())
            .await
            .unwrap();
        read_reply(resp).await
    }

    /// POSTs one message and reads the whole reply.
    pub async fn send(&self, accept: &str, msg: &Value) -> Reply {
        self.send_raw(accept, serde_json::to_vec(msg).unwrap())
            .await
    }

    /// `initialize` + `notifications/initialized`; keeps the session id.
    pub async fn initialize(&mut self) -> Value {
        let reply = self
            .send(BOTH, &initialize_msg(json!(0), "2025-11-25"))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let sid = reply
            .headers
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap();
        self.session = Some(sid.to_owned());
        let ack = self
            .send(
                BOTH,
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(ack.status, 202);
        reply.last()["result"].clone()
    }

    /// A request; returns every message of the reply (SSE: related messages, then the response).
    pub async fn request(&self, id: Value, method: &str, params: Value) -> Reply {
        self.send(
            BOTH,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .await
    }

    /// `tools/call name(args)`: the response message.
    pub async fn call(&self, id: Value, name: &str, args: Value) -> Value {
        let reply = self
            .request(id, "tools/call", json!({"name": name, "arguments": args}))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.last().clone()
    }

    /// Asserts the session still works: `echo` returns `text` for request `id`.
    pub async fn assert_echo(&self, id: Value, text_sent: &str) {
        let r = self.call(id, "echo", json!({"text": text_sent})).await;
        assert_eq!(text(&r), text_sent, "echo through the bridge");
    }

    /// `tools/call name(args)` answered as an event stream, read event by event; it asks for
    /// progress with the request id as token.
    pub async fn call_streaming(&self, id: Value, name: &str, args: Value) -> SseReader {
        let params = json!({"name": name, "arguments": args, "_meta": {"progressToken": id}});
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        let resp = within("POST", self.post(BOTH).json(&msg).send())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        SseReader::new(resp)
    }

    /// Opens the standalone GET stream.
    pub async fn open_stream(&self) -> SseReader {
        let resp = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", self.session.as_deref().unwrap())
            .send();
        let resp = within("GET", resp).await.unwrap();
        assert_eq!(resp.status(), 200);
        SseReader::new(resp)
    }

    /// DELETE the session.
    pub async fn delete(&self) -> u16 {
        let req = self
            .http
            .delete(&self.url)
            .header("mcp-session-id", self.session.as_deref().unwrap());
        within("DELETE", req.send())
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// The text of a tools/call result's first content item.
pub fn text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {response}"))
}

/// The `notifications/cancelled` the child has received, per the fixture's `cancellations`
/// tool, once there are at least `n` of them (asked again until then, under `WAIT`).
pub async fn cancellations_at_child(c: &Client, n: usize) -> Vec<Value> {
    within("cancellations at the child", async {
        loop {
            let r = c.call(json!("c"), "cancellations", json!({})).await;
            let seen: Vec<Value> = serde_json::from_str(text(&r)).expect("a JSON array");
            if seen.len() >= n {
                return seen;
            }
        }
    })
    .await
}

/// A client's answer to `sampling/createMessage` request `req`, saying `text`.
pub fn sampling_reply(req: &Value, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": req["id"], "result": {"role": "assistant", "model": "m",
        "content": {"type": "text", "text": text}}})
}

pub fn initialize_msg(id: Value, version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": version,
        "capabilities": {"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}},
        "clientInfo": {"name": "it", "version": "0"}}})
}

pub async fn read_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = within("body", resp.bytes()).await.unwrap();
    let sse = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let messages = if sse {
        parse_events(&String::from_utf8_lossy(&body))
    } else if body.is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)))]
    };
    Reply {
        status,
        headers,
        messages,
    }
}

/// One SSE event: its `event` name (empty for the default) and its data.
#[derive(Debug, Clone)]
pub struct Event {
    pub event: String,
    pub id: String,
    pub data: String,
}

/// The events of a complete SSE body (comments and empty events skipped).
pub fn raw_events(body: &str) -> Vec<Event> {
    body.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| -> Vec<&str> {
                block
                    .lines()
                    .filter_map(|l| l.strip_prefix(name))
                    .map(|v| v.strip_prefix(' ').unwrap_or(v))
                    .collect()
            };
            let data = field("data:");
            let event = field("event:").concat();
            let id = field("id:").concat();
            (!data.is_empty() || !event.is_empty()).then(|| Event {
                event,
                id,
                data: data.join("\n"),
            })
        })
        .collect()
}

/// The JSON messages of a complete SSE body (events without data, like priming, skipped).
pub fn parse_events(body: &str) -> Vec<Value> {
    raw_events(body)
        .into_iter()
        .filter(|e| !e.data.is_empty())
        .map(|e| serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("{err}: {}", e.data)))
        .collect()
}

/// Reads an SSE response event by event.
pub struct SseReader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    /// Bytes received and not yet parsed (a chunk may end inside a character).
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no event end.
    scanned: usize,
}

impl SseReader {
    /// The messages of a reply, one by one: the events of an event stream, or the one message
    /// of an `application/json` body (what a request answered at once gets when the client
    /// accepts both), read as a one-event stream.
    pub fn new(resp: reqwest::Response) -> SseReader {
        let json = resp
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let body = resp.bytes_stream();
        let stream = if json {
            futures_util::stream::once(async { Ok(bytes::Bytes::from_static(b"data: ")) })
                .chain(body)
                .chain(futures_util::stream::once(async {
                    Ok(bytes::Bytes::from_static(b"\n\n"))
                }))
                .boxed()
        } else {
            body.boxed()
        };
        SseReader {
            stream,
            buf: Vec::new(),
            scanned: 0,
        }
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        within("SSE event", async {
            loop {
                let from = self.scanned.saturating_sub(1);
                while let Some(pos) = memchr::memmem::find(&self.buf[from..], b"\n\n") {
                    let block: Vec<u8> = self.buf.drain(..from + pos + 2).collect();
                    self.scanned = 0;
                    let block = String::from_utf8(block).expect("an event is UTF-8");
                    if let Some(e) = raw_events(&block).pop() {
                        return Some(e);
                    }
                }
                self.scanned = self.buf.len();
                match self.stream.next().await {
                    Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                    _ => return None,
                }
            }
        })
        .await
    }

    /// The next JSON message, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let e = self.next_event().await?;
            if !e.data.is_empty() {
                return Some(
                    serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("{err}: {}", e.data)),
                );
            }
        }
    }

    /// The next message that is a request or notification with this method.
    pub async fn next_method(&mut self, method: &str) -> Value {
        loop {
            let m = self
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended before {method}"));
            if m["method"] == method {
                return m;
            }
        }
    }

    /// The next message that is a response with this id.
    pub async fn next_response(&mut self, id: &Value) -> Value {
        loop {
            let m = self
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended before response {id}"));
            if m.get("method").is_none() && m["id"] == *id {
                return m;
            }
        }
    }
}

/// Waits until the bridge closes `s` (end of stream or reset), discarding what it sends.
pub async fn closed_by_bridge(s: &mut tokio::net::TcpStream) {
    within("the bridge closes the connection", async {
        use tokio::io::AsyncReadExt as _;
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

/// A legacy HTTP+SSE client: one GET stream, POSTs to the endpoint it names.
pub struct LegacyClient {
    pub http: reqwest::Client,
    pub stream: SseReader,
    /// The absolute message URL from the `endpoint` event.
    pub endpoint: String,
}

impl LegacyClient {
    /// Opens the stream and reads the `endpoint` event.
    pub async fn open(bridge: &TestBridge) -> LegacyClient {
        Self::open_with(bridge, reqwest::Client::new()).await
    }

    /// `open`, with `http` for the stream and the POSTs.
    pub async fn open_with(bridge: &TestBridge, http: reqwest::Client) -> LegacyClient {
        let resp = within(
            "GET /sse",
            http.get(&bridge.sse_url)
                .header("accept", "text/event-stream")
                .send(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        let mut stream = SseReader::new(resp);
        let first = stream.next_event().await.expect("an endpoint event");
        assert_eq!(first.event, "endpoint");
        assert!(first.data.starts_with("/message?sessionId="), "{first:?}");
        LegacyClient {
            http,
            stream,
            endpoint: format!("{}{}", bridge.base, first.data),
        }
    }

    /// Opens and initializes a session.
    pub async fn start(bridge: &TestBridge) -> LegacyClient {
        let mut c = Self::open(bridge).await;
        assert_eq!(c.post(&initialize_msg(json!(0), "2024-11-05")).await, 202);
        let init = c.stream.next_response(&json!(0)).await;
        assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
        assert_eq!(
            c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await,
            202
        );
        c
    }

    /// POSTs one message; returns the status.
    pub async fn post(&self, msg: &Value) -> u16 {
        self.post_raw(serde_json::to_vec(msg).unwrap()).await.0
    }

    /// POSTs a raw body; returns the status and the body.
    pub async fn post_raw(&self, body: Vec<u8>) -> (u16, String) {
        let req = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .body(body);
        let resp = within("POST message", req.send()).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// `tools/call`, answered on the stream.
    pub async fn call(&mut self, id: Value, name: &str, args: Value) -> Value {
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}});
        assert_eq!(self.post(&msg).await, 202);
        self.stream.next_response(&id).await
    }
}

/// Headers for a raw request.
pub fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

/// A 2026-07-28 client: no session, `_meta` and the request-metadata headers on every request.
#[derive(Clone)]
pub struct ModernClient {
    pub http: reqwest::Client,
    pub url: String,
}

impl ModernClient {
    pub fn new(url: &str) -> ModernClient {
        ModernClient {
            http: reqwest::Client::new(),
            url: url.to_owned(),
        }
    }

    /// A request with the modern `_meta` laid under `params` (keys of `params._meta` win).
    pub fn message(id: Value, method: &str, mut params: Value) -> Value {
        let mut meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "it-modern", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "sampling": {}, "roots": {}},
        });
        if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
            for (k, v) in extra {
                meta[k] = v.clone();
            }
        }
        params["_meta"] = meta;
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    /// A POST of `msg` with the headers its body calls for.
    pub fn post(&self, msg: &Value, accept: &str) -> reqwest::RequestBuilder {
        let mut b = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .header("mcp-method", msg["method"].as_str().unwrap_or(""));
        if let Some(v) = msg["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"].as_str()
        {
            b = b.header("mcp-protocol-version", v);
        }
        let name = msg["params"]["name"]
            .as_str()
            .or(msg["params"]["uri"].as_str());
        if let Some(name) = name {
            b = b.header("mcp-name", name);
        }
        b.body(msg.to_string())
    }

    /// Sends `msg` and reads the whole reply.
    pub async fn send(&self, msg: &Value, accept: &str) -> Reply {
        let resp = within("modern POST", self.post(msg, accept).send())
            .await
            .unwrap();
        read_reply(resp).await
    }

    /// A request answered as an event stream, read whole.
    pub async fn request(&self, id: Value, method: &str, params: Value) -> Reply {
        self.send(&Self::message(id, method, params), BOTH).await
    }

    /// A tool call's response.
    pub async fn call(&self, id: Value, name: &str, args: Value) -> Value {
        let r = self
            .request(id, "tools/call", json!({"name": name, "arguments": args}))
            .await;
        r.last().clone()
    }
}

/// The first line a started bridge prints on stdout (its URL), without the newline.
pub fn url_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("the URL line");
    line.trim_end().to_owned()
}

/// The bridge's listening address.
pub fn addr_of(bridge: &TestBridge) -> std::net::SocketAddr {
    bridge
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the bridge's address")
}
