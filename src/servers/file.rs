//! The configuration file (`--config`): several named servers, as TOML (`[servers.NAME]`
//! tables) or as the JSON layout desktop MCP clients write (`{"mcpServers": {"NAME":
//! {"command", "args", "env"}}}`). Each server's table becomes a `Config` on top of the one the
//! command line made (listener, access and TLS stay global).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tracing::warn;

use crate::cli::value::{parse_duration, parse_key_value, parse_size};
use crate::config::{Config, EraChoice, Isolation, Restart};
use crate::tool_filter::ToolFilter;

/// One server of the file: its table as written (to tell a changed server at a reload) and
/// the configuration made from it.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Its table, as read.
    pub table: ServerTable,
    /// Its configuration.
    pub config: Config,
}

/// A `[servers.NAME]` table. Keys are the command line's flags, without their dashes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerTable {
    /// Also serve this server at the default paths (`/mcp`, `/sse`, `/message`).
    #[serde(default)]
    pub default: bool,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    env_file: Option<PathBuf>,
    cwd: Option<PathBuf>,
    isolation: Option<String>,
    restart: Option<String>,
    pool: Option<usize>,
    max_children: Option<usize>,
    #[serde(default)]
    header_env: BTreeMap<String, String>,
    child_era: Option<String>,
    child_concurrency: Option<usize>,
    max_waiting: Option<usize>,
    max_sessions: Option<usize>,
    max_requests_per_session: Option<usize>,
    stream_queue: Option<usize>,
    max_body: Option<String>,
    max_line: Option<String>,
    init_timeout: Option<String>,
    request_timeout: Option<String>,
    session_timeout: Option<String>,
    shutdown_grace: Option<String>,
    keep_alive: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    servers: BTreeMap<String, ServerTable>,
}

/// A desktop client's entry; remote (`url`) and `disabled` entries are skipped.
#[derive(Deserialize)]
struct DesktopEntry {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    disabled: bool,
}

#[derive(Deserialize)]
struct DesktopFile {
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<String, DesktopEntry>,
}

/// Reads `path`: the servers by name, each on top of `base`.
///
/// # Errors
/// A message naming the file and what is wrong in it.
pub fn load(path: &Path, base: &Config) -> Result<BTreeMap<String, ServerSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |e: String| format!("{}: {e}", path.display());
    let tables = parse(&text, is_json(path, &text)).map_err(at)?;
    if tables.is_empty() {
        return Err(at("no servers".into()));
    }
    if tables.values().filter(|t| t.default).count() > 1 {
        return Err(at("at most one server may be the default".into()));
    }
    // Relative `cwd` and `env-file` paths are the file's neighbours.
    let dir = path.parent().unwrap_or(Path::new(""));
    tables
        .into_iter()
        .map(|(name, mut table)| {
            for p in [&mut table.cwd, &mut table.env_file].into_iter().flatten() {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
            let config = server_config(&name, &table, base)
                .map_err(|e| at(format!("server {name:?}: {e}")))?;
            Ok((name, ServerSpec { table, config }))
        })
        .collect()
}

fn is_json(path: &Path, text: &str) -> bool {
    path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{')
}

/// The tables of a file's text.
fn parse(text: &str, json: bool) -> Result<BTreeMap<String, ServerTable>, String> {
    if !json {
        let file: TomlFile = toml::from_str(text).map_err(|e| e.to_string())?;
        return Ok(file.servers);
    }
    let file: DesktopFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut tables = BTreeMap::new();
    for (name, entry) in file.mcp_servers {
        match entry.command {
            Some(command) if !entry.disabled => {
                let table = ServerTable {
                    command,
                    args: entry.args,
                    env: entry.env,
                    ..ServerTable::default()
                };
                tables.insert(name, table);
            }
            _ => warn!(
                server = name,
                "skipped: disabled, or not a stdio server (no command)"
            ),
        }
    }
    Ok(tables)
}

/// Whether `name` can stand in a path and a metrics label.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && name != "."
        && name != ".."
}

