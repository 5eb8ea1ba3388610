use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn endpoint_event_then_replies_on_the_stream() {
    let bridge = TestBridge::start().await;
    let mut c = LegacyClient::start(&bridge).await;
    let list = json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list"});
    assert_eq!(c.post(&list).await, 202);
    let tools = c.stream.next_response(&json!("l")).await;
    assert!(tools["result"]["tools"].as_array().unwrap().len() > 5);
    let r = c.call(json!(1), "add", json!({"a": 1, "b": 1})).await;
    assert_eq!(text(&r), "2");
    assert_eq!(bridge.health().await["sessions"], 1);
}

#[tokio::test]
async fn bad_input_and_unknown_sessions() {
    let bridge = TestBridge::start().await;
    let mut c = LegacyClient::start(&bridge).await;
    let (status, body) = c.post_raw(b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32700
    );
    let (status, body) = c.post_raw(b"{\"jsonrpc\":\"2.0\"}".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32600
    );
    let r = c.call(json!(2), "echo", json!({"text": "still"})).await;
    assert_eq!(text(&r), "still");

    let http = reqwest::Client::new();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for (url, status) in [
        (format!("{}/message?sessionId=deadbeef", bridge.base), 404),
        (format!("{}/message", bridge.base), 400),
    ] {
        let r = http.post(&url).json(&ping).send().await.unwrap();
        assert_eq!(r.status(), status, "{url}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["code"].is_i64());
    }
    // A Streamable HTTP session id is not a legacy one, and vice versa.
    let s = bridge.client().await;
    let url = format!(
        "{}/message?sessionId={}",
        bridge.base,
        s.session.as_deref().unwrap()
    );
    assert_eq!(
        http.post(&url).json(&ping).send().await.unwrap().status(),
        404
    );
    let legacy_id = c.endpoint.split('=').nth(1).unwrap().to_owned();
    let mut wrong = Client::new(&bridge.url);
    wrong.session = Some(legacy_id);
    assert_eq!(wrong.send(BOTH, &ping).await.status, 404);
}

#[tokio::test]
async fn both_transports_on_one_child_never_mix() {
    let bridge = TestBridge::start().await;
    let mut legacy = LegacyClient::start(&bridge).await;
    let modern = bridge.client().await;
    let (l, m) = tokio::join!(
        legacy.call(json!(1), "echo", json!({"text": "legacy", "ms": 30})),
        modern.call(json!(1), "echo", json!({"text": "modern", "ms": 1})),
    );
    assert_eq!((text(&l), text(&m)), ("legacy", "modern"));
}

/// 20 sessions × 50 calls over the legacy transport, ids 1..=50 in each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_ids_across_many_legacy_sessions_reach_their_callers() {
    let bridge = TestBridge::start().await;
    let mut tasks = Vec::new();
    for s in 0..20u64 {
        let mut c = LegacyClient::start(&bridge).await;
        tasks.push(tokio::spawn(async move {
            let (http, endpoint) = (c.http.clone(), c.endpoint.clone());
            let posts = (1..=50u64).map(|i| {
                let msg = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": format!("s{s} c{i}"), "ms": (s + i) % 4}}});
                let req = http.post(&endpoint).json(&msg).send();
                async move { assert_eq!(req.await.unwrap().status(), 202) }
            });
            futures_util::future::join_all(posts).await;
            let mut seen = HashMap::new();
            while seen.len() < 50 {
                let r = c.stream.next().await.expect("stream open");
                let id = r["id"].as_u64().expect("a response");
                assert!(seen.insert(id, text(&r).to_owned()).is_none(), "one response per id");
            }
            for i in 1..=50u64 {
                assert_eq!(seen[&i], format!("s{s} c{i}"));
            }
        }));
    }
    for t in tasks {
        within("legacy session", t).await.unwrap();
    }
}

#[tokio::test]
async fn progress_and_sampling_over_the_legacy_stream() {
    let bridge = TestBridge::start().await;
    let mut c = LegacyClient::start(&bridge).await;
    let msg = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "progress", "arguments": {"n": 3}, "_meta": {"progressToken": "p"}}});
    assert_eq!(c.post(&msg).await, 202);
    for i in 1..=3 {
        let p = c.stream.next_method("notifications/progress").await;
        assert_eq!(
            (
                p["params"]["progressToken"].clone(),
                p["params"]["progress"].clone()
            ),
            (json!("p"), json!(i))
        );
    }
    assert_eq!(
        text(&c.stream.next_response(&json!(9)).await),
        "progress done 3"
    );

    let msg = json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "sample", "arguments": {"prompt": "q"}}});
    assert_eq!(c.post(&msg).await, 202);
    let req = c.stream.next_method("sampling/createMessage").await;
    let reply = sampling_reply(&req, "a");
    assert_eq!(c.post(&reply).await, 202);
    assert_eq!(text(&c.stream.next_response(&json!(10)).await), "a");
}

#[tokio::test]
async fn the_session_ends_with_its_stream() {
    let bridge = TestBridge::start_with(|c| c.keep_alive = Duration::from_millis(50)).await;
    let c = LegacyClient::start(&bridge).await;
    let endpoint = c.endpoint.clone();
    drop(c);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    within("session gone", async {
        loop {
            let r = reqwest::Client::new()
                .post(&endpoint)
                .json(&ping)
                .send()
                .await
                .unwrap();
            if r.status() == 404 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(bridge.health().await["sessions"], 0);
}

#[tokio::test]
async fn broadcasts_reach_legacy_sessions_and_shutdown_ends_the_stream() {
    let bridge = TestBridge::start().await;
    let mut c = LegacyClient::start(&bridge).await;
    let other = bridge.client().await;
    other.call(json!(1), "list_changed", json!({})).await;
    c.stream
        .next_method("notifications/tools/list_changed")
        .await;
    let mut stream = c.stream;
    bridge.stop().await.unwrap();
    assert!(stream.next().await.is_none());
}
