use std::time::Duration;

use mcp_http_bridge::{Bridge, Config};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_crash_fails_waiting_requests_at_once_and_ends_the_bridge_with_an_error() {
    let mut bridge = TestBridge::start().await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    let waiting = tokio::spawn({
        let a = a.clone();
        async move {
            a.request(
                json!("w"),
                "tools/call",
                json!({"name": "slow", "arguments": {"ms": 30000}}),
            )
            .await
        }
    });
    within("pending", async {
        while bridge.health().await["pendingRequests"] != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let crash = b
        .request(
            json!(1),
            "tools/call",
            json!({"name": "crash", "arguments": {"code": 3}}),
        )
        .await;
    assert_eq!(crash.last()["error"]["code"], -32050, "{crash:?}");
    let r = within("waiting request", waiting).await.unwrap();
    assert_eq!(r.last()["id"], "w");
    assert_eq!(r.last()["error"]["code"], -32050);
    assert!(r.last()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("exited"));
    let err = bridge.finished().await.unwrap_err();
    assert!(err.to_string().contains("exited"), "{err}");
}

#[tokio::test]
async fn garbage_on_stdout_is_skipped() {
    let bridge = TestBridge::start_with(|c| c.args = vec!["--banner".into()]).await;
    let c = bridge.client().await;
    assert_eq!(text(&c.call(json!(1), "garbage", json!({})).await), "ok");
    assert_eq!(
        text(&c.call(json!(2), "echo", json!({"text": "after"})).await),
        "after"
    );
}

#[tokio::test]
async fn an_over_long_child_line_is_skipped_without_wedging_the_reader() {
    let bridge = TestBridge::start_with(|c| c.limits.max_line = 4096).await;
    let c = bridge.client().await;
    let lost = tokio::spawn({
        let c = c.clone();
        async move { c.call(json!(1), "huge", json!({"bytes": 100_000})).await }
    });
    assert_eq!(
        text(&c.call(json!(2), "huge", json!({"bytes": 1000})).await).len(),
        1000
    );
    assert_eq!(
        text(&c.call(json!(3), "echo", json!({"text": "ok"})).await),
        "ok"
    );
    lost.abort();
}

#[tokio::test]
async fn huge_results_within_the_limit_arrive_whole() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    let r = c.call(json!(1), "huge", json!({"bytes": 8 << 20})).await;
    assert_eq!(text(&r).len(), 8 << 20);
}

#[tokio::test]
async fn a_silent_child_fails_start_up_with_a_clear_error() {
    let mut config = Config::new(FIXTURE, ["--silent"]);
    config.init_timeout = Duration::from_millis(300);
    let err = within("start", Bridge::start(config))
        .await
        .err()
        .expect("start fails");
    assert!(
        err.to_string().contains("did not answer initialize"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_missing_command_names_itself_and_the_os_error() {
    let config = Config::new("/nonexistent/mcp-server", Vec::<String>::new());
    let err = within("start", Bridge::start(config))
        .await
        .err()
        .expect("start fails");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("/nonexistent/mcp-server") && msg.contains("No such file"),
        "{msg}"
    );
}

#[tokio::test]
async fn child_stderr_does_not_disturb_the_protocol() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    assert_eq!(
        text(
            &c.call(json!(1), "stderr", json!({"line": "to the log"}))
                .await
        ),
        "ok"
    );
    assert_eq!(
        text(&c.call(json!(2), "echo", json!({"text": "x"})).await),
        "x"
    );
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_returns_ok() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    let mut stream = c.open_stream().await;
    let pid = bridge.health().await["child"]["pid"].as_u64().unwrap();
    within("stop", bridge.stop()).await.unwrap();
    assert!(stream.next().await.is_none());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "child {pid} is gone"
    );
}

#[tokio::test]
async fn idle_sessions_expire_even_with_an_open_stream_but_not_mid_call() {
    let bridge = TestBridge::start_with(|c| c.session_timeout = Duration::from_millis(300)).await;
    let idle = bridge.client().await;
    let mut stream = idle.open_stream().await;
    let busy = bridge.client().await;
    // A call longer than the timeout keeps its session alive.
    let r = busy.call(json!(1), "slow", json!({"ms": 900})).await;
    assert_eq!(text(&r), "slept 900");
    assert!(
        stream.next().await.is_none(),
        "the expired session's stream ended"
    );
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    assert_eq!(idle.send(BOTH, &ping).await.status, 404);
    assert_eq!(busy.send(BOTH, &ping).await.status, 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_stream_not_the_others() {
    let bridge = TestBridge::start_with(|c| c.limits.stream_queue = 16).await;
    let a = bridge.client().await;
    let b = bridge.client().await;
    // a asks for far more progress than sockets buffer, and does not read.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "progress", "arguments": {"n": 200_000}, "_meta": {"progressToken": 1}}});
    let stalled = within("headers", a.post(BOTH).json(&call).send())
        .await
        .unwrap();
    for i in 0..20 {
        let r = b
            .call(json!(i), "echo", json!({"text": format!("b{i}")}))
            .await;
        assert_eq!(text(&r), format!("b{i}"));
    }
    // The stalled stream is closed and its request forgotten (cancelled at the child).
    within("stream dropped", async {
        while bridge.health().await["pendingRequests"] != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let body = within("stalled body", stalled.text())
        .await
        .expect("the body ends cleanly");
    assert!(
        parse_events(&body)
            .iter()
            .all(|m| m.get("result").is_none()),
        "no result on a dropped stream"
    );
    assert_eq!(
        text(&a.call(json!(2), "echo", json!({"text": "a again"})).await),
        "a again"
    );
}
