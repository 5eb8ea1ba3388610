//! Black-box: `--config FILE` from the command line, and SIGHUP reloading it.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

async fn status(url: &str) -> u16 {
    within("GET", reqwest::get(url))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_config_file_is_served_and_sighup_reloads_it() {
    let path = std::env::temp_dir().join(format!("bridge-cli-{}.toml", std::process::id()));
    std::fs::write(&path, format!("[servers.a]\ncommand = {FIXTURE:?}\n")).unwrap();
    let mut child = Command::new(BRIDGE)
        .args(["--port", "0", "--log-level", "warn", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = url_line(&mut child);
    let base = line.trim_end().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");
    let mut a = Client::new(&format!("{base}/servers/a/mcp"));
    a.initialize().await;
    assert_eq!(status(&format!("{base}/servers/b/ready")).await, 404);

    let both =
        format!("[servers.a]\ncommand = {FIXTURE:?}\n\n[servers.b]\ncommand = {FIXTURE:?}\n");
    std::fs::write(&path, both).unwrap();
    kill("-HUP", child.id());
    within("b ready", async {
        while status(&format!("{base}/servers/b/ready")).await != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    a.assert_echo(json!(1), "a goes on").await;
    let mut b = Client::new(&format!("{base}/servers/b/mcp"));
    b.initialize().await;
    b.assert_echo(json!(2), "b serves").await;
    a.session = None;
    b.session = None;

    kill("-TERM", child.id());
    let exited = within("exit", async {
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(exited.success(), "{exited:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn config_and_a_command_together_are_a_usage_error_and_a_missing_file_exits_1() {
    let out = Command::new(BRIDGE)
        .args(["--config", "x.toml", "--", "srv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let with_oauth = ["--config", "x.toml", "--oauth-issuer", "http://127.0.0.1:1"];
    let out = Command::new(BRIDGE).args(with_oauth).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BRIDGE)
        .args(["--port", "0", "--config", "/nonexistent/bridge.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/bridge.toml"), "{err}");
}
