//! `--child-concurrency`: a cap on the requests in flight at a child, with the excess waiting
//! fairly in a bounded queue. The fixture's `concurrency` tool reports the most calls it ever
//! had in flight at once, so a test sees what the server saw.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// `sessions` clients each make `calls` concurrent `concurrency` calls; returns every answer.
async fn hammer(bridge: &TestBridge, sessions: usize, calls: usize) -> Vec<Value> {
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(bridge.client().await);
    }
    let mut tasks = Vec::new();
    for c in &clients {
        for i in 0..calls {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.call(json!(i), "concurrency", json!({"ms": 20})).await
            }));
        }
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(within("a concurrency call", t).await.unwrap());
    }
    answers
}

fn most_in_flight(answers: &[Value]) -> u64 {
    answers
        .iter()
        .map(|a| text(a).parse::<u64>().expect("a count"))
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_of_one_serializes_the_child_and_every_call_succeeds() {
    // Without a cap the server sees concurrent calls (so the check below can fail) ...
    let free = TestBridge::start().await;
    assert!(most_in_flight(&hammer(&free, 4, 3).await) > 1);
    // ... with a cap of one it never does, and nothing is lost.
    let bridge = TestBridge::start_with(|c| c.limits.child_concurrency = 1).await;
    let answers = hammer(&bridge, 10, 3).await;
    assert_eq!(answers.len(), 30);
    assert_eq!(most_in_flight(&answers), 1, "{answers:?}");
    assert_eq!(bridge.health().await["waitingRequests"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_with_an_error_and_health_shows_who_waits() {
    let bridge = TestBridge::start_with(|c| {
        c.limits.child_concurrency = 1;
        c.limits.max_waiting = 2;
    })
    .await;
    let busy = bridge.client().await;
    let slow =
        |c: Client, id: u64| async move { c.call(json!(id), "slow", json!({"ms": 600})).await };
    let running = tokio::spawn(slow(busy.clone(), 1));
    bridge.wait_pending(1).await;
    let queued: Vec<_> = (2..4)
        .map(|id| tokio::spawn(slow(busy.clone(), id)))
        .collect();
    within("two waiting", async {
        while bridge.health().await["waitingRequests"] != 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // A third waiter does not fit: refused at once, and the session stays usable.
    let other = bridge.client().await;
    let refused = other.call(json!(9), "echo", json!({"text": "hi"})).await;
    assert_eq!(refused["error"]["code"], -32052, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--child-concurrency"));
    for t in std::iter::once(running).chain(queued) {
        assert_eq!(text(&within("slow call", t).await.unwrap()), "slept 600");
    }
    other
        .assert_echo(json!(10), "after the queue drained")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_many_waiting_calls_does_not_starve_another() {
    let bridge = TestBridge::start_with(|c| c.limits.child_concurrency = 1).await;
    let greedy = bridge.client().await;
    let modest = bridge.client().await;
    let blocker = tokio::spawn({
        let g = greedy.clone();
        async move { g.call(json!(0), "slow", json!({"ms": 300})).await }
    });
    bridge.wait_pending(1).await;
    let mut greedy_calls = Vec::new();
    for i in 1..=8 {
        let g = greedy.clone();
        greedy_calls.push(tokio::spawn(async move {
            g.call(json!(i), "slow", json!({"ms": 100})).await
        }));
    }
    within("greedy calls queued", async {
        while bridge.health().await["waitingRequests"] != 8 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // The modest session's one call is served right after the running one and the greedy
    // session's first waiter, not after all eight.
    let started = std::time::Instant::now();
    let answer = modest
        .call(json!(1), "echo", json!({"text": "my turn"}))
        .await;
    let waited = started.elapsed();
    assert_eq!(text(&answer), "my turn");
    let pending_greedy = bridge.health().await["waitingRequests"].as_u64().unwrap();
    assert!(
        pending_greedy >= 6,
        "served before most greedy calls ({pending_greedy} still waiting, after {waited:?})"
    );
    within("blocker", blocker).await.unwrap();
    for t in greedy_calls {
        within("greedy call", t).await.unwrap();
    }
}
