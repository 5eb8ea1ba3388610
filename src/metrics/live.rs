//! The values read from the servers at each scrape: sessions by transport and by the era of
//! the MCP server behind them, requests in flight and waiting, children by state, restarts,
//! readiness.

use metrics::{Key, Label, Recorder};
use metrics_exporter_prometheus::PrometheusRecorder;

use super::METADATA;
use crate::servers::Servers;
use crate::session::Transport;

/// Describes the scrape-time metrics.
pub(super) fn describe(recorder: &PrometheusRecorder) {
    for (name, help) in [
        (
            "mcp_bridge_sessions",
            "Live sessions, by transport and by the era of their MCP server",
        ),
        (
            "mcp_bridge_requests_in_flight",
            "Client requests at the MCP server, not yet answered",
        ),
        (
            "mcp_bridge_requests_waiting",
            "Client requests waiting for a --child-concurrency slot",
        ),
        ("mcp_bridge_children", "MCP server processes, by state"),
        (
            "mcp_bridge_connections",
            "Open client connections, by protocol (in a TLS handshake: http/1.1)",
        ),
        (
            "mcp_bridge_server_ready",
            "1 when the server is ready to serve, else 0",
        ),
    ] {
        recorder.describe_gauge(name.into(), None, help.into());
    }
    recorder.describe_counter(
        "mcp_bridge_child_restarts_total".into(),
        None,
        "Restarts of shared MCP server processes".into(),
    );
}

fn key(name: &'static str, server: &str, more: &[(&'static str, &'static str)]) -> Key {
    let mut labels = vec![Label::new("server", server.to_owned())];
    labels.extend(more.iter().map(|(k, v)| Label::new(*k, *v)));
    Key::from_parts(name, labels)
}

/// Sets the open connections by protocol (they belong to the listener, not to a server).
pub(super) fn record_connections(
    recorder: &PrometheusRecorder,
    connections: &crate::listener::Connections,
) {
    let (open, http2) = (connections.open(), connections.http2());
    for (protocol, n) in [("http/1.1", open.saturating_sub(http2)), ("h2", http2)] {
        let key = Key::from_parts(
            "mcp_bridge_connections",
            vec![Label::new("protocol", protocol)],
        );
        recorder.register_gauge(&key, &METADATA).set(n as f64);
    }
}

/// Sets the scrape-time metrics from the servers as they are now.
pub(super) fn record(recorder: &PrometheusRecorder, servers: &Servers) {
    let gauge = |name, server: &str, more: &[(&'static str, &'static str)], v: usize| {
        recorder
            .register_gauge(&key(name, server, more), &METADATA)
            .set(v as f64);
    };
    for r in servers.running() {
        let name: &str = &r.name;
        let mut sessions = [[0usize; 2]; 2];
        for s in r.state.sessions.all() {
            let t = usize::from(matches!(s.transport, Transport::LegacySse(_)));
            let e = usize::from(s.child().era.name() == "modern");
            sessions[t][e] += 1;
        }
        for (t, transport) in ["streamable_http", "sse"].into_iter().enumerate() {
            for (e, era) in ["legacy", "modern"].into_iter().enumerate() {
                let labels = [("transport", transport), ("era", era)];
                gauge("mcp_bridge_sessions", name, &labels, sessions[t][e]);
            }
        }
        let all = r.state.children.all();
        let in_flight = all.iter().map(|c| c.waiting_clients()).sum();
        let waiting = all.iter().map(|c| c.waiting_for_slot()).sum();
        let up = all.iter().filter(|c| c.is_running()).count();
        gauge("mcp_bridge_requests_in_flight", name, &[], in_flight);
        gauge("mcp_bridge_requests_waiting", name, &[], waiting);
        gauge("mcp_bridge_children", name, &[("state", "running")], up);
        gauge(
            "mcp_bridge_children",
            name,
            &[("state", "exited")],
            all.len() - up,
        );
        gauge(
            "mcp_bridge_server_ready",
            name,
            &[],
            usize::from(r.is_ready()),
        );
        recorder
            .register_counter(
                &key("mcp_bridge_child_restarts_total", name, &[]),
                &METADATA,
            )
            .absolute(r.state.children.restarts());
    }
}
