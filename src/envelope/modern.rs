//! A plain 2026-07-28 request read without building it: what the stateless front checks (the
//! revision, the capabilities, the method, the `Mcp-Name` parameter) and where its `_meta`
//! sits, so that the request can go to the child as its own bytes with the id spliced in.
//!
//! Like `read`, this answers only for the common shape and says `None` for anything else,
//! which then takes the full parse and gets the same answer as before: a `_meta` with keys
//! other than the bridge's four (a progress token, say), a log level (the child must be told
//! it), a retry with `requestState` or `inputResponses`, escapes in the checked strings,
//! duplicate keys, or a method the bridge answers or tracks itself.

use std::ops::Range;

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{plain_string, range_in, RawRequest, FORWARDED};

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    jsonrpc: &'a RawValue,
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    method: &'a RawValue,
    #[serde(borrow)]
    params: Params<'a>,
    #[serde(default)]
    result: Present,
    #[serde(default)]
    error: Present,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    uri: Option<&'a RawValue>,
    #[serde(borrow, rename = "_meta")]
    meta: &'a RawValue,
    #[serde(default)]
    task: Present,
    #[serde(default, rename = "requestState")]
    request_state: Present,
    #[serde(default, rename = "inputResponses")]
    input_responses: Present,
}

/// The `_meta` of a request the bridge forwards as it is: its own four keys and no others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta<'a> {
    #[serde(borrow, rename = "io.modelcontextprotocol/protocolVersion")]
    version: &'a RawValue,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
    capabilities: Capabilities,
    #[serde(default, rename = "io.modelcontextprotocol/clientInfo")]
    _client_info: Option<IgnoredAny>,
    #[serde(default, rename = "io.modelcontextprotocol/logLevel")]
    log_level: Present,
}

/// The client capabilities that decide which input requests it can answer.
#[derive(Deserialize)]
struct Capabilities {
    #[serde(default)]
    elicitation: Present,
    #[serde(default)]
    sampling: Present,
    #[serde(default)]
    roots: Present,
}

/// Whether a member is there, whatever its value (`null` included, as `Value::get` sees it).
#[derive(Default)]
pub struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// A plain 2026-07-28 request, borrowing from its bytes.
#[derive(Debug)]
pub struct ModernRequest<'a> {
    /// The revision its `_meta` names.
    pub version: &'a str,
    /// The method (one the bridge forwards as it is).
    pub method: &'a str,
    /// `params.name`, or `params.uri` for `resources/read`: what `Mcp-Name` must mirror.
    pub name: Option<&'a str>,
    /// The client declared `elicitation`: it can answer elicitation requests.
    pub elicitation: bool,
    /// The client declared `sampling`.
    pub sampling: bool,
    /// The client declared `roots`.
    pub roots: bool,
    /// The id as written.
    id: &'a RawValue,
    /// The request as forwarded, `_meta` included.
    request: RawRequest,
    /// Where its `_meta` value sits.
    meta: Range<usize>,
}

impl<'a> ModernRequest<'a> {
    /// `bytes` as a plain modern request, or `None` for the full path.
    pub fn read(bytes: &'a Bytes) -> Option<ModernRequest<'a>> {
        if memchr::memchr2(b'\n', b'\r', bytes).is_some() {
            return None;
        }
        let top: Top<'a> = serde_json::from_slice(bytes).ok()?;
        let odd = top.result.0 || top.error.0 || !super::is_plain_id(top.id.get());
        if top.jsonrpc.get() != "\"2.0\"" || odd {
            return None;
        }
        let method = plain_string(top.method.get())?;
        let p = &top.params;
        if !FORWARDED.contains(&method) || p.request_state.0 || p.input_responses.0 {
            return None;
        }
        let meta: Meta<'a> = serde_json::from_str(p.meta.get()).ok()?;
        if meta.log_level.0 {
            return None;
        }
        let named = if method == "resources/read" {
            p.uri
        } else {
            p.name
        };
        // A name that is not a plain string: the full path says what is wrong.
        let name = match named {
            Some(raw) => Some(plain_string(raw.get())?),
            None => None,
        };
        Some(ModernRequest {
            version: plain_string(meta.version.get())?,
            method,
            name,
            elicitation: meta.capabilities.elicitation.0,
            sampling: meta.capabilities.sampling.0,
            roots: meta.capabilities.roots.0,
            meta: range_in(bytes, p.meta),
            id: top.id,
            request: RawRequest::at(bytes, top.id, method, None, p.task.0),
        })
    }

    /// The id as the client wrote it.
    pub fn client_id(&self) -> serde_json::Value {
        self.request.client_id()
    }

    /// The id as written, for an error about the request after it was handed on.
    pub fn raw_id(&self) -> &'a RawValue {
        self.id
    }

