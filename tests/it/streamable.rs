use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn handshake_tools_and_both_reply_modes() {
    let bridge = TestBridge::start().await;
    let mut c = Client::new(&bridge.url);
    let init = c.initialize().await;
    assert_eq!(init["serverInfo"]["name"], "fake-mcp-server");
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert!(init["capabilities"]["tools"].is_object());
    let sid = c.session.clone().unwrap();
    // Visible ASCII only (the specification), at least 128 bits of randomness after the
    // instance prefix.
    let random = sid.split_once('.').expect("instance.random").1;
    assert!(
        sid.bytes().all(|b| (0x21..=0x7e).contains(&b))
            && random.len() >= 32
            && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "{sid}"
    );

    // A client taking both kinds gets an answer that came at once as one JSON body.
    let list = c.request(json!(1), "tools/list", json!({})).await;
    assert!(
        !list.is_sse() && list.headers["content-type"] == "application/json",
        "{list:?}"
    );
    let names: Vec<&str> = list.last()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"add"),
        "{names:?}"
    );

    // The id comes back exactly, string or number.
    let r = c.call(json!("abc"), "add", json!({"a": 2, "b": 40})).await;
    assert_eq!((r["id"].clone(), text(&r)), (json!("abc"), "42"));
    // A slow answer (past the bridge's first wait) streams: the reply starts before it is ready.
    let slow = c
        .request(
            json!(8),
            "tools/call",
            json!({"name": "slow", "arguments": {"ms": 100}}),
        )
        .await;
    assert!(slow.is_sse(), "{slow:?}");
    assert_eq!(text(slow.last()), "slept 100");
    // SSE-only client: an event stream, primed (2025-11-25), the response as its one message.
    let msg = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "ev"}}});
    let s = c.send("text/event-stream", &msg).await;
    assert!(s.is_sse(), "{s:?}");
    assert_eq!(s.messages.len(), 1, "{s:?}");
    assert_eq!((s.last()["id"].clone(), text(s.last())), (json!(6), "ev"));
    // JSON-only client: a single application/json body.
    let msg = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}});
    let j = c.send(JSON_ONLY, &msg).await;
    assert_eq!(j.status, 200);
    assert!(j.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!((j.last()["id"].clone(), text(j.last())), (json!(7), "hi"));
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn protocol_version_is_negotiated_per_session() {
    let bridge = TestBridge::start().await;
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2024-11-05"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let c = Client::new(&bridge.url);
        let r = c.send(JSON_ONLY, &initialize_msg(json!(1), asked)).await;
        assert_eq!(
            r.last()["result"]["protocolVersion"],
            answered,
            "asked {asked}"
        );
    }
}

#[tokio::test]
async fn notifications_and_responses_get_202_without_body() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    let r = c
        .send(
            BOTH,
            &json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}),
        )
        .await;
    assert_eq!((r.status, r.messages.len()), (202, 0));
    let r = c.send(BOTH, &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}})).await;
    assert_eq!(r.status, 202);
}

fn error_code(r: &Reply) -> i64 {
    r.last()["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no JSON-RPC error in {r:?}"))
}

