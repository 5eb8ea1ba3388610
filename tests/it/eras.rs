//! Both eras on one endpoint: session clients and stateless (2026-07-28) clients, in front of a
//! legacy child and of a modern one, with the bridge translating where the eras differ.

use serde_json::{json, Value};

use crate::support::*;

async fn modern_bridge() -> TestBridge {
    TestBridge::start_with(|c| c.command = MODERN_FIXTURE.into()).await
}

/// Waits (bounded) until the modern child has received a `notifications/cancelled`.
async fn cancelled_at_the_child(m: &ModernClient) {
    within("cancelled at the child", async {
        loop {
            let seen = m.call(json!("c"), "cancellations", json!({})).await;
            let seen: Value = serde_json::from_str(text(&seen)).unwrap();
            if seen.as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn result_text(response: &Value) -> String {
    text(response).to_owned()
}

#[tokio::test]
async fn a_modern_child_is_found_by_its_discover_answer_and_a_legacy_one_by_everything_else() {
    let modern = modern_bridge().await;
    let health = modern.health().await;
    assert_eq!(health["child"]["era"], "modern");
    assert_eq!(health["child"]["protocolVersion"], "2026-07-28");
    let legacy = TestBridge::start().await;
    assert_eq!(legacy.health().await["child"]["era"], "legacy");
}

#[tokio::test]
async fn session_clients_use_a_modern_child_with_their_meta_on_every_request() {
    let bridge = modern_bridge().await;
    let mut c = Client::new(&bridge.url);
    let init = c.initialize().await;
    assert_eq!(init["protocolVersion"], "2025-11-25", "{init}");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    // The bridge answers what the modern child no longer has.
    let pong = c.request(json!("p"), "ping", json!({})).await;
    assert_eq!(pong.last()["result"], json!({}));
    let tools = c.request(json!(1), "tools/list", json!({})).await;
    let names: Vec<&str> = tools.last()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"ask_name") && names.contains(&"echo"),
        "{names:?}"
    );
    assert_eq!(
        text(
            &c.call(json!(2), "echo", json!({"text": "across eras"}))
                .await
        ),
        "across eras"
    );
    // A log level set the session way reaches the child with each request.
    let set = c
        .request(json!(3), "logging/setLevel", json!({"level": "debug"}))
        .await;
    assert_eq!(set.last()["result"], json!({}));
    let logged = c
        .call(json!(4), "log", json!({"level": "info", "message": "hi"}))
        .await;
    assert_eq!(text(&logged), "logged");
}

#[tokio::test]
async fn a_modern_childs_request_for_input_reaches_a_session_client_as_a_server_request() {
    let bridge = modern_bridge().await;
    let c = bridge.client().await;
    let mut events = c.call_streaming(json!("ask"), "ask_name", json!({})).await;
    let ask = events.next_method("elicitation/create").await;
    assert!(ask["id"].is_u64(), "an ordinary server request: {ask}");
    let answer = json!({"jsonrpc": "2.0", "id": ask["id"],
                        "result": {"action": "accept", "content": {"name": "Ada"}}});
    assert_eq!(c.send(BOTH, &answer).await.status, 202);
    let done = events.next_response(&json!("ask")).await;
    assert_eq!(result_text(&done), "Hello, Ada", "{done}");
    // Another session cannot answer someone else's input request.
    let other = bridge.client().await;
    let mut events = c.call_streaming(json!("ask2"), "ask_name", json!({})).await;
    let ask = events.next_method("elicitation/create").await;
    let stolen = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"name": "Mallory"}}});
    assert_eq!(other.send(BOTH, &stolen).await.status, 400);
    let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"name": "Grace"}}});
    assert_eq!(c.send(BOTH, &answer).await.status, 202);
    assert_eq!(
        result_text(&events.next_response(&json!("ask2")).await),
        "Hello, Grace"
    );
}

