//! The fast path: a JSON-RPC message read for its envelope only. `read` scans a message once
//! and keeps what routing needs (kind, id, method, the `_meta` keys the bridge rewrites), with
//! where those values sit in the bytes; the payload (`params`, `result`, `error`) is scanned but
//! never built. A message the bridge only re-addresses then travels as its own bytes with the
//! new id spliced in: one copy, and no allocation per field or number.
//!
//! `read` answers only for plain messages and says `None` for anything unusual (`id` null or
//! absent on a response, escapes in the method, duplicate keys, an `id` that is an object);
//! those take the full parse in `jsonrpc`, which decides every case the same way as before.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::jsonrpc::Kind;

pub mod modern;

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, rename = "_meta")]
    meta: Option<Meta<'a>>,
    task: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<IgnoredAny>,
}

/// A plain message's envelope, borrowing from its bytes.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// Request, notification or response.
    pub kind: Kind,
    /// The `id` as written (a number or a string); `None` for a notification.
    pub id: Option<&'a RawValue>,
    /// The method, without quotes (empty for a response).
    pub method: &'a str,
    /// `params._meta.progressToken` as written.
    pub progress_token: Option<&'a RawValue>,
    /// `params._meta` names a 2026-07-28 revision: a stateless request.
    pub modern: bool,
    /// `params.task` is present: the request may create a task.
    pub task: bool,
    /// A response's `result`, as written.
    pub result: Option<&'a RawValue>,
}

/// The envelope of `bytes` when it is a plain JSON-RPC message; `None` sends it to the full
/// parse, which also explains what is wrong with it.
pub fn read(bytes: &[u8]) -> Option<Envelope<'_>> {
    // Line breaks between tokens (a pretty-printed body) would break the child's framing, and
    // a carriage return a client's event stream: those messages are written anew, compactly.
    if memchr::memchr2(b'\n', b'\r', bytes).is_some() {
        return None;
    }
    let top: Top<'_> = serde_json::from_slice(bytes).ok()?;
    if top.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        return None;
    }
    let id = match top.id {
        Some(id) if is_plain_id(id.get()) => Some(id),
        Some(_) => return None,
        None => None,
    };
    let method = match top.method {
        Some(m) => Some(plain_string(m.get())?),
        None => None,
    };
    let kind = match (method, id) {
        (Some(_), Some(_)) => Kind::Request,
        (Some(_), None) => Kind::Notification,
        (None, Some(_)) if top.result.is_some() != top.error.is_some() => Kind::Response,
        _ => return None,
    };
    let (meta, task) = match top.params {
        Some(p) => (p.meta, p.task.is_some()),
        None => (None, false),
    };
    Some(Envelope {
        kind,
        id,
        method: method.unwrap_or(""),
        progress_token: meta.as_ref().and_then(|m| m.progress_token),
        modern: meta.as_ref().is_some_and(|m| m.version.is_some()),
        task,
        result: top.result,
    })
}

/// A number, or a string without escapes (what clients send; the rest takes the full parse).
fn is_plain_id(raw: &str) -> bool {
    match raw.as_bytes().first() {
        Some(b'"') => plain_string(raw).is_some(),
        Some(b) => b.is_ascii_digit() || *b == b'-',
        None => false,
    }
}