    /// The request to forward: as it is to a modern child; to a session-era child with an
    /// empty `_meta` (it holds only the bridge's four keys, which such a child must not see).
    pub fn into_request(self, legacy: bool) -> RawRequest {
        let mut request = self.request;
        if legacy {
            request.emptied = Some(self.meta);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":null,"roots":{}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}"#;

    fn call(params: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":"q1","method":"tools/call","params":{params}}}"#
        ))
    }

    #[test]
    fn a_plain_call_is_read_and_forwarded_with_its_meta_emptied_for_a_legacy_child() {
        let body = call(&format!(
            r#"{{"name":"echo","arguments":{{"text":"hi"}},"_meta":{META}}}"#
        ));
        let req = ModernRequest::read(&body).unwrap();
        assert_eq!(
            (req.version, req.method, req.name),
            ("2026-07-28", "tools/call", Some("echo"))
        );
        assert_eq!(
            (req.elicitation, req.sampling, req.roots),
            (false, true, true)
        );
        assert_eq!(req.client_id(), json!("q1"));
        let legacy = req.into_request(true);
        let line: Value = serde_json::from_slice(&legacy.line_for(9)).unwrap();
        assert_eq!(
            line,
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                   "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": {}}})
        );
        let modern = ModernRequest::read(&body).unwrap().into_request(false);
        let line: Value = serde_json::from_slice(&modern.line_for(9)).unwrap();
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(line["params"], sent["params"]);
        assert_eq!(line["id"], 9);
    }

    #[test]
    fn the_uri_is_the_name_of_a_read() {
        let body = Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{"uri":"file:///a","name":"x","_meta":{META}}}}}"#
        ));
        assert_eq!(ModernRequest::read(&body).unwrap().name, Some("file:///a"));
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_parse() {
        let with_meta = |meta: &str| call(&format!(r#"{{"name":"echo","_meta":{meta}}}"#));
        let cases = [
            // Other `_meta` keys, a log level, no capabilities, a revision that is no string.
            with_meta(r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":1}"#),
            with_meta(r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"debug"}"#),
            with_meta(r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#),
            with_meta(r#"{"io.modelcontextprotocol/protocolVersion":7,"io.modelcontextprotocol/clientCapabilities":{}}"#),
            // A retry, an escaped name, a duplicate key, no `_meta`.
            call(&format!(r#"{{"name":"echo","requestState":"s","_meta":{META}}}"#)),
            call(&format!(r#"{{"name":"ec\u0068o","_meta":{META}}}"#)),
            call(&format!(r#"{{"name":"echo","name":"x","_meta":{META}}}"#)),
            call(r#"{"name":"echo"}"#),
            // Methods the bridge answers or tracks, a notification, line breaks.
            Bytes::from(format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{"_meta":{META}}}}}"#
            )),
            Bytes::from(format!(
                r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"_meta":{META}}}}}"#
            )),
            Bytes::from(format!(
                "{{\"jsonrpc\":\"2.0\",\n\"id\":1,\"method\":\"tools/list\",\"params\":{{\"_meta\":{META}}}}}"
            )),
        ];
        for c in cases {
            assert!(
                ModernRequest::read(&c).is_none(),
                "{}",
                String::from_utf8_lossy(&c)
            );
        }
    }
}
