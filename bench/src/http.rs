//! One HTTP/1.1 keep-alive connection per caller (or an HTTP/2 connection shared by many
//! streams), JSON-RPC reply parsing and an SSE parser.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::http2;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

/// Why a call did not count as a success.
#[derive(Debug)]
pub enum Fail {
    /// Connect or I/O failure, an unexpected status or an unparsable reply.
    Http(String),
    /// No reply within the request timeout.
    Timeout,
    /// A JSON-RPC error, or a tool result with `isError: true`.
    Rpc(String),
    /// A reply with the wrong id or the wrong text.
    Mismatch(String),
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Http(m) => write!(f, "http: {m}"),
            Fail::Timeout => write!(f, "timeout"),
            Fail::Rpc(m) => write!(f, "json-rpc error: {m}"),
            Fail::Mismatch(m) => write!(f, "mismatch: {m}"),
        }
    }
}

fn http(what: &str, e: impl fmt::Display) -> Fail {
    Fail::Http(format!("{what}: {e}"))
}

/// A client connection: HTTP/1.1 (kept alive, one request at a time), or HTTP/2 with prior
/// knowledge, whose handles (`share`) send requests on streams of the one connection.
pub struct Conn {
    tx: Sender,
    /// HTTP/1.1: the `Host`. HTTP/2: `http://addr`, the URI's authority (`:authority`).
    host: String,
    /// Requests sent through this handle.
    pub sent: usize,
}

enum Sender {
    H1(SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, Fail> {
        let (tx, conn) = http1::handshake(connect(addr).await?)
            .await
            .map_err(|e| http("handshake", e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            tx: Sender::H1(tx),
            host: addr.to_string(),
            sent: 0,
        })
    }

    /// An HTTP/2 connection (prior knowledge).
    pub async fn open_h2(addr: SocketAddr) -> Result<Conn, Fail> {
        let (tx, conn) = http2::handshake(TokioExecutor::new(), connect(addr).await?)
            .await
            .map_err(|e| http("HTTP/2 handshake", e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            tx: Sender::H2(tx),
            host: format!("http://{addr}"),
            sent: 0,
        })
    }

    /// Opens a connection of the kind asked for.
    pub async fn open_as(addr: SocketAddr, h2: bool) -> Result<Conn, Fail> {
        match h2 {
            true => Conn::open_h2(addr).await,
            false => Conn::open(addr).await,
        }
    }

    /// HTTP/2: another handle on the same connection.
    pub fn share(&self) -> Option<Conn> {
        match &self.tx {
            Sender::H1(_) => None,
            Sender::H2(tx) => Some(Conn {
                tx: Sender::H2(tx.clone()),
                host: self.host.clone(),
                sent: 0,
            }),
        }
    }

    /// Sends one request and returns the response head (the body is still to be read).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response<Incoming>, Fail> {
        self.sent += 1;
        match &mut self.tx {
            Sender::H1(tx) => {
                let req = request(method, &self.host, path, headers, body)?;
                tx.ready().await.map_err(|e| http("connection", e))?;
                tx.send_request(req).await.map_err(|e| http("send", e))
            }
            Sender::H2(tx) => {
                let uri = format!("{}{path}", self.host);
                let mut req = request(method, "", &uri, headers, body)?;
                req.headers_mut().remove("host");
                tx.ready().await.map_err(|e| http("connection", e))?;
                tx.send_request(req).await.map_err(|e| http("send", e))
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<TokioIo<TcpStream>, Fail> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| http("connect", e))?;
    let _ = tcp.set_nodelay(true);
    Ok(TokioIo::new(tcp))
}

fn request(
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Fail> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(body)).map_err(|e| http("request", e))
}

/// Reads a whole body.
pub async fn body_bytes(resp: Response<Incoming>) -> Result<Bytes, Fail> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(|e| http("body", e))?
        .to_bytes())
}

fn snippet(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(160)]).into_owned()
}

/// Reads the JSON-RPC response a POST was answered with: a 200 with either one
/// `application/json` body or a `text/event-stream` body whose events carry it.
pub async fn read_reply(resp: Response<Incoming>) -> Result<Value, Fail> {
    let status = resp.status();
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = body_bytes(resp).await?;
    if status != StatusCode::OK {
        return Err(Fail::Http(format!("HTTP {status}: {}", snippet(&body))));
    }
    if !sse {
        return serde_json::from_slice(&body).map_err(|e| http("JSON body", e));
    }
    if let Some(msg) = response_in_events(&body) {
        return Ok(msg);
    }
    Err(Fail::Http(format!(
        "event stream without a response: {}",
        snippet(&body)
    )))
}

/// The first JSON-RPC response among the events of a complete event-stream body. An event's
/// data is parsed where it lies in the body (joined only when it spans several `data:` lines),
/// as a client that reads a whole body would: a multi-MiB reply is not copied twice more
/// before the parse, which would charge the bench's own copying to the bridge.
fn response_in_events(body: &[u8]) -> Option<Value> {
    let (mut event, mut data): (&[u8], Vec<&[u8]>) = (b"", Vec::new());
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for end in ends {
        let line = body.get(start..end)?;
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            let message = event.is_empty() || event == b"message";
            let msg = match data.as_slice() {
                [] => None,
                [one] => serde_json::from_slice::<Value>(one).ok(),
                many => serde_json::from_slice::<Value>(&many.join(&b'\n')).ok(),
            };
            let is_response = |m: &Value| {
                m.get("id").is_some() && (m.get("result").is_some() || m.get("error").is_some())
            };
            if let Some(msg) = msg.filter(|m| message && is_response(m)) {
                return Some(msg);
            }
            (event, data) = (b"", Vec::new());
            continue;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match field {
            b"event" => event = value,
            b"data" => data.push(value),
            _ => {} // comments (keep-alives), id, retry
        }
    }
    None
}

