use std::time::Duration;

use mcp_http_bridge::children::Restart;
use mcp_http_bridge::{Bridge, Config};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_crash_fails_waiting_requests_at_once_and_ends_the_bridge_with_an_error() {
    let mut bridge = TestBridge::start_with(|c| c.supervision.restart = Restart::Never).await;
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
    bridge.wait_pending(1).await;
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
    c.assert_echo(json!(2), "after").await;
}

#[tokio::test]
async fn an_over_long_child_line_is_skipped_without_wedging_the_reader() {
    let bridge = TestBridge::start_with(|c| c.limits.max_line = 4096).await;
    let c = bridge.client().await;
    // The response over the limit is skipped, and its request answered with an error.
    let lost = c.call(json!(1), "huge", json!({"bytes": 100_000})).await;
    assert_eq!(lost["id"], 1);
    assert_eq!(lost["error"]["code"], -32603, "{lost}");
    assert!(lost["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--max-line"));
    assert_eq!(
        text(&c.call(json!(2), "huge", json!({"bytes": 1000})).await).len(),
        1000
    );
    c.assert_echo(json!(3), "ok").await;
    assert_eq!(bridge.health().await["pendingRequests"], 0);
}

#[tokio::test]
async fn huge_results_within_the_limit_arrive_whole() {
    let bridge = TestBridge::start().await;
    let c = bridge.client().await;
    let r = c.call(json!(1), "huge", json!({"bytes": 8 << 20})).await;
    assert_eq!(text(&r).len(), 8 << 20);
}

/// An 8 MiB argument goes to the child as sent (the fast path splices the id into the
/// client's bytes): escapes and non-ASCII text come back exactly, on both transports.
#[tokio::test]
async fn huge_arguments_reach_the_child_intact() {
    let bridge = TestBridge::start_with(|c| c.limits.max_body = 32 << 20).await;
    let piece = "quote \" backslash \\ newline \n tab \t é ✓ \u{1F600} ";
    let sent = piece.repeat((8 << 20) / piece.len() + 1);
    let c = bridge.client().await;
    let r = c.call(json!("big"), "echo", json!({"text": sent})).await;
    assert!(text(&r) == sent, "the text came back changed");
    let mut legacy = LegacyClient::start(&bridge).await;
    let r = legacy.call(json!(7), "echo", json!({"text": sent})).await;
    assert!(r["result"]["content"][0]["text"] == json!(sent), "changed");
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
    c.assert_echo(json!(2), "x").await;
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
    bridge.wait_pending(0).await;
    let body = within("stalled body", stalled.text())
        .await
        .expect("the body ends cleanly");
    assert!(
        parse_events(&body)
            .iter()
            .all(|m| m.get("result").is_none()),
        "no result on a dropped stream"
    );
    a.assert_echo(json!(2), "a again").await;
}

#[tokio::test]
async fn the_child_gets_its_environment_and_directory() {
    let dir = std::env::temp_dir();
    let bridge = TestBridge::start_with(|c| {
        c.env = vec![("FIXTURE_GREETING".into(), "hello=world".into())];
        c.cwd = Some(dir.clone());
    })
    .await;
    let c = bridge.client().await;
    let r = c
        .call(json!(1), "env", json!({"name": "FIXTURE_GREETING"}))
        .await;
    assert_eq!(text(&r), "hello=world");
    let r = c.call(json!(2), "cwd", json!({})).await;
    assert_eq!(
        std::fs::canonicalize(text(&r)).unwrap(),
        std::fs::canonicalize(&dir).unwrap()
    );
}

async fn call_during_shutdown(grace: Duration, ms: u64) -> serde_json::Value {
    let bridge = TestBridge::start_with(|c| c.shutdown_grace = grace).await;
    let c = bridge.client().await;
    let call = tokio::spawn(async move { c.call(json!(1), "slow", json!({"ms": ms})).await });
    bridge.wait_pending(1).await;
    within("stop", bridge.stop()).await.unwrap();
    within("call", call).await.unwrap()
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_within_the_grace_period() {
    let r = call_during_shutdown(Duration::from_secs(5), 300).await;
    assert_eq!(text(&r), "slept 300");
}

#[tokio::test]
async fn requests_beyond_the_grace_period_get_an_error() {
    let r = call_during_shutdown(Duration::from_millis(200), 20_000).await;
    assert_eq!(r["error"]["code"], -32053, "{r}");
}

/// Live (not zombie) processes whose process group is `pgid` (from /proc).
fn group_members(pgid: u64) -> Vec<u64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the command's closing parenthesis: state, ppid, pgrp, ...
            let rest: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            rest.get(2).and_then(|g| g.parse::<u64>().ok()) == Some(pgid)
                && rest.first() != Some(&"Z")
        })
        .collect()
}

#[tokio::test]
async fn shutdown_ends_a_grandchild_that_ignores_sigterm() {
    let script = format!("trap '' TERM; sleep 1000 & exec {FIXTURE}");
    let bridge = TestBridge::start_with(|c| {
        c.command = "sh".into();
        c.args = vec!["-c".into(), script.into()];
        c.shutdown_grace = Duration::from_millis(200);
    })
    .await;
    let pgid = bridge.health().await["child"]["pid"].as_u64().unwrap();
    assert!(
        group_members(pgid).len() >= 2,
        "the server and its sleeping grandchild"
    );
    within("stop", bridge.stop()).await.unwrap();
    assert_eq!(
        group_members(pgid),
        Vec::<u64>::new(),
        "nothing of the group is left"
    );
}
