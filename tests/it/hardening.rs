use std::time::Duration;

use mcp_http_bridge::children::Isolation;
use mcp_http_bridge::{Bridge, Config};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[tokio::test]
async fn an_unusable_initialize_result_fails_start_up_naming_what_is_wrong() {
    let cases = [
        ("[1,2,3]", "not a JSON object"),
        (r#""x""#, "not a JSON object"),
        ("null", "not a JSON object"),
        (
            r#"{"protocolVersion": 5, "capabilities": {}}"#,
            "protocolVersion",
        ),
        (
            r#"{"protocolVersion":"2025-06-18","capabilities":[]}"#,
            "capabilities",
        ),
    ];
    for (result, why) in cases {
        let config = Config::new(FIXTURE, ["--init-result", result]);
        let err = within("start", Bridge::start(config))
            .await
            .err()
            .unwrap_or_else(|| panic!("the bridge started on the initialize result {result}"));
        let msg = format!("{err:#}");
        assert!(
            msg.contains("initialize result") && msg.contains(why),
            "{result}: {msg}"
        );
    }
}

#[tokio::test]
async fn lines_that_are_not_json_before_a_minimal_initialize_result_do_not_stop_start_up() {
    let minimal = r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{}}}"#;
    let bridge = TestBridge::start_with(|c| {
        c.args = vec!["--banner".into(), "--init-result".into(), minimal.into()];
    })
    .await;
    let mut c = Client::new(&bridge.url);
    let result = c.initialize().await;
    assert_eq!(result["protocolVersion"], "2025-06-18", "{result}");
    c.assert_echo(json!(1), "up").await;
}

/// The most `children.running` and `sessions` `/health` reported while it was watched, and how
/// many times it was asked.
#[derive(Debug, Default)]
struct Peaks {
    children: u64,
    sessions: u64,
    samples: usize,
}

/// Asks `/health` over and over until `stop` is cancelled (and once more after that).
fn watch_health(bridge: &TestBridge, stop: CancellationToken) -> JoinHandle<Peaks> {
    let url = format!("{}/health", bridge.base);
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut peaks = Peaks::default();
        loop {
            let done = stop.is_cancelled();
            let h: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
            peaks.children = peaks
                .children
                .max(h["children"]["running"].as_u64().unwrap());
            peaks.sessions = peaks.sessions.max(h["sessions"].as_u64().unwrap());
            peaks.samples += 1;
            if done {
                return peaks;
            }
            // The sampling interval; nothing waits on it.
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    })
}

