//! The modern back: a child of revision 2026-07-28. There is no handshake: the bridge asks
//! `server/discover` once, and every request it forwards carries the caller's `_meta`
//! (protocol version, client capabilities and info, log level). Session clients are answered
//! at `initialize` from the `DiscoverResult` (`Discovery::legacy_face`).

use std::time::Duration;

use anyhow::bail;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};

use super::legacy::{self, ChildInit};
use super::write_line;
use crate::lines::LineReader;

/// The stateless revision the bridge speaks.
pub const VERSION: &str = "2026-07-28";
/// `_meta` key: the revision of a request.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the caller's capabilities.
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: the caller's name and version.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key: the least severe log level the caller wants to hear.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key (in results): the server's name and version.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// JSON-RPC error: the requested revision is not supported (`data.supported` lists those that
/// are).
pub const UNSUPPORTED_VERSION: i64 = -32022;
/// JSON-RPC error: a capability the request needs was not declared.
pub const MISSING_CAPABILITY: i64 = -32021;

/// The id of the bridge's `server/discover`: a string, so it never collides with the numeric
/// ids of the legacy handshake or of client requests.
const DISCOVER_ID: &str = "bridge-discover";

/// What the probe found.
#[derive(Debug)]
pub enum Probe {
    /// The child answered `server/discover`.
    Modern(Discovery),
    /// The child is of the session era; why the bridge thinks so.
    Legacy(String),
}

/// A modern child's answer to `server/discover`.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The `DiscoverResult`.
    pub result: Value,
    /// The revision the bridge speaks with the child.
    pub version: String,
}

impl Discovery {
    /// The `initialize` result session clients get: the child's capabilities, name and
    /// instructions, under the newest session-era revision (each session then negotiates its
    /// own, as with a legacy child).
    pub fn legacy_face(&self) -> ChildInit {
        let server_info = self
            .result
            .get("_meta")
            .and_then(|m| m.get(META_SERVER_INFO))
            .filter(|i| i.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"name": "unknown", "version": "0"}));
        let mut result = json!({
            "protocolVersion": legacy::LATEST_VERSION,
            "capabilities": self.result.get("capabilities").filter(|c| c.is_object()).cloned().unwrap_or_else(|| json!({})),
            "serverInfo": server_info,
        });
        if let Some(text) = self.result.get("instructions").filter(|i| i.is_string()) {
            result["instructions"] = text.clone();
        }
        ChildInit {
            result,
            protocol_version: legacy::LATEST_VERSION.into(),
        }
    }
}

/// The capabilities the bridge declares for itself: those any of its clients may bring.
fn bridge_capabilities() -> Value {
    json!({"sampling": {}, "elicitation": {}, "roots": {}})
}

fn bridge_info() -> Value {
    json!({"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")})
}

fn discover_request() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": DISCOVER_ID,
        "method": "server/discover",
        "params": {"_meta": {
            META_VERSION: VERSION,
            META_CAPABILITIES: bridge_capabilities(),
            META_CLIENT_INFO: bridge_info(),
        }}
    })
}

/// Asks a child `server/discover`. A `DiscoverResult`, or a recognised modern error, means
/// modern; any other answer, or silence for `timeout`, means legacy (never keyed to one error
/// code: 2026-07-28 `basic/versioning`, "Backward Compatibility"). With `required`
/// (`--child-era modern`) legacy is an error instead.
///
/// # Errors
/// When the child exits, is modern but speaks no revision the bridge knows, or is required to
/// be modern and is not.
pub async fn discover<W, R>(
    stdin: &mut W,
    stdout: &mut LineReader<R>,
    timeout: Duration,
    required: bool,
) -> anyhow::Result<Probe>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    write_line(stdin, &discover_request()).await?;
    let probe = match tokio::time::timeout(timeout, answer(stdin, stdout)).await {
        Ok(answer) => judge(answer?)?,
        Err(_) => Probe::Legacy(format!("no answer to server/discover within {timeout:?}")),
    };
    match probe {
        Probe::Legacy(why) if required => {
            bail!("--child-era modern, but the MCP server is not modern: {why}")
        }
        probe => Ok(probe),
    }
}

