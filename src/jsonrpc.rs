//! The JSON-RPC 2.0 envelope, schema-agnostic: what kind of message a value is, its id and
//! method, and the few rewrites a bridge makes (ids, progress tokens, cancelled request ids).
//! Every other field passes through untouched; this module never models the MCP schema.

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid JSON-RPC message.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// The HTTP request was not acceptable (missing header, wrong content type, ...).
pub const BAD_REQUEST: i64 = -32000;
/// The `Mcp-Session-Id` names no live session (same code as the official SDKs).
pub const SESSION_NOT_FOUND: i64 = -32001;
/// The child process exited before answering, or is not running.
pub const CHILD_EXITED: i64 = -32050;
/// A request from the child that the bridge cannot route to exactly one session.
pub const UNROUTABLE_SERVER_REQUEST: i64 = -32051;
/// The session has too many requests in flight.
pub const TOO_MANY_REQUESTS: i64 = -32052;
/// The bridge is shutting down.
pub const SHUTTING_DOWN: i64 = -32053;
/// No answer came within `--request-timeout`.
pub const REQUEST_TIMEOUT: i64 = -32054;

/// What a JSON-RPC message is, decided from its envelope alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and `id`: expects a response.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `id` and `result` or `error`, no `method`.
    Response,
}

/// Why a JSON value is not a JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a JSON object.
    NotAnObject,
    /// `jsonrpc` is missing or not `"2.0"`.
    Version,
    /// `method` is present but not a string.
    MethodType,
    /// `id` is not a string, a number or null.
    IdType,
    /// Neither `method`, nor `id` with `result`/`error`.
    Shape,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalid::NotAnObject => "a JSON-RPC message must be a JSON object",
            Invalid::Version => "\"jsonrpc\" must be \"2.0\"",
            Invalid::MethodType => "\"method\" must be a string",
            Invalid::IdType => "\"id\" must be a string or a number",
            Invalid::Shape => "not a request, notification or response",
        })
    }
}

/// Classifies one JSON value as a JSON-RPC message.
///
/// # Errors
/// Returns why the value is not a JSON-RPC 2.0 message.
pub fn classify(v: &Value) -> Result<Kind, Invalid> {
    let obj = v.as_object().ok_or(Invalid::NotAnObject)?;
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Invalid::Version);
    }
    let id = obj.get("id");
    if let Some(id) = id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Err(Invalid::IdType);
        }
    }
    match obj.get("method") {
        Some(Value::String(_)) => match id {
            Some(Value::Null) | None => Ok(Kind::Notification),
            Some(_) => Ok(Kind::Request),
        },
        Some(_) => Err(Invalid::MethodType),
        None if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) => {
            Ok(Kind::Response)
        }
        None => Err(Invalid::Shape),
    }
}

/// The `method` of a request or notification (empty for a response).
pub fn method(v: &Value) -> &str {
    v.get("method").and_then(Value::as_str).unwrap_or("")
}

/// The `id` of a message, `Null` when absent.
pub fn id(v: &Value) -> Value {
    v.get("id").cloned().unwrap_or(Value::Null)
}

/// Replaces the message's `id`, returning the previous one (`Null` when absent).
pub fn replace_id(v: &mut Value, new: Value) -> Value {
    match v.as_object_mut() {
        Some(obj) => obj.insert("id".into(), new).unwrap_or(Value::Null),
        None => Value::Null,
    }
}

/// A bridge id as sent to the child: only non-negative integers are ours.
pub fn as_bridge_id(id: &Value) -> Option<u64> {
    id.as_u64()
}

fn params_mut(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.get_mut("params")?.as_object_mut()
}

/// `params._meta.progressToken`, when present.
pub fn progress_token(v: &Value) -> Option<&Value> {
    v.get("params")?.get("_meta")?.get("progressToken")
}

/// Replaces `params._meta.progressToken` (which must exist), returning the old token.
pub fn replace_progress_token(v: &mut Value, new: Value) -> Option<Value> {
    let meta = params_mut(v)?.get_mut("_meta")?.as_object_mut()?;
    meta.get_mut("progressToken")
        .map(|slot| std::mem::replace(slot, new))
}

