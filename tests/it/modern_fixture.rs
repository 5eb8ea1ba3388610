//! The modern (2026-07-28) fixture on its own, over its stdin and stdout with no bridge: what
//! the bridge's tests and the conformance runs through the bridge rely on it to do.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;

use serde_json::{json, Value};

use crate::support::WAIT;

const MODERN: &str = env!("CARGO_BIN_EXE_modern-mcp-server");

/// The `_meta` of a well-formed 2026-07-28 request from a client that can answer every kind of
/// input request.
fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "fixture-test", "version": "1.0.0"},
        "io.modelcontextprotocol/clientCapabilities":
            {"elicitation": {}, "sampling": {}, "roots": {}},
    })
}

/// The fixture process: killed on drop. Its stdout is read on a thread into a channel, so
/// every wait can be bounded.
struct Fixture {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Fixture {
    fn start() -> Fixture {
        let mut child = Command::new(MODERN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the modern fixture starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Fixture {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request whose `_meta` is the modern one with `params._meta` laid over it.
    fn request(&mut self, id: Value, method: &str, mut params: Value) {
        let mut meta = modern_meta();
        if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
            for (k, v) in extra {
                meta[k] = v.clone();
            }
        }
        params["_meta"] = meta;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    }

    fn cancel(&mut self, id: Value, reason: &str) {
        self.send(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                          "params": {"requestId": id, "reason": reason}}),
        );
    }

    /// The next message; never a request, which a modern stdio server must not write.
    fn next(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .expect("the fixture wrote a line in time");
        let msg: Value = serde_json::from_str(&line).expect("every stdout line is JSON");
        assert!(
            !(msg.get("method").is_some() && msg.get("id").is_some()),
            "the fixture wrote a request: {msg}"
        );
        msg
    }

    /// The response to `id`, and the notifications that came before it.
    fn reply(&mut self, id: &Value) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let msg = self.next();
            if msg.get("method").is_none() {
                assert_eq!(msg["id"], *id, "a response to another request: {msg}");
                return (before, msg);
            }
            before.push(msg);
        }
    }

    fn ask(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.request(id.clone(), method, params);
        let (before, response) = self.reply(&id);
        assert!(before.is_empty(), "unexpected notifications: {before:?}");
        response
    }

    fn call(&mut self, id: Value, name: &str, args: Value) -> Value {
        self.ask(id, "tools/call", json!({"name": name, "arguments": args}))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {response}"))
}

fn assert_cacheable(result: &Value) {
    assert_eq!(result["resultType"], "complete", "{result}");
    assert!(result["ttlMs"].as_u64().is_some(), "ttlMs: {result}");
    assert!(
        matches!(result["cacheScope"].as_str(), Some("public" | "private")),
        "{result}"
    );
    let info = &result["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert!(
        info["name"].is_string() && info["version"].is_string(),
        "{result}"
    );
}

#[test]
fn discover_describes_a_modern_server() {
    let mut f = Fixture::start();
    let r = f.ask(json!("d"), "server/discover", json!({}));
    let result = &r["result"];
    assert_eq!(result["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
    assert!(result["capabilities"]["prompts"].is_object());
    assert!(result["instructions"].is_string());
    assert_cacheable(result);
}

#[test]
fn legacy_openings_get_errors_that_say_what_the_server_speaks() {
    let mut f = Fixture::start();
    let init = json!({"protocolVersion": "2025-11-25", "capabilities": {},
                      "clientInfo": {"name": "legacy", "version": "1"}});
    f.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}));
    let (_, r) = f.reply(&json!(1));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("2026-07-28"));
    assert_eq!(r["error"]["data"]["supported"], json!(["2026-07-28"]));

    // A request without `_meta` is malformed.
    f.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let (_, r) = f.reply(&json!(2));
    assert_eq!(r["error"]["code"], -32602, "{r}");

    // The era probe with a version the server does not speak: a recognisable modern error.
    let legacy = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2025-11-25"}});
    let r = f.ask(json!(3), "server/discover", legacy);
    assert_eq!(r["error"]["code"], -32022, "{r}");
    assert_eq!(
        r["error"]["data"],
        json!({"supported": ["2026-07-28"], "requested": "2025-11-25"})
    );

    for (id, removed) in ["ping", "logging/setLevel", "resources/subscribe"]
        .into_iter()
        .enumerate()
    {
        let r = f.ask(json!(10 + id), removed, json!({}));
        assert_eq!(r["error"]["code"], -32601, "{removed}: {r}");
    }
}

#[test]
fn results_carry_result_type_server_info_and_cache_hints() {
    let mut f = Fixture::start();
    let r = f.ask(json!(1), "tools/list", json!({}));
    assert_cacheable(&r["result"]);
    assert!(r["result"]["tools"].as_array().unwrap().len() > 30);

    let r = f.ask(
        json!(2),
        "resources/read",
        json!({"uri": "test://static-text"}),
    );
    assert_cacheable(&r["result"]);

    let r = f.call(json!(3), "echo", json!({"text": "hi"}));
    assert_eq!(text(&r), "hi");
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(
        r["result"].get("ttlMs").is_none(),
        "tools/call is not cacheable"
    );
}