/// The answer to the probe (see `super::await_response`).
async fn answer<W, R>(stdin: &mut W, stdout: &mut LineReader<R>) -> anyhow::Result<Value>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    super::await_response(stdin, stdout, &json!(DISCOVER_ID), "server/discover").await
}

/// What an answer to `server/discover` says about the child.
fn judge(answer: Value) -> anyhow::Result<Probe> {
    if let Some(result) = answer.get("result") {
        let versions = result.get("supportedVersions").and_then(Value::as_array);
        let Some(versions) = versions else {
            return Ok(Probe::Legacy(
                "server/discover answered without supportedVersions".into(),
            ));
        };
        if !versions.iter().any(|v| v.as_str() == Some(VERSION)) {
            bail!(
                "the MCP server is modern but supports only {} (the bridge speaks {VERSION})",
                Value::Array(versions.clone())
            );
        }
        return Ok(Probe::Modern(Discovery {
            result: result.clone(),
            version: VERSION.into(),
        }));
    }
    let error = answer.get("error");
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let supported = error
        .and_then(|e| e.get("data"))
        .and_then(|d| d.get("supported"))
        .and_then(Value::as_array);
    match (code, supported) {
        (Some(UNSUPPORTED_VERSION), Some(versions)) => bail!(
            "the MCP server is modern but supports only {} (the bridge speaks {VERSION})",
            Value::Array(versions.clone())
        ),
        _ => Ok(Probe::Legacy(format!(
            "server/discover answered with an error that is not a modern one ({})",
            error.map_or_else(|| "no error".into(), Value::to_string)
        ))),
    }
}

/// The bridge's own `subscriptions/listen` for its session clients in front of a modern
/// child: every list change, and updates of `uris`.
pub fn listen_request(uris: &[String]) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "subscriptions/listen",
        "params": {
            "notifications": {
                "toolsListChanged": true,
                "promptsListChanged": true,
                "resourcesListChanged": true,
                "resourceSubscriptions": uris,
            },
            "_meta": {
                META_VERSION: VERSION,
                META_CAPABILITIES: bridge_capabilities(),
                META_CLIENT_INFO: bridge_info(),
            }
        }
    })
}

/// What a session client told the bridge about itself at `initialize`, rendered as the
/// `_meta` a modern child needs on each of its requests.
#[derive(Debug, Clone, Default)]
pub struct CallerMeta {
    /// Its capabilities.
    pub capabilities: Value,
    /// Its name and version.
    pub client_info: Value,
}