#[tokio::test]
async fn sessions_are_required_and_end_with_delete() {
    let bridge = TestBridge::start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let none = Client::new(&bridge.url).send(BOTH, &ping).await;
    assert_eq!((none.status, error_code(&none)), (400, -32000));
    let mut bogus = Client::new(&bridge.url);
    bogus.session = Some("0123456789abcdef".into());
    let unknown = bogus.send(BOTH, &ping).await;
    assert_eq!((unknown.status, error_code(&unknown)), (404, -32001));

    let c = bridge.client().await;
    let other = bridge.client().await;
    assert_eq!(c.send(JSON_ONLY, &ping).await.status, 200);
    assert_eq!(bridge.health().await["sessions"], 2);
    assert_eq!(c.delete().await, 200);
    let gone = c.send(BOTH, &ping).await;
    assert_eq!((gone.status, error_code(&gone)), (404, -32001));
    assert_eq!(c.delete().await, 404);
    // The other session is untouched.
    assert_eq!(
        text(
            &other
                .call(json!(1), "echo", json!({"text": "still here"}))
                .await
        ),
        "still here"
    );
    assert_eq!(bridge.health().await["sessions"], 1);
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_session_stays_usable() {
    let bridge = TestBridge::start_with(|c| c.limits.max_body = 64 * 1024).await;
    let c = bridge.client().await;
    let cases: Vec<(&str, Vec<u8>, u16, Option<i64>)> = vec![
        (
            "malformed JSON",
            b"{\"jsonrpc\": \"2.0\", \"id\": 1,".to_vec(),
            400,
            Some(-32700),
        ),
        ("not UTF-8", vec![0xff, 0xfe, b'{'], 400, Some(-32700)),
        (
            "JSON, not JSON-RPC",
            b"{\"hello\": 1}".to_vec(),
            400,
            Some(-32600),
        ),
        (
            "wrong version",
            b"{\"jsonrpc\": \"1.0\", \"id\": 1, \"method\": \"ping\"}".to_vec(),
            400,
            Some(-32600),
        ),
        ("a bare number", b"42".to_vec(), 400, Some(-32600)),
        ("oversized", vec![b' '; 65 * 1024], 413, None),
    ];
    for (what, body, status, code) in cases {
        let r = c.send_raw(BOTH, body).await;
        assert_eq!(r.status, status, "{what}: {r:?}");
        if let Some(code) = code {
            assert_eq!(error_code(&r), code, "{what}");
        }
        assert_eq!(
            text(&c.call(json!(1), "echo", json!({"text": what})).await),
            what,
            "after {what}"
        );
    }
    // Wrong content type → 415, wrong Accept → 406, unsupported protocol version → 400.
    let ping = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).unwrap();
    let sid = c.session.clone().unwrap();
    let plain = c
        .http
        .post(&c.url)
        .header("content-type", "text/plain")
        .header("accept", BOTH)
        .header("mcp-session-id", sid);
    let r = plain.body(ping.clone()).send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = c.post("text/html").body(ping.clone()).send().await.unwrap();
    assert_eq!(r.status(), 406);
    let r = c
        .post(BOTH)
        .header("mcp-protocol-version", "1999-01-01")
        .body(ping.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32000);
    let r = c
        .post(BOTH)
        .header("mcp-protocol-version", "2025-06-18")
        .body(ping)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn standalone_stream_gets_broadcasts() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let mut sa = a.open_stream().await;
    let mut sb = b.open_stream().await;
    assert_eq!(
        text(&a.call(json!(1), "list_changed", json!({})).await),
        "ok"
    );
    for s in [&mut sa, &mut sb] {
        let n = s.next_method("notifications/tools/list_changed").await;
        assert!(n.get("id").is_none());
    }
    // GET without a session → 400; DELETE ends the open stream.
    let r = reqwest::Client::new()
        .get(&bridge.url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(a.delete().await, 200);
    assert!(
        sa.next().await.is_none(),
        "the deleted session's stream ends"
    );
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let bridge = TestBridge::start().await;
    let _c = bridge.client().await;
    let h = bridge.health().await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["child"]["state"], "running");
    assert!(h["child"]["pid"].as_u64().unwrap() > 0);
    assert_eq!(h["sessions"], 1);
    assert!(h["uptimeSeconds"].is_u64());
    let r = reqwest::get(format!("{}/nope", bridge.base)).await.unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new()
        .put(&bridge.url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn custom_mcp_path() {
    let bridge = TestBridge::start_with(|c| c.mcp_path = Some("/v1/tools".into())).await;
    assert!(bridge.url.ends_with("/v1/tools"));
    let c = bridge.client().await;
    c.assert_echo(json!(1), "x").await;
}

#[tokio::test]
async fn a_dropped_stream_resumes_with_last_event_id() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "progress", "arguments": {"n": 30, "ms": 10}, "_meta": {"progressToken": "t"}}});
    let mut events = SseReader::new(c.post(BOTH).json(&call).send().await.unwrap());
    let priming = events.next_event().await.unwrap();
    assert!(
        priming.data.is_empty() && !priming.id.is_empty(),
        "a priming event first: {priming:?}"
    );
    let stream_no = priming.id.split('-').next().unwrap().to_owned();
    let mut last_id = priming.id;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = events.next_event().await.unwrap();
        let m: Value = serde_json::from_str(&e.data).unwrap();
        seen.push(m["params"]["progress"].as_u64().unwrap());
        last_id = e.id;
    }
    drop(events);
    // The bridge parks the stream once it notices the disconnect; resume as a client would.
    let mut resumed = within("resume", async {
        loop {
            let get = c
                .http
                .get(&c.url)
                .header("accept", "text/event-stream")
                .header("mcp-session-id", c.session.as_deref().unwrap())
                .header("last-event-id", &last_id);
            let mut r = SseReader::new(get.send().await.unwrap());
            let first = r.next_event().await.unwrap();
            if first.id.starts_with(&format!("{stream_no}-")) {
                return (r, first);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let mut messages = vec![serde_json::from_str::<Value>(&resumed.1.data).unwrap()];
    while let Some(m) = resumed.0.next().await {
        messages.push(m);
    }
    let (result, progress) = messages.split_last().unwrap();
    seen.extend(
        progress
            .iter()
            .map(|m| m["params"]["progress"].as_u64().unwrap()),
    );
    assert_eq!(
        seen,
        (1..=30).collect::<Vec<_>>(),
        "every progress exactly once, in order"
    );
    assert_eq!(
        (result["id"].clone(), text(result)),
        (json!(1), "progress done 30")
    );
}

/// POSTs a 2025-03-26 batch: the messages of its reply, the events of a stream or the items of
/// a JSON array (anything else fails the test).
async fn batch_replies(c: &Client, accept: &str, batch: &Value) -> Vec<Value> {
    let r = c
        .post(accept)
        .header("mcp-protocol-version", "2025-03-26")
        .body(serde_json::to_vec(batch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let is_sse = r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    let body = r.text().await.unwrap();
    match is_sse {
        true => parse_events(&body),
        false => serde_json::from_str::<Vec<Value>>(&body)
            .unwrap_or_else(|e| panic!("{accept}: not an array ({e}): {body}")),
    }
}

#[tokio::test]
async fn batches_from_2025_03_26_clients() {
    let bridge = TestBridge::start().await;
    let mut c = Client::new(&bridge.url);
    let init = c.send(BOTH, &initialize_msg(json!(0), "2025-03-26")).await;
    c.session = Some(init.headers["mcp-session-id"].to_str().unwrap().to_owned());
    let call = |id: u64, text: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text, "ms": 5 - id}}})
    };
    let batch = json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}, call(1, "one"), call(2, "two")]);
    for accept in [BOTH, JSON_ONLY] {
        let replies = batch_replies(&c, accept, &batch).await;
        let mut got: Vec<(u64, String)> = replies
            .iter()
            .map(|m| (m["id"].as_u64().unwrap(), text(m).to_owned()))
            .collect();
        got.sort();
        assert_eq!(got, vec![(1, "one".into()), (2, "two".into())], "{accept}");
    }
    // A batch of one request is answered as a batch: an array of one, or a stream.
    for accept in [BOTH, JSON_ONLY] {
        let replies = batch_replies(&c, accept, &json!([call(3, "solo")])).await;
        assert_eq!(replies.len(), 1, "{accept}: {replies:?}");
        assert_eq!(text(&replies[0]), "solo", "{accept}");
    }
    let only_notes = json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]);
    assert_eq!(c.send(BOTH, &only_notes).await.status, 202);
    // A later revision's session may not batch.
    let modern = bridge.client().await;
    let r = modern.send(BOTH, &json!([call(1, "x")])).await;
    assert_eq!(
        (r.status, r.last()["error"]["code"].as_i64()),
        (400, Some(-32600))
    );
}

