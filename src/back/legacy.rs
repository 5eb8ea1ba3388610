//! The legacy back: a child of the session era (revisions up to 2025-11-25). The bridge sends
//! it one `initialize`, and answers each session's `initialize` from the cached result.
//!
//! Version choice: the bridge asks the child for the newest revision it knows. Each session is
//! answered with the revision it asked for when the bridge supports it and the child speaks it
//! too (not newer than the child's), otherwise with the newest revision both the bridge and
//! the child speak. The bridge relays messages unchanged, so a session never uses a revision
//! newer than the child's.

use std::time::Duration;

use anyhow::bail;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};

use super::write_line;
use crate::lines::LineReader;

/// Session-based revisions the bridge serves, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest of them.
pub const LATEST_VERSION: &str = "2025-11-25";
/// Id of the bridge's own `initialize`; client requests get ids from here up.
pub const FIRST_CLIENT_ID: u64 = 1;

/// What the child answered to `initialize`.
#[derive(Debug, Clone)]
pub struct ChildInit {
    /// The `result` object (capabilities, serverInfo, instructions, ...).
    pub result: Value,
    /// The revision the child chose.
    pub protocol_version: String,
}

impl ChildInit {
    /// The child's `serverInfo.name`, for logs.
    pub fn server_name(&self) -> &str {
        let name = self.result.get("serverInfo").and_then(|i| i.get("name"));
        name.and_then(Value::as_str).unwrap_or("?")
    }

    /// The `initialize` result for one session that asked for `requested`.
    pub fn session_result(&self, requested: Option<&str>) -> Value {
        let mut result = self.result.clone();
        // `check_result` made it an object; the `if` keeps that a fact of this function too.
        if let Some(obj) = result.as_object_mut() {
            let version = negotiate(requested, &self.protocol_version);
            obj.insert("protocolVersion".into(), json!(version));
        }
        result
    }
}

/// Checks the child's `initialize` result before the bridge serves anything from it: an
/// object with a `protocolVersion` string, `capabilities` an object, and `serverInfo` (when
/// present) an object. Everything else about it is passed on to clients untouched.
///
/// # Errors
/// Names the first field that is missing or of the wrong type.
pub fn check_result(result: Value) -> anyhow::Result<ChildInit> {
    let Value::Object(obj) = &result else {
        bail!(
            "the MCP server's initialize result is not a JSON object: {}",
            preview(&result)
        );
    };
    let Some(version) = obj.get("protocolVersion").and_then(Value::as_str) else {
        bail!(
            "the MCP server's initialize result has no protocolVersion string: {}",
            preview(&result)
        );
    };
    for (field, required) in [("capabilities", true), ("serverInfo", false)] {
        match obj.get(field) {
            Some(Value::Object(_)) => {}
            None if !required => {}
            _ => bail!(
                "the MCP server's initialize result has no {field} object: {}",
                preview(&result)
            ),
        }
    }
    let protocol_version = version.to_owned();
    Ok(ChildInit {
        result,
        protocol_version,
    })
}

/// At most 200 characters of a value, for error messages.
fn preview(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The revision to answer a session with (see the module docs).
pub fn negotiate(requested: Option<&str>, child: &str) -> &'static str {
    let child_known = SUPPORTED_VERSIONS.iter().copied().rfind(|v| *v <= child);
    let ceiling = child_known.unwrap_or(SUPPORTED_VERSIONS[0]);
    match requested.and_then(|r| SUPPORTED_VERSIONS.iter().copied().find(|v| *v == r)) {
        Some(r) if r <= ceiling => r,
        _ => ceiling,
    }
}

/// Whether `v` is a revision this bridge serves.
pub fn is_supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

/// The bridge's `initialize`: the client capabilities any HTTP client may bring, so servers
/// that register features only for capable clients (sampling, elicitation, roots) offer them.
fn initialize_request() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST_VERSION,
            "capabilities": {
                "sampling": {},
                "elicitation": {},
                "roots": {"listChanged": true}
            },
            "clientInfo": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")}
        }
    })
}

/// Sends `initialize`, waits (bounded) for its result, then sends `notifications/initialized`.
///
/// # Errors
/// When the child exits, answers with an error, or does not answer within `timeout`.
pub async fn initialize<W, R>(
    stdin: &mut W,
    stdout: &mut LineReader<R>,
    timeout: Duration,
) -> anyhow::Result<ChildInit>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    write_line(stdin, &initialize_request()).await?;
    let result = tokio::time::timeout(timeout, await_result(stdin, stdout))
        .await
        .map_err(|_| {
            anyhow::anyhow!("the MCP server did not answer initialize within {timeout:?}")
        })??;
    let init = check_result(result)?;
    write_line(
        stdin,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await?;
    Ok(init)
}