#[tokio::test]
async fn stateless_clients_use_a_legacy_child_with_the_result_fields_they_require() {
    let bridge = TestBridge::start().await;
    let m = ModernClient::new(&bridge.url);
    let discover = m.request(json!(1), "server/discover", json!({})).await;
    assert_eq!(discover.status, 200);
    assert!(
        discover.headers.get("mcp-session-id").is_none(),
        "no session"
    );
    let r = &discover.last()["result"];
    assert_eq!(r["supportedVersions"], json!(["2026-07-28"]));
    assert!(r["capabilities"]["tools"].is_object(), "{r}");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "fake-mcp-server"
    );
    assert_eq!(
        (
            r["resultType"].clone(),
            r["ttlMs"].clone(),
            r["cacheScope"].clone()
        ),
        (json!("complete"), json!(0), json!("private"))
    );
    let listed = m.request(json!(2), "tools/list", json!({})).await;
    let r = &listed.last()["result"];
    assert!(
        r["tools"].is_array() && r["resultType"] == "complete" && r["ttlMs"] == 0,
        "{r}"
    );
    let echoed = m.call(json!(3), "echo", json!({"text": "stateless"})).await;
    assert_eq!(text(&echoed), "stateless");
    assert_eq!(echoed["result"]["resultType"], "complete");
    assert_eq!(
        echoed["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "fake-mcp-server"
    );
    assert!(
        echoed["result"].get("ttlMs").is_none(),
        "a tool result is not cacheable"
    );
    assert_eq!(bridge.health().await["sessions"], 0);
}

#[tokio::test]
async fn stateless_clients_use_a_modern_child_as_it_is() {
    let bridge = modern_bridge().await;
    let m = ModernClient::new(&bridge.url);
    let discover = m.request(json!(1), "server/discover", json!({})).await;
    assert!(
        discover.last()["result"]["supportedVersions"].is_array(),
        "{discover:?}"
    );
    assert_eq!(
        text(
            &m.call(json!(2), "echo", json!({"text": "modern all the way"}))
                .await
        ),
        "modern all the way"
    );
    // Input requests and the child's state pass through untouched; the retry completes.
    let first = m.call(json!("a"), "ask_name", json!({})).await;
    let r = &first["result"];
    assert_eq!(r["resultType"], "input_required", "{first}");
    let state = r["requestState"].clone();
    assert!(state.is_string());
    let retry = m
        .request(
            json!("b"),
            "tools/call",
            json!({"name": "ask_name", "arguments": {},
            "inputResponses": {"user_name": {"action": "accept", "content": {"name": "Lin"}}},
            "requestState": state}),
        )
        .await;
    assert_eq!(text(retry.last()), "Hello, Lin");
}

/// A plain modern request goes to the child as its own bytes, with its id spliced in; the same
/// request pretty-printed takes the full parse (line breaks are never spliced). Both must get
/// the same answer, in front of either era, as JSON and as an event stream.
#[tokio::test]
async fn stateless_requests_get_the_same_answers_read_plainly_or_parsed_whole() {
    for modern_child in [false, true] {
        let bridge = if modern_child {
            modern_bridge().await
        } else {
            TestBridge::start().await
        };
        let m = ModernClient::new(&bridge.url);
        let future = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}});
        let requests = [
            (
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "same"}}),
            ),
            (
                "tools/call",
                json!({"name": "no-such-tool", "arguments": {}}),
            ),
            ("tools/list", json!({})),
            ("resources/list", json!({})),
            ("resources/read", json!({"uri": "fixture://hello"})),
            ("resources/read", json!({"uri": "fixture://missing"})),
            (
                "prompts/get",
                json!({"name": "greet", "arguments": {"name": "Ada"}}),
            ),
            ("tools/list", future.clone()),
        ];
        for (i, (method, params)) in requests.into_iter().enumerate() {
            // An unsupported revision is refused by the bridge itself, always as JSON.
            let refused = params == future;
            let id = if i % 2 == 0 {
                json!(i)
            } else {
                json!(format!("r{i}"))
            };
            let msg = ModernClient::message(id.clone(), method, params);
            let pretty = serde_json::to_string_pretty(&msg).unwrap();
            for accept in [BOTH, "application/json", "text/event-stream"] {
                let plain =
                    read_reply(within("plain", m.post(&msg, accept).send()).await.unwrap()).await;
                let whole = m.post(&msg, accept).body(pretty.clone());
                let whole = read_reply(within("whole", whole.send()).await.unwrap()).await;
                let what = format!("{method} #{i} ({accept}, modern child: {modern_child})");
                assert_eq!(plain.status, whole.status, "{what}");
                assert_eq!(plain.last(), whole.last(), "{what}");
                assert_eq!(plain.last()["id"], id, "{what}");
                // An answer that comes at once is one JSON body unless only a stream is taken.
                let sse_only = accept == "text/event-stream" && !refused;
                assert_eq!(
                    (plain.is_sse(), whole.is_sse()),
                    (sse_only, sse_only),
                    "{what}"
                );
            }
        }
        if !modern_child {
            // A session-era child never sees the 2026-07-28 keys.
            let msg = ModernClient::message(json!(9), "tools/call", json!({"name": "meta"}));
            let pretty = serde_json::to_string_pretty(&msg).unwrap();
            let plain = m.send(&msg, BOTH).await;
            let whole = m.post(&msg, BOTH).body(pretty);
            let whole = read_reply(within("whole", whole.send()).await.unwrap()).await;
            assert_eq!(text(plain.last()), "{}");
            assert_eq!(text(whole.last()), "{}");
        }
    }
}

