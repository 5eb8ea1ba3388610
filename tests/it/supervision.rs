use std::collections::HashMap;
use std::time::Duration;

use mcp_http_bridge::children::{Isolation, Restart};
use serde_json::{json, Value};

use crate::support::*;

async fn until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    within(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_crash_mid_call_fails_it_then_the_sessions_go_on_with_the_restarted_child() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let mut a_stream = a.open_stream().await;
    let subscribe = a
        .request(
            json!("sub"),
            "resources/subscribe",
            json!({"uri": "fixture://hello"}),
        )
        .await;
    assert!(subscribe.last().get("result").is_some(), "{subscribe:?}");
    let old_pid = text(&a.call(json!(0), "pid", json!({})).await).to_owned();
    let waiting = tokio::spawn({
        let a = a.clone();
        async move { a.call(json!(1), "slow", json!({"ms": 30_000})).await }
    });
    until("in flight", async || {
        bridge.health().await["pendingRequests"] == 1
    })
    .await;
    b.call(json!(1), "crash", json!({"code": 3})).await;
    let failed = within("failed call", waiting).await.unwrap();
    assert_eq!(
        failed["error"]["code"], -32050,
        "the waiting call fails at once: {failed}"
    );
    until("restarted", async || {
        let h = bridge.health().await;
        h["children"]["restarts"] == 1 && h["child"]["state"] == "running"
    })
    .await;
    // The same session goes on, with the new process, and hears that its tools may differ.
    let changed = a_stream
        .next_method("notifications/tools/list_changed")
        .await;
    assert_eq!(changed["jsonrpc"], "2.0");
    let new_pid = text(&a.call(json!(3), "pid", json!({})).await).to_owned();
    assert_ne!(old_pid, new_pid);
    b.assert_echo(json!(4), "b too").await;
    // Its subscription was carried over: the new child was subscribed and its updates arrive.
    a.call(json!(5), "touch", json!({"uri": "fixture://hello"}))
        .await;
    let updated = a_stream
        .next_method("notifications/resources/updated")
        .await;
    assert_eq!(updated["params"]["uri"], "fixture://hello");
    assert_eq!(bridge.health().await["status"], "ok");
    assert_eq!(bridge.health().await["sessions"], 2);
}

#[tokio::test]
async fn a_clean_exit_ends_the_bridge_under_on_failure_but_restarts_under_always() {
    let mut bridge = TestBridge::start().await;
    let c = bridge.client().await;
    c.call(json!(1), "crash", json!({"code": 0})).await;
    let err = bridge.finished().await.unwrap_err();
    assert!(err.to_string().contains("exit status: 0"), "{err}");

    let bridge = TestBridge::start_with(|c| c.supervision.restart = Restart::Always).await;
    let c = bridge.client().await;
    c.call(json!(1), "crash", json!({"code": 0})).await;
    until("restarted", async || {
        bridge.health().await["children"]["restarts"] == 1
    })
    .await;
}

#[tokio::test]
async fn repeated_fast_failures_make_the_bridge_give_up() {
    let mut bridge =
        TestBridge::start_with(|c| c.args = vec!["--exit-after".into(), "30".into()]).await;
    let err = bridge.finished().await.unwrap_err();
    assert!(err.to_string().contains("5 times in a row"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_isolation_gives_each_of_200_sessions_its_own_child() {
    let bridge = TestBridge::start_with(|c| c.supervision.isolation = Isolation::Session).await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(bridge.client().await);
    }
    let pids = futures_util::future::join_all(
        clients
            .iter()
            .map(|c| async move { text(&c.call(json!(1), "pid", json!({})).await).to_owned() }),
    )
    .await;
    let distinct: std::collections::HashSet<&String> = pids.iter().collect();
    assert_eq!(distinct.len(), 200, "one child per session");
    assert_eq!(bridge.health().await["children"]["running"], 200);
    // Server requests are unambiguous: every session has its own child.
    let (a, b) = (&clients[0], &clients[1]);
    let busy = b.call(json!(2), "slow", json!({"ms": 200}));
    let sample = async {
        let mut events = a
            .call_streaming(json!(3), "sample", json!({"prompt": "p"}))
            .await;
        let req = events.next_method("sampling/createMessage").await;
        let reply = sampling_reply(&req, "mine");
        assert_eq!(a.send(BOTH, &reply).await.status, 202);
        events.next().await.unwrap()
    };
    let (_, sampled) = tokio::join!(busy, sample);
    assert_eq!(text(&sampled), "mine");
    // Ending a session ends its child.
    for c in &clients {
        assert_eq!(c.delete().await, 200);
    }
    until("children ended", async || {
        bridge.health().await["children"]["running"] == 0
    })
    .await;
}

#[tokio::test]
async fn session_isolation_respects_max_children_and_copies_headers_into_the_environment() {
    let bridge = TestBridge::start_with(|c| {
        c.supervision.isolation = Isolation::Session;
        c.supervision.max_children = 2;
        c.supervision.header_env = vec![("x-api-key".into(), "FIXTURE_API_KEY".into())];
    })
    .await;
    let mut keys = Vec::new();
    for key in ["key-one", "key-two"] {
        let mut c = Client::new(&bridge.url);
        c.http = reqwest::Client::builder()
            .default_headers(headers(&[("x-api-key", key)]))
            .build()
            .unwrap();
        c.initialize().await;
        keys.push(
            text(
                &c.call(json!(1), "env", json!({"name": "FIXTURE_API_KEY"}))
                    .await,
            )
            .to_owned(),
        );
    }
    assert_eq!(keys, ["key-one", "key-two"]);
    let third = Client::new(&bridge.url)
        .send(BOTH, &initialize_msg(json!(1), "2025-11-25"))
        .await;
    assert_eq!(third.status, 503);
}

#[tokio::test]
async fn a_pool_pins_each_session_to_the_least_loaded_child() {
    let bridge = TestBridge::start_with(|c| c.supervision.pool = 3).await;
    let mut per_pid: HashMap<String, usize> = HashMap::new();
    let mut clients = Vec::new();
    for _ in 0..6 {
        let c = bridge.client().await;
        let pid = text(&c.call(json!(1), "pid", json!({})).await).to_owned();
        // Pinned: the same child answers every call of the session.
        assert_eq!(text(&c.call(json!(2), "pid", json!({})).await), pid);
        *per_pid.entry(pid).or_default() += 1;
        clients.push(c);
    }
    assert_eq!(per_pid.len(), 3);
    assert!(per_pid.values().all(|n| *n == 2), "{per_pid:?}");
    let pool: Vec<Value> = bridge.health().await["children"]["pool"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(pool.len(), 3);
}
