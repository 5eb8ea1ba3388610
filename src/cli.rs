//! The command line: `Cli` (clap derive) and its conversion into a validated `Config`; flag
//! value parsers in `value`, tips for common mistakes in `tip`.

use std::ffi::OsString;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::access::{parse_tokens, Access};
use crate::config::{Config, Limits};
use crate::config::{EraChoice, Introspection, Isolation, JwksSource, OAuth, Restart, Supervision};

pub mod docs;
mod tip;
pub(crate) mod value;

use value::{parse_duration, parse_instance_id, parse_key_value, parse_size};

/// Serve a stdio MCP server to many clients over Streamable HTTP.
///
/// Spawns COMMAND as a child speaking newline-delimited JSON-RPC on stdin/stdout, initializes it
/// once, and serves it at http://HOST:PORT/mcp. When ready, prints the endpoint URL as one line
/// on stdout; logs go to stderr.
#[derive(Debug, Parser)]
#[command(
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true,
    override_usage = "mcp-http-bridge [OPTIONS] -- <COMMAND> [ARGS]...\n       mcp-http-bridge [OPTIONS] --config <FILE>\n       mcp-http-bridge completions <SHELL> | man"
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "MCP_HTTP_BRIDGE_HOST")]
    pub host: String,
    /// Port to listen on (0 picks a free port; the URL line tells which).
    #[arg(
        long,
        short = 'p',
        default_value_t = 8000,
        env = "MCP_HTTP_BRIDGE_PORT"
    )]
    pub port: u16,
    /// Path of the Streamable HTTP endpoint (`none` disables it).
    #[arg(long, default_value = Config::MCP_PATH, value_name = "PATH")]
    pub mcp_path: String,
    /// Path of the legacy HTTP+SSE (2024-11-05) stream endpoint (`none` disables the legacy
    /// transport).
    #[arg(long, default_value = Config::SSE_PATH, value_name = "PATH")]
    pub sse_path: String,
    /// Path legacy HTTP+SSE clients POST their messages to.
    #[arg(long, default_value = Config::MESSAGE_PATH, value_name = "PATH")]
    pub message_path: String,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive); overrides RUST_LOG.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// `human` lines, or `json`: one object per line, with the server, session and request
    /// an event belongs to.
    #[arg(long, default_value = "human", value_parser = ["human", "json"], value_name = "FORMAT")]
    pub log_format: String,
    /// Threads serving clients. Default: one fewer than the machine's cores, at least one: the
    /// MCP server process beside the bridge needs a core of its own under load (measured: see
    /// the README's performance section).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Largest accepted request body (e.g. 4MiB, 512KiB, 1000000).
    #[arg(long, default_value = "4MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: usize,
    /// Longest accepted line from the child's stdout; longer lines are skipped and logged.
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_line: usize,
    /// How long the child may take to answer the bridge's initialize (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub init_timeout: Duration,
    /// At shutdown, how long the child gets after its stdin closes before its process group is
    /// sent SIGTERM (then SIGKILL 2s later).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_grace: Duration,
    /// Interval of SSE keep-alive comments on open streams.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub keep_alive: Duration,
    /// End sessions whose client has sent nothing for this long (open streams do not count as
    /// activity; a request in flight does).
    #[arg(long, default_value = "30m", value_parser = parse_duration, value_name = "DURATION")]
    pub session_timeout: Duration,
    /// How long a request may wait for the MCP server's answer (then the client gets a
    /// JSON-RPC error -32054 and the server a cancellation), and a server request for the
    /// client's; 0: no limit.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Close a connection that has not sent a complete request head (request line and
    /// headers) this long after connecting, or after the first byte of its next request.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_timeout: Duration,
    /// Close a keep-alive connection that has waited this long for its next request (an open
    /// event stream is not idle). Longer than the 90s after which common HTTP clients drop
    /// idle connections themselves, so that they, not the bridge, close first.
    #[arg(long, default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// Open connections at most; more are closed as soon as they are accepted. Default: the
    /// open-files limit (raised to its hard limit at start) less 64, and 4 per child.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Also allow browser requests from this Origin (`scheme://host[:port]`; repeatable; `*`
    /// allows any). Allowed by default: the bridge's own loopback origins.
    #[arg(long, value_name = "ORIGIN")]
    pub allowed_origin: Vec<String>,
    /// Also accept this Host name while bound to loopback (repeatable; DNS-rebinding
    /// protection answers 421 to other names).
    #[arg(long, value_name = "HOST")]
    pub allowed_host: Vec<String>,
    /// Bearer tokens, one `name:token` per line; every MCP request must then carry
    /// `Authorization: Bearer <token>`. The environment variable MCP_HTTP_BRIDGE_TOKEN adds one
    /// more, named `env`.
    #[arg(long, value_name = "PATH")]
    pub tokens_file: Option<std::path::PathBuf>,
    /// Serve a non-loopback address without any token (anyone who can reach it may use the
    /// server).
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// Serve HTTPS (HTTP/2 or HTTP/1.1, by ALPN) with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Set a variable in the child's environment (repeatable; wins over --env-file). The
    /// child otherwise inherits the bridge's environment, less MCP_HTTP_BRIDGE_TOKEN.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// Read variables for the child from a file of KEY=VALUE lines (`#` comments).
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<std::path::PathBuf>,
    /// Start the child in this directory.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::path::PathBuf>,
    /// `shared`: all sessions share one child (or a --pool); `session`: each session gets its
    /// own child, started at initialize and ended with the session; `user`: each user (OAuth
    /// subject or static token) gets a child shared by their sessions, ended once idle for
    /// --session-timeout.
    #[arg(long, default_value = "shared", value_parser = ["shared", "session", "user"], value_name = "MODE")]
    pub isolation: String,
    /// The era the MCP server speaks: `auto` asks it `server/discover` and falls back to
    /// `initialize` on any answer that is not a modern one or after 3s of silence; `legacy`
    /// initializes it at once; `modern` requires a `server/discover` answer.
    #[arg(long, default_value = "auto", value_parser = ["auto", "legacy", "modern"], value_name = "ERA")]
    pub child_era: String,
    /// When a shared child that exited is restarted: `on-failure` (non-zero exit or signal),
    /// `always`, or `never` (the bridge then exits 1). After 5 failures in a row within 10 s of
    /// starting, the bridge gives up and exits 1.
    #[arg(long, default_value = "on-failure", value_parser = ["on-failure", "always", "never"], value_name = "WHEN")]
    pub restart: String,
    /// Shared isolation: run N children; each session is pinned to the least loaded one at
    /// initialize (for servers that handle one request at a time).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub pool: usize,
    /// Session isolation: children at most (more sessions get 503).
    #[arg(long, default_value_t = Supervision::MAX_CHILDREN, value_name = "N")]
    pub max_children: usize,
    /// Session isolation: copy this request header of a session's initialize into its child's
    /// environment as VAR (repeatable), e.g. `--header-env X-Api-Key=API_KEY`.
    #[arg(long, value_name = "HEADER=VAR", value_parser = parse_key_value)]
    pub header_env: Vec<(String, String)>,
    /// Session or user isolation: copy this claim of the OAuth access token into the child's
    /// environment as VAR (repeatable), e.g. `--claim-env email=USER_EMAIL`.
    #[arg(long, value_name = "CLAIM=VAR", value_parser = parse_key_value)]
    pub claim_env: Vec<(String, String)>,
    /// Accept OAuth access tokens (JWTs) from this authorization server (repeatable). Its
    /// signing keys are found through its metadata (RFC 8414, then OpenID Connect discovery).
    /// Plain http only on loopback.
    #[arg(long, value_name = "URL")]
    pub oauth_issuer: Vec<String>,
    /// Take the signing keys from this JWKS URL or file instead of the issuers' metadata.
    #[arg(long, value_name = "URL|FILE", requires = "oauth_issuer")]
    pub oauth_jwks: Option<String>,
    /// The URL clients reach the MCP endpoint at (behind any proxy): the OAuth resource
    /// identifier and default audience. Default: http(s)://ADDRESS:PORT/mcp as bound (loopback
    /// only).
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    pub public_url: Option<String>,
    /// The audience (`aud`) tokens must carry, when not the public URL (some providers issue
    /// tokens for an API identifier of their own).
    #[arg(long, value_name = "AUD", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,
    /// A scope every request's token must grant (repeatable); a token without it gets 403.
    #[arg(long, value_name = "SCOPE", requires = "oauth_issuer")]
    pub oauth_scope: Vec<String>,
    /// Check tokens that are not JWTs (opaque tokens) at this RFC 7662 introspection endpoint
    /// of the issuer; without it they are refused.
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    pub oauth_introspection: Option<String>,
    /// The bridge's client id at the introspection endpoint (HTTP Basic); its secret comes
    /// from the environment variable MCP_HTTP_BRIDGE_OAUTH_CLIENT_SECRET.
    #[arg(long, value_name = "ID", requires = "oauth_introspection")]
    pub oauth_client_id: Option<String>,
    /// Least time between two fetches of an issuer's keys prompted by a token signed with an
    /// unknown key (a rotation is picked up after at most this long).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub oauth_jwks_cooldown: Duration,
    /// Live sessions at most; more get 503.
    #[arg(long, default_value_t = Limits::MAX_SESSIONS, value_name = "N")]
    pub max_sessions: usize,
    /// Requests one session may have in flight; more get a JSON-RPC error (-32052).
    #[arg(long, default_value_t = Limits::MAX_REQUESTS_PER_SESSION, value_name = "N")]
    pub max_requests_per_session: usize,
    /// Requests in flight at each MCP server process at most (0: no cap); more wait in a queue
    /// shared fairly between sessions. 1 serializes a server that cannot handle concurrent
    /// requests (e.g. one that rewrites a file on each call).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub child_concurrency: usize,
    /// Requests waiting for a --child-concurrency slot at each process at most; more get a
    /// JSON-RPC error (-32052).
    #[arg(long, default_value_t = Limits::MAX_WAITING, value_name = "N")]
    pub max_waiting: usize,
    /// Messages queued for one client stream before that client counts as not reading.
    #[arg(long, default_value_t = Limits::STREAM_QUEUE, value_name = "N")]
    pub stream_queue: usize,
    /// Show clients only the tools whose names match this glob (`*`, `?`; repeatable); others
    /// leave tools/list and are refused as unknown tools.
    #[arg(long, value_name = "GLOB")]
    pub allow_tool: Vec<String>,
    /// Hide the tools whose names match this glob (repeatable; wins over --allow-tool).
    #[arg(long, value_name = "GLOB")]
    pub deny_tool: Vec<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics, apart from the MCP endpoint (e.g.
    /// 127.0.0.1:9464). Default: no metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// This bridge's name among several behind one load balancer: every session id (and
    /// multi round-trip requestState) starts with it and a dot, so the balancer can route a
    /// session to its instance by that prefix. 1-32 letters, digits, '-' or '_'. Default: 8
    /// random hex digits. Shown in /health.
    #[arg(long, env = "MCP_HTTP_BRIDGE_INSTANCE_ID", value_parser = parse_instance_id, value_name = "ID")]
    pub instance_id: Option<String>,
    /// Serve the servers of this file (TOML `[servers.NAME]` tables, or a desktop client's
    /// JSON `mcpServers`) at /servers/NAME/mcp and /servers/NAME/sse, instead of a COMMAND.
    /// SIGHUP reloads it. Not with OAuth (yet).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "oauth_issuer"])]
    pub config: Option<std::path::PathBuf>,
    /// The stdio MCP server to run, after `--`.
    #[arg(
        required_unless_present = "config",
        last = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
    /// Instead of serving: print shell completions or the manual page.
    #[command(subcommand)]
    pub tool: Option<docs::Tool>,
}