#[tokio::test]
async fn stateless_requests_with_bad_headers_are_refused_with_their_id() {
    let bridge = TestBridge::start().await;
    let m = ModernClient::new(&bridge.url);
    let msg = ModernClient::message(
        json!(41),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
    );
    // Mcp-Name naming another tool than the body.
    let mut wrong = msg.clone();
    wrong["params"]["name"] = json!("add");
    let wrong_name = m.post(&wrong, BOTH).body(msg.to_string());
    let resp = within("POST", wrong_name.send()).await.unwrap();
    let r = read_reply(resp).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.last()["id"], 41);
    assert_eq!(r.last()["error"]["code"], -32020);
    // A revision the bridge does not serve.
    let old = ModernClient::message(
        json!(42),
        "tools/list",
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}}),
    );
    let r = m.send(&old, BOTH).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.last()["error"]["code"], -32022);
    assert_eq!(
        r.last()["error"]["data"]["supported"],
        json!(["2026-07-28"])
    );
    assert_eq!(r.last()["error"]["data"]["requested"], "2099-01-01");
    // A method 2026-07-28 does not have.
    let r = m
        .request(json!(43), "logging/setLevel", json!({"level": "info"}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.last()["error"]["code"], -32601);
    assert_eq!(r.last()["id"], 43);
}