/// Replaces `params.<key>` of a notification (e.g. `progressToken` of `notifications/progress`,
/// `requestId` of `notifications/cancelled`), returning the old value.
pub fn replace_param(v: &mut Value, key: &str, new: Value) -> Option<Value> {
    params_mut(v)?
        .get_mut(key)
        .map(|slot| std::mem::replace(slot, new))
}

/// The `_meta` key naming the subscription a notification belongs to: the id of the
/// `subscriptions/listen` request that opened it (2026-07-28), rewritten like any id.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// `params._meta.<key>`, when present.
pub fn meta<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get("params")?.get("_meta")?.get(key)
}

/// Replaces `params._meta.<key>` (which must exist), returning the old value.
pub fn replace_meta(v: &mut Value, key: &str, new: Value) -> Option<Value> {
    let meta = params_mut(v)?.get_mut("_meta")?.as_object_mut()?;
    meta.get_mut(key).map(|slot| std::mem::replace(slot, new))
}

/// `params.<key>`, when present.
pub fn param<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get("params")?.get(key)
}

/// A JSON-RPC error response as a value.
pub fn error_value(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A JSON-RPC success response as a value.
pub fn result_value(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A notification `notifications/cancelled` for `request_id`.
pub fn cancelled(request_id: Value, reason: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
           "params": {"requestId": request_id, "reason": reason}})
}

/// The bridge id of a JSON-RPC *response* too long to parse, judged from its first and last
/// bytes: the members before its first nested value or after its last one are the top-level
/// ones (serializers put `id` on either side of `result`). `None` unless the head shows a
/// `result` or `error` member and no `method` (a request's id is the child's, not ours).
pub fn oversized_response_id(head: &[u8], tail: &[u8]) -> Option<u64> {
    let head = head.trim_ascii_start().strip_prefix(b"{")?;
    let head_members = &head[..head
        .iter()
        .position(|b| matches!(b, b'{' | b'['))
        .unwrap_or(head.len())];
    let has = |seg: &[u8], key: &[u8]| seg.windows(key.len()).any(|w| w == key);
    if has(head_members, b"\"method\"")
        || !(has(head_members, b"\"result\"") || has(head_members, b"\"error\""))
    {
        return None;
    }
    let tail = tail.trim_ascii_end().strip_suffix(b"}")?;
    let tail_members = &tail[tail
        .iter()
        .rposition(|b| matches!(b, b'}' | b']'))
        .map_or(0, |i| i + 1)..];
    numeric_member(head_members, b"\"id\"").or_else(|| numeric_member(tail_members, b"\"id\""))
}

