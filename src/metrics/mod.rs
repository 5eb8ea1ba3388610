//! Prometheus metrics (`--metrics-listen`), recorded with the `metrics` crate into a
//! `metrics-exporter-prometheus` recorder owned by the bridge (no global recorder: several
//! bridges in one process, as in the tests, keep apart).
//!
//! `Metrics` is the bridge's recorder; `ServerMetrics` is the handle one server records
//! through (a clone of it sits in each child's routing rules). Counters and histograms are
//! recorded where things happen; gauges (sessions, requests in flight and waiting, children
//! by state, readiness) are read from the servers at each scrape (`live`).
//!
//! Labels are bounded: the server's name (from the configuration), an MCP method from a fixed
//! list (else `other`), fixed outcome and reason words; never a session id, a tool name or an
//! argument. A series' handle is registered on first use and kept in a slot of a fixed table,
//! so recording after that takes no lock and allocates nothing.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

pub mod http;
mod live;
pub mod serve;

/// The MCP method names of both eras that are labels of their own; others are `other`.
pub const METHODS: [&str; 27] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "notifications/message",
];
const OUTCOMES: [&str; 3] = ["ok", "error", "timeout"];
const REASONS: [&str; 7] = [
    "origin", "host", "token", "scope", "limit", "timeout", "draining",
];
const LABELS: usize = METHODS.len() + 1;

/// `method` as a label: its own name when it is a known MCP method, else `other`.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|k| **k == method)
        .copied()
        .unwrap_or("other")
}

fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|k| *k == method)
        .unwrap_or(METHODS.len())
}

/// Latency buckets: 1 ms to ~65 s, doubling.
fn latency_buckets() -> Vec<f64> {
    (0..17).map(|i| 0.001 * f64::from(1u32 << i)).collect()
}

const METADATA: Metadata<'static> = Metadata::new("mcp_http_bridge", Level::INFO, None);

/// The bridge's metrics recorder.
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    servers: OnceLock<Weak<crate::servers::Servers>>,
    connections: OnceLock<Weak<crate::listener::Connections>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A recorder with every metric described.
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&latency_buckets())
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        for (name, help) in [
            (
                "mcp_bridge_requests_total",
                "Client requests answered, by server, method and outcome (ok, error, timeout)",
            ),
            (
                "mcp_bridge_request_duration_seconds",
                "Time from forwarding a client request to its answer",
            ),
            (
                "mcp_bridge_streams_dropped_total",
                "Client streams closed because their reader fell behind",
            ),
            (
                "mcp_bridge_refusals_total",
                "Requests refused, by reason (origin, host, token, scope, limit, timeout, draining)",
            ),
            (
                "mcp_bridge_received_bytes_total",
                "Bytes of HTTP request bodies received",
            ),
            (
                "mcp_bridge_sent_bytes_total",
                "Bytes of HTTP response bodies sent",
            ),
            (
                "mcp_bridge_child_starts_total",
                "MCP server processes started (first starts, restarts, per-session children)",
            ),
        ] {
            recorder.describe_counter(name.into(), None, help.into());
        }
        live::describe(&recorder);
        Metrics {
            recorder: Arc::new(recorder),
            servers: OnceLock::new(),
            connections: OnceLock::new(),
        }
    }

    /// The handle server `name` records through.
    pub fn server(&self, name: &str) -> ServerMetrics {
        let counter = |metric: &'static str| {
            let key = Key::from_parts(metric, vec![Label::new("server", name.to_owned())]);
            self.recorder.register_counter(&key, &METADATA)
        };
        ServerMetrics(Some(Arc::new(Handles {
            name: name.into(),
            recorder: self.recorder.clone(),
            dropped: counter("mcp_bridge_streams_dropped_total"),
            bytes_in: counter("mcp_bridge_received_bytes_total"),
            bytes_out: counter("mcp_bridge_sent_bytes_total"),
            child_starts: counter("mcp_bridge_child_starts_total"),
            requests: std::array::from_fn(|_| OnceLock::new()),
            latency: std::array::from_fn(|_| OnceLock::new()),
            refusals: std::array::from_fn(|_| OnceLock::new()),
        })))
    }

    /// Reads the live gauges from `servers` at each scrape from now on.
    pub fn watch(&self, servers: &Arc<crate::servers::Servers>) {
        let _ = self.servers.set(Arc::downgrade(servers));
    }

    /// Reads the open connections from `connections` at each scrape from now on.
    pub fn watch_connections(&self, connections: &Arc<crate::listener::Connections>) {
        let _ = self.connections.set(Arc::downgrade(connections));
    }

    /// The exposition, in the Prometheus text format.
    pub fn render(&self) -> String {
        if let Some(servers) = self.servers.get().and_then(Weak::upgrade) {
            live::record(&self.recorder, &servers);
        }
        if let Some(connections) = self.connections.get().and_then(Weak::upgrade) {
            live::record_connections(&self.recorder, &connections);
        }
        self.recorder.handle().render()
    }

    /// Drains histogram samples into their buckets (else they pile up between scrapes).
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }
}

