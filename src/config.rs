//! `Config` and `Limits`: plain data with documented defaults, built by the CLI or directly by
//! tests. Nothing here does I/O.

use std::ffi::OsString;
use std::time::Duration;

/// Resource bounds. Each default is a named constant so README, help text and tests agree.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest HTTP request body accepted (larger → 413).
    pub max_body: usize,
    /// Longest line accepted from the child's stdout (longer lines are skipped and logged).
    pub max_line: usize,
    /// Messages queued for one client stream before that client counts as not reading.
    pub stream_queue: usize,
    /// Lines queued for the child's stdin before HTTP handlers wait.
    pub child_queue: usize,
    /// Live sessions at most (more → 503).
    pub max_sessions: usize,
    /// Requests one session may have in flight at the child (more → a JSON-RPC error).
    pub max_requests_per_session: usize,
    /// Client requests in flight at each child at most (0: no cap); the excess waits.
    pub child_concurrency: usize,
    /// Requests waiting for a `child_concurrency` slot at each child, all sessions together
    /// (more → a JSON-RPC error).
    pub max_waiting: usize,
    /// Open connections at most; more are closed as soon as they are accepted. `None`: the
    /// open-files limit less a reserve for the children (see `listener::open_files`).
    pub max_connections: Option<usize>,
}

impl Limits {
    /// Default `max_body`: 4 MiB.
    pub const MAX_BODY: usize = 4 << 20;
    /// Default `max_line`: 16 MiB.
    pub const MAX_LINE: usize = 16 << 20;
    /// Default `stream_queue`.
    pub const STREAM_QUEUE: usize = 1024;
    /// Default `child_queue`.
    pub const CHILD_QUEUE: usize = 4096;
    /// Default `max_sessions`.
    pub const MAX_SESSIONS: usize = 10_000;
    /// Default `max_requests_per_session`.
    pub const MAX_REQUESTS_PER_SESSION: usize = 256;
    /// Default `max_waiting`.
    pub const MAX_WAITING: usize = 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: Self::MAX_BODY,
            max_line: Self::MAX_LINE,
            stream_queue: Self::STREAM_QUEUE,
            child_queue: Self::CHILD_QUEUE,
            max_sessions: Self::MAX_SESSIONS,
            max_requests_per_session: Self::MAX_REQUESTS_PER_SESSION,
            child_concurrency: 0,
            max_waiting: Self::MAX_WAITING,
            max_connections: None,
        }
    }
}

/// Everything `run` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's name (`default` for the server of the command line): in paths
    /// (`/servers/NAME/mcp`), logs and metrics.
    pub name: String,
    /// The stdio MCP server to spawn.
    pub command: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Path of the Streamable HTTP endpoint (`None`: not served).
    pub mcp_path: Option<String>,
    /// Path of the legacy HTTP+SSE stream endpoint (`None`: legacy transport not served).
    pub sse_path: Option<String>,
    /// Path legacy clients POST their messages to.
    pub message_path: Option<String>,
    /// How long the child may take to answer the bridge's `initialize`.
    pub init_timeout: Duration,
    /// How long the child gets to exit after its stdin closes, before its group is signalled.
    pub shutdown_grace: Duration,
    /// Interval of SSE keep-alive comments.
    pub keep_alive: Duration,
    /// A session whose client sends nothing for this long (and has no request in flight) ends.
    pub session_timeout: Duration,
    /// How long a request may wait for its answer, from the child or (for a server request)
    /// from the client; `None`: forever.
    pub request_timeout: Option<Duration>,
    /// How long a connection may take to deliver a complete request head (request line and
    /// headers), counted from its first byte (or from accept, for its first request).
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request once its last response
    /// ended. An open response (an event stream) is not idle.
    pub idle_timeout: Duration,
    /// Resource bounds.
    pub limits: Limits,
    /// Origins, hosts and tokens.
    pub access: crate::access::Access,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Variables set in the child's environment (on top of the bridge's own).
    pub env: Vec<(String, String)>,
    /// The child's working directory (default: the bridge's).
    pub cwd: Option<std::path::PathBuf>,
    /// Isolation, restarts, pool.
    pub supervision: Supervision,
    /// Which era the child speaks, or `Auto` to probe it.
    pub child_era: EraChoice,
    /// Which tools clients see and may call.
    pub tools: crate::tool_filter::ToolFilter,
    /// Where the server's metrics are recorded (the default records nothing).
    pub metrics: crate::metrics::ServerMetrics,
    /// The server's tool parameters mirrored into `Mcp-Param-*` headers, as its children
    /// list them (learned while it runs).
    pub param_headers: crate::param_headers::ParamHeaders,
    /// OAuth resource-server settings (`None`: OAuth is off).
    pub oauth: Option<OAuth>,
}