async fn await_result<W, R>(stdin: &mut W, stdout: &mut LineReader<R>) -> anyhow::Result<Value>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let mut msg = super::await_response(stdin, stdout, &json!(0), "initialize").await?;
    if let Some(err) = msg.get("error") {
        bail!("the MCP server refused initialize: {err}");
    }
    Ok(msg
        .get_mut("result")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc;
    use crate::lines::Line;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn version_choice() {
        let cases = [
            // (requested, child, answered)
            (Some("2025-11-25"), "2025-11-25", "2025-11-25"),
            (Some("2025-06-18"), "2025-11-25", "2025-06-18"),
            (Some("2024-11-05"), "2025-11-25", "2024-11-05"),
            (Some("2025-11-25"), "2025-06-18", "2025-06-18"),
            (Some("2025-11-25"), "2024-11-05", "2024-11-05"),
            (Some("1999-01-01"), "2025-11-25", "2025-11-25"),
            (Some("2030-01-01"), "2025-06-18", "2025-06-18"),
            (None, "2025-03-26", "2025-03-26"),
            (Some("2025-06-18"), "2026-07-28", "2025-06-18"),
            (Some("2025-06-18"), "2020-01-01", "2024-11-05"),
        ];
        for (req, child, want) in cases {
            assert_eq!(negotiate(req, child), want, "{req:?} with child {child}");
        }
    }

    #[tokio::test]
    async fn initializes_answering_ping_and_skipping_noise() {
        let (mut to_child, mut child_in) = tokio::io::duplex(4096);
        let (mut child_out, from_child) = tokio::io::duplex(4096);
        let child = tokio::spawn(async move {
            let mut lines = LineReader::new(&mut child_in, 1 << 20);
            let Some(Line::Text(init)) = lines.next_line().await.unwrap() else {
                panic!()
            };
            let init: Value = serde_json::from_slice(&init).unwrap();
            assert_eq!(init["params"]["capabilities"]["sampling"], json!({}));
            child_out
                .write_all(
                    b"banner, not json\n{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}\n",
                )
                .await
                .unwrap();
            let Some(Line::Text(pong)) = lines.next_line().await.unwrap() else {
                panic!()
            };
            assert_eq!(
                serde_json::from_slice::<Value>(&pong).unwrap()["id"],
                json!("p")
            );
            child_out
                .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{}}}\n")
                .await
                .unwrap();
            let Some(Line::Text(done)) = lines.next_line().await.unwrap() else {
                panic!()
            };
            assert_eq!(
                jsonrpc::method(&serde_json::from_slice(&done).unwrap()),
                "notifications/initialized"
            );
        });
        let mut reader = LineReader::new(from_child, 1 << 20);
        let init = initialize(&mut to_child, &mut reader, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(init.protocol_version, "2025-06-18");
        assert_eq!(
            init.session_result(Some("2025-11-25"))["protocolVersion"],
            json!("2025-06-18")
        );
        child.await.unwrap();
    }

    #[test]
    fn unusable_initialize_results_are_refused_by_name() {
        let ok = json!({"protocolVersion": "2025-06-18", "capabilities": {}});
        let cases = [
            (json!([1, 2, 3]), "not a JSON object"),
            (json!("2025-06-18"), "not a JSON object"),
            (json!(null), "not a JSON object"),
            (json!(42), "not a JSON object"),
            (json!({"capabilities": {}}), "no protocolVersion"),
            (
                json!({"protocolVersion": 7, "capabilities": {}}),
                "no protocolVersion",
            ),
            (json!({"protocolVersion": "2025-06-18"}), "no capabilities"),
            (
                json!({"protocolVersion": "2025-06-18", "capabilities": [1]}),
                "no capabilities",
            ),
            (
                json!({"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": "x"}),
                "no serverInfo",
            ),
        ];
        for (result, why) in cases {
            let err = check_result(result.clone()).unwrap_err().to_string();
            assert!(err.contains(why), "{result}: {err}");
        }
        let init = check_result(ok).unwrap();
        assert_eq!(init.server_name(), "?");
        assert_eq!(init.session_result(None)["protocolVersion"], "2025-06-18");
    }

    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[ -~]{0,12}".prop_map(Value::String),
            Just(json!("2025-11-25")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            let keys = prop_oneof![
                Just("protocolVersion".to_owned()),
                Just("capabilities".to_owned()),
                Just("serverInfo".to_owned()),
                Just("name".to_owned()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, failure_persistence: None, ..Default::default() })]
        /// Whatever a child answers to `initialize`, after whatever noise, the bridge either
        /// refuses it with an error or serves every session from it: it never panics.
        #[test]
        fn any_initialize_result_is_refused_or_served(
            result in proptest::prop_oneof![
                any_json(),
                (any_json(), any_json()).prop_map(|(c, i)| json!({
                    "protocolVersion": "2025-06-18", "capabilities": c, "serverInfo": i})),
            ],
            noise in "[ -~]{0,40}",
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (mut to_child, _child_in) = tokio::io::duplex(1 << 16);
                let (mut child_out, from_child) = tokio::io::duplex(1 << 16);
                let answer = json!({"jsonrpc": "2.0", "id": 0, "result": result});
                let script = format!("{noise}\n[1,2]\n{{\"id\":0}}\n{answer}\n");
                child_out.write_all(script.as_bytes()).await.unwrap();
                let mut reader = LineReader::new(from_child, 1 << 20);
                match initialize(&mut to_child, &mut reader, Duration::from_secs(5)).await {
                    Ok(init) => {
                        for asked in [None, Some("2024-11-05"), Some("nonsense")] {
                            let r = init.session_result(asked);
                            assert!(r["protocolVersion"].is_string());
                        }
                        let _ = init.server_name();
                    }
                    Err(e) => assert!(e.to_string().contains("initialize"), "{e}"),
                }
            });
        }
    }

    #[tokio::test]
    async fn times_out_when_the_child_is_silent() {
        let (mut to_child, _child_in) = tokio::io::duplex(4096);
        let (_child_out, from_child) = tokio::io::duplex(4096);
        let mut reader = LineReader::new(from_child, 1 << 20);
        let err = initialize(&mut to_child, &mut reader, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("did not answer initialize"),
            "{err}"
        );
    }
}
