//! Logging: the subscriber (`--log-format human|json`) and the span each HTTP request is
//! handled in. In JSON, every line is one object holding the event's fields and those of the
//! spans it happened in: `request` (server, session, request number, HTTP method, path) for
//! what a request caused, `child` (server, pid) for what a child's tasks log.

mod flat_json;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one line per event, colored on a terminal.
    Human,
    /// For machines: one JSON object per line.
    Json,
}

/// Whether requests are handled in `request_span`s: with the JSON format only, whose lines
/// carry the span's fields. A span per request costs (its fields are formatted when it is
/// made: measured about a sixth of the throughput at 16x4), and the human format, like the
/// subscriber itself, is global.
static REQUEST_SPANS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether requests are served in a `request_span`.
pub fn request_spans() -> bool {
    REQUEST_SPANS.load(Ordering::Relaxed)
}

/// Installs the global subscriber, writing to stderr.
pub fn init(format: LogFormat, filter: EnvFilter) {
    REQUEST_SPANS.store(format == LogFormat::Json, Ordering::Relaxed);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(flat_json::FlatJson)
            .init(),
    }
}

/// The `request` span a request is handled in: it names the server, the session (when the
/// request names one), a number for the request (unique in the process), the HTTP method and
/// the path.
pub fn request_span(server: &str, req: &Request) -> tracing::Span {
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| legacy_session(req.uri().query()));
    static NEXT: AtomicU64 = AtomicU64::new(1);
    tracing::info_span!(
        "request",
        server = %server,
        session,
        request = NEXT.fetch_add(1, Ordering::Relaxed),
        http_method = %req.method(),
        path = req.uri().path(),
    )
}

/// The `sessionId` of a legacy message URL's query.
fn legacy_session(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("sessionId="))
}