#[test]
fn ask_name_needs_input_completes_on_retry_and_refuses_a_tampered_state() {
    let mut f = Fixture::start();
    let first = f.call(json!(1), "ask_name", json!({}));
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        result["inputRequests"]["user_name"]["method"],
        "elicitation/create"
    );
    let state = result["requestState"].as_str().unwrap().to_owned();
    let answer = json!({"user_name": {"action": "accept", "content": {"name": "Ada"}}});

    let retry = json!({"name": "ask_name", "arguments": {},
                       "inputResponses": answer, "requestState": state});
    let done = f.ask(json!(2), "tools/call", retry.clone());
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(text(&done), "Hello, Ada");

    let mut tampered = retry.clone();
    tampered["requestState"] = json!(format!("{state}-TAMPERED"));
    let r = f.ask(json!(3), "tools/call", tampered);
    assert_eq!(r["error"]["code"], -32602, "{r}");

    // A retry without the state it was given starts over instead of failing.
    let mut stateless = retry;
    stateless.as_object_mut().unwrap().remove("requestState");
    let r = f.ask(json!(4), "tools/call", stateless);
    assert_eq!(r["result"]["resultType"], "input_required", "{r}");

    // Without the elicitation capability the server may not ask at all.
    let no_caps = json!({"name": "ask_name", "arguments": {},
                         "_meta": {"io.modelcontextprotocol/clientCapabilities": {}}});
    let r = f.ask(json!(5), "tools/call", no_caps);
    assert_eq!(r["error"]["code"], -32021, "{r}");
    assert_eq!(
        r["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
}

#[test]
fn listen_is_acknowledged_and_its_notifications_carry_its_id() {
    let mut f = Fixture::start();
    let filter =
        json!({"toolsListChanged": true, "resourceSubscriptions": ["test://watched-resource"]});
    f.request(
        json!("sub-1"),
        "subscriptions/listen",
        json!({ "notifications": filter }),
    );
    let ack = f.next();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert_eq!(ack["params"]["notifications"], filter);

    let tagged =
        |n: &Value| n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1";
    f.request(
        json!(2),
        "tools/call",
        json!({"name": "list_changed", "arguments": {}}),
    );
    let (before, _) = f.reply(&json!(2));
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["method"], "notifications/tools/list_changed");
    assert!(tagged(&before[0]), "{:?}", before[0]);

    let touch = json!({"name": "touch", "arguments": {"uri": "test://watched-resource"}});
    f.request(json!(3), "tools/call", touch);
    let (before, _) = f.reply(&json!(3));
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["method"], "notifications/resources/updated");
    assert_eq!(before[0]["params"]["uri"], "test://watched-resource");
    assert!(tagged(&before[0]), "{:?}", before[0]);

    // Not asked for: the prompts list changing is not delivered.
    let r = f.call(json!(4), "list_changed", json!({"kind": "prompts"}));
    assert!(text(&r).contains("notified 0"), "{r}");

    // Cancelled: nothing more for it, not even a result.
    f.cancel(json!("sub-1"), "done listening");
    let r = f.call(json!(5), "list_changed", json!({}));
    assert!(text(&r).contains("notified 0"), "{r}");

    // Ended by the server: a complete result that names the subscription.
    f.request(
        json!(6),
        "subscriptions/listen",
        json!({"notifications": {"promptsListChanged": true}}),
    );
    assert_eq!(
        f.next()["method"],
        "notifications/subscriptions/acknowledged"
    );
    f.request(json!(7), "tools/call", json!({"name": "end_subscriptions"}));
    let (_, end) = f.reply(&json!(6));
    assert_eq!(end["result"]["resultType"], "complete", "{end}");
    assert_eq!(
        end["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        6
    );
    let (_, r) = f.reply(&json!(7));
    assert_eq!(text(&r), "ended 1 subscription(s)");
}

#[test]
fn a_cancelled_slow_call_is_recorded_and_never_answered() {
    let mut f = Fixture::start();
    f.request(
        json!(7),
        "tools/call",
        json!({"name": "slow", "arguments": {"ms": 20000}}),
    );
    f.cancel(json!(7), "no longer needed");
    let r = f.call(json!(8), "cancellations", json!({}));
    let seen: Value = serde_json::from_str(text(&r)).unwrap();
    assert_eq!(
        seen,
        json!([{"requestId": 7, "reason": "no longer needed"}])
    );
    // The slow call stopped: a later call is answered, and nothing for id 7 came before it.
    let r = f.call(json!(9), "echo", json!({"text": "after", "ms": 50}));
    assert_eq!(text(&r), "after");
}

#[test]
fn progress_and_logs_follow_the_request_meta() {
    let mut f = Fixture::start();
    let params = json!({"name": "progress", "arguments": {"n": 3, "ms": 1},
                        "_meta": {"progressToken": "tok"}});
    f.request(json!(1), "tools/call", params);
    let (before, r) = f.reply(&json!(1));
    assert_eq!(text(&r), "progress done 3");
    let steps: Vec<&Value> = before.iter().map(|n| &n["params"]["progress"]).collect();
    assert_eq!(steps, [&json!(1), &json!(2), &json!(3)]);
    assert!(before.iter().all(|n| n["params"]["progressToken"] == "tok"));

    let log = |level: &str| {
        json!({"name": "log", "arguments": {"level": level, "message": "m"},
                                  "_meta": {"io.modelcontextprotocol/logLevel": "warning"}})
    };
    let r = f.ask(json!(2), "tools/call", log("info"));
    assert_eq!(text(&r), "suppressed");
    f.request(json!(3), "tools/call", log("error"));
    let (before, r) = f.reply(&json!(3));
    assert_eq!(text(&r), "logged");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["method"], "notifications/message");
    assert_eq!(before[0]["params"]["level"], "error");

    // No log level in `_meta`: no log messages at all.
    let r = f.call(
        json!(4),
        "log",
        json!({"level": "emergency", "message": "m"}),
    );
    assert_eq!(text(&r), "suppressed");
}
