//! Backs: one per child era. A back knows how to open its kind of child (a legacy child is
//! initialized once; a modern one is asked `server/discover`) and how a request is rendered
//! for it (a modern child needs the caller's `_meta` on every request).
//!
//! * `legacy`: revisions up to 2025-11-25: `initialize` once, server-to-client requests.
//! * `modern`: revision 2026-07-28: `server/discover`, per-request `_meta`, no handshake.
//!
//! `open` decides which one a child is, as the stdio transport's backward-compatibility rules
//! say: a `DiscoverResult` or a recognised modern error means modern; anything else, or silence
//! within the probe timeout, means legacy.

pub mod legacy;
pub mod modern;

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn};

use crate::config::EraChoice;
use crate::jsonrpc::{self, Kind};
use crate::lines::{Line, LineReader};
use legacy::ChildInit;

/// The era a child speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEra {
    /// Session era: initialized once by the bridge.
    Legacy,
    /// Revision 2026-07-28 or later: stateless, `_meta` on every request.
    Modern {
        /// The revision the bridge speaks with it.
        version: String,
    },
}

impl ChildEra {
    /// The revision the bridge speaks with a modern child.
    pub fn version(&self) -> Option<&str> {
        match self {
            ChildEra::Legacy => None,
            ChildEra::Modern { version } => Some(version),
        }
    }

    /// `legacy` or `modern`, for logs and `/health`.
    pub fn name(&self) -> &'static str {
        match self {
            ChildEra::Legacy => "legacy",
            ChildEra::Modern { .. } => "modern",
        }
    }
}

/// What a child declared when it was opened: its era, and the `initialize` result session
/// clients are answered from (a modern child's is made from its `DiscoverResult`).
#[derive(Debug, Clone)]
pub struct Declared {
    /// Its era.
    pub era: ChildEra,
    /// What session clients are told at `initialize`.
    pub init: ChildInit,
    /// A modern child's `DiscoverResult`.
    pub discovered: Option<Value>,
}

/// How long `auto` waits for an answer to its `server/discover` probe before deciding that a
/// silent child is legacy.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens a freshly started child the way `choice` says: probes it (`auto`), or takes its era
/// as given.
///
/// # Errors
/// When the child exits, answers unusably, or does not answer within `timeout`.
pub async fn open<W, R>(
    stdin: &mut W,
    stdout: &mut LineReader<R>,
    choice: EraChoice,
    timeout: Duration,
) -> anyhow::Result<Declared>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let probe = match choice {
        EraChoice::Legacy => modern::Probe::Legacy("--child-era legacy".into()),
        EraChoice::Modern => modern::discover(stdin, stdout, timeout, true).await?,
        EraChoice::Auto => {
            modern::discover(stdin, stdout, PROBE_TIMEOUT.min(timeout), false).await?
        }
    };
    match probe {
        modern::Probe::Modern(d) => {
            info!(version = %d.version, "the MCP server speaks the stateless era (server/discover answered)");
            Ok(Declared {
                era: ChildEra::Modern {
                    version: d.version.clone(),
                },
                init: d.legacy_face(),
                discovered: Some(d.result),
            })
        }
        modern::Probe::Legacy(why) => {
            info!(why = %why, "the MCP server speaks the session era; initializing it");
            let init = legacy::initialize(stdin, stdout, timeout).await?;
            Ok(Declared {
                era: ChildEra::Legacy,
                init,
                discovered: None,
            })
        }
    }
}

/// Reads the child's stdout until the response to the bridge's request `id` (the whole
/// message), skipping lines that are not JSON and other messages, and answering what a child
/// may ask before it is ready (`ping`; anything else is refused). `what` names the request in
/// errors.
///
/// # Errors
/// When the child exits or its stdout fails.
pub(crate) async fn await_response<W, R>(
    stdin: &mut W,
    stdout: &mut LineReader<R>,
    id: &Value,
    what: &str,
) -> anyhow::Result<Value>
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
                warn!(bytes = n, what, "child line over the limit; skipped");
                continue;
            }
            None => bail!("the MCP server exited (closed its stdout) before answering {what}"),
        };
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            warn!(line = %String::from_utf8_lossy(&line), "child printed a line that is not JSON; skipped");
            continue;
        };
        match jsonrpc::classify(&msg) {
            Ok(Kind::Response) if msg.get("id") == Some(id) => return Ok(msg),
            Ok(Kind::Request) => {
                let request = jsonrpc::id(&msg);
                let reply = if jsonrpc::method(&msg) == "ping" {
                    jsonrpc::result_value(request, json!({}))
                } else {
                    jsonrpc::error_value(request, jsonrpc::INVALID_REQUEST, "not initialized yet")
                };
                write_line(stdin, &reply).await?;
            }
            _ => debug!(
                method = jsonrpc::method(&msg),
                what, "child message before the answer ignored"
            ),
        }
    }
}

/// Writes one message as a line on the child's stdin.
pub(crate) async fn write_line<W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &Value,
) -> anyhow::Result<()> {
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
