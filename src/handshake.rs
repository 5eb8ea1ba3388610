//! The single `initialize` the bridge sends a (session-based) child, and the answers it gives
//! each HTTP session from the cached result.
//!
//! Version choice: the bridge asks the child for the newest revision it knows. Each session is
//! answered with the revision it asked for when the bridge supports it and the child speaks it
//! too (not newer than the child's), otherwise with the newest revision both the bridge and
//! the child speak. The bridge relays messages unchanged, so a session never uses a revision
//! newer than the child's.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::{debug, warn};

use crate::jsonrpc::{self, Kind};
use crate::lines::{Line, LineReader};

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
        self.result["serverInfo"]["name"].as_str().unwrap_or("?")
    }

    /// The `initialize` result for one session that asked for `requested`.
    pub fn session_result(&self, requested: Option<&str>) -> Value {
        let mut result = self.result.clone();
        result["protocolVersion"] = json!(negotiate(requested, &self.protocol_version));
        result
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
    let protocol_version = result["protocolVersion"]
        .as_str()
        .unwrap_or(LATEST_VERSION)
        .to_owned();
    write_line(
        stdin,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await?;
    Ok(ChildInit {
        result,
        protocol_version,
    })
}

async fn await_result<W, R>(stdin: &mut W, stdout: &mut LineReader<R>) -> anyhow::Result<Value>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    loop {
        let line = match stdout
            .next_line()
            .await
            .context("reading the MCP server's stdout")?
        {
            Some(Line::Text(l)) => l,
            Some(Line::TooLong(n)) => {
                warn!(
                    bytes = n,
                    "child line over the limit during initialize; skipped"
                );
                continue;
            }
            None => bail!("the MCP server exited (closed its stdout) before answering initialize"),
        };
        let Ok(mut msg) = serde_json::from_slice::<Value>(&line) else {
            warn!(line = %String::from_utf8_lossy(&line), "child printed a line that is not JSON; skipped");
            continue;
        };
        match jsonrpc::classify(&msg) {
            Ok(Kind::Response) if msg["id"] == json!(0) => {
                if let Some(err) = msg.get("error") {
                    bail!("the MCP server refused initialize: {err}");
                }
                return Ok(msg["result"].take());
            }
            Ok(Kind::Request) => {
                // Only ping is allowed before initialization completes.
                let id = jsonrpc::id(&msg);
                let reply = if jsonrpc::method(&msg) == "ping" {
                    jsonrpc::result_value(id, json!({}))
                } else {
                    jsonrpc::error_value(id, jsonrpc::INVALID_REQUEST, "not initialized yet")
                };
                write_line(stdin, &reply).await?;
            }
            _ => debug!(
                method = jsonrpc::method(&msg),
                "child message before initialize result ignored"
            ),
        }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(w: &mut W, msg: &Value) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    w.write_all(&line)
        .await
        .context("writing to the MCP server's stdin")?;
    w.flush()
        .await
        .context("writing to the MCP server's stdin")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