struct Handles {
    name: Arc<str>,
    recorder: Arc<PrometheusRecorder>,
    dropped: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    child_starts: Counter,
    requests: [OnceLock<Counter>; LABELS * OUTCOMES.len()],
    latency: [OnceLock<Histogram>; LABELS],
    refusals: [OnceLock<Counter>; REASONS.len()],
}

impl Handles {
    fn key(&self, metric: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
        let mut all = vec![Label::new("server", self.name.to_string())];
        all.extend(labels.iter().map(|(k, v)| Label::new(*k, *v)));
        Key::from_parts(metric, all)
    }
}

/// What one server records through; the default records nothing.
#[derive(Clone, Default)]
pub struct ServerMetrics(Option<Arc<Handles>>);

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(h) => write!(f, "ServerMetrics({})", h.name),
            None => f.write_str("ServerMetrics(off)"),
        }
    }
}

impl ServerMetrics {
    /// Whether it records nothing.
    pub fn is_off(&self) -> bool {
        self.0.is_none()
    }

    /// A client request of `method` (a `method_label`) got its answer (`outcome`: ok, error,
    /// timeout), `took` after it was forwarded.
    pub fn request_done(&self, method: &'static str, outcome: &'static str, took: Duration) {
        let Some(h) = &self.0 else { return };
        let m = method_index(method);
        let o = OUTCOMES.iter().position(|x| *x == outcome).unwrap_or(1);
        let method = METHODS.get(m).copied().unwrap_or("other");
        h.requests[m * OUTCOMES.len() + o]
            .get_or_init(|| {
                let key = h.key(
                    "mcp_bridge_requests_total",
                    &[("method", method), ("outcome", OUTCOMES[o])],
                );
                h.recorder.register_counter(&key, &METADATA)
            })
            .increment(1);
        h.latency[m]
            .get_or_init(|| {
                let key = h.key("mcp_bridge_request_duration_seconds", &[("method", method)]);
                h.recorder.register_histogram(&key, &METADATA)
            })
            .record(took.as_secs_f64());
    }

    /// A client stream was closed because its reader fell behind.
    pub fn stream_dropped(&self) {
        if let Some(h) = &self.0 {
            h.dropped.increment(1);
        }
    }

    /// A request was refused for `reason` (origin, host, token, scope, limit, timeout, draining).
    pub fn refused(&self, reason: &'static str) {
        let Some(h) = &self.0 else { return };
        let Some(r) = REASONS.iter().position(|x| *x == reason) else {
            return;
        };
        h.refusals[r]
            .get_or_init(|| {
                let key = h.key("mcp_bridge_refusals_total", &[("reason", REASONS[r])]);
                h.recorder.register_counter(&key, &METADATA)
            })
            .increment(1);
    }

    /// Body bytes received and sent.
    pub fn bytes(&self, received: u64, sent: u64) {
        if let Some(h) = &self.0 {
            if received > 0 {
                h.bytes_in.increment(received);
            }
            if sent > 0 {
                h.bytes_out.increment(sent);
            }
        }
    }

    /// A child process was started.
    pub fn child_started(&self) {
        if let Some(h) = &self.0 {
            h.child_starts.increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded_and_series_are_counted() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("x/secret-session-abc"), "other");
        let metrics = Metrics::new();
        let s = metrics.server("files");
        s.request_done(method_label("tools/call"), "ok", Duration::from_millis(3));
        s.request_done(method_label("tools/call"), "ok", Duration::from_millis(3));
        s.request_done(
            method_label("weird/method"),
            "error",
            Duration::from_millis(1),
        );
        s.refused("host");
        s.refused("not-a-reason");
        let text = metrics.render();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(
            has(r#"mcp_bridge_requests_total{server="files",method="tools/call",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(
            has(r#"mcp_bridge_requests_total{server="files",method="other",outcome="error"} 1"#),
            "{text}"
        );
        assert!(
            has(r#"mcp_bridge_refusals_total{server="files",reason="host"} 1"#),
            "{text}"
        );
        assert!(!text.contains("not-a-reason"));
        assert!(
            has(
                r#"mcp_bridge_request_duration_seconds_count{server="files",method="tools/call"} 2"#
            ),
            "{text}"
        );
    }
}