/// The contents of a JSON string written without escapes.
fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// The non-negative integer a raw id holds, as the bridge numbers requests.
pub fn bridge_id(raw: &RawValue) -> Option<u64> {
    let s = raw.get();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Where `part` (a value borrowed from `whole` by `read`) sits in `whole`.
pub fn range_in(whole: &[u8], part: &RawValue) -> Range<usize> {
    str_range(whole, part.get())
}

/// Where `part` (text borrowed from `whole`) sits in `whole`.
fn str_range(whole: &[u8], part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// `bytes` with each range replaced by its new text; ranges must not overlap.
pub fn splice(bytes: &[u8], edits: &mut [(Range<usize>, &[u8])]) -> Bytes {
    edits.sort_by_key(|(r, _)| r.start);
    let added: usize = edits.iter().map(|(_, new)| new.len()).sum();
    let removed: usize = edits.iter().map(|(r, _)| r.len()).sum();
    // The exact length: a full buffer becomes `Bytes` without a second allocation.
    let mut out = BytesMut::with_capacity((bytes.len() + added).saturating_sub(removed));
    let mut at = 0;
    for (range, new) in edits.iter() {
        out.put_slice(&bytes[at..range.start]);
        out.put_slice(new);
        at = range.end;
    }
    out.put_slice(&bytes[at..]);
    out.freeze()
}

/// The methods a session client's request may take the fast path with: the bridge forwards
/// them as they are (it answers or tracks others itself: `ping` for a modern child,
/// `logging/setLevel`, subscriptions, tasks, `initialize`).
const FORWARDED: [&str; 8] = [
    "tools/call",
    "tools/list",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// A client request on the fast path: its bytes, and where its id and progress token sit.
#[derive(Debug)]
pub struct RawRequest {
    bytes: Bytes,
    id: Range<usize>,
    method: Range<usize>,
    progress: Option<Range<usize>>,
    /// `params.task` is present.
    pub task: bool,
    /// A value replaced by `{}` in the child's line (a modern request's `_meta`, for a
    /// session-era child).
    emptied: Option<Range<usize>>,
}

impl RawRequest {
    /// `bytes` as a request the bridge may forward untouched but for its id and progress
    /// token: a plain session-era request of a `FORWARDED` method.
    pub fn new(bytes: &Bytes) -> Option<RawRequest> {
        let env = read(bytes)?;
        if env.kind != Kind::Request || env.modern || !FORWARDED.contains(&env.method) {
            return None;
        }
        Some(RawRequest::at(
            bytes,
            env.id?,
            env.method,
            env.progress_token,
            env.task,
        ))
    }

    /// `bytes` forwarded with its id (and progress token) at the places these values, borrowed
    /// from it, sit.
    fn at(
        bytes: &Bytes,
        id: &RawValue,
        method: &str,
        progress: Option<&RawValue>,
        task: bool,
    ) -> RawRequest {
        RawRequest {
            id: range_in(bytes, id),
            method: str_range(bytes, method),
            progress: progress.map(|t| range_in(bytes, t)),
            task,
            bytes: bytes.clone(),
            emptied: None,
        }
    }

    /// The whole request, parsed (for the full path).
    pub fn parse(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or_default()
    }

    /// The method.
    pub fn method(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.method.clone()]).unwrap_or("")
    }

    /// The id as the client wrote it.
    pub fn client_id(&self) -> serde_json::Value {
        value_at(&self.bytes, &self.id)
    }

    /// The client's progress token, when it asked for progress.
    pub fn progress_token(&self) -> Option<serde_json::Value> {
        self.progress.as_ref().map(|r| value_at(&self.bytes, r))
    }

    /// The line for the child: bridge id `id` in place of the id and of the progress token.
    pub fn line_for(&self, id: u64) -> Bytes {
        let mut digits = itoa::Buffer::new();
        let id = digits.format(id);
        let mut edits = [
            (self.id.clone(), id.as_bytes()),
            (0..0, b"".as_slice()),
            (0..0, b"".as_slice()),
        ];
        let mut n = 1;
        for (range, new) in [(&self.progress, id.as_bytes()), (&self.emptied, b"{}")] {
            if let Some(range) = range {
                edits[n] = (range.clone(), new);
                n += 1;
            }
        }
        splice(&self.bytes, &mut edits[..n])
    }
}

/// The JSON value at `range` of `bytes` (read there before: it parses).
fn value_at(bytes: &[u8], range: &Range<usize>) -> serde_json::Value {
    value_in(&bytes[range.clone()])
}

/// A raw value (an id, read before: it parses) as a `Value`.
pub fn value_of(raw: &RawValue) -> serde_json::Value {
    value_in(raw.get().as_bytes())
}

fn value_in(raw: &[u8]) -> serde_json::Value {
    // The usual id, a small integer, without the parser's buffer.
    if let Some(n) = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return n.into();
    }
    serde_json::from_slice(raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(s: &str) -> Option<Kind> {
        read(s.as_bytes()).map(|e| e.kind)
    }

    #[test]
    fn kinds_agree_with_the_full_classification() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":"a","result":{"content":[]}}"#,
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"no"}}"#,
            r#"{"id":7,"jsonrpc":"2.0","result":{}}"#,
        ];
        for c in cases {
            let v: serde_json::Value = serde_json::from_str(c).unwrap();
            assert_eq!(kind_of(c), crate::jsonrpc::classify(&v).ok(), "{c}");
        }
    }

    #[test]
    fn unusual_messages_are_left_to_the_full_parse() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call"}"#,
            r#"{"jsonrpc":"2.0","id":"a\"b","method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"_meta":5}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#,
            "{\"jsonrpc\":\"2.0\",\n\"id\":1,\"method\":\"m\"}",
            "{\"jsonrpc\":\"2.0\",\r\"id\":1,\"result\":{}}",
            "not json",
        ];
        for c in cases {
            assert!(read(c.as_bytes()).is_none(), "{c}");
        }
    }

    #[test]
    fn meta_keys_are_found_even_when_escaped() {
        let e = read(
            br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"\u005fmeta":{"progressToken":"t"},"task":{}}}"#,
        )
        .unwrap();
        assert_eq!(e.progress_token.map(RawValue::get), Some("\"t\""));
        assert!(e.task && !e.modern);
        let e = read(br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#).unwrap();
        assert!(e.modern);
    }

    #[test]
    fn ids_and_tokens_are_spliced_in_place() {
        let line = br#"{"jsonrpc":"2.0","id":"abc","method":"m","params":{"_meta":{"progressToken":12},"x":"id"}}"#;
        let e = read(line).unwrap();
        let mut edits = [
            (range_in(line, e.progress_token.unwrap()), b"99".as_slice()),
            (range_in(line, e.id.unwrap()), b"5".as_slice()),
        ];
        let out = splice(line, &mut edits);
        assert_eq!(
            &out[..],
            br#"{"jsonrpc":"2.0","id":5,"method":"m","params":{"_meta":{"progressToken":99},"x":"id"}}"#
        );
    }

    #[test]
    fn a_forwarded_request_gets_the_bridge_id_and_keeps_the_rest() {
        let body = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"echo","_meta":{"progressToken":"p"}}}"#,
        );
        let req = RawRequest::new(&body).unwrap();
        assert_eq!(req.method(), "tools/call");
        assert_eq!(req.client_id(), serde_json::json!("x"));
        assert_eq!(req.progress_token(), Some(serde_json::json!("p")));
        let line = req.line_for(17);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["id"], 17);
        assert_eq!(v["params"]["_meta"]["progressToken"], 17);
        assert_eq!(v["params"]["name"], "echo");
        for other in [
            r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"info"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        ] {
            assert!(RawRequest::new(&Bytes::from(other)).is_none(), "{other}");
        }
    }

    #[test]
    fn bridge_ids_are_plain_non_negative_integers() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert_eq!(bridge_id(&raw("42")), Some(42));
        for s in ["-1", "1.0", "1e3", "\"1\"", "18446744073709551616"] {
            assert_eq!(bridge_id(&raw(s)), None, "{s}");
        }
    }
}