impl Config {
    /// The name of the server of the command line.
    pub const DEFAULT_NAME: &'static str = "default";
    /// Default `mcp_path`.
    pub const MCP_PATH: &'static str = "/mcp";
    /// Default `sse_path`.
    pub const SSE_PATH: &'static str = "/sse";
    /// Default `message_path`.
    pub const MESSAGE_PATH: &'static str = "/message";
    /// Default `init_timeout`.
    pub const INIT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default `shutdown_grace`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
    /// Default `keep_alive`.
    pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
    /// Default `session_timeout`.
    pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    /// Default `request_timeout`: generous, for tools that run builds or long queries.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10 * 60);
    /// Default `header_timeout`: generous for a slow network, short enough that connections
    /// which never finish a request cannot pile up.
    pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default `idle_timeout`: longer than the 90 s after which common HTTP client pools (Go,
    /// hyper/reqwest) drop idle connections themselves, so such a client closes first and never
    /// sends a request into a connection the bridge is closing.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

    /// A configuration with every default, fronting `command args...`.
    pub fn new(
        command: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        Config {
            name: Self::DEFAULT_NAME.into(),
            command: command.into(),
            args: args.into_iter().map(Into::into).collect(),
            mcp_path: Some(Self::MCP_PATH.into()),
            sse_path: Some(Self::SSE_PATH.into()),
            message_path: Some(Self::MESSAGE_PATH.into()),
            init_timeout: Self::INIT_TIMEOUT,
            shutdown_grace: Self::SHUTDOWN_GRACE,
            keep_alive: Self::KEEP_ALIVE,
            session_timeout: Self::SESSION_TIMEOUT,
            request_timeout: Some(Self::REQUEST_TIMEOUT),
            header_timeout: Self::HEADER_TIMEOUT,
            idle_timeout: Self::IDLE_TIMEOUT,
            limits: Limits::default(),
            access: crate::access::Access::default(),
            tls: None,
            env: Vec::new(),
            cwd: None,
            supervision: Supervision::default(),
            child_era: EraChoice::Auto,
            tools: crate::tool_filter::ToolFilter::default(),
            metrics: crate::metrics::ServerMetrics::default(),
            param_headers: crate::param_headers::ParamHeaders::default(),
            oauth: None,
        }
    }
}

/// How sessions share children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// All sessions share one child (or a pool of `Supervision::pool` children).
    Shared,
    /// Each session gets its own child.
    Session,
    /// Each user (OAuth subject, or static token name) gets a child of their own, shared by
    /// that user's sessions and ended once none has used it for `session_timeout`.
    User,
}

/// When a shared child that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// After a non-zero exit or a signal.
    OnFailure,
    /// After any exit.
    Always,
    /// Never: the bridge exits when its child does.
    Never,
}

