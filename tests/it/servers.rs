//! Several named servers from one configuration file: each at /servers/NAME/…, one giving up
//! while the others serve, the desktop clients' JSON layout, and a reload that adds and
//! removes servers without touching the others' sessions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mcp_http_bridge::metrics::Metrics;
use mcp_http_bridge::{serve_file, Config, FileOptions};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// A bridge serving a configuration file in this process.
struct FileBridge {
    base: String,
    path: PathBuf,
    reload: Arc<Notify>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl FileBridge {
    async fn start(name: &str, text: &str) -> FileBridge {
        Self::start_with_metrics(name, text, None).await
    }

    async fn start_with_metrics(
        name: &str,
        text: &str,
        metrics: Option<(Arc<Metrics>, TcpListener)>,
    ) -> FileBridge {
        let path = std::env::temp_dir().join(format!("bridge-it-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config::new("", Vec::<String>::new());
        config.shutdown_grace = Duration::from_secs(2);
        let reload = Arc::new(Notify::new());
        let options = FileOptions {
            path: path.clone(),
            base: config,
            metrics,
            reload: reload.clone(),
        };
        let (started, on_started) = tokio::sync::oneshot::channel();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve_file(options, listener, shutdown.clone(), move || {
            let _ = started.send(());
        }));
        within("servers started", on_started).await.unwrap();
        FileBridge {
            base,
            path,
            reload,
            shutdown,
            task,
        }
    }

    fn url(&self, server: &str, endpoint: &str) -> String {
        format!("{}/servers/{server}/{endpoint}", self.base)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = within("GET", reqwest::get(format!("{}{path}", self.base)))
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until `path` answers `status`.
    async fn until(&self, path: &str, status: u16) -> Value {
        within(path, async {
            loop {
                let (s, body) = self.get(path).await;
                if s == status {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("stop", self.task).await.unwrap().unwrap();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn three_servers() -> String {
    format!(
        r#"
[servers.legacy]
command = {FIXTURE:?}
default = true

[servers.modern]
command = {MODERN_FIXTURE:?}

[servers.crash]
command = {FIXTURE:?}
args = ["--exit-after", "200"]
restart = "never"
"#
    )
}

#[tokio::test]
async fn three_servers_each_at_its_path_one_giving_up_while_the_others_serve() {
    let bridge = FileBridge::start("three.toml", &three_servers()).await;
    // The crashing server gives up; the bridge goes on.
    let ready = bridge.until("/ready", 503).await;
    let failed = bridge.until("/servers/crash/ready", 503).await;
    assert_eq!(failed["state"], "failed", "{failed} / {ready}");
    bridge.until("/servers/legacy/ready", 200).await;
    bridge.until("/servers/modern/ready", 200).await;

    let legacy = bridge.url("legacy", "mcp");
    let mut c = Client::new(&legacy);
    c.initialize().await;
    c.assert_echo(json!(1), "legacy by name").await;
    // The default server is also at /mcp, with the same sessions.
    let mut by_default = c.clone();
    by_default.url = format!("{}/mcp", bridge.base);
    by_default.assert_echo(json!(2), "legacy by default").await;
    let m = ModernClient::new(&bridge.url("modern", "mcp"));
    assert_eq!(
        text(&m.call(json!(3), "echo", json!({"text": "modern"})).await),
        "modern"
    );
    // The legacy transport, at the server's own paths.
    let resp = reqwest::Client::new()
        .get(bridge.url("legacy", "sse"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(resp);
    let endpoint = stream.next_event().await.unwrap();
    assert!(
        endpoint
            .data
            .starts_with("/servers/legacy/message?sessionId="),
        "{endpoint:?}"
    );
    // Each server's health, by name.
    let health = bridge.get("/health").await.1;
    assert_eq!(health["servers"]["crash"]["state"], "failed", "{health}");
    assert_eq!(health["servers"]["modern"]["child"]["era"], "modern");
    assert_eq!(health["servers"]["legacy"]["sessions"], 2);
    let (status, _) = bridge.get("/servers/nope/mcp").await;
    assert_eq!(status, 404);
    c.session = None;
    bridge.stop().await;
}

#[tokio::test]
async fn a_reload_adds_and_removes_servers_without_touching_the_others_sessions() {
    let first =
        format!("[servers.keep]\ncommand = {FIXTURE:?}\n\n[servers.old]\ncommand = {FIXTURE:?}\n");
    let bridge = FileBridge::start("reload.toml", &first).await;
    let mut kept = Client::new(&bridge.url("keep", "mcp"));
    kept.initialize().await;
    let pid = text(&kept.call(json!(1), "pid", json!({})).await).to_owned();
    let mut old = Client::new(&bridge.url("old", "mcp"));
    old.initialize().await;
    // A call in flight at the removed server is drained, not cut.
    let draining = tokio::spawn({
        let old = old.clone();
        async move { old.call(json!(9), "slow", json!({"ms": 600})).await }
    });
    within("in flight", async {
        while bridge.get("/health").await.1["servers"]["old"]["pendingRequests"] != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let second = format!(
        "[servers.keep]\ncommand = {FIXTURE:?}\n\n[servers.new]\ncommand = {MODERN_FIXTURE:?}\n"
    );
    std::fs::write(&bridge.path, second).unwrap();
    bridge.reload.notify_one();
    bridge.until("/servers/new/ready", 200).await;
    bridge.until("/servers/old/ready", 404).await;
    let drained = within("drained", draining).await.unwrap();
    assert!(drained["result"].is_object(), "{drained}");
    // The removed server's session is gone with it; the kept one's goes on, same process.
    let gone = old.request(json!(2), "tools/list", json!({})).await;
    assert_eq!(gone.status, 404);
    assert_eq!(text(&kept.call(json!(3), "pid", json!({})).await), pid);
    kept.assert_echo(json!(4), "still here").await;
    let m = ModernClient::new(&bridge.url("new", "mcp"));
    assert_eq!(
        text(&m.call(json!(5), "echo", json!({"text": "new"})).await),
        "new"
    );
    // A file that no longer parses changes nothing.
    std::fs::write(&bridge.path, "[servers.keep\n").unwrap();
    bridge.reload.notify_one();
    kept.assert_echo(json!(6), "after a bad reload").await;
    assert_eq!(bridge.get("/servers/new/ready").await.0, 200);
    kept.session = None;
    old.session = None;
    bridge.stop().await;
}

#[tokio::test]
async fn the_desktop_clients_json_layout_is_served() {
    let file = format!(
        r#"{{"mcpServers": {{"fixture": {{"command": {FIXTURE:?}, "args": [], "env": {{"GREETING": "hello"}}}},
            "remote": {{"url": "https://example.com/mcp"}}}}}}"#
    );
    let bridge = FileBridge::start("desktop.json", &file).await;
    bridge.until("/servers/fixture/ready", 200).await;
    let c = Client::new(&bridge.url("fixture", "mcp"));
    let mut c = c;
    c.initialize().await;
    let env = c.call(json!(1), "env", json!({"name": "GREETING"})).await;
    assert_eq!(text(&env), "hello");
    assert_eq!(bridge.get("/servers/remote/ready").await.0, 404);
    c.session = None;
    bridge.stop().await;
}

#[tokio::test]
async fn each_server_is_counted_under_its_name() {
    let file =
        format!("[servers.a]\ncommand = {FIXTURE:?}\n\n[servers.b]\ncommand = {FIXTURE:?}\n");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let metrics = Some((Arc::new(Metrics::new()), listener));
    let bridge = FileBridge::start_with_metrics("metrics.toml", &file, metrics).await;
    let mut a = Client::new(&bridge.url("a", "mcp"));
    a.initialize().await;
    a.assert_echo(json!(1), "one").await;
    a.assert_echo(json!(2), "two").await;
    let text = within("scrape", reqwest::get(&metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(r#"mcp_bridge_requests_total{server="a",method="tools/call",outcome="ok"} 2"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"mcp_bridge_requests_total{server="b""#),
        "{text}"
    );
    assert!(
        has(r#"mcp_bridge_server_ready{server="a"} 1"#)
            && has(r#"mcp_bridge_server_ready{server="b"} 1"#)
    );
    assert!(has(
        r#"mcp_bridge_sessions{server="a",transport="streamable_http",era="legacy"} 1"#
    ));
    assert!(
        has(r#"mcp_bridge_child_starts_total{server="b"} 1"#),
        "{text}"
    );
    a.session = None;
    bridge.stop().await;
}
