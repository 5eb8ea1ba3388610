//! Several instances behind one load balancer: ids that name their instance, and the drain at
//! shutdown (no new session, the open ones finish their work).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const INIT_2025: &str = "2025-11-25";

async fn status_of(resp: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn session_ids_and_request_states_start_with_the_instance_id() {
    let bridge = TestBridge::start().await;
    let instance = bridge.health().await["instance"]
        .as_str()
        .expect("/health names the instance")
        .to_owned();
    assert_eq!(instance, mcp_http_bridge::instance::id());
    let prefix = format!("{instance}.");

    let c = bridge.client().await;
    let sid = c.session.as_deref().unwrap();
    assert!(sid.starts_with(&prefix), "{sid}");

    let legacy = LegacyClient::open(&bridge).await;
    let query = legacy.endpoint.split_once("sessionId=").unwrap().1;
    assert!(query.starts_with(&prefix), "{}", legacy.endpoint);

    // A multi round-trip state names its instance too; one that names another instance is
    // refused with an error that says where it belongs, not as tampering.
    let m = ModernClient::new(&bridge.url);
    let asked = m.call(json!(1), "elicit", json!({"message": "Who?"})).await;
    let state = asked["result"]["requestState"].as_str().expect("a state");
    assert!(state.starts_with(&prefix), "{state}");
    let elsewhere = format!("other-instance.{}", &state[prefix.len()..]);
    let refused = m
        .request(
            json!(2),
            "tools/call",
            json!({"name": "elicit", "arguments": {}, "requestState": elsewhere}),
        )
        .await;
    assert_eq!(refused.status, 400);
    let error = &refused.last()["error"];
    assert_eq!(error["code"], -32602);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("another instance"), "{message}");
}

#[tokio::test]
async fn a_draining_bridge_opens_no_session_and_finishes_the_open_ones() {
    let bridge = TestBridge::start_with(|c| c.shutdown_grace = Duration::from_secs(10)).await;
    let (url, base, sse_url) = (
        bridge.url.clone(),
        bridge.base.clone(),
        bridge.sse_url.clone(),
    );
    let busy = bridge.client().await;
    let other = bridge.client().await;
    let mut legacy = LegacyClient::start(&bridge).await;
    let slow = tokio::spawn(async move { busy.call(json!(1), "slow", json!({"ms": 1500})).await });
    bridge.wait_pending(1).await;
    let stopping = tokio::spawn(bridge.stop());

    let http = reqwest::Client::new();
    let ready = within("/ready turns 503", async {
        loop {
            let r = status_of(http.get(format!("{base}/ready")).send().await.unwrap()).await;
            if r.0 == 503 {
                break r.2;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(ready["shuttingDown"], true, "{ready}");
    assert_eq!(ready["instance"], mcp_http_bridge::instance::id());

    // No new session, on either transport: 503 with Retry-After, so that a load balancer
    // tries another instance.
    let init = http
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", BOTH)
        .json(&initialize_msg(json!(0), INIT_2025))
        .send()
        .await
        .unwrap();
    assert!(init.headers().get("mcp-session-id").is_none());
    let (status, retry, body) = status_of(init).await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    assert_eq!(body["error"]["code"], -32053, "{body}");
    let sse = http
        .get(&sse_url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(sse).await.0, 503);

    // The open sessions and stateless requests are still served while the drain lasts.
    assert_eq!(
        text(&other.call(json!(2), "add", json!({"a": 2, "b": 3})).await),
        "5"
    );
    let on_stream = legacy.call(json!(3), "add", json!({"a": 4, "b": 5})).await;
    assert_eq!(text(&on_stream), "9");
    let m = ModernClient::new(&url);
    assert_eq!(
        text(&m.call(json!(4), "add", json!({"a": 6, "b": 7})).await),
        "13"
    );
    assert!(
        !slow.is_finished(),
        "the calls above ran while the slow one kept the drain open"
    );

    let answered = within("the call in flight finishes", slow).await.unwrap();
    assert_eq!(text(&answered), "slept 1500");
    within("stopped", stopping).await.unwrap().unwrap();
    // Then nothing listens: clients of its sessions go elsewhere and get 404 there.
    assert!(http.get(format!("{base}/ready")).send().await.is_err());
}
