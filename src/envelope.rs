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
    meta: Option<&'a RawValue>,
    task: Option<IgnoredAny>,
    #[serde(rename = "requestState")]
    request_state: Option<IgnoredAny>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<IgnoredAny>,
    #[serde(rename = "io.modelcontextprotocol/subscriptionId")]
    subscription: Option<IgnoredAny>,
    #[serde(rename = "io.modelcontextprotocol/logLevel")]
    log_level: Option<IgnoredAny>,
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
    /// `params._meta` names a subscription (a 2026-07-28 listen's notification).
    pub subscription: bool,
    /// `params.task` is present: the request may create a task.
    pub task: bool,
    /// A response's `result`, as written.
    pub result: Option<&'a RawValue>,
    /// `params._meta`, as written.
    pub meta: Option<&'a RawValue>,
    /// `params._meta` asks for a log level (2026-07-28).
    pub log_level: bool,
    /// `params.requestState` is present (a retry of a 2026-07-28 call).
    pub request_state: bool,
    /// `params.name`, as written.
    pub name: Option<&'a RawValue>,
    /// `params.uri`, as written.
    pub uri: Option<&'a RawValue>,
}

/// The envelope of `bytes` when it is a plain JSON-RPC message; `None` sends it to the full
/// parse, which also explains what is wrong with it.
pub fn read(bytes: &[u8]) -> Option<Envelope<'_>> {
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
    let params = top.params;
    let raw_meta = params.as_ref().and_then(|p| p.meta);
    // `_meta` is small: read a second time for its keys.
    let meta: Option<Meta<'_>> = match raw_meta {
        Some(m) => Some(serde_json::from_str(m.get()).ok()?),
        None => None,
    };
    Some(Envelope {
        kind,
        id,
        method: method.unwrap_or(""),
        progress_token: meta.as_ref().and_then(|m| m.progress_token),
        modern: meta.as_ref().is_some_and(|m| m.version.is_some()),
        subscription: meta.as_ref().is_some_and(|m| m.subscription.is_some()),
        task: params.as_ref().is_some_and(|p| p.task.is_some()),
        result: top.result,
        meta: raw_meta,
        log_level: meta.as_ref().is_some_and(|m| m.log_level.is_some()),
        request_state: params.as_ref().is_some_and(|p| p.request_state.is_some()),
        name: params.as_ref().and_then(|p| p.name),
        uri: params.as_ref().and_then(|p| p.uri),
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
    let start = (part.get().as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.get().len()
}

/// `bytes` with each range replaced by its new text; ranges must not overlap.
pub fn splice(bytes: &[u8], edits: &mut [(Range<usize>, &[u8])]) -> Bytes {
    edits.sort_by_key(|(r, _)| r.start);
    let added: usize = edits.iter().map(|(_, new)| new.len()).sum();
    let mut out = BytesMut::with_capacity(bytes.len() + added);
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
    /// Where `params._meta` sits, and what to write there instead (`replace_meta`).
    meta: Option<(Range<usize>, Option<serde_json::Value>)>,
    /// `params.task` is present.
    pub task: bool,
}

/// A request that can take the fast path, by the era of its client.
#[derive(Debug)]
pub enum Fast {
    /// A session client's plain request.
    Session(RawRequest),
    /// A 2026-07-28 request of a `FORWARDED` method, neither a retry nor asking for logs;
    /// with the parts of it the stateless front checks (`jsonrpc`, `id`, `method`, and of
    /// `params` only `_meta`, `name` and `uri`).
    Stateless(RawRequest, serde_json::Value),
}

impl Fast {
    /// Reads `bytes` for the fast path; `None` sends it to the full parse.
    pub fn read(bytes: &Bytes) -> Option<Fast> {
        let env = read(bytes)?;
        if env.kind != Kind::Request || !FORWARDED.contains(&env.method) {
            return None;
        }
        if !env.modern {
            return Some(Fast::Session(RawRequest::from_envelope(bytes, &env)?));
        }
        if env.request_state || env.log_level {
            return None;
        }
        let mut params = serde_json::Map::new();
        for (key, raw) in [("_meta", env.meta), ("name", env.name), ("uri", env.uri)] {
            if let Some(raw) = raw {
                params.insert(key.into(), serde_json::from_str(raw.get()).ok()?);
            }
        }
        let checked = serde_json::json!({
            "jsonrpc": "2.0",
            "id": serde_json::from_str::<serde_json::Value>(env.id?.get()).ok()?,
            "method": env.method,
            "params": params,
        });
        Some(Fast::Stateless(
            RawRequest::from_envelope(bytes, &env)?,
            checked,
        ))
    }
}

impl RawRequest {
    /// `bytes` as a request the bridge may forward untouched but for its id and progress
    /// token: a plain session-era request of a `FORWARDED` method.
    pub fn new(bytes: &Bytes) -> Option<RawRequest> {
        match Fast::read(bytes)? {
            Fast::Session(req) => Some(req),
            Fast::Stateless(..) => None,
        }
    }

    fn from_envelope(bytes: &Bytes, env: &Envelope<'_>) -> Option<RawRequest> {
        let method = {
            let start = (env.method.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize);
            start..start + env.method.len()
        };
        Some(RawRequest {
            id: range_in(bytes, env.id?),
            method,
            progress: env.progress_token.map(|t| range_in(bytes, t)),
            meta: env.meta.map(|m| (range_in(bytes, m), None)),
            task: env.task,
            bytes: bytes.clone(),
        })
    }

    /// Has `params._meta` written as `meta` (which keeps the progress token, if any).
    pub fn replace_meta(&mut self, meta: serde_json::Value) {
        if let Some((_, with)) = &mut self.meta {
            *with = Some(meta);
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
        let text = id.to_string();
        if let Some((range, Some(meta))) = &self.meta {
            // The token lies inside `_meta`: it is written with the rest of it.
            let mut meta = meta.clone();
            if let (Some(_), Some(m)) = (&self.progress, meta.as_object_mut()) {
                m.insert("progressToken".into(), serde_json::json!(id));
            }
            let meta = serde_json::to_vec(&meta).unwrap_or_default();
            return splice(
                &self.bytes,
                &mut [(self.id.clone(), text.as_bytes()), (range.clone(), &meta)],
            );
        }
        let mut edits = [(self.id.clone(), text.as_bytes()), (0..0, b"".as_slice())];
        let n = match &self.progress {
            Some(p) => {
                edits[1] = (p.clone(), text.as_bytes());
                2
            }
            None => 1,
        };
        splice(&self.bytes, &mut edits[..n])
    }
}

/// The JSON value at `range` of `bytes` (read there before: it parses).
fn value_at(bytes: &[u8], range: &Range<usize>) -> serde_json::Value {
    serde_json::from_slice(&bytes[range.clone()]).unwrap_or_default()
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
