//! Connections that are slow, idle or too many: the header timeout, the idle timeout, and the
//! connection cap, seen from raw sockets next to a normal client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A request head cut off in the middle of its headers.
const HALF_HEAD: &[u8] = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appli";

/// A connection that has sent `bytes` and nothing more.
async fn connect_sending(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// `GET /health` on `s`; returns the response's head and as much body as one read brings.
async fn get_health(s: &mut TcpStream, addr: SocketAddr) -> String {
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = within("health response", s.read(&mut buf)).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn half_sent_heads_do_not_lock_out_clients_and_are_closed_after_the_header_timeout() {
    const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
    let bridge = TestBridge::start_with(|c| {
        c.header_timeout = HEADER_TIMEOUT;
        c.limits.max_connections = Some(1000);
    })
    .await;
    let addr = addr_of(&bridge);
    let t0 = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(connect_sending(addr, HALF_HEAD).await);
    }

    // Accepted after the flood (accept order is connect order), while the flood is held.
    let client = bridge.client().await;
    assert_eq!(
        text(&client.call(json!(1), "add", json!({"a": 2, "b": 3})).await),
        "5"
    );
    assert!(
        t0.elapsed() < HEADER_TIMEOUT,
        "the client finished while the half-sent connections were still open"
    );

    for s in &mut flood {
        closed_by_bridge(s).await;
    }
    assert!(
        t0.elapsed() >= HEADER_TIMEOUT,
        "closed by the header timeout, not before"
    );
    client.assert_echo(json!(2), "still serving").await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_until_one_ends() {
    let bridge = TestBridge::start_with(|c| c.limits.max_connections = Some(4)).await;
    let addr = addr_of(&bridge);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_sending(addr, b"").await);
    }

    let mut fifth = connect_sending(addr, b"").await;
    // Well before the 30 s header timeout: this is the cap.
    tokio::time::timeout(Duration::from_secs(5), closed_by_bridge(&mut fifth))
        .await
        .expect("the connection over the cap is closed at once");

    // The held connections were accepted and are served.
    let reply = get_health(&mut held[0], addr).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // One ends; its permit lets a new connection in.
    drop(held.remove(0));
    within("a new connection is served", async {
        loop {
            let mut s = connect_sending(addr, b"").await;
            if get_health(&mut s, addr).await.starts_with("HTTP/1.1 200") {
                return;
            }
            // Refused: the bridge has not yet seen the other connection end.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_an_open_stream_and_a_slow_call_are_not() {
    const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
    let bridge = TestBridge::start_with(|c| {
        c.idle_timeout = IDLE_TIMEOUT;
        c.keep_alive = Duration::from_millis(200);
    })
    .await;
    let addr = addr_of(&bridge);
    let client = bridge.client().await;
    let mut stream = client.open_stream().await;
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call(json!(1), "slow", json!({"ms": 1500})).await }
    });

    let mut idle = connect_sending(addr, b"").await;
    let reply = get_health(&mut idle, addr).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let answered = Instant::now();
    closed_by_bridge(&mut idle).await;
    let idled = answered.elapsed();
    assert!(
        idled >= IDLE_TIMEOUT - Duration::from_millis(200) && idled < Duration::from_secs(10),
        "closed after the idle timeout, not the 30 s header timeout: {idled:?}"
    );

    // The stream has now been open longer than the idle timeout, and still delivers.
    client.call(json!(2), "list_changed", json!({})).await;
    stream.next_method("notifications/tools/list_changed").await;
    let slow = within("slow call", slow).await.unwrap();
    assert_eq!(text(&slow), "slept 1500");
}