#[tokio::test]
async fn closing_a_stateless_reply_stream_cancels_the_request_at_the_child() {
    let bridge = modern_bridge().await;
    let m = ModernClient::new(&bridge.url);
    let msg = ModernClient::message(
        json!("long"),
        "tools/call",
        json!({"name": "slow", "arguments": {"ms": 60000}}),
    );
    let resp = within("POST", m.post(&msg, BOTH).send()).await.unwrap();
    assert_eq!(resp.status(), 200);
    bridge.wait_pending(1).await;
    drop(resp);
    cancelled_at_the_child(&m).await;
    let seen = m.call(json!("c"), "cancellations", json!({})).await;
    let seen: Value = serde_json::from_str(text(&seen)).unwrap();
    assert!(
        seen[0]["reason"].as_str().unwrap().contains("reply stream"),
        "{seen}"
    );
    assert_eq!(bridge.health().await["pendingRequests"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_and_session_clients_with_colliding_ids_each_get_their_own_answers() {
    for bridge in [TestBridge::start().await, modern_bridge().await] {
        let mut tasks = Vec::new();
        for n in 0..8 {
            let url = bridge.url.clone();
            tasks.push(tokio::spawn(async move {
                let m = ModernClient::new(&url);
                for i in 0..10 {
                    let t = format!("stateless {n}/{i}");
                    assert_eq!(text(&m.call(json!(i), "echo", json!({"text": t})).await), t);
                }
            }));
            let c = bridge.client().await;
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    c.assert_echo(json!(i), &format!("session {n}/{i}")).await;
                }
            }));
        }
        for t in tasks {
            within("clients", t).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_subscription_on_a_modern_child_carries_the_clients_listen_id() {
    let bridge = modern_bridge().await;
    let m = ModernClient::new(&bridge.url);
    let listen = ModernClient::message(
        json!("my-listen"),
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
    );
    let resp = within("listen", m.post(&listen, BOTH).send())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut events = SseReader::new(resp);
    let ack = events
        .next_method("notifications/subscriptions/acknowledged")
        .await;
    let id_key = "io.modelcontextprotocol/subscriptionId";
    assert_eq!(ack["params"]["_meta"][id_key], "my-listen", "{ack}");
    // Another client with the same id must not see this one's notifications, nor break it.
    let other = m
        .call(json!("my-listen"), "list_changed", json!({"kind": "tools"}))
        .await;
    assert!(other.get("result").is_some(), "{other}");
    let changed = events.next_method("notifications/tools/list_changed").await;
    assert_eq!(changed["params"]["_meta"][id_key], "my-listen", "{changed}");
    // Closing the listen stream cancels it at the child.
    drop(events);
    cancelled_at_the_child(&m).await;
}

/// The modern `_meta` of a client that declared only these capabilities.
fn declaring(caps: Value) -> Value {
    json!({"io.modelcontextprotocol/clientCapabilities": caps})
}

#[tokio::test]
async fn a_legacy_childs_server_request_reaches_a_stateless_client_as_input_required() {
    let bridge = TestBridge::start().await;
    let m = ModernClient::new(&bridge.url);
    let first = m
        .call(json!(1), "elicit", json!({"message": "Who are you?"}))
        .await;
    let r = &first["result"];
    assert_eq!(r["resultType"], "input_required", "{first}");
    let asks = r["inputRequests"].as_object().expect("input requests");
    assert_eq!(asks.len(), 1);
    let (key, ask) = asks.iter().next().unwrap();
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["message"], "Who are you?");
    let state = r["requestState"].as_str().expect("a state").to_owned();
    // A retry that leaves the input out is asked again, under the same key.
    let again = m
        .request(json!(2), "tools/call", json!({"name": "elicit", "arguments": {"message": "Who are you?"}, "requestState": state}))
        .await;
    let again = &again.last()["result"];
    assert_eq!(again["resultType"], "input_required");
    assert!(again["inputRequests"].get(key).is_some(), "{again}");
    // A tampered state is refused, and so is another caller's (the tests run unauthenticated,
    // so the other caller here is a forged state).
    let mut forged = state.clone();
    forged.insert(0, 'x');
    let refused = m
        .request(
            json!(3),
            "tools/call",
            json!({"name": "elicit", "arguments": {}, "requestState": forged,
            "inputResponses": {key.clone(): {"action": "accept", "content": {"name": "Eve"}}}}),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.last()["error"]["code"], -32602);
    // The answered retry completes the call the child was running all along.
    let state = again["requestState"].as_str().unwrap().to_owned();
    let done = m
        .request(
            json!(4),
            "tools/call",
            json!({"name": "elicit", "arguments": {"message": "Who are you?"},
            "requestState": state,
            "inputResponses": {key.clone(): {"action": "accept", "content": {"name": "Ada"}}}}),
        )
        .await;
    let done = done.last();
    assert_eq!(done["id"], 4);
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    let told: Value = serde_json::from_str(text(done)).unwrap();
    assert_eq!(told["content"]["name"], "Ada");
    assert_eq!(bridge.health().await["pendingRequests"], 0);
}

#[tokio::test]
async fn a_stateless_client_is_never_asked_for_what_it_did_not_declare() {
    let bridge = TestBridge::start().await;
    let m = ModernClient::new(&bridge.url);
    // The child asks for elicitation; the client declared only sampling: the bridge refuses the
    // child's request for it (-32021, naming the capability) and the child decides. This one
    // reports the error it got as its result.
    let msg = ModernClient::message(
        json!("e"),
        "tools/call",
        json!({"name": "elicit", "arguments": {"message": "?"}, "_meta": declaring(json!({"sampling": {}}))}),
    );
    let r = m.send(&msg, JSON_ONLY).await;
    assert_eq!(r.status, 200);
    let answer = r.last();
    assert_eq!(answer["id"], "e");
    assert_eq!(
        answer["result"]["resultType"], "complete",
        "not asked: {answer}"
    );
    let told: Value = serde_json::from_str(text(answer)).unwrap();
    assert_eq!(told["error"]["code"], -32021, "{told}");
    assert_eq!(
        told["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
    assert_eq!(bridge.health().await["pendingRequests"], 0);
}

#[tokio::test]
async fn a_stateless_listener_hears_a_legacy_childs_changes_and_updates() {
    let bridge = TestBridge::start().await;
    let m = ModernClient::new(&bridge.url);
    let listen = ModernClient::message(
        json!(77),
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true, "promptsListChanged": false,
                                 "resourceSubscriptions": ["fixture://hello"]}}),
    );
    let resp = within("listen", m.post(&listen, BOTH).send())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut events = SseReader::new(resp);
    let ack = events
        .next_method("notifications/subscriptions/acknowledged")
        .await;
    let id_key = "io.modelcontextprotocol/subscriptionId";
    assert_eq!(ack["params"]["_meta"][id_key], 77);
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["fixture://hello"]})
    );
    m.call(json!(1), "list_changed", json!({})).await;
    let changed = events.next_method("notifications/tools/list_changed").await;
    assert_eq!(changed["params"]["_meta"][id_key], 77);
    // The child was subscribed for the listener: it only reports updates of subscribed URIs.
    m.call(json!(2), "touch", json!({"uri": "fixture://hello"}))
        .await;
    let updated = events.next_method("notifications/resources/updated").await;
    assert_eq!(updated["params"]["uri"], "fixture://hello");
    assert_eq!(updated["params"]["_meta"][id_key], 77);
}