/// Adds the modern `_meta` to a request forwarded to a modern child: the revision, the
/// caller's capabilities and info, and the log level it asked for (if any). Keys the caller
/// set itself (its progress token) stay.
pub fn stamp(msg: &mut Value, version: &str, caller: &CallerMeta, log_level: Option<&str>) {
    let Some(obj) = msg.as_object_mut() else {
        return;
    };
    let params = obj
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(params) = params.as_object_mut() else {
        return;
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    meta.insert(META_VERSION.into(), json!(version));
    let capabilities = if caller.capabilities.is_object() {
        caller.capabilities.clone()
    } else {
        json!({})
    };
    meta.insert(META_CAPABILITIES.into(), capabilities);
    if caller.client_info.is_object() {
        meta.insert(META_CLIENT_INFO.into(), caller.client_info.clone());
    }
    if let Some(level) = log_level {
        meta.insert(META_LOG_LEVEL.into(), json!(level));
    }
}

/// Removes the modern `_meta` keys from a request (for a session-era child); keys of the
/// caller's own, such as its progress token, stay.
pub fn unstamp(msg: &mut Value) {
    let meta = msg
        .get_mut("params")
        .and_then(|p| p.get_mut("_meta"))
        .and_then(Value::as_object_mut);
    if let Some(meta) = meta {
        for key in [
            META_VERSION,
            META_CAPABILITIES,
            META_CLIENT_INFO,
            META_LOG_LEVEL,
        ] {
            meta.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_to_the_probe_are_judged_by_their_shape_not_one_code() {
        let modern = json!({"id": DISCOVER_ID, "result": {"supportedVersions": ["2026-07-28"], "capabilities": {}}});
        assert!(matches!(judge(modern).unwrap(), Probe::Modern(_)));
        for legacy in [
            json!({"id": DISCOVER_ID, "error": {"code": -32601, "message": "Method not found"}}),
            json!({"id": DISCOVER_ID, "error": {"code": -32600, "message": "not initialized"}}),
            json!({"id": DISCOVER_ID, "error": {"code": -32602, "message": "bad params"}}),
            json!({"id": DISCOVER_ID, "error": {"code": -32022}}),
            json!({"id": DISCOVER_ID, "result": {"capabilities": {}}}),
            json!({"id": DISCOVER_ID, "result": "odd"}),
        ] {
            assert!(
                matches!(judge(legacy.clone()).unwrap(), Probe::Legacy(_)),
                "{legacy}"
            );
        }
        let other_version = json!({"id": DISCOVER_ID, "error": {"code": -32022, "data": {"supported": ["2027-01-01"]}}});
        assert!(judge(other_version)
            .unwrap_err()
            .to_string()
            .contains("2027-01-01"));
        let no_common = json!({"id": DISCOVER_ID, "result": {"supportedVersions": ["2027-01-01"]}});
        assert!(judge(no_common).is_err());
    }

    #[test]
    fn the_legacy_face_carries_capabilities_info_and_instructions() {
        let d = Discovery {
            result: json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                           "instructions": "be nice",
                           "_meta": {META_SERVER_INFO: {"name": "m", "version": "1"}}}),
            version: VERSION.into(),
        };
        let init = d.legacy_face();
        assert_eq!(init.result["capabilities"], json!({"tools": {}}));
        assert_eq!(init.result["serverInfo"]["name"], "m");
        assert_eq!(init.result["instructions"], "be nice");
        assert_eq!(
            init.session_result(Some("2025-06-18"))["protocolVersion"],
            "2025-06-18"
        );
        // Whatever the child put there, the face is usable.
        let odd = Discovery {
            result: json!({"capabilities": 5, "_meta": {META_SERVER_INFO: "x"}}),
            version: VERSION.into(),
        };
        assert!(legacy::check_result(odd.legacy_face().result).is_ok());
    }

    #[test]
    fn stamping_adds_the_callers_meta_and_keeps_its_own_keys() {
        let caller = CallerMeta {
            capabilities: json!({"elicitation": {}}),
            client_info: json!({"name": "c", "version": "1"}),
        };
        let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                             "params": {"name": "echo", "_meta": {"progressToken": 7}}});
        stamp(&mut msg, VERSION, &caller, Some("info"));
        let meta = &msg["params"]["_meta"];
        assert_eq!(meta["progressToken"], 7);
        assert_eq!(meta[META_VERSION], VERSION);
        assert_eq!(meta[META_CAPABILITIES], json!({"elicitation": {}}));
        assert_eq!(meta[META_CLIENT_INFO]["name"], "c");
        assert_eq!(meta[META_LOG_LEVEL], "info");
        unstamp(&mut msg);
        assert_eq!(msg["params"]["_meta"], json!({"progressToken": 7}));
        let mut bare = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        stamp(&mut bare, VERSION, &CallerMeta::default(), None);
        assert_eq!(bare["params"]["_meta"][META_CAPABILITIES], json!({}));
        assert!(bare["params"]["_meta"].get(META_LOG_LEVEL).is_none());
    }
}
