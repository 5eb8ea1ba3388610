//! Tool filters (`--allow-tool`, `--deny-tool`): hidden tools leave `tools/list` and are
//! refused as unknown tools, for session and stateless clients, over Streamable HTTP and
//! legacy HTTP+SSE, in front of a legacy child and a modern one; list-changed still flows.

use mcp_http_bridge::tool_filter::ToolFilter;
use serde_json::{json, Value};

use crate::support::*;

fn names(response: &Value) -> Vec<String> {
    response["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {response}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The fixture's visible tools under `filtered()`.
fn shown(name: &str) -> bool {
    (name.starts_with('e') || name == "list_changed") && name != "env"
}

async fn filtered(command: &str) -> TestBridge {
    let command = command.to_owned();
    TestBridge::start_with(move |c| {
        c.command = command.into();
        c.tools = ToolFilter::new(vec!["e*".into(), "list_changed".into()], vec!["env".into()]);
    })
    .await
}

/// The error a hidden tool's call gets is the one an unknown tool's gets, name aside.
fn assert_same_error(hidden: &Value, unknown: &Value, hidden_name: &str, unknown_name: &str) {
    let mut as_unknown = hidden["error"].clone();
    let message = as_unknown["message"]
        .as_str()
        .unwrap()
        .replace(hidden_name, unknown_name);
    as_unknown["message"] = message.into();
    assert_eq!(
        as_unknown, unknown["error"],
        "hidden: {hidden}, unknown: {unknown}"
    );
}

#[tokio::test]
async fn session_clients_over_streamable_http_see_and_call_only_allowed_tools() {
    let bridge = filtered(FIXTURE).await;
    let c = bridge.client().await;
    let listed = names(c.request(json!(1), "tools/list", json!({})).await.last());
    assert!(listed.iter().any(|n| n == "echo"), "{listed:?}");
    assert!(listed.iter().all(|n| shown(n)), "{listed:?}");
    let hidden = c.call(json!(2), "env", json!({"name": "PATH"})).await;
    let unknown = c.call(json!(3), "no_such_tool", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert_same_error(&hidden, &unknown, "env", "no_such_tool");
    assert!(c.call(json!(4), "crash", json!({})).await["error"].is_object());
    c.assert_echo(json!(5), "allowed").await;
    // A tool-list change still reaches the session.
    let mut stream = c.open_stream().await;
    c.call(json!(6), "list_changed", json!({})).await;
    stream.next_method("notifications/tools/list_changed").await;
}

#[tokio::test]
async fn legacy_sse_sessions_see_and_call_only_allowed_tools() {
    let bridge = filtered(FIXTURE).await;
    let mut c = LegacyClient::start(&bridge).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    assert_eq!(c.post(&list).await, 202);
    let listed = names(&c.stream.next_response(&json!(1)).await);
    assert!(listed.iter().any(|n| n == "echo") && listed.iter().all(|n| shown(n)));
    let hidden = c.call(json!(2), "add", json!({"a": 1, "b": 2})).await;
    let unknown = c.call(json!(3), "no_such_tool", json!({})).await;
    assert_same_error(&hidden, &unknown, "add", "no_such_tool");
}

#[tokio::test]
async fn stateless_clients_see_and_call_only_allowed_tools_of_a_legacy_child() {
    let bridge = filtered(FIXTURE).await;
    let m = ModernClient::new(&bridge.url);
    let listed = names(m.request(json!(1), "tools/list", json!({})).await.last());
    assert!(listed.iter().any(|n| n == "echo") && listed.iter().all(|n| shown(n)));
    let hidden = m.call(json!(2), "env", json!({"name": "PATH"})).await;
    let unknown = m.call(json!(3), "no_such_tool", json!({})).await;
    assert_same_error(&hidden, &unknown, "env", "no_such_tool");
    assert_eq!(
        text(&m.call(json!(4), "echo", json!({"text": "hi"})).await),
        "hi"
    );
}

#[tokio::test]
async fn both_eras_of_clients_see_only_allowed_tools_of_a_modern_child() {
    let bridge = TestBridge::start_with(|c| {
        c.command = MODERN_FIXTURE.into();
        c.tools = ToolFilter::new(vec!["echo".into(), "add*".into()], vec![]);
    })
    .await;
    let m = ModernClient::new(&bridge.url);
    let listed = names(m.request(json!(1), "tools/list", json!({})).await.last());
    assert!(listed.contains(&"echo".to_owned()), "{listed:?}");
    assert!(
        listed.iter().all(|n| n == "echo" || n.starts_with("add")),
        "{listed:?}"
    );
    let hidden = m.call(json!(2), "cancellations", json!({})).await;
    let unknown = m.call(json!(3), "no_such_tool", json!({})).await;
    assert_same_error(&hidden, &unknown, "cancellations", "no_such_tool");
    let c = bridge.client().await;
    let session_listed = names(c.request(json!(4), "tools/list", json!({})).await.last());
    assert_eq!(session_listed, listed);
    let hidden = c.call(json!(5), "cancellations", json!({})).await;
    let unknown = c.call(json!(6), "no_such_tool", json!({})).await;
    assert_same_error(&hidden, &unknown, "cancellations", "no_such_tool");
}
