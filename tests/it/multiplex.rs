use serde_json::{json, Value};

use crate::support::*;

/// 20 sessions × 50 calls, ids 1..=50 in every session (so they collide across sessions), each
/// call taking a session-dependent time so the child answers out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_ids_across_many_sessions_reach_their_callers() {
    let bridge = TestBridge::start().await;
    let mut tasks = Vec::new();
    for s in 0..20u64 {
        let c = bridge.client().await;
        tasks.push(tokio::spawn(async move {
            let calls = (1..=50u64).map(|i| {
                let c = c.clone();
                async move {
                    let text_sent = format!("session {s} call {i}");
                    let id = if i % 2 == 0 {
                        json!(i)
                    } else {
                        json!(i.to_string())
                    };
                    let r = c
                        .call(
                            id.clone(),
                            "echo",
                            json!({"text": text_sent, "ms": (s * 7 + i) % 5}),
                        )
                        .await;
                    assert_eq!(r["id"], id, "id type and value preserved");
                    assert_eq!(text(&r), text_sent);
                }
            });
            futures_util::future::join_all(calls).await;
        }));
    }
    for t in tasks {
        within("session task", t).await.unwrap();
    }
    assert_eq!(bridge.health().await["pendingRequests"], 0);
}

#[tokio::test]
async fn progress_with_the_same_id_and_token_stays_with_its_session() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let call = |c: Client, n: u64| async move {
        let params = json!({"name": "progress", "arguments": {"n": n, "ms": 1}, "_meta": {"progressToken": "tok"}});
        c.request(json!(1), "tools/call", params).await
    };
    let (ra, rb) = tokio::join!(call(a, 5), call(b, 8));
    for (r, n) in [(ra, 5u64), (rb, 8)] {
        let (progress, rest) = r.messages.split_at(r.messages.len() - 1);
        let seen: Vec<u64> = progress
            .iter()
            .map(|m| {
                assert_eq!(m["method"], "notifications/progress");
                assert_eq!(m["params"]["progressToken"], "tok");
                m["params"]["progress"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(
            seen,
            (1..=n).collect::<Vec<_>>(),
            "all progress, in order, before the result"
        );
        assert_eq!(text(&rest[0]), format!("progress done {n}"));
    }
}

/// Asserts that the child got exactly one cancellation, with `reason`, naming a request by the
/// bridge's id (a number; the client's id was a string) rather than the client's.
fn assert_one_cancellation(seen: &[Value], reason: &str) {
    assert_eq!(seen.len(), 1, "one cancellation at the child: {seen:?}");
    assert_eq!(seen[0]["reason"], reason, "{seen:?}");
    assert!(
        seen[0]["requestId"].is_u64(),
        "the child's id for the request, not the client's: {seen:?}"
    );
}

#[tokio::test]
async fn cancellation_reaches_the_child_and_spares_other_sessions() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let slow = |c: Client| async move {
        c.request(
            json!("5"),
            "tools/call",
            json!({"name": "slow", "arguments": {"ms": 400}}),
        )
        .await
    };
    let pa = tokio::spawn(slow(a.clone()));
    let pb = tokio::spawn(slow(b.clone()));
    // Wait until both requests are at the child.
    bridge.wait_pending(2).await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "5", "reason": "test"}});
    assert_eq!(a.send(BOTH, &cancel).await.status, 202);
    let ra = within("cancelled call", pa).await.unwrap();
    assert!(
        ra.messages.iter().all(|m| m.get("result").is_none()),
        "a cancelled request gets no result: {ra:?}"
    );
    // B's request, with the same id, was not the one cancelled: it still gets its result.
    let rb = within("other call", pb).await.unwrap();
    assert_eq!(text(rb.last()), "slept 400");
    assert_one_cancellation(&cancellations_at_child(&b, 1).await, "test");
    a.assert_echo(json!(6), "next").await;
}

