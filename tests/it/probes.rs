//! `/ready` and `/health`: readiness per server, liveness with details per server.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

async fn get(url: &str) -> (u16, Value) {
    let resp = within("GET", reqwest::get(url)).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn ready_and_health_report_the_server_of_the_command_line() {
    let bridge = TestBridge::start().await;
    let (status, ready) = get(&format!("{}/ready", bridge.base)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        ready["servers"]["default"],
        json!({"ready": true, "state": "serving"})
    );
    let (status, own) = get(&format!("{}/servers/default/ready", bridge.base)).await;
    assert_eq!((status, &own["ready"]), (200, &json!(true)), "{own}");

    let c = bridge.client().await;
    let (status, health) = get(&format!("{}/health", bridge.base)).await;
    assert_eq!(status, 200);
    // The fields a bridge of one server always had, and the same server's details by name.
    assert_eq!(health["status"], "ok");
    assert_eq!(health["sessions"], 1);
    assert!(health["child"]["pid"].as_u64().is_some(), "{health}");
    let server = &health["servers"]["default"];
    assert_eq!(server["sessions"], 1);
    assert_eq!(server["ready"], true);
    assert_eq!(server["child"]["pid"], health["child"]["pid"]);
    c.assert_echo(json!(1), "still served").await;
}

#[tokio::test]
async fn ready_is_503_while_the_child_restarts_then_200_again() {
    // A slow initialize keeps the restarted child from serving for a while.
    let bridge =
        TestBridge::start_with(|c| c.args = vec!["--init-delay".into(), "800".into()]).await;
    let url = format!("{}/ready", bridge.base);
    assert_eq!(get(&url).await.0, 200);
    let c = bridge.client().await;
    c.call(json!(1), "crash", json!({"code": 3})).await;
    let restarting = within("not ready", async {
        loop {
            let (status, body) = get(&url).await;
            if status == 503 {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(restarting["servers"]["default"]["state"], "restarting");
    assert_eq!(bridge.health().await["servers"]["default"]["ready"], false);
    within("ready again", async {
        while get(&url).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn probes_refuse_a_foreign_host_and_unknown_servers_are_404() {
    let bridge = TestBridge::start().await;
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{}/ready", bridge.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 421);
    let foreign = http
        .get(format!("{}/health", bridge.base))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    // A page of the bridge's own origin may read them.
    let own = http
        .get(format!("{}/ready", bridge.base))
        .header("origin", &bridge.base)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(
        own.headers()["access-control-allow-origin"],
        bridge.base.as_str()
    );
    let (status, _) = get(&format!("{}/servers/nope/ready", bridge.base)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn readiness_turns_off_when_shutdown_starts_while_requests_drain() {
    // The metrics listener serves on until the end, and its readiness gauge is what /ready
    // says.
    let (bridge, metrics) = TestBridge::start_with_metrics(|_| {}).await;
    let ready = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(r#"mcp_bridge_server_ready{server="default"} "#))
            .map(str::to_owned)
    };
    let scrape = || async { reqwest::get(&metrics).await.unwrap().text().await.unwrap() };
    assert_eq!(ready(&scrape().await).as_deref(), Some("1"));
    let c = bridge.client().await;
    let slow = tokio::spawn(async move { c.call(json!(1), "slow", json!({"ms": 1500})).await });
    bridge.wait_pending(1).await;
    let stopping = tokio::spawn(bridge.stop());
    within("not ready during the drain", async {
        while ready(&scrape().await).as_deref() != Some("0") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        !slow.is_finished(),
        "the request in flight is still draining"
    );
    let answered = within("drained", slow).await.unwrap();
    assert!(answered["result"].is_object(), "{answered}");
    within("stopped", stopping).await.unwrap().unwrap();
}