impl Cli {
    /// Parses the process's arguments as `Cli::parse` does: on a usage error, prints it and
    /// exits 2 (help and version exit 0).
    pub fn parse_or_exit() -> Cli {
        Self::try_parse_with_tips(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// `Cli::try_parse_from`, adding a tip when a word stands where a flag was expected:
    /// most likely the server's command, given without the `--` in front of it.
    ///
    /// # Errors
    /// clap's usage error, with that tip where it applies.
    pub fn try_parse_with_tips<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        Cli::try_parse_from(&args).map_err(|e| tip::with_separator_tip(e, &args))
    }

    /// Validates the flags into a `Config`.
    ///
    /// # Errors
    /// A clap usage error (exit code 2) for values that are well-formed but unusable.
    pub fn into_config(self) -> Result<Config, clap::Error> {
        let usage = |msg: String| Cli::command().error(ErrorKind::ValueValidation, msg);
        let mcp_path = endpoint_path("--mcp-path", &self.mcp_path).map_err(usage)?;
        let sse_path = endpoint_path("--sse-path", &self.sse_path).map_err(usage)?;
        let message_path = match sse_path {
            Some(_) => endpoint_path("--message-path", &self.message_path).map_err(usage)?,
            None => None,
        };
        if mcp_path.is_none() && sse_path.is_none() {
            return Err(usage(
                "--mcp-path and --sse-path cannot both be none".into(),
            ));
        }
        if sse_path.is_some() && message_path.is_none() {
            return Err(usage(
                "--message-path cannot be none while --sse-path is served".into(),
            ));
        }
        let paths: Vec<&String> = [&mcp_path, &sse_path, &message_path]
            .into_iter()
            .flatten()
            .collect();
        if (1..paths.len()).any(|i| paths[..i].contains(&paths[i])) {
            return Err(usage(format!("endpoint paths must differ (got {paths:?})")));
        }
        if [
            self.max_sessions,
            self.max_requests_per_session,
            self.stream_queue,
        ]
        .contains(&0)
        {
            return Err(usage(
                "--max-sessions, --max-requests-per-session and --stream-queue must be at least 1"
                    .into(),
            ));
        }
        let tokens = self.tokens().map_err(usage)?;
        let oauth = self.oauth().map_err(usage)?;
        if tokens.is_empty()
            && oauth.is_none()
            && !self.allow_unauthenticated
            && !is_loopback_host(&self.host)
        {
            return Err(usage(format!(
                "refusing to serve {} without authentication: anyone who can reach it could use the MCP server. \
                 Set {TOKEN_ENV}=<a long random secret> or pass --tokens-file PATH (lines of name:token), \
                 or pass --allow-unauthenticated if this is really what you want",
                self.host
            )));
        }
        for (flag, d) in [
            ("--keep-alive", self.keep_alive),
            ("--session-timeout", self.session_timeout),
            ("--header-timeout", self.header_timeout),
            ("--idle-timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(usage(format!("{flag} must be greater than zero")));
            }
        }
        if self.max_connections == Some(0) {
            return Err(usage("--max-connections must be at least 1".into()));
        }
        let mut command = self.command.into_iter();
        // With --config, the file names the commands: this configuration is their base.
        let program = command.next().unwrap_or_default();
        let mut config = Config::new(program, command);
        config.mcp_path = mcp_path;
        config.sse_path = sse_path;
        config.message_path = message_path;
        config.init_timeout = self.init_timeout;
        config.shutdown_grace = self.shutdown_grace;
        config.keep_alive = self.keep_alive;
        config.session_timeout = self.session_timeout;
        config.request_timeout = Some(self.request_timeout).filter(|t| !t.is_zero());
        config.header_timeout = self.header_timeout;
        config.idle_timeout = self.idle_timeout;
        config.limits = Limits {
            max_body: self.max_body,
            max_line: self.max_line,
            max_sessions: self.max_sessions,
            max_requests_per_session: self.max_requests_per_session,
            stream_queue: self.stream_queue,
            child_concurrency: self.child_concurrency,
            max_waiting: self.max_waiting,
            max_connections: self.max_connections,
            ..Limits::default()
        };
        if let Some(path) = &self.env_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--env-file {}: {e}", path.display())))?;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            {
                let kv = parse_key_value(line.trim()).map_err(|e| {
                    usage(format!("--env-file {} line {}: {e}", path.display(), i + 1))
                })?;
                config.env.push(kv);
            }
        }
        config.env.extend(self.env);
        let isolation = match self.isolation.as_str() {
            "session" => Isolation::Session,
            "user" => Isolation::User,
            _ => Isolation::Shared,
        };
        if isolation != Isolation::Shared && self.pool != 1 {
            return Err(usage("--pool applies to --isolation shared only".into()));
        }
        if isolation == Isolation::User && tokens.is_empty() && oauth.is_none() {
            return Err(usage(
                "--isolation user needs users: --oauth-issuer, --tokens-file or MCP_HTTP_BRIDGE_TOKEN"
                    .into(),
            ));
        }
        if !self.claim_env.is_empty() && (isolation == Isolation::Shared || oauth.is_none()) {
            return Err(usage(
                "--claim-env needs --oauth-issuer and --isolation user or session (a shared child has one environment)"
                    .into(),
            ));
        }
        if oauth.is_some() && oauth_public_url_needed(&self.host, &oauth) {
            return Err(usage(format!(
                "--public-url is needed with --oauth-issuer when serving {}: it names the resource tokens are issued for",
                self.host
            )));
        }
        // The client's credentials never reach the child.
        if self
            .header_env
            .iter()
            .any(|(h, _)| h.eq_ignore_ascii_case("authorization"))
        {
            return Err(usage(
                "--header-env cannot copy Authorization: the client's token never reaches the MCP server"
                    .into(),
            ));
        }
        if isolation != Isolation::Session && !self.header_env.is_empty() {
            return Err(usage(
                "--header-env needs --isolation session (a shared child has one environment)"
                    .into(),
            ));
        }
        if self.pool == 0 || self.max_children == 0 {
            return Err(usage("--pool and --max-children must be at least 1".into()));
        }
        config.child_era = match self.child_era.as_str() {
            "legacy" => EraChoice::Legacy,
            "modern" => EraChoice::Modern,
            _ => EraChoice::Auto,
        };
        config.supervision = Supervision {
            isolation,
            restart: match self.restart.as_str() {
                "always" => Restart::Always,
                "never" => Restart::Never,
                _ => Restart::OnFailure,
            },
            pool: self.pool,
            max_children: self.max_children,
            header_env: self
                .header_env
                .into_iter()
                .map(|(h, v)| (h.to_ascii_lowercase(), v))
                .collect(),
            claim_env: self.claim_env,
        };
        config.oauth = oauth;
        config.cwd = self.cwd;
        config.tools = crate::tool_filter::ToolFilter::new(self.allow_tool, self.deny_tool);
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            config.tls = Some(crate::tls::TlsFiles { cert, key });
        }
        config.access = Access {
            allowed_origins: self.allowed_origin,
            allowed_hosts: self.allowed_host,
            tokens,
        };
        Ok(config)
    }
}