/// `n` concurrent `initialize` POSTs, each from a client without a session, while `/health` is
/// watched. Returns the clients whose session was created, the other statuses, and the peaks.
async fn initialize_burst(bridge: &TestBridge, n: u64) -> (Vec<Client>, Vec<u16>, Peaks) {
    let stop = CancellationToken::new();
    let watcher = watch_health(bridge, stop.clone());
    let http = reqwest::Client::new();
    let posts: Vec<_> = (0..n)
        .map(|i| {
            let mut c = Client::new(&bridge.url);
            c.http = http.clone();
            tokio::spawn(async move {
                let reply = c.send(BOTH, &initialize_msg(json!(i), "2025-11-25")).await;
                c.session = reply
                    .headers
                    .get("mcp-session-id")
                    .map(|s| s.to_str().unwrap().to_owned());
                (reply.status, c)
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for post in posts {
        let (status, c) = within("initialize", post).await.unwrap();
        match status {
            200 => created.push(c),
            other => refused.push(other),
        }
    }
    stop.cancel();
    let peaks = within("health watcher", watcher).await.unwrap();
    (created, refused, peaks)
}

/// Deleting one of `sessions` frees its place: a new session can then be created, and works.
async fn a_deleted_session_frees_its_place(bridge: &TestBridge, sessions: &[Client]) {
    assert_eq!(sessions[0].delete().await, 200);
    let mut late = Client::new(&bridge.url);
    late.initialize().await;
    late.assert_echo(json!(1), "a place was free").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_initialize_never_runs_more_children_than_max_children() {
    let bridge = TestBridge::start_with(|c| {
        c.supervision.isolation = Isolation::Session;
        c.supervision.max_children = 5;
        c.args = vec!["--init-delay".into(), "500".into()];
    })
    .await;
    // The spare child started at launch holds one of the five places.
    assert_eq!(bridge.health().await["children"]["running"], 1);
    let (created, refused, peaks) = initialize_burst(&bridge, 200).await;
    assert_eq!(created.len(), 5, "every place was taken: {refused:?}");
    assert!(refused.iter().all(|s| *s == 503), "{refused:?}");
    assert!(peaks.samples > 1, "{peaks:?}");
    assert!(peaks.children <= 5, "children running at once: {peaks:?}");
    assert_eq!(bridge.health().await["children"]["running"], 5);
    for (i, c) in created.iter().enumerate() {
        c.assert_echo(json!(i), "one of the five").await;
    }
    a_deleted_session_frees_its_place(&bridge, &created).await;
    assert_eq!(bridge.health().await["children"]["running"], 5);
}

/// 200 concurrent `initialize` requests against `limits.max_sessions = 10`.
async fn a_burst_never_opens_more_sessions_than_max_sessions(bridge: TestBridge) {
    let (created, refused, peaks) = initialize_burst(&bridge, 200).await;
    assert_eq!(created.len(), 10, "every place was taken: {refused:?}");
    assert!(refused.iter().all(|s| *s == 503), "{refused:?}");
    assert!(peaks.samples > 1, "{peaks:?}");
    assert!(peaks.sessions <= 10, "sessions at once: {peaks:?}");
    assert!(peaks.children <= 10, "children running at once: {peaks:?}");
    assert_eq!(bridge.health().await["sessions"], 10);
    a_deleted_session_frees_its_place(&bridge, &created).await;
    assert_eq!(bridge.health().await["sessions"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_initialize_never_opens_more_sessions_than_max_sessions_on_a_shared_child() {
    let bridge = TestBridge::start_with(|c| c.limits.max_sessions = 10).await;
    a_burst_never_opens_more_sessions_than_max_sessions(bridge).await;
}

/// With a child per session, opening a session waits for its child: the place must be taken
/// before that wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_initialize_never_opens_more_sessions_than_max_sessions_while_children_start() {
    let bridge = TestBridge::start_with(|c| {
        c.limits.max_sessions = 10;
        c.supervision.isolation = Isolation::Session;
        c.args = vec!["--init-delay".into(), "500".into()];
    })
    .await;
    a_burst_never_opens_more_sessions_than_max_sessions(bridge).await;
}

/// The request timeout of these tests: far below the 60 s `slow` call and the test's `WAIT`.
const TIMEOUT: Duration = Duration::from_millis(400);

async fn bridge_with_timeout() -> TestBridge {
    TestBridge::start_with(|c| c.request_timeout = Some(TIMEOUT)).await
}

/// A `slow` call that would take a minute, with a string id.
fn minute_long_call() -> Value {
    json!({"jsonrpc": "2.0", "id": "long", "method": "tools/call",
        "params": {"name": "slow", "arguments": {"ms": 60_000}}})
}

/// Asserts `msg` is the timeout error answering the client's request `"long"`.
fn assert_timed_out(msg: &Value) {
    assert_eq!(msg["id"], "long", "{msg}");
    assert_eq!(msg["error"]["code"], -32054, "{msg}");
    let message = msg["error"]["message"].as_str().unwrap();
    assert!(message.contains("--request-timeout"), "{msg}");
}

/// Asserts that the child was told to stop the request that timed out, and why, and that the
/// bridge holds nothing more for it.
async fn assert_cancelled_at_the_child(bridge: &TestBridge, c: &Client) {
    let seen = cancellations_at_child(c, 1).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0]["requestId"].is_u64(), "the child's id: {seen:?}");
    let reason = seen[0]["reason"].as_str().unwrap();
    assert!(reason.contains("--request-timeout"), "{seen:?}");
    assert_eq!(bridge.health().await["pendingRequests"], 0);
}

#[tokio::test]
async fn a_request_the_child_does_not_answer_in_time_gets_an_error_as_json() {
    let bridge = bridge_with_timeout().await;
    let c = bridge.client().await;
    let reply = c.send(JSON_ONLY, &minute_long_call()).await;
    assert_eq!(reply.status, 200);
    assert!(!reply.is_sse());
    assert_timed_out(reply.last());
    c.assert_echo(json!(2), "same session").await;
    assert_cancelled_at_the_child(&bridge, &c).await;
}

#[tokio::test]
async fn a_request_the_child_does_not_answer_in_time_ends_its_event_stream_with_an_error() {
    let bridge = bridge_with_timeout().await;
    let c = bridge.client().await;
    let mut events = c
        .call_streaming(json!("long"), "slow", json!({"ms": 60_000}))
        .await;
    assert_timed_out(&events.next().await.expect("the error"));
    assert!(events.next().await.is_none(), "the error is the last event");
    c.assert_echo(json!(2), "same session").await;
    assert_cancelled_at_the_child(&bridge, &c).await;
}

#[tokio::test]
async fn a_request_the_child_does_not_answer_in_time_gets_an_error_on_the_legacy_stream() {
    let bridge = bridge_with_timeout().await;
    let mut legacy = LegacyClient::start(&bridge).await;
    assert_eq!(legacy.post(&minute_long_call()).await, 202);
    assert_timed_out(&legacy.stream.next_response(&json!("long")).await);
    let echo = legacy
        .call(json!(2), "echo", json!({"text": "same session"}))
        .await;
    assert_eq!(text(&echo), "same session");
    let other = bridge.client().await;
    assert_cancelled_at_the_child(&bridge, &other).await;
}

/// A `sample` call's server request that the client never answers, carried on the standalone
/// stream (the call itself wants a JSON reply, which cannot carry it).
#[tokio::test]
async fn a_server_request_nobody_answers_is_cancelled_at_the_client() {
    let bridge = bridge_with_timeout().await;
    let c = bridge.client().await;
    let mut standalone = c.open_stream().await;
    let call = tokio::spawn({
        let c = c.clone();
        let msg = json!({"jsonrpc": "2.0", "id": "s", "method": "tools/call",
            "params": {"name": "sample", "arguments": {"prompt": "nobody answers"}}});
        async move { c.send(JSON_ONLY, &msg).await }
    });
    let req = standalone.next_method("sampling/createMessage").await;
    // The call started first, so its own deadline passes first.
    let reply = within("the call", call).await.unwrap();
    assert_eq!(reply.last()["id"], "s");
    assert_eq!(reply.last()["error"]["code"], -32054, "{reply:?}");
    let cancelled = standalone.next_method("notifications/cancelled").await;
    assert_eq!(cancelled["params"]["requestId"], req["id"], "{cancelled}");
    let reason = cancelled["params"]["reason"].as_str().unwrap();
    assert!(reason.contains("--request-timeout"), "{cancelled}");
    // The bridge forgot it: a late answer names no request.
    let late = c.send(BOTH, &sampling_reply(&req, "too late")).await;
    assert_eq!(late.status, 400, "{late:?}");
    c.assert_echo(json!(2), "same session").await;
    assert_eq!(bridge.health().await["pendingRequests"], 0);
}

/// The same on the call's own event stream: the call's deadline passes first, so its error
/// ends the stream; the server request's cancellation then has no stream left to go on.
#[tokio::test]
async fn a_call_waiting_on_an_unanswered_server_request_ends_its_stream_with_an_error() {
    let bridge = bridge_with_timeout().await;
    let c = bridge.client().await;
    let mut events = c
        .call_streaming(json!("long"), "sample", json!({"prompt": "nobody answers"}))
        .await;
    let sample = events.next_method("sampling/createMessage").await;
    // The sampling request goes with the call: the client hears it is cancelled, then the
    // call's error ends the stream (and the child heard at once that nobody will answer).
    let cancelled = events.next().await.expect("the cancellation");
    assert_eq!(
        cancelled["method"], "notifications/cancelled",
        "{cancelled}"
    );
    assert_eq!(cancelled["params"]["requestId"], sample["id"]);
    assert_timed_out(&events.next().await.expect("the error"));
    assert!(events.next().await.is_none(), "the error is the last event");
    c.assert_echo(json!(2), "same session").await;
    assert_cancelled_at_the_child(&bridge, &c).await;
}

/// Session `n` on a child that asks for `roots/list` as soon as it is initialized: the request
/// waits for the session's stream, and the session's answer is the one its child keeps.
async fn roots_reach_their_session(bridge: &TestBridge, n: usize) {
    let c = bridge.client().await;
    let mut stream = c.open_stream().await;
    let req = stream.next_method("roots/list").await;
    let roots = json!([{"uri": format!("file:///tmp/session-{n}"), "name": n.to_string()}]);
    let answer = json!({"jsonrpc": "2.0", "id": req["id"], "result": {"roots": roots}});
    assert_eq!(c.send(BOTH, &answer).await.status, 202);
    let known = c.call(json!(1), "known_roots", json!({})).await;
    let known: Value = serde_json::from_str(text(&known)).unwrap();
    assert_eq!(known, roots, "session {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_asked_at_start_in_session_isolation_reach_each_session() {
    let bridge = TestBridge::start_with(|c| {
        c.supervision.isolation = Isolation::Session;
        c.args = vec!["--roots-at-start".into()];
    })
    .await;
    // The spare started at launch asked before any session existed: the first session gets it.
    assert_eq!(bridge.health().await["children"]["running"], 1);
    roots_reach_their_session(&bridge, 0).await;
    assert_eq!(bridge.health().await["children"]["running"], 1);
    // Children started for a session ask while it is being created.
    futures_util::future::join_all((1..5).map(|n| roots_reach_their_session(&bridge, n))).await;
    assert_eq!(bridge.health().await["children"]["running"], 5);
}

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";

fn alice_and_bob(c: &mut Config) {
    c.access.tokens = vec![("alice".into(), ALICE.into()), ("bob".into(), BOB.into())];
}

/// Broadcasts `tools/list_changed` through `c`; every standalone stream hears it after anything
/// the child sent before.
async fn mark_streams(c: &Client, id: u64) {
    assert_eq!(
        text(&c.call(json!(id), "list_changed", json!({})).await),
        "ok"
    );
}

/// Asserts the next message on `stream` is the `mark_streams` broadcast.
async fn assert_marker_next(stream: &mut SseReader, whose: &str) {
    let m = stream.next().await.expect("a message");
    assert_eq!(
        m["method"], "notifications/tools/list_changed",
        "{whose}'s stream got something else first: {m}"
    );
}

#[tokio::test]
async fn server_requests_and_logs_reach_no_one_when_users_share_a_child() {
    let bridge = TestBridge::start_with(alice_and_bob).await;
    let alice = bridge.client_with_token(ALICE).await;
    let bob = bridge.client_with_token(BOB).await;
    let mut alice_stream = alice.open_stream().await;
    let mut bob_stream = bob.open_stream().await;
    // Only alice has a request in flight, but nothing in the child's request says it is hers.
    let mut events = alice
        .call_streaming(json!(1), "sample", json!({"prompt": "alice's secret"}))
        .await;
    let result = events.next().await.expect("the response");
    assert_eq!(
        result["id"], 1,
        "no sampling request on alice's call: {result}"
    );
    assert!(
        text(&result).contains("-32051"),
        "the child was refused: {result}"
    );
    let logged = alice
        .call(
            json!(2),
            "log",
            json!({"level": "error", "message": "alice's log"}),
        )
        .await;
    assert_eq!(text(&logged), "logged");
    mark_streams(&alice, 3).await;
    assert_marker_next(&mut alice_stream, "alice").await;
    assert_marker_next(&mut bob_stream, "bob").await;
}

#[tokio::test]
async fn server_requests_and_logs_reach_the_sessions_of_a_single_user() {
    let bridge = TestBridge::start_with(alice_and_bob).await;
    let first = bridge.client_with_token(ALICE).await;
    let second = bridge.client_with_token(ALICE).await;
    let mut second_stream = second.open_stream().await;
    let mut events = first
        .call_streaming(json!(1), "sample", json!({"prompt": "p"}))
        .await;
    let req = events.next_method("sampling/createMessage").await;
    let reply = sampling_reply(&req, "alice's answer");
    assert_eq!(first.send(BOTH, &reply).await.status, 202);
    assert_eq!(text(&events.next().await.unwrap()), "alice's answer");
    first
        .call(
            json!(2),
            "log",
            json!({"level": "error", "message": "alice's log"}),
        )
        .await;
    mark_streams(&first, 3).await;
    let log = second_stream.next().await.expect("the log message");
    assert_eq!(log["method"], "notifications/message", "{log}");
    assert_eq!(log["params"]["data"], "alice's log");
    assert_marker_next(&mut second_stream, "the second session").await;
}
