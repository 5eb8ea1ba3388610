//! `--metrics-listen`: the counts after a known workload, on an address of its own.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

async fn scrape(url: &str) -> String {
    let resp = within("scrape", reqwest::get(url)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    resp.text().await.unwrap()
}

/// The value of the sample written exactly as `series`, if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_known_workload_shows_its_counts() {
    let (bridge, metrics_url) = TestBridge::start_with_metrics(|c| {
        c.request_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let mut sent = 0usize;
    let mut c = Client::new(&bridge.url);
    let body = |m: &Value| serde_json::to_vec(m).unwrap().len();
    sent += body(&initialize_msg(json!(0), "2025-11-25"));
    sent += body(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    c.initialize().await;
    for i in 1..=3 {
        let params = json!({"name": "echo", "arguments": {"text": "x"}});
        sent += body(&json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}));
        c.assert_echo(json!(i), "x").await;
    }
    let params = json!({"name": "no_such_tool", "arguments": {}});
    sent += body(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": params}));
    assert!(c.call(json!(4), "no_such_tool", json!({})).await["error"].is_object());
    let params = json!({"name": "slow", "arguments": {"ms": 5000}});
    sent += body(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}));
    let late = c.call(json!(5), "slow", json!({"ms": 5000})).await;
    assert_eq!(late["error"]["code"], -32054, "{late}");
    // Refused before any body is read: a foreign Host, a foreign Origin.
    let http = reqwest::Client::new();
    for (name, value) in [("host", "evil.example"), ("origin", "http://evil.example")] {
        let resp = http
            .post(&bridge.url)
            .header(name, value)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error());
    }
    let text = scrape(&metrics_url).await;
    let at =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    let s = r#"server="default""#;
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_requests_total{{{s},method="tools/call",outcome="ok"}}"#
        )),
        3.0
    );
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_requests_total{{{s},method="tools/call",outcome="error"}}"#
        )),
        1.0
    );
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_requests_total{{{s},method="tools/call",outcome="timeout"}}"#
        )),
        1.0
    );
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_request_duration_seconds_count{{{s},method="tools/call"}}"#
        )),
        5.0
    );
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_refusals_total{{{s},reason="host"}}"#
        )),
        1.0
    );
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_refusals_total{{{s},reason="origin"}}"#
        )),
        1.0
    );
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_refusals_total{{{s},reason="timeout"}}"#
        )),
        1.0
    );
    assert_eq!(
        at(&format!(r#"mcp_bridge_received_bytes_total{{{s}}}"#)),
        sent as f64
    );
    assert!(at(&format!(r#"mcp_bridge_sent_bytes_total{{{s}}}"#)) > 0.0);
    assert_eq!(
        at(&format!(
            r#"mcp_bridge_sessions{{{s},transport="streamable_http",era="legacy"}}"#
        )),
        1.0
    );
    assert_eq!(
        at(&format!(r#"mcp_bridge_children{{{s},state="running"}}"#)),
        1.0
    );
    assert_eq!(at(&format!(r#"mcp_bridge_child_starts_total{{{s}}}"#)), 1.0);
    assert_eq!(at(&format!(r#"mcp_bridge_server_ready{{{s}}}"#)), 1.0);
    // Bounded labels: no session id, no tool name.
    let session = c.session.clone().unwrap();
    assert!(
        !text.contains(&session) && !text.contains("no_such_tool"),
        "{text}"
    );
    // The MCP listener does not serve the metrics.
    let resp = reqwest::get(format!("{}/metrics", bridge.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    c.session = None;
}

#[tokio::test]
async fn a_legacy_sse_session_is_counted_under_its_transport() {
    let (bridge, metrics_url) = TestBridge::start_with_metrics(|_| {}).await;
    let _legacy = LegacyClient::start(&bridge).await;
    let text = scrape(&metrics_url).await;
    let series = r#"mcp_bridge_sessions{server="default",transport="sse",era="legacy"}"#;
    assert_eq!(sample(&text, series), Some(1.0), "{text}");
}

#[tokio::test]
async fn open_connections_are_counted_by_protocol() {
    let (bridge, metrics_url) = TestBridge::start_with_metrics(|_| {}).await;
    let h2 = r#"mcp_bridge_connections{protocol="h2"}"#;
    let http1 = r#"mcp_bridge_connections{protocol="http/1.1"}"#;
    // One HTTP/1.1 client holding its session's stream; three sessions' streams on one
    // HTTP/2 connection.
    let c1 = bridge.client().await;
    let _stream1 = c1.open_stream().await;
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut on_h2 = Vec::new();
    for _ in 0..3 {
        let mut c = Client::new(&bridge.url);
        c.http = http.clone();
        c.initialize().await;
        let stream = c.open_stream().await;
        on_h2.push((c, stream));
    }
    let text = scrape(&metrics_url).await;
    assert_eq!(sample(&text, h2), Some(1.0), "{text}");
    let http1_open = sample(&text, http1).unwrap_or(0.0);
    assert!(http1_open >= 1.0, "{text}");

    // The HTTP/2 connection's end is seen at the next scrape after it closed.
    drop(on_h2);
    drop(http);
    within("the HTTP/2 connection to be uncounted", async {
        while sample(&scrape(&metrics_url).await, h2) != Some(0.0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let text = scrape(&metrics_url).await;
    assert_eq!(sample(&text, http1), Some(http1_open), "{text}");
}