/// The environment variable holding a bearer token (named `env`).
pub const TOKEN_ENV: &str = "MCP_HTTP_BRIDGE_TOKEN";
/// The environment variable holding the bridge's client secret for token introspection.
pub const CLIENT_SECRET_ENV: &str = "MCP_HTTP_BRIDGE_OAUTH_CLIENT_SECRET";

impl Cli {
    /// The tokens from `--tokens-file` and `MCP_HTTP_BRIDGE_TOKEN`.
    fn tokens(&self) -> Result<Vec<(String, String)>, String> {
        let mut tokens = match &self.tokens_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--tokens-file {}: {e}", path.display()))?;
                parse_tokens(&text).map_err(|e| format!("--tokens-file {}: {e}", path.display()))?
            }
            None => Vec::new(),
        };
        if let Ok(token) = std::env::var(TOKEN_ENV) {
            if token.trim().len() < 16 {
                return Err(format!("{TOKEN_ENV} must hold at least 16 characters"));
            }
            tokens.push(("env".into(), token.trim().to_owned()));
        }
        Ok(tokens)
    }
}

impl Cli {
    /// The OAuth settings, if `--oauth-issuer` is given.
    fn oauth(&self) -> Result<Option<OAuth>, String> {
        if self.oauth_issuer.is_empty() {
            return Ok(None);
        }
        for iss in &self.oauth_issuer {
            check_url("--oauth-issuer", iss, true)?;
        }
        let jwks = match &self.oauth_jwks {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                check_url("--oauth-jwks", u, true)?;
                Some(JwksSource::Url(u.clone()))
            }
            Some(path) => Some(JwksSource::File(path.into())),
            None => None,
        };
        if let Some(u) = &self.public_url {
            check_url("--public-url", u, false)?;
        }
        if self
            .oauth_scope
            .iter()
            .any(|s| s.is_empty() || s.contains([' ', '"', '\\']))
        {
            return Err("--oauth-scope: a scope is one word, without quotes".into());
        }
        let mut oauth = OAuth::new(self.oauth_issuer.iter().cloned());
        oauth.jwks = jwks;
        oauth.public_url = self.public_url.clone();
        oauth.audience = self.oauth_audience.clone();
        oauth.scopes = self.oauth_scope.clone();
        oauth.jwks_cooldown = self.oauth_jwks_cooldown;
        if let Some(url) = &self.oauth_introspection {
            check_url("--oauth-introspection", url, true)?;
            let client = match &self.oauth_client_id {
                Some(id) => {
                    let secret = std::env::var(CLIENT_SECRET_ENV).map_err(|_| {
                        format!("--oauth-client-id needs its secret in {CLIENT_SECRET_ENV}")
                    })?;
                    Some((id.clone(), secret))
                }
                None => None,
            };
            oauth.introspection = Some(Introspection {
                url: url.clone(),
                client,
            });
        }
        Ok(Some(oauth))
    }
}