#[tokio::test]
async fn ids_come_back_exactly_as_sent() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    for id in [
        "123456789012345678901234567890",
        "-7",
        "1.5",
        "\"\"",
        "\"🦀 id\"",
        "0",
    ] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"x"}}}}}}"#
        );
        let r = c.send_raw(JSON_ONLY, body).await;
        let raw = serde_json::to_string(&r.last()["id"]).unwrap();
        assert_eq!(raw, id, "the id comes back byte for byte");
        assert_eq!(text(r.last()), "x");
    }
}

/// Pretty-printed bodies (line breaks between tokens) reach the child as one line on both
/// transports, and the reply stream stays well framed.
#[tokio::test]
async fn pretty_printed_requests_are_sent_to_the_child_as_one_line() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    let msg = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                     "params": {"name": "echo", "arguments": {"text": "two\nlines"}}});
    for body in [
        serde_json::to_string_pretty(&msg).unwrap(),
        serde_json::to_string_pretty(&msg)
            .unwrap()
            .replace('\n', "\r\n"),
    ] {
        let reply = c
            .send_raw("application/json, text/event-stream", body)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(text(reply.last()), "two\nlines");
    }
    let mut legacy = LegacyClient::start(&bridge).await;
    let (status, _) = legacy
        .post_raw(serde_json::to_vec_pretty(&msg).unwrap())
        .await;
    assert_eq!(status, 202);
    let r = legacy.stream.next_response(&json!(5)).await;
    assert_eq!(r["result"]["content"][0]["text"], "two\nlines");
}
