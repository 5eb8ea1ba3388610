//! HTTP/2: a client with prior knowledge (no TLS) or ALPN `h2` (TLS) gets every transport on
//! one connection. The bridge here allows a single connection (`--max-connections 1`), so all
//! that works below shares it, and a second connection is refused.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    addr_of, closed_by_bridge, initialize_msg, text, within, Client, LegacyClient, ModernClient,
    TestBridge,
};

const SESSIONS: usize = 20;

fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

async fn one_connection_bridge() -> TestBridge {
    TestBridge::start_with(|c| c.limits.max_connections = Some(1)).await
}

/// A second connection is refused while the first holds the bridge's only permit.
async fn assert_second_connection_refused(bridge: &TestBridge) {
    let other = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = other.get(format!("{}/health", bridge.base)).send().await;
    assert!(r.is_err(), "a second connection was served: {r:?}");
}

#[tokio::test]
async fn many_sessions_hold_streams_and_call_over_one_http2_connection() {
    let bridge = one_connection_bridge().await;
    let http = h2_client();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let mut c = Client::new(&bridge.url);
        c.http = http.clone();
        c.initialize().await;
        let stream = c.open_stream().await;
        sessions.push((c, stream));
    }
    let probe = within(
        "GET /health",
        http.get(format!("{}/health", bridge.base)).send(),
    )
    .await
    .unwrap();
    assert_eq!(probe.version(), reqwest::Version::HTTP_2);
    assert_second_connection_refused(&bridge).await;

    // Every session's call gets its own answer, all in flight at once.
    let calls = sessions.iter().enumerate().map(|(i, (c, _))| async move {
        let sent = format!("h2-session-{i}");
        let r = c.call(json!(i), "echo", json!({"text": sent})).await;
        assert_eq!(text(&r), sent);
    });
    within("calls", futures_util::future::join_all(calls)).await;

    // One notification from the child reaches every open stream.
    sessions[0]
        .0
        .call(json!("lc"), "list_changed", json!({}))
        .await;
    for (_, stream) in &mut sessions {
        stream.next_method("notifications/tools/list_changed").await;
    }
    // DELETE ends a session's stream and leaves the others open.
    let (gone, mut gone_stream) = sessions.pop().unwrap();
    assert_eq!(gone.delete().await, 200);
    assert!(
        gone_stream.next().await.is_none(),
        "the deleted session's stream ended"
    );
    sessions[1]
        .0
        .assert_echo(json!("after-delete"), "still here")
        .await;

    // Shutdown ends the open streams (GOAWAY, then the streams' end) and returns.
    within("stop", bridge.stop()).await.unwrap();
    for (_, stream) in &mut sessions {
        assert!(stream.next().await.is_none());
    }
}

#[tokio::test]
async fn legacy_sse_and_stateless_calls_over_http2() {
    let bridge = one_connection_bridge().await;
    let http = h2_client();

    // Legacy HTTP+SSE: the stream and the message POSTs on the one connection.
    let mut legacy = LegacyClient::open_with(&bridge, http.clone()).await;
    assert_eq!(
        legacy.post(&initialize_msg(json!(0), "2024-11-05")).await,
        202
    );
    let init = legacy.stream.next_response(&json!(0)).await;
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(legacy.post(&initialized).await, 202);
    let r = legacy.call(json!(1), "add", json!({"a": 2, "b": 40})).await;
    assert_eq!(text(&r), "42");
    let health = within(
        "GET /health",
        http.get(format!("{}/health", bridge.base)).send(),
    );
    assert_eq!(health.await.unwrap().version(), reqwest::Version::HTTP_2);

    // A 2026-07-28 stateless call, while the legacy stream stays open.
    let mut modern = ModernClient::new(&bridge.url);
    modern.http = http.clone();
    let r = modern
        .call(json!(2), "echo", json!({"text": "stateless"}))
        .await;
    assert_eq!(text(&r), "stateless");
    assert_second_connection_refused(&bridge).await;
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn the_host_check_reads_http2_authority() {
    let bridge = TestBridge::start().await;
    let addr = addr_of(&bridge);
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("rebound.example", addr)
        .build()
        .unwrap();
    let url = format!("http://rebound.example:{}/mcp", addr.port());
    let r = within(
        "POST",
        http.post(&url)
            .json(&initialize_msg(json!(0), "2025-11-25"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        r.status(),
        421,
        "a foreign :authority is refused like a foreign Host"
    );
    let ok = within(
        "GET /health",
        h2_client().get(format!("{}/health", bridge.base)).send(),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn a_connection_that_begins_like_the_preface_but_is_not_gets_http1() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let bridge = TestBridge::start().await;
    let mut tcp = tokio::net::TcpStream::connect(addr_of(&bridge))
        .await
        .unwrap();
    tcp.write_all(b"PRI * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    within("the reply", tcp.read_to_end(&mut reply))
        .await
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 4"), "{reply}");
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_one_holding_a_stream_is_not() {
    use tokio::io::AsyncWriteExt as _;
    const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
    let bridge = TestBridge::start_with(|c| {
        c.idle_timeout = IDLE_TIMEOUT;
        c.keep_alive = Duration::from_millis(200);
    })
    .await;
    let mut c = Client::new(&bridge.url);
    c.http = h2_client();
    c.initialize().await;
    let mut stream = c.open_stream().await;

    // The preface and an empty SETTINGS frame, then nothing.
    let mut idle = tokio::net::TcpStream::connect(addr_of(&bridge))
        .await
        .unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    idle.write_all(&hello).await.unwrap();
    let opened = std::time::Instant::now();
    closed_by_bridge(&mut idle).await;
    let idled = opened.elapsed();
    assert!(
        idled >= IDLE_TIMEOUT - Duration::from_millis(200) && idled < Duration::from_secs(10),
        "closed after the idle timeout: {idled:?}"
    );

    // A call longer than the idle timeout, on the connection that holds the stream; then the
    // stream, open all along, still delivers.
    let slow = c.call(json!(1), "slow", json!({"ms": 1500})).await;
    assert_eq!(text(&slow), "slept 1500");
    c.call(json!(2), "list_changed", json!({})).await;
    stream.next_method("notifications/tools/list_changed").await;
    bridge.stop().await.unwrap();
}