/// Whether OAuth on `host` needs `--public-url`: the default (the bound address) only names
/// the bridge on loopback.
fn oauth_public_url_needed(host: &str, oauth: &Option<OAuth>) -> bool {
    oauth.as_ref().is_some_and(|o| o.public_url.is_none()) && !is_loopback_host(host)
}

/// Checks an http(s) URL without query or fragment; with `strict`, plain http only on
/// loopback (keys and metadata fetched over it could be forged on the way).
fn check_url(flag: &str, value: &str, strict: bool) -> Result<(), String> {
    let url = reqwest::Url::parse(value).map_err(|e| format!("{flag} {value}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        return Err(format!(
            "{flag} {value}: an http(s) URL without fragment is needed"
        ));
    }
    if url.query().is_some() {
        return Err(format!("{flag} {value}: no query is allowed"));
    }
    if strict && !crate::oauth::jwks::allowed_url(&url) {
        return Err(format!(
            "{flag} {value}: must be https (plain http only on loopback)"
        ));
    }
    Ok(())
}

/// Whether `--host` names loopback.
fn is_loopback_host(host: &str) -> bool {
    crate::access::is_loopback_name(host.trim_start_matches('[').trim_end_matches(']'))
}

/// An endpoint path from its flag: `none` disables it; others must start with '/' and must
/// not take the health path.
fn endpoint_path(flag: &str, value: &str) -> Result<Option<String>, String> {
    match value {
        "none" => Ok(None),
        "/health" => Err(format!("{flag} cannot be /health (the health endpoint)")),
        p if p.starts_with('/') && p.len() > 1 => Ok(Some(p.to_owned())),
        p => Err(format!("{flag} must start with '/' (got {p:?})")),
    }
}