/// Supervision settings.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// How sessions share children.
    pub isolation: Isolation,
    /// When a shared child is restarted.
    pub restart: Restart,
    /// Shared children in the pool (1: a single shared child).
    pub pool: usize,
    /// Children at most in session isolation (more sessions → 503).
    pub max_children: usize,
    /// Session isolation: (HTTP header, variable) pairs copied from a session's `initialize`
    /// request into its child's environment.
    pub header_env: Vec<(String, String)>,
    /// Session or user isolation: (token claim, variable) pairs copied from the OAuth access
    /// token into the child's environment.
    pub claim_env: Vec<(String, String)>,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            isolation: Isolation::Shared,
            restart: Restart::OnFailure,
            pool: 1,
            max_children: Self::MAX_CHILDREN,
            header_env: Vec::new(),
            claim_env: Vec::new(),
        }
    }
}

impl Supervision {
    /// Default `max_children`.
    pub const MAX_CHILDREN: usize = 1000;
    /// A run shorter than this counts as a fast failure.
    pub const FAST_RUN: Duration = Duration::from_secs(10);
    /// Fast failures in a row after which the bridge gives up and exits.
    pub const MAX_FAST_FAILURES: u32 = 5;
    /// First restart delay; it doubles with each fast failure in a row, up to `MAX_BACKOFF`.
    pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    /// Longest restart delay.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

    /// The delay before restart attempt `n` (1-based) of a run of fast failures.
    pub fn backoff(n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        (Self::FIRST_BACKOFF * factor).min(Self::MAX_BACKOFF)
    }
}

/// How the bridge learns the child's era (`--child-era`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraChoice {
    /// Probe with `server/discover`; fall back to `initialize`.
    Auto,
    /// Session era: `initialize` at once.
    Legacy,
    /// Revision 2026-07-28: `server/discover` must answer.
    Modern,
}

/// The bridge as an OAuth 2.1 resource server (`--oauth-issuer` and friends).
#[derive(Debug, Clone)]
pub struct OAuth {
    /// The issuers whose access tokens are accepted, exactly as their tokens' `iss` says.
    pub issuers: Vec<String>,
    /// Where the signing keys are, instead of each issuer's discovered `jwks_uri`.
    pub jwks: Option<JwksSource>,
    /// The URL clients use (the resource identifier); `None`: the bound address and MCP path.
    pub public_url: Option<String>,
    /// The `aud` a token must carry; `None`: the resource identifier.
    pub audience: Option<String>,
    /// Scopes every request needs.
    pub scopes: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two fetches of one key set when a token names an unknown key.
    pub jwks_cooldown: Duration,
    /// Where tokens that are not JWTs are checked (RFC 7662); `None`: they are refused.
    pub introspection: Option<Introspection>,
}

/// An RFC 7662 token introspection endpoint and the bridge's credentials there.
#[derive(Clone)]
pub struct Introspection {
    /// The endpoint.
    pub url: String,
    /// The bridge's client id and secret (HTTP Basic), if the endpoint wants them.
    pub client: Option<(String, String)>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("url", &self.url)
            .field("client_id", &self.client.as_ref().map(|(id, _)| id))
            .finish_non_exhaustive()
    }
}

impl OAuth {
    /// Default `leeway`.
    pub const LEEWAY: Duration = Duration::from_secs(60);
    /// Default `jwks_cooldown`: a key rotation is picked up within this long, and tokens with
    /// made-up key ids cannot make the bridge fetch more often.
    pub const JWKS_COOLDOWN: Duration = Duration::from_secs(10);

    /// Settings accepting tokens of `issuers`, with every default.
    pub fn new(issuers: impl IntoIterator<Item = impl Into<String>>) -> OAuth {
        OAuth {
            issuers: issuers.into_iter().map(Into::into).collect(),
            jwks: None,
            public_url: None,
            audience: None,
            scopes: Vec::new(),
            leeway: Self::LEEWAY,
            jwks_cooldown: Self::JWKS_COOLDOWN,
            introspection: None,
        }
    }
}

/// Where signing keys come from when not from the issuers' metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document at this URL.
    Url(String),
    /// A JWKS document in this file (read again when a token names an unknown key).
    File(std::path::PathBuf),
}