/// The unsigned integer value of member `key` in a run of `"k":v` pairs.
fn numeric_member(seg: &[u8], key: &[u8]) -> Option<u64> {
    let at = seg.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = seg[at..]
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    let digits = &rest[..rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len())];
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Serializes a message to bytes (no trailing newline).
pub fn to_bytes(v: &Value) -> Bytes {
    // Serializing a `Value` cannot fail: its map keys are always strings.
    Bytes::from(serde_json::to_vec(v).expect("a serde_json::Value always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_envelopes() {
        let cases: &[(Value, Result<Kind, Invalid>)] = &[
            (
                json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
                Ok(Kind::Request),
            ),
            (
                json!({"jsonrpc":"2.0","id":"a","method":"x"}),
                Ok(Kind::Request),
            ),
            (
                json!({"jsonrpc":"2.0","method":"n"}),
                Ok(Kind::Notification),
            ),
            (
                json!({"jsonrpc":"2.0","id":null,"method":"n"}),
                Ok(Kind::Notification),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{}}),
                Ok(Kind::Response),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"error":{"code":1}}),
                Ok(Kind::Response),
            ),
            (
                json!({"jsonrpc":"2.0","id":null,"error":{}}),
                Ok(Kind::Response),
            ),
            (json!([1]), Err(Invalid::NotAnObject)),
            (json!("x"), Err(Invalid::NotAnObject)),
            (json!({"id":1,"method":"x"}), Err(Invalid::Version)),
            (
                json!({"jsonrpc":"1.0","id":1,"method":"x"}),
                Err(Invalid::Version),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":5}),
                Err(Invalid::MethodType),
            ),
            (
                json!({"jsonrpc":"2.0","id":{},"method":"x"}),
                Err(Invalid::IdType),
            ),
            (json!({"jsonrpc":"2.0","id":1}), Err(Invalid::Shape)),
            (json!({"jsonrpc":"2.0"}), Err(Invalid::Shape)),
        ];
        for (v, want) in cases {
            assert_eq!(classify(v), *want, "{v}");
        }
    }

    #[test]
    fn id_rewrite_keeps_type_and_other_fields() {
        let mut v = json!({"jsonrpc":"2.0","id":"7","method":"tools/call","params":{"x":[1,2]}});
        let old = replace_id(&mut v, json!(42));
        assert_eq!(old, json!("7"));
        assert_eq!(v["id"], json!(42));
        replace_id(&mut v, old);
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":"7","method":"tools/call","params":{"x":[1,2]}})
        );
    }

    #[test]
    fn progress_token_rewrite() {
        let mut v = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
                           "params":{"name":"p","_meta":{"progressToken":"tok","other":1}}});
        assert_eq!(progress_token(&v), Some(&json!("tok")));
        assert_eq!(replace_progress_token(&mut v, json!(9)), Some(json!("tok")));
        assert_eq!(v["params"]["_meta"], json!({"progressToken":9,"other":1}));
        let mut none = json!({"jsonrpc":"2.0","id":1,"method":"x","params":{}});
        assert_eq!(progress_token(&none), None);
        assert_eq!(replace_progress_token(&mut none, json!(1)), None);
        assert_eq!(none["params"], json!({}));
    }

    #[test]
    fn bridge_ids_are_non_negative_integers() {
        assert_eq!(as_bridge_id(&json!(5)), Some(5));
        assert_eq!(as_bridge_id(&json!("5")), None);
        assert_eq!(as_bridge_id(&json!(-1)), None);
        assert_eq!(as_bridge_id(&json!(1.5)), None);
    }

    #[test]
    fn ids_of_oversized_responses() {
        let cases: &[(&str, &str, Option<u64>)] = &[
            (
                r#"{"jsonrpc":"2.0","id":17,"result":{"content":[{"text":"xxx"#,
                r#"xxx"}]}}"#,
                Some(17),
            ),
            (
                r#"{"result":{"content":[{"id":3,"text":"xx"#,
                r#"xx"}]},"jsonrpc":"2.0","id":42}"#,
                Some(42),
            ),
            (
                r#" {"id": 8 ,"error":{"code":1,"message":"xx"#,
                r#"xx"}}"#,
                Some(8),
            ),
            // A request from the child: its id is the child's, never ours.
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{"x":"xx"#,
                r#"xx"}}"#,
                None,
            ),
            (
                r#"{"method":"x","params":{"a":"xx"#,
                r#"xx"},"jsonrpc":"2.0","id":5}"#,
                None,
            ),
            // A nested id is not the response's.
            (r#"{"result":{"items":[{"id":9,"x":"xx"#, r#"xx"}]}}"#, None),
            (
                r#"{"jsonrpc":"2.0","id":"s","result":{"x":"xx"#,
                r#"xx"}}"#,
                None,
            ),
            ("garbage", "garbage", None),
        ];
        for (head, tail, want) in cases {
            assert_eq!(
                oversized_response_id(head.as_bytes(), tail.as_bytes()),
                *want,
                "{head} … {tail}"
            );
        }
    }

    #[test]
    fn error_bodies() {
        let e = error_value(json!("a"), PARSE_ERROR, "bad");
        assert_eq!(e["error"]["code"], json!(-32700));
        assert_eq!(e["id"], json!("a"));
        assert_eq!(classify(&e), Ok(Kind::Response));
    }
}