/// The worker threads `--threads` defaults to: the cores less one for the child, at least one.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervision_flags() {
        let parse = |args: &[&str]| {
            let all = ["b"]
                .iter()
                .chain(args)
                .chain(&["--", "srv"])
                .copied()
                .collect::<Vec<_>>();
            Cli::try_parse_from(all)
                .map_err(|e| e.to_string())
                .and_then(|c| c.into_config().map_err(|e| e.to_string()))
        };
        let c = parse(&[
            "--isolation",
            "session",
            "--header-env",
            "X-Key=API_KEY",
            "--max-children",
            "5",
        ])
        .unwrap();
        assert_eq!(c.supervision.isolation, Isolation::Session);
        assert_eq!(
            c.supervision.header_env,
            vec![("x-key".to_owned(), "API_KEY".to_owned())]
        );
        assert_eq!(c.supervision.max_children, 5);
        let c = parse(&[
            "--pool",
            "3",
            "--restart",
            "always",
            "-e",
            "A=1",
            "--cwd",
            "/tmp",
        ])
        .unwrap();
        assert_eq!(
            (c.supervision.pool, c.supervision.restart),
            (3, Restart::Always)
        );
        assert_eq!(c.env, vec![("A".to_owned(), "1".to_owned())]);
        assert!(c.tools.is_empty());
        let c = parse(&["--allow-tool", "read_*", "--deny-tool", "read_secret"]).unwrap();
        assert!(c.tools.allows("read_file") && !c.tools.allows("read_secret"));
        assert!(!c.tools.allows("write_file"));
        for bad in [
            &["--isolation", "session", "--pool", "2"][..],
            &["--header-env", "X-Key=K"],
            &["--pool", "0"],
            &["--restart", "sometimes"],
            &["--tls-cert", "c.pem"],
            &["--max-sessions", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn oauth_flags() {
        let parse = |args: &[&str]| {
            let all = ["b"].iter().chain(args).chain(&["--", "srv"]);
            Cli::try_parse_from(all)
                .map_err(|e| e.to_string())
                .and_then(|c| c.into_config().map_err(|e| e.to_string()))
        };
        let issuer = ["--oauth-issuer", "https://id.example.com"];
        let c = parse(
            &[
                &issuer[..],
                &["--oauth-scope", "mcp:tools", "--oauth-jwks", "keys.json"],
                &[
                    "--host",
                    "0.0.0.0",
                    "--public-url",
                    "https://mcp.example.com/mcp",
                ],
                &["--isolation", "user", "--claim-env", "email=USER_EMAIL"],
            ]
            .concat(),
        )
        .unwrap();
        let o = c.oauth.unwrap();
        assert_eq!(o.issuers, ["https://id.example.com"]);
        assert_eq!(o.scopes, ["mcp:tools"]);
        assert_eq!(o.jwks, Some(JwksSource::File("keys.json".into())));
        assert_eq!(o.public_url.as_deref(), Some("https://mcp.example.com/mcp"));
        assert_eq!(c.supervision.isolation, Isolation::User);
        assert_eq!(
            c.supervision.claim_env,
            [("email".to_owned(), "USER_EMAIL".to_owned())]
        );
        let c = parse(&[
            issuer[0],
            issuer[1],
            "--oauth-introspection",
            "https://id.example.com/i",
        ]);
        let i = c.unwrap().oauth.unwrap().introspection.unwrap();
        assert_eq!(
            (i.url.as_str(), i.client),
            ("https://id.example.com/i", None)
        );
        let loopback = parse(&[
            "--oauth-issuer",
            "http://127.0.0.1:9",
            "--oauth-jwks",
            "http://[::1]:9/k",
        ]);
        assert!(loopback.is_ok(), "{loopback:?}");
        for bad in [
            &["--oauth-issuer", "http://id.example.com"][..],
            &["--oauth-issuer", "https://id.example.com#x"],
            &["--oauth-issuer", "id.example.com"],
            &[
                issuer[0],
                issuer[1],
                "--oauth-jwks",
                "http://id.example.com/jwks",
            ],
            &["--public-url", "https://mcp.example.com/mcp"],
            &["--oauth-scope", "mcp:tools"],
            &[issuer[0], issuer[1], "--host", "0.0.0.0"],
            &[issuer[0], issuer[1], "--oauth-scope", "two words"],
            &[issuer[0], issuer[1], "--claim-env", "email=E"],
            &["--isolation", "session", "--claim-env", "email=E"],
            &["--isolation", "user"],
            &["--isolation", "user", "--pool", "2"],
            &["--isolation", "session", "--header-env", "Authorization=T"],
            &[issuer[0], issuer[1], "--oauth-client-id", "bridge"],
            &[
                issuer[0],
                issuer[1],
                "--oauth-introspection",
                "http://id.example.com/i",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn connection_flags() {
        let parse = |args: &[&str]| {
            let all = ["b"].iter().chain(args).chain(&["--", "srv"]);
            Cli::try_parse_from(all)
                .map_err(|e| e.to_string())
                .and_then(|c| c.into_config().map_err(|e| e.to_string()))
        };
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.header_timeout, c.idle_timeout, c.limits.max_connections),
            (Config::HEADER_TIMEOUT, Config::IDLE_TIMEOUT, None)
        );
        let c = parse(&[
            "--header-timeout",
            "5s",
            "--idle-timeout",
            "1m",
            "--max-connections",
            "10",
        ])
        .unwrap();
        assert_eq!(
            (c.header_timeout, c.idle_timeout, c.limits.max_connections),
            (Duration::from_secs(5), Duration::from_secs(60), Some(10))
        );
        for bad in [
            &["--header-timeout", "0"][..],
            &["--idle-timeout", "0s"],
            &["--max-connections", "0"],
            &["--idle-timeout", "60"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_a_command_after_double_dash() {
        let cli = Cli::try_parse_from(["b", "--port", "0", "--", "srv", "--its-flag"]).unwrap();
        let config = cli.into_config().unwrap();
        assert_eq!(config.command, "srv");
        assert_eq!(config.args, vec![OsString::from("--its-flag")]);
        assert!(Cli::try_parse_from(["b", "--port", "0"]).is_err());
        for bad in [
            &["--mcp-path", "mcp"][..],
            &["--mcp-path", "/health"],
            &["--mcp-path", "none", "--sse-path", "none"],
            &["--sse-path", "/x", "--message-path", "/x"],
            &["--sse-path", "/mcp"],
        ] {
            let cli = Cli::try_parse_from(["b"].iter().chain(bad).chain(&["--", "srv"])).unwrap();
            assert!(cli.into_config().is_err(), "{bad:?}");
        }
        let public = Cli::try_parse_from(["b", "--host", "0.0.0.0", "--", "srv"]).unwrap();
        let err = public.into_config().unwrap_err().to_string();
        assert!(
            err.contains("MCP_HTTP_BRIDGE_TOKEN") && err.contains("--tokens-file"),
            "{err}"
        );
        let open = Cli::try_parse_from([
            "b",
            "--host",
            "0.0.0.0",
            "--allow-unauthenticated",
            "--",
            "srv",
        ]);
        assert!(open.unwrap().into_config().is_ok());
        let cli = Cli::try_parse_from(["b", "--sse-path", "none", "--", "srv"]).unwrap();
        let config = cli.into_config().unwrap();
        assert_eq!((config.sse_path, config.message_path), (None, None));
    }
}
