//! Tool parameters mirrored into `Mcp-Param-{Name}` headers (revision 2026-07-28: an
//! `x-mcp-header` property in a tool's `inputSchema`; streamable-http, "Custom Headers from Tool
//! Parameters"). A load balancer may route on such a header while the server acts on the body,
//! so a server that reads the body must hold the two to each other. The child cannot see HTTP
//! headers: the bridge is that server. For a stateless `tools/call`, every annotated parameter
//! with a value needs its header, a header needs its value, and the two must agree (the Base64
//! sentinel decoded first, integers compared as numbers); else 400 with -32020.
//!
//! The annotations are learned, per server, from the `tools/list` answers that pass through
//! the bridge, from any client and either era. Before the first call of a tool it does not
//! know, the stateless front lists the tools itself (`listed` says it has, since the last
//! `notifications/tools/list_changed`), so that a bridge that never saw a client list them
//! still checks. A tool without annotations is not checked: its headers are forwarded and
//! otherwise ignored, as the revision asks of a server that does not recognize them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::Value;

/// Tools remembered at most (a child that lists more is checked for the first this many).
const MAX_TOOLS: usize = 10_000;
/// How deep an annotated property may sit in its schema (`properties` chains).
const MAX_DEPTH: usize = 8;

/// One annotated parameter: its header and the property path to its value in `arguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mirror {
    /// `Mcp-Param-{Name}`, as the schema spells it (header names compare without case).
    header: String,
    path: Vec<String>,
}

/// The annotations of one server's tools, shared by its children's routers (which learn
/// them) and its HTTP front (which checks calls against them).
#[derive(Clone, Default)]
pub struct ParamHeaders(Arc<Known>);

#[derive(Default)]
struct Known {
    tools: Mutex<HashMap<String, Arc<[Mirror]>>>,
    /// The bridge listed every page itself since the child last said its list changed.
    listed: AtomicBool,
    /// Some tool has annotations (`tools` is not empty): without, a call costs no lock.
    annotated: AtomicBool,
}

impl std::fmt::Debug for ParamHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParamHeaders")
    }
}

impl ParamHeaders {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<[Mirror]>>> {
        // Lock: held for one map operation, never across an await.
        self.0.tools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the tools were listed whole (by the bridge) since the list last changed.
    pub fn listed(&self) -> bool {
        self.0.listed.load(Ordering::Acquire)
    }

    /// The bridge has listed the tools (or tried: a child that cannot list them is not asked
    /// again before its list changes).
    pub fn mark_listed(&self) {
        self.0.listed.store(true, Ordering::Release);
    }

    /// The child said its tool list changed: the next call of a tool not known lists them again.
    pub fn list_changed(&self) {
        self.0.listed.store(false, Ordering::Release);
    }

    /// Takes in the tools of a `tools/list` response (one page of it): a listed tool's
    /// annotations replace what was known of it.
    pub fn learn(&self, response: &Value) {
        let Some(tools) = response["result"]["tools"].as_array() else {
            return;
        };
        let mut known = self.lock();
        for tool in tools {
            let Some(name) = tool["name"].as_str() else {
                continue;
            };
            let mut mirrors = Vec::new();
            collect(&tool["inputSchema"], &mut Vec::new(), &mut mirrors);
            if mirrors.is_empty() {
                known.remove(name);
            } else if known.len() < MAX_TOOLS || known.contains_key(name) {
                known.insert(name.to_owned(), mirrors.into());
            }
        }
        self.0.annotated.store(!known.is_empty(), Ordering::Release);
    }

    /// Whether calls of `tool` have headers to check.
    pub fn knows(&self, tool: &str) -> bool {
        self.0.annotated.load(Ordering::Acquire) && self.lock().contains_key(tool)
    }