fn server_config(name: &str, t: &ServerTable, base: &Config) -> Result<Config, String> {
    if !valid_name(name) {
        return Err("names may hold letters, digits, '-', '_' and '.' only".into());
    }
    if t.command.is_empty() {
        return Err("command is empty".into());
    }
    let mut c = base.clone();
    c.name = name.to_owned();
    c.command = t.command.clone().into();
    c.args = t.args.iter().map(Into::into).collect();
    let prefix = format!("{}{name}", super::PREFIX);
    c.mcp_path = Some(format!("{prefix}/mcp"));
    c.sse_path = Some(format!("{prefix}/sse"));
    c.message_path = Some(format!("{prefix}/message"));
    c.env = Vec::new();
    if let Some(path) = &t.env_file {
        c.env.extend(read_env_file(path)?);
    }
    c.env
        .extend(t.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(cwd) = &t.cwd {
        c.cwd = Some(cwd.clone());
    }
    supervision(&mut c, t)?;
    limits(&mut c, t)?;
    c.tools = ToolFilter::new(t.allow.clone(), t.deny.clone());
    Ok(c)
}

fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("env-file {}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_key_value(l).map_err(|e| format!("env-file {}: {e}", path.display())))
        .collect()
}

fn supervision(c: &mut Config, t: &ServerTable) -> Result<(), String> {
    let has_users = !c.access.tokens.is_empty();
    let s = &mut c.supervision;
    s.isolation = match t.isolation.as_deref() {
        None => s.isolation,
        Some("shared") => Isolation::Shared,
        Some("session") => Isolation::Session,
        Some("user") => Isolation::User,
        Some(other) => {
            return Err(format!(
                "isolation must be shared, session or user (got {other:?})"
            ))
        }
    };
    s.restart = match t.restart.as_deref() {
        None => s.restart,
        Some("on-failure") => Restart::OnFailure,
        Some("always") => Restart::Always,
        Some("never") => Restart::Never,
        Some(other) => {
            return Err(format!(
                "restart must be on-failure, always or never (got {other:?})"
            ))
        }
    };
    s.pool = t.pool.unwrap_or(s.pool);
    s.max_children = t.max_children.unwrap_or(s.max_children);
    if !t.header_env.is_empty() {
        s.header_env = t
            .header_env
            .iter()
            .map(|(h, v)| (h.to_ascii_lowercase(), v.clone()))
            .collect();
    }
    if s.pool == 0 || s.max_children == 0 {
        return Err("pool and max-children must be at least 1".into());
    }
    if s.isolation != Isolation::Shared && s.pool != 1 {
        return Err("pool applies to shared isolation only".into());
    }
    if s.isolation == Isolation::User && !has_users {
        return Err("user isolation needs users: --tokens-file or MCP_HTTP_BRIDGE_TOKEN".into());
    }
    if s.isolation != Isolation::Session && !s.header_env.is_empty() {
        return Err("header-env needs session isolation".into());
    }
    if s.header_env.iter().any(|(h, _)| h == "authorization") {
        return Err(
            "header-env cannot copy Authorization: the client's token never reaches the MCP server"
                .into(),
        );
    }
    c.child_era = match t.child_era.as_deref() {
        None => c.child_era,
        Some("auto") => EraChoice::Auto,
        Some("legacy") => EraChoice::Legacy,
        Some("modern") => EraChoice::Modern,
        Some(other) => {
            return Err(format!(
                "child-era must be auto, legacy or modern (got {other:?})"
            ))
        }
    };
    Ok(())
}

fn limits(c: &mut Config, t: &ServerTable) -> Result<(), String> {
    let l = &mut c.limits;
    l.child_concurrency = t.child_concurrency.unwrap_or(l.child_concurrency);
    l.max_waiting = t.max_waiting.unwrap_or(l.max_waiting);
    l.max_sessions = t.max_sessions.unwrap_or(l.max_sessions);
    l.max_requests_per_session = t
        .max_requests_per_session
        .unwrap_or(l.max_requests_per_session);
    l.stream_queue = t.stream_queue.unwrap_or(l.stream_queue);
    if let Some(s) = &t.max_body {
        l.max_body = parse_size(s).map_err(|e| format!("max-body: {e}"))?;
    }
    if let Some(s) = &t.max_line {
        l.max_line = parse_size(s).map_err(|e| format!("max-line: {e}"))?;
    }
    if [l.max_sessions, l.max_requests_per_session, l.stream_queue].contains(&0) {
        return Err(
            "max-sessions, max-requests-per-session and stream-queue must be at least 1".into(),
        );
    }
    let duration = |key: &str, v: &Option<String>| -> Result<Option<std::time::Duration>, String> {
        v.as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| format!("{key}: {e}"))
    };
    c.init_timeout = duration("init-timeout", &t.init_timeout)?.unwrap_or(c.init_timeout);
    c.shutdown_grace = duration("shutdown-grace", &t.shutdown_grace)?.unwrap_or(c.shutdown_grace);
    if let Some(d) = duration("request-timeout", &t.request_timeout)? {
        c.request_timeout = Some(d).filter(|d| !d.is_zero());
    }
    for (key, value, field) in [
        (
            "session-timeout",
            &t.session_timeout,
            &mut c.session_timeout,
        ),
        ("keep-alive", &t.keep_alive, &mut c.keep_alive),
    ] {
        if let Some(d) = duration(key, value)? {
            if d.is_zero() {
                return Err(format!("{key} must be greater than zero"));
            }
            *field = d;
        }
    }
    Ok(())
}