#[tokio::test]
async fn sampling_goes_to_the_requesting_session_and_back() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    let mut events = c
        .call_streaming(json!(1), "sample", json!({"prompt": "what?"}))
        .await;
    let req = events.next_method("sampling/createMessage").await;
    assert_eq!(req["params"]["messages"][0]["content"]["text"], "what?");
    // Another session cannot answer it.
    let other = bridge.client().await;
    let reply = sampling_reply(&req, "forty-two");
    assert_eq!(other.send(BOTH, &reply).await.status, 400);
    assert_eq!(c.send(BOTH, &reply).await.status, 202);
    let result = events.next().await.unwrap();
    assert_eq!(
        (result["id"].clone(), text(&result)),
        (json!(1), "forty-two")
    );
    assert!(
        events.next().await.is_none(),
        "the stream ends after the response"
    );
}

#[tokio::test]
async fn ambiguous_server_requests_are_refused_not_guessed() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let busy = tokio::spawn({
        let b = b.clone();
        async move { b.call(json!(1), "slow", json!({"ms": 300})).await }
    });
    bridge.wait_pending(1).await;
    let r = a
        .call(json!(1), "sample", json!({"prompt": "secret"}))
        .await;
    assert!(text(&r).contains("-32051"), "the child was refused: {r}");
    assert_eq!(text(&within("b", busy).await.unwrap()), "slept 300");
}

#[tokio::test]
async fn a_client_that_vanishes_mid_stream_costs_the_others_nothing() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let mut events = a
        .call_streaming(json!(1), "progress", json!({"n": 50, "ms": 2}))
        .await;
    events.next_method("notifications/progress").await;
    drop(events);
    b.assert_echo(json!(1), "fine").await;
    // The abandoned request finishes at the child and leaves nothing behind.
    bridge.wait_pending(0).await;
    a.assert_echo(json!(2), "a too").await;
}

#[tokio::test]
async fn delete_cancels_in_flight_requests_at_the_child() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let pending = tokio::spawn({
        let a = a.clone();
        async move {
            a.request(
                json!("1"),
                "tools/call",
                json!({"name": "slow", "arguments": {"ms": 10000}}),
            )
            .await
        }
    });
    bridge.wait_pending(1).await;
    assert_eq!(a.delete().await, 200);
    let r: Reply = within("stream end", pending).await.unwrap();
    assert!(r.messages.iter().all(|m: &Value| m.get("result").is_none()));
    assert_eq!(bridge.health().await["pendingRequests"], 0);
    let other = bridge.client().await;
    let seen = cancellations_at_child(&other, 1).await;
    assert_one_cancellation(&seen, "the client session ended");
}

#[tokio::test]
async fn a_task_belongs_to_the_session_that_created_it() {
    let bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let mut a_stream = a.open_stream().await;
    let create = a.request(json!(1), "tools/call", json!({"name": "echo", "arguments": {"text": "from a task", "ms": 20}, "task": {"ttl": 60000}})).await;
    let task_id = create.last()["result"]["task"]["taskId"]
        .as_str()
        .expect("a task")
        .to_owned();
    let params = json!({"taskId": task_id});
    // Another session cannot see, await or cancel it.
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let r = b.request(json!(2), method, params.clone()).await;
        assert_eq!(r.last()["error"]["code"], -32602, "{method}: {r:?}");
    }
    let listed = b.request(json!(3), "tasks/list", json!({})).await;
    assert_eq!(listed.last()["result"]["tasks"], json!([]));
    // Its creator can.
    let result = a.request(json!(4), "tasks/result", params.clone()).await;
    assert_eq!(text(result.last()), "from a task");
    let listed = a.request(json!(5), "tasks/list", json!({})).await;
    assert_eq!(listed.last()["result"]["tasks"][0]["taskId"], task_id);
    let status = a_stream.next_method("notifications/tasks/status").await;
    assert_eq!(status["params"]["taskId"], task_id);
}