#[tokio::test]
async fn session_clients_of_a_modern_child_hear_changes_and_their_subscriptions_through_a_listen() {
    let bridge = modern_bridge().await;
    let c = bridge.client().await;
    let mut stream = c.open_stream().await;
    c.call(json!(1), "list_changed", json!({"kind": "tools"}))
        .await;
    stream.next_method("notifications/tools/list_changed").await;
    let uri = "test://watched-resource";
    let sub = c
        .request(json!(2), "resources/subscribe", json!({"uri": uri}))
        .await;
    assert_eq!(sub.last()["result"], json!({}), "{sub:?}");
    // The bridge listens again with the URI; the child reports updates of it from then on.
    within("an update", async {
        loop {
            c.call(json!(3), "touch", json!({"uri": uri})).await;
            let next =
                tokio::time::timeout(std::time::Duration::from_millis(200), stream.next()).await;
            if let Ok(Some(m)) = next {
                if m["method"] == "notifications/resources/updated" {
                    assert_eq!(m["params"]["uri"], uri);
                    break;
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_stateless_request_hears_a_legacy_childs_logs_only_when_it_asked_for_them() {
    let bridge = TestBridge::start().await;
    let m = ModernClient::new(&bridge.url);
    let args = json!({"level": "warning", "message": "careful"});
    let asked = m
        .request(
            json!(1),
            "tools/call",
            json!({"name": "log", "arguments": args,
            "_meta": {"io.modelcontextprotocol/logLevel": "info"}}),
        )
        .await;
    let logs: Vec<&Value> = asked
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 1, "{asked:?}");
    assert_eq!(logs[0]["params"]["data"], "careful");
    assert_eq!(asked.last()["id"], 1);
    let silent = m
        .request(
            json!(2),
            "tools/call",
            json!({"name": "log", "arguments": args}),
        )
        .await;
    assert!(
        silent
            .messages
            .iter()
            .all(|m| m["method"] != "notifications/message"),
        "{silent:?}"
    );
}

#[tokio::test]
async fn stateless_requests_are_refused_in_session_isolation_with_a_reason() {
    let bridge = TestBridge::start_with(|c| {
        c.supervision.isolation = mcp_http_bridge::config::Isolation::Session;
    })
    .await;
    let m = ModernClient::new(&bridge.url);
    let r = m.request(json!(5), "tools/list", json!({})).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.last()["id"], 5);
    assert!(r.last()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--isolation session"));
    // Sessions work as ever.
    bridge
        .client()
        .await
        .assert_echo(json!(1), "still fine")
        .await;
}
