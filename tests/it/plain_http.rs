//! Plain `GET`s and `POST`s are served without hyper, anything else by hyper
//! (`src/listener/plain.rs`). Seen from raw sockets: the event stream and its framing, POSTs
//! whole or in pieces, pipelined requests, the hand-over of a connection to hyper for an odd
//! request and what follows it, and a client that goes away in the middle of a stream.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Reads from `s` until `done` says the bytes so far are complete.
async fn read_until(s: &mut TcpStream, what: &str, done: impl Fn(&str) -> bool) -> String {
    let mut got = Vec::new();
    within(what, async {
        let mut buf = [0u8; 4096];
        while !done(&String::from_utf8_lossy(&got)) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {what}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_first_get_streams_in_chunks_and_the_connection_then_serves_posts() {
    let bridge = TestBridge::start_with(|c| c.keep_alive = Duration::from_secs(60)).await;
    let addr = addr_of(&bridge);
    let mut c = bridge.client().await;
    c.initialize().await;
    let sid = c.session.clone().unwrap();

    let mut s = TcpStream::connect(addr).await.unwrap();
    let get = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {sid}\r\n\r\n"
    );
    s.write_all(get.as_bytes()).await.unwrap();
    let head = read_until(&mut s, "the stream's head", |b| b.contains("\r\n\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("\r\ncontent-type: text/event-stream"),
        "{head}"
    );
    assert!(
        lower.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    assert!(lower.contains("\r\ndate: "), "{head}");

    // A server message on the standalone stream arrives as one chunk of an event.
    c.call(json!(1), "list_changed", json!({})).await;
    let chunk = read_until(&mut s, "the broadcast", |b| b.contains("list_changed")).await;
    let data = chunk
        .lines()
        .find(|l| l.starts_with("data: "))
        .expect("a data line");
    let msg: serde_json::Value = serde_json::from_str(&data["data: ".len()..]).unwrap();
    assert_eq!(msg["method"], "notifications/tools/list_changed");

    // DELETE ends the session and so the stream: its last chunk, then the same connection
    // carries the next request.
    assert_eq!(c.delete().await, 200);
    read_until(&mut s, "the stream's last chunk", |b| {
        b.ends_with("0\r\n\r\n")
    })
    .await;
    let health = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(health.as_bytes()).await.unwrap();
    let reply = read_until(&mut s, "the health reply", |b| b.contains("\"status\"")).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
}

#[tokio::test]
async fn requests_sent_behind_a_first_get_are_answered_in_order() {
    let bridge = TestBridge::start().await;
    let addr = addr_of(&bridge);
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Three requests in one write, each read from the bytes that came with the one before.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string();
    let burst = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n\
         POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}\
         GET /nope HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(burst.as_bytes()).await.unwrap();
    let mut all = String::new();
    within("three replies, then the close", s.read_to_string(&mut all))
        .await
        .unwrap();
    let statuses: Vec<&str> = all
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &all[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "404"], "{all}");
    assert!(all.contains("\"serverInfo\""), "{all}");
}

#[tokio::test]
async fn a_legacy_stream_whose_client_leaves_ends_its_session() {
    let bridge = TestBridge::start().await;
    let addr = addr_of(&bridge);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let get = format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    s.write_all(get.as_bytes()).await.unwrap();
    let got = read_until(&mut s, "the endpoint event", |b| b.contains("sessionId=")).await;
    assert!(got.contains("event: endpoint"), "{got}");
    assert_eq!(bridge.health().await["sessions"], 1);

    drop(s);
    within("the session ends", async {
        while bridge.health().await["sessions"] != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn gets_hyper_should_judge_still_get_its_answers() {
    let bridge = TestBridge::start().await;
    let addr = addr_of(&bridge);
    // A GET with a body and an HTTP/1.0 GET: not taken, answered by hyper as before.
    for raw in [
        format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
        format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut all = String::new();
        within("the reply", s.read_to_string(&mut all)).await.unwrap();
        assert!(all.starts_with("HTTP/1.") && all.contains(" 200 OK\r\n"), "{raw}: {all}");
        assert!(all.contains("\"status\""), "{all}");
    }
    // A broken head goes to hyper too, which says 400.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    within("the refusal", s.read_to_string(&mut all))
        .await
        .unwrap();
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
}

#[tokio::test]
async fn a_get_after_posts_on_the_same_connection_streams_and_the_connection_goes_on() {
    let bridge = TestBridge::start_with(|c| c.keep_alive = Duration::from_secs(60)).await;
    let addr = addr_of(&bridge);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let post = |body: &str, sid: &str| {
        let sid = match sid {
            "" => String::new(),
            sid => format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-06-18\r\n"),
        };
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\n{sid}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let init = initialize_msg(json!(1), "2025-06-18").to_string();
    s.write_all(post(&init, "").as_bytes()).await.unwrap();
    // The whole initialize reply: one JSON body, with its length.
    let (head, body) = read_response(&mut s, "the initialize reply").await;
    assert!(body.contains("serverInfo"), "{head}{body}");
    let sid = head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: ").map(str::to_owned))
        .expect("a session id");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    s.write_all(post(&note, &sid).as_bytes()).await.unwrap();
    read_until(&mut s, "202", |b| {
        b.contains("202 Accepted") && b.ends_with("\r\n\r\n")
    })
    .await;

    // Now a GET on the same connection, after it idled: the standalone stream.
    let get = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-06-18\r\n\r\n"
    );
    s.write_all(get.as_bytes()).await.unwrap();
    let head = read_until(&mut s, "the stream's head", |b| b.contains("\r\n\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let mut other = bridge.client().await;
    other.initialize().await;
    other.call(json!(1), "list_changed", json!({})).await;
    read_until(&mut s, "the broadcast", |b| b.contains("list_changed")).await;

    // The session ends, so does the stream; the connection then carries a POST again.
    let mut ender = Client::new(&bridge.url);
    ender.session = Some(sid.clone());
    assert_eq!(ender.delete().await, 200);
    read_until(&mut s, "the stream's end", |b| b.ends_with("0\r\n\r\n")).await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    s.write_all(post(&ping, &sid).as_bytes()).await.unwrap();
    let gone = read_until(&mut s, "the reply", |b| b.contains("\r\n\r\n")).await;
    assert!(
        gone.starts_with("HTTP/1.1 404"),
        "a deleted session: {gone}"
    );
}

/// One response with a `content-length` from `s`: its head (lowercased) and body.
async fn read_response(s: &mut TcpStream, what: &str) -> (String, String) {
    let mut got: Vec<u8> = Vec::new();
    within(what, async {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let head = head.to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map(|n| n.trim().parse::<usize>().unwrap());
                if let Some(n) = length.filter(|n| body.len() >= *n) {
                    return (head, body[..n].to_owned());
                }
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before {what}: {text}");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
}

#[tokio::test]
async fn posts_whole_or_in_pieces_are_answered_and_an_odd_one_goes_to_hyper() {
    let bridge = TestBridge::start().await;
    let addr = addr_of(&bridge);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let post = |body: &str, extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string();
    // The head, then the body in two writes.
    let request = post(&init, "");
    let (head, body) = request.split_at(request.len() - init.len() / 2);
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let (head, body) = read_response(&mut s, "the initialize reply").await;
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["result"]["serverInfo"]["name"], "fake-mcp-server");
    let sid = head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .expect("a session")
        .trim()
        .to_owned();
    let session = format!("Mcp-Session-Id: {sid}\r\nMcp-Protocol-Version: 2025-06-18\r\n");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let call = |id: u64, text: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"text": text}}})
        .to_string()
    };
    // Three pipelined in one write: answered in order.
    let burst = [
        post(&initialized.to_string(), &session),
        post(&call(2, "two"), &session),
        post(&call(3, "three"), &session),
    ]
    .concat();
    s.write_all(burst.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut s, "the notification's 202").await;
    assert!(head.starts_with("http/1.1 202 accepted"), "{head}");
    for (id, text) in [(2, "two"), (3, "three")] {
        let (head, body) = read_response(&mut s, "an echo").await;
        assert!(head.starts_with("http/1.1 200 ok"), "{head}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["id"], id);
        assert_eq!(reply["result"]["content"][0]["text"], text);
    }
    // A chunked body is hyper's; the connection goes on with hyper, and ends on request.
    let chunked = call(4, "four");
    let odd = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\n{session}Transfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{chunked}\r\n0\r\n\r\n",
        chunked.len()
    );
    s.write_all(odd.as_bytes()).await.unwrap();
    let (_, body) = read_response(&mut s, "the chunked call's reply").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"],
        4
    );
    let last = post(&call(5, "five"), &format!("{session}Connection: close\r\n"));
    s.write_all(last.as_bytes()).await.unwrap();
    let mut rest = String::new();
    within(
        "the last reply, then the close",
        s.read_to_string(&mut rest),
    )
    .await
    .unwrap();
    assert!(rest.contains("\"five\""), "{rest}");
    assert!(
        rest.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{rest}"
    );
}

#[tokio::test]
async fn a_plain_post_closing_its_connection_says_so() {
    let bridge = TestBridge::start().await;
    let addr = addr_of(&bridge);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = "{}";
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut all = String::new();
    within("the reply, then the close", s.read_to_string(&mut all))
        .await
        .unwrap();
    let lower = all.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 400 bad request\r\n"), "{all}");
    assert!(lower.contains("\r\nconnection: close\r\n"), "{all}");
    assert!(lower.contains("\r\ncontent-length: "), "{all}");
}
