//! `Mcp-Param-*` headers (2026-07-28, `x-mcp-header`): once the bridge has seen a tool listed
//! with an annotated parameter, a stateless call of it must carry that parameter's header, with
//! the value of the body; else 400 with -32020 and the request's id.

use serde_json::{json, Value};

use crate::support::*;

/// A stateless `tools/call` of the modern fixture's `test_header_param` with these extra
/// headers; the reply's status and last message.
async fn call(m: &ModernClient, id: i64, args: Value, extra: &[(&str, &str)]) -> (u16, Value) {
    let msg = ModernClient::message(
        json!(id),
        "tools/call",
        json!({"name": "test_header_param", "arguments": args}),
    );
    let mut post = m.post(&msg, BOTH);
    for (k, v) in extra {
        post = post.header(*k, *v);
    }
    let r = read_reply(within("POST", post.send()).await.unwrap()).await;
    (r.status, r.last().clone())
}

#[tokio::test]
async fn a_listed_tools_mirrored_parameters_are_held_to_their_headers() {
    let bridge = TestBridge::start_with(|c| c.command = MODERN_FIXTURE.into()).await;
    let m = ModernClient::new(&bridge.url);
    let listed = m.request(json!(1), "tools/list", json!({})).await;
    let tools = listed.last()["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        tools.iter().any(|t| t["name"] == "test_header_param"),
        "{tools:?}"
    );
    let region = json!({"region": "us-west1"});
    let (status, ok) = call(&m, 3, region.clone(), &[("mcp-param-region", "us-west1")]).await;
    assert_eq!(
        (status, ok["result"]["content"][0]["text"].as_str()),
        (200, Some("region us-west1"))
    );
    // The same value, Base64-encoded.
    let encoded = [("mcp-param-region", "=?base64?dXMtd2VzdDE=?=")];
    assert_eq!(call(&m, 4, region.clone(), &encoded).await.0, 200);
    type Extra = Vec<(&'static str, &'static str)>;
    let refused: [(&str, Value, Extra); 4] = [
        ("left out", region.clone(), vec![]),
        (
            "another value",
            region.clone(),
            vec![("mcp-param-region", "eu-west1")],
        ),
        (
            "bad Base64",
            region.clone(),
            vec![("mcp-param-region", "=?base64?dXMtd2VzdDE?=")],
        ),
        (
            "no value in the body",
            json!({"query": "q"}),
            vec![("mcp-param-region", "us-west1")],
        ),
    ];
    for (n, (what, args, extra)) in refused.into_iter().enumerate() {
        let id = 10 + n as i64;
        let (status, reply) = call(&m, id, args, &extra).await;
        assert_eq!(status, 400, "{what}: {reply}");
        assert_eq!(reply["id"], id, "{what}");
        assert_eq!(reply["error"]["code"], -32020, "{what}: {reply}");
    }
    // Not expected when the value is absent; and other tools' calls are not looked at.
    assert_eq!(call(&m, 20, json!({"query": "q"}), &[]).await.0, 200);
    let echo = m.call(json!(21), "echo", json!({"text": "x"})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "x", "{echo}");
}

#[tokio::test]
async fn a_bridge_that_saw_no_list_lists_the_tools_itself_before_the_first_call() {
    let bridge = TestBridge::start_with(|c| c.command = MODERN_FIXTURE.into()).await;
    let m = ModernClient::new(&bridge.url);
    // No client listed the tools: the header naming another region is still caught.
    let region = json!({"region": "us-west1"});
    let (status, reply) = call(&m, 1, region.clone(), &[("mcp-param-region", "eu-west1")]).await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (400, &json!(-32020)),
        "{reply}"
    );
    assert_eq!(reply["id"], 1);
    let (status, reply) = call(&m, 2, region, &[("mcp-param-region", "us-west1")]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["content"][0]["text"], "region us-west1");
}