    /// Checks a call of `tool` with `arguments` against the request's headers.
    ///
    /// # Errors
    /// The `HeaderMismatch` message naming the first header that fails.
    pub fn check(&self, headers: &HeaderMap, tool: &str, arguments: &Value) -> Result<(), String> {
        if !self.0.annotated.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(mirrors) = self.lock().get(tool).cloned() else {
            return Ok(());
        };
        mirrors
            .iter()
            .try_for_each(|m| check_one(headers, m, arguments))
    }
}

/// Walks `properties` chains only (the revision allows an annotation nowhere else).
fn collect(schema: &Value, path: &mut Vec<String>, out: &mut Vec<Mirror>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    if path.len() >= MAX_DEPTH {
        return;
    }
    for (key, property) in properties {
        path.push(key.clone());
        if let Some(name) = property.get("x-mcp-header").and_then(Value::as_str) {
            if is_token(name) {
                out.push(Mirror {
                    header: format!("Mcp-Param-{name}"),
                    path: path.clone(),
                });
            }
        }
        collect(property, path, out);
        path.pop();
    }
}

/// RFC 9110 `token`: what a header name may be made of.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_one(headers: &HeaderMap, m: &Mirror, arguments: &Value) -> Result<(), String> {
    let mut sent = headers.get_all(m.header.as_str()).iter();
    let (raw, again) = (sent.next(), sent.next());
    if again.is_some() {
        return Err(format!(
            "Header mismatch: {} appears more than once",
            m.header
        ));
    }
    let path = m.path.join(".");
    let body = m
        .path
        .iter()
        .try_fold(arguments, |v, key| v.get(key))
        .filter(|v| !v.is_null());
    let (raw, body) = match (raw, body) {
        (None, None) => return Ok(()),
        (Some(_), None) => {
            return Err(format!(
                "Header mismatch: {} was sent, but the arguments have no {path}",
                m.header
            ))
        }
        (None, Some(_)) => {
            return Err(format!(
                "Header mismatch: {} is required, the arguments have a {path}",
                m.header
            ))
        }
        (Some(raw), Some(body)) => (raw, body),
    };
    let invalid = || format!("Header mismatch: {} holds invalid characters", m.header);
    let value = raw.to_str().map_err(|_| invalid())?;
    let value = decode(value).ok_or_else(|| {
        format!(
            "Header mismatch: {} holds an invalid Base64 value",
            m.header
        )
    })?;
    if matches(&value, body) {
        return Ok(());
    }
    Err(format!(
        "Header mismatch: {} {value:?} does not match the arguments' {path} {body}",
        m.header
    ))
}

/// Whether a header's (decoded) value stands for `body`: strings exactly, booleans as `true` /
/// `false`, numbers by value (`42.0` is `42`).
fn matches(header: &str, body: &Value) -> bool {
    match body {
        Value::String(s) => header == s,
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        Value::Number(n) => {
            matches!((header.parse::<f64>(), n.as_f64()), (Ok(h), Some(b)) if h.is_finite() && h == b)
        }
        _ => false,
    }
}