/// Checks a `tools/call` reply of `echo`: the id sent, no error, the text sent.
pub fn check_echo(msg: &Value, id: u64, text: &str) -> Result<(), Fail> {
    if msg["id"].as_u64() != Some(id) {
        return Err(Fail::Mismatch(format!(
            "sent id {id}, got id {}",
            msg["id"]
        )));
    }
    if let Some(e) = msg.get("error") {
        return Err(Fail::Rpc(e.to_string()));
    }
    let result = &msg["result"];
    if result["isError"] == Value::Bool(true) {
        return Err(Fail::Rpc(format!("isError: {}", result["content"])));
    }
    match result["content"][0]["text"].as_str() {
        Some(t) if t == text => Ok(()),
        Some(t) => Err(Fail::Mismatch(format!(
            "id {id}: sent a text of {} bytes, got another of {} bytes",
            text.len(),
            t.len()
        ))),
        None => Err(Fail::Mismatch(format!("id {id}: no text in {result}"))),
    }
}

/// One server-sent event.
pub struct Event {
    pub event: String,
    pub data: String,
}

impl Event {
    /// The JSON-RPC response this event carries, if it carries one.
    pub fn response(&self) -> Option<Value> {
        if !(self.event.is_empty() || self.event == "message") || self.data.is_empty() {
            return None;
        }
        let msg: Value = serde_json::from_str(&self.data).ok()?;
        let is_response =
            msg.get("id").is_some() && (msg.get("result").is_some() || msg.get("error").is_some());
        is_response.then_some(msg)
    }
}

/// Splits a byte stream into events (blank-line separated blocks of `field: value` lines).
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Where the search for the next blank line resumes.
    scanned: usize,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        // Only line feeds can end a block: they are found with memchr, so that a multi-MiB
        // event costs the bench little next to the bridge it measures.
        let from = self.scanned.max(1).min(self.buf.len());
        for i in memchr::memchr_iter(b'\n', &self.buf[from..]).map(|off| from + off) {
            // A block ends at a line feed that ends an empty line ("\n\n" or "\n\r\n").
            let empty_line = self.buf[i - 1] == b'\n'
                || (i >= 2 && self.buf[i - 1] == b'\r' && self.buf[i - 2] == b'\n');
            if empty_line && i > start {
                if let Some(ev) = parse_block(&self.buf[start..=i]) {
                    events.push(ev);
                }
                start = i + 1;
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        events
    }
}

fn parse_block(block: &[u8]) -> Option<Event> {
    let text = std::str::from_utf8(block).ok()?;
    let mut event = String::new();
    let mut data = String::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = value.to_owned(),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {} // comments (keep-alives), id, retry
        }
    }
    (!event.is_empty() || !data.is_empty()).then_some(Event { event, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_body_gives_the_response_among_its_events() {
        let body = b": keep-alive\n\nid: 1-0\ndata: \n\nevent: message\ndata: {\"method\":\"n\"}\n\nid: 1-1\r\nevent: message\r\ndata: {\"id\":3,\r\ndata: \"result\":{}}\r\n\r\n";
        let msg = response_in_events(body).unwrap();
        assert_eq!(msg["id"], 3);
        let other = b"event: endpoint\ndata: {\"id\":1,\"result\":{}}\n\n";
        assert!(response_in_events(other).is_none(), "not a message event");
        assert!(
            response_in_events(b"data: {\"id\":1,\"result\":{}}").is_none(),
            "no blank line"
        );
    }

    #[test]
    fn events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.push(b": keep-alive\n\nevent: endpoint\nda").is_empty());
        let evs = p.push(b"ta: /message?sessionId=1\n\nid: 1-2\nevent: message\ndata: {}\n\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].event, "endpoint");
        assert_eq!(evs[0].data, "/message?sessionId=1");
        assert_eq!(evs[1].data, "{}");
        let evs = p.push(b"data: {\"id\":3,\"result\":{}}\r\n\r\n");
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].response().unwrap()["id"], 3);
    }

    #[test]
    fn block_ends_found_whatever_the_chunking() {
        let stream: &[u8] = b"\n: ping\n\ndata: {\"id\":1,\"result\":{}}\n\r\ndata: x\ndata: y\n\n";
        for cut in 0..=stream.len() {
            let mut p = SseParser::default();
            let mut evs = p.push(&stream[..cut]);
            evs.extend(p.push(&stream[cut..]));
            let data: Vec<&str> = evs.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, [r#"{"id":1,"result":{}}"#, "x\ny"], "cut at {cut}");
        }
    }

    #[test]
    fn a_reply_counts_only_with_the_id_and_text_sent() {
        let ok = serde_json::json!({"jsonrpc": "2.0", "id": 7,
            "result": {"content": [{"type": "text", "text": "s1-w0-7"}], "isError": false}});
        assert!(check_echo(&ok, 7, "s1-w0-7").is_ok());
        assert!(matches!(
            check_echo(&ok, 8, "s1-w0-7"),
            Err(Fail::Mismatch(_))
        ));
        assert!(matches!(
            check_echo(&ok, 7, "s2-w0-7"),
            Err(Fail::Mismatch(_))
        ));
        let err = serde_json::json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32052, "message": "busy"}});
        assert!(matches!(check_echo(&err, 7, "x"), Err(Fail::Rpc(_))));
        let tool_err = serde_json::json!({"jsonrpc": "2.0", "id": 7,
            "result": {"content": [{"type": "text", "text": "x"}], "isError": true}});
        assert!(matches!(check_echo(&tool_err, 7, "x"), Err(Fail::Rpc(_))));
    }
}