/// A header value, decoded when it uses the Base64 sentinel `=?base64?…?=` (for `Mcp-Name` and
/// `Mcp-Param-*`); `None` when the Base64 or its UTF-8 is invalid.
pub fn decode(value: &str) -> Option<Cow<'_, str>> {
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(Cow::Borrowed(value));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn known() -> ParamHeaders {
        let p = ParamHeaders::default();
        p.learn(&json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "sql", "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "limit": {"type": "integer", "x-mcp-header": "Limit"},
                "dry": {"type": "boolean", "x-mcp-header": "Dry"},
                "target": {"type": "object", "properties": {
                    "tenant": {"type": "string", "x-mcp-header": "Tenant"}}},
                "list": {"type": "array", "items": {"type": "object", "properties": {
                    "x": {"type": "string", "x-mcp-header": "NotReachable"}}}},
                "bad": {"type": "string", "x-mcp-header": "Bad Name"},
                "query": {"type": "string"}}}},
            {"name": "plain", "inputSchema": {"type": "object", "properties": {
                "q": {"type": "string"}}}}
        ]}}));
        p
    }

    /// Header names and raw values.
    type Pairs<'a> = Vec<(&'a str, &'a [u8])>;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            let name = axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            h.append(name, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn learns_only_statically_reachable_token_annotations() {
        let p = known();
        let mirrors = p.lock().get("sql").cloned().unwrap();
        let mut got: Vec<(&str, String)> = mirrors
            .iter()
            .map(|m| (m.header.as_str(), m.path.join(".")))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("Mcp-Param-Dry", "dry".to_string()),
                ("Mcp-Param-Limit", "limit".into()),
                ("Mcp-Param-Region", "region".into()),
                ("Mcp-Param-Tenant", "target.tenant".into()),
            ]
        );
        assert!(p.knows("sql"));
        assert!(!p.knows("plain") && !p.knows("unlisted"));
        // A later list without the annotations forgets them.
        p.learn(&json!({"result": {"tools": [{"name": "sql", "inputSchema": {}}]}}));
        assert!(!p.knows("sql"));
    }

    #[test]
    fn calls_are_held_to_their_headers() {
        let p = known();
        let args = json!({"region": "us-west1", "limit": 42, "dry": false,
                          "target": {"tenant": "Hello, 世界"}, "query": "SELECT 1"});
        let all: Vec<(&str, &[u8])> = vec![
            ("mcp-param-region", b"us-west1"),
            ("MCP-PARAM-LIMIT", b"42.0"),
            ("mcp-param-dry", b"false"),
            ("mcp-param-tenant", b"=?base64?SGVsbG8sIOS4lueVjA==?="),
        ];
        assert_eq!(p.check(&headers(&all), "sql", &args), Ok(()));
        let without = |name: &str| -> Vec<(&str, &[u8])> {
            all.iter()
                .copied()
                .filter(|(k, _)| !k.eq_ignore_ascii_case(name))
                .collect()
        };
        let with = |name: &'static str, value: &'static [u8]| -> Vec<(&str, &[u8])> {
            let mut h = without(name);
            h.push((name, value));
            h
        };
        let mut twice = all.clone();
        twice.push(("mcp-param-region", b"us-west1"));
        let cases: Vec<(&str, Pairs, Value, &str)> = vec![
            (
                "header omitted, value in the body",
                without("mcp-param-region"),
                args.clone(),
                "is required",
            ),
            (
                "another value",
                with("mcp-param-region", b"eu-west1"),
                args.clone(),
                "does not match",
            ),
            (
                "another number",
                with("mcp-param-limit", b"43"),
                args.clone(),
                "does not match",
            ),
            (
                "a boolean spelled otherwise",
                with("mcp-param-dry", b"False"),
                args.clone(),
                "does not match",
            ),
            (
                "bad Base64 padding",
                with("mcp-param-tenant", b"=?base64?SGVsbG8=x?="),
                args.clone(),
                "invalid Base64",
            ),
            (
                "Base64 outside the alphabet",
                with("mcp-param-tenant", b"=?base64?SGV*bG8=?="),
                args.clone(),
                "invalid Base64",
            ),
            (
                "non-ASCII bytes",
                with("mcp-param-region", b"us-w\xc3\xa9st1"),
                args.clone(),
                "invalid characters",
            ),
            ("sent twice", twice, args.clone(), "more than once"),
            (
                "header without a value in the body",
                all.clone(),
                json!({"limit": 42, "dry": false, "target": {"tenant": "Hello, 世界"}}),
                "no region",
            ),
        ];
        for (what, h, args, want) in cases {
            let got = p.check(&headers(&h), "sql", &args);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(want)),
                "{what}: {got:?}"
            );
        }
        // A null value is no value: the header must then be left out, and is not expected.
        let null_region = json!({"region": null, "limit": 42, "dry": false,
                                 "target": {"tenant": "Hello, 世界"}});
        assert_eq!(
            p.check(&headers(&without("mcp-param-region")), "sql", &null_region),
            Ok(())
        );
        // The sentinel taken literally when it is incomplete.
        let literal = json!({"region": "=?base64?abc"});
        let h = headers(&[("mcp-param-region", b"=?base64?abc")]);
        assert_eq!(p.check(&h, "sql", &literal), Ok(()));
        // Tools without annotations, or never listed: headers are not looked at.
        assert_eq!(p.check(&headers(&all), "plain", &json!({})), Ok(()));
        assert_eq!(p.check(&HeaderMap::new(), "unlisted", &args), Ok(()));
    }
}
