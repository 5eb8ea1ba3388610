use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

fn bridge(args: &[&str]) -> Command {
    let mut c = Command::new(BRIDGE);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The bridge process; killed on drop, and its stderr shown if the test failed.
struct Running {
    child: Child,
    url: String,
}

impl Running {
    /// Starts the bridge on port 0 in front of the fixture and reads its URL line.
    fn start(extra: &[&str]) -> Running {
        let mut args = vec!["--port", "0", "--log-level", "warn"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", FIXTURE]);
        let mut child = bridge(&args).stderr(Stdio::inherit()).spawn().unwrap();
        let line = url_line(&mut child);
        assert!(
            line.starts_with("http://127.0.0.1:") && line.trim_end().ends_with("/mcp"),
            "{line:?}"
        );
        Running {
            child,
            url: line.trim_end().to_owned(),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "bridge did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn help_and_version() {
    let out = bridge(&["--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--host",
        "--port",
        "--mcp-path",
        "--log-level",
        "--max-body",
        "--sse-path",
        "--allowed-origin",
        "--tokens-file",
        "--tls-cert",
        "--isolation",
        "--restart",
        "--pool",
        "--env-file",
        "--header-timeout",
        "--idle-timeout",
        "--max-connections",
        "-- <COMMAND>",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    let out = bridge(&["--version"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--bogus", "--", "x"][..],
        &[][..],
        &["--port", "x", "--", "srv"],
        &["--mcp-path", "mcp", "--", "srv"],
        &["--child-era", "future", "--", "srv"],
        &["srv"],
    ] {
        let out = bridge(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
        assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}");
    }
}

#[test]
fn a_command_without_the_separator_is_refused_with_a_tip_to_add_it() {
    let out = bridge(&["--port", "0", "npx", "some-server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unexpected argument 'npx'"), "{err}");
    assert!(
        err.contains("tip: the MCP server's command goes after --: mcp-http-bridge [OPTIONS] -- npx some-server"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_duration_without_a_unit_is_refused_naming_the_units() {
    for flag in ["--init-timeout", "--header-timeout", "--idle-timeout"] {
        let out = bridge(&[flag, "2", "--", FIXTURE]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag) && err.contains("add a unit: ms, s, m or h"),
            "{err}"
        );
    }
    // Zero has no unit to forget, but these timeouts cannot be zero.
    let out = bridge(&["--idle-timeout", "0", "--", FIXTURE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--idle-timeout must be greater than zero"),
        "{err}"
    );
}

#[test]
fn a_command_that_cannot_start_exits_1_naming_it() {
    let out = bridge(&["--port", "0", "--", "/nonexistent/server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/server") && err.contains("No such file"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_child_era_flag_is_held_to_what_the_child_speaks() {
    // A 2026-07-28-only server, told to be initialized the session way, refuses `initialize`.
    let out = bridge(&["--port", "0", "--child-era", "legacy", "--", MODERN_FIXTURE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused initialize"), "{err}");
    // A session-era server, required to be modern, is refused naming why.
    let out = bridge(&["--port", "0", "--child-era", "modern", "--", FIXTURE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not modern"), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn prints_the_url_serves_and_exits_0_on_sigterm_leaving_no_process() {
    let mut b = Running::start(&[]);
    let mut c = Client::new(&b.url);
    c.initialize().await;
    assert_eq!(
        text(&c.call(json!(1), "add", json!({"a": 1, "b": 2})).await),
        "3"
    );
    let health_url = b.url.replace("/mcp", "/health");
    let health: serde_json::Value = reqwest::get(health_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = health["child"]["pid"].as_u64().unwrap();
    let _stream = c.open_stream().await;
    b.signal("-TERM");
    assert_eq!(b.wait().code(), Some(0));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "child {pid} left behind"
    );
}

#[tokio::test]
async fn instance_id_prefixes_session_ids_and_shows_in_health() {
    let b = Running::start(&["--instance-id", "eu-1_b"]);
    let mut c = Client::new(&b.url);
    c.initialize().await;
    let sid = c.session.clone().unwrap();
    assert!(sid.starts_with("eu-1_b."), "{sid}");
    let health: serde_json::Value = reqwest::get(b.url.replace("/mcp", "/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["instance"], "eu-1_b");
}

#[test]
fn a_bad_instance_id_is_a_usage_error() {
    for bad in ["a.b", "", "x y", &"x".repeat(33)] {
        let out = bridge(&["--instance-id", bad, "--port", "0", "--", FIXTURE])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--instance-id") && err.contains("instance id"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn sigint_also_exits_0() {
    let mut b = Running::start(&[]);
    b.signal("-INT");
    assert_eq!(b.wait().code(), Some(0));
}

#[tokio::test]
async fn exits_1_when_the_child_dies_and_restarts_are_off() {
    let mut b = Running::start(&["--restart", "never"]);
    let mut c = Client::new(&b.url);
    c.initialize().await;
    let r = c
        .request(
            json!(1),
            "tools/call",
            json!({"name": "crash", "arguments": {"code": 7}}),
        )
        .await;
    assert_eq!(r.last()["error"]["code"], -32050);
    assert_eq!(b.wait().code(), Some(1));
}

#[test]
fn a_public_address_without_a_token_is_refused_with_advice() {
    let out = bridge(&["--host", "0.0.0.0", "--port", "0", "--", FIXTURE])
        .env_remove("MCP_HTTP_BRIDGE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MCP_HTTP_BRIDGE_TOKEN") && err.contains("--tokens-file"),
        "{err}"
    );
}

#[tokio::test]
async fn the_token_stays_out_of_logs_health_and_the_childs_environment() {
    const TOKEN: &str = "a-very-secret-token-for-this-test";
    let mut child = bridge(&["--port", "0", "--log-level", "trace", "--", FIXTURE])
        .env("MCP_HTTP_BRIDGE_TOKEN", TOKEN)
        .spawn()
        .unwrap();
    let line = url_line(&mut child);
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut running = Running {
        child,
        url: line.trim_end().to_owned(),
    };
    let mut c = Client::new(&running.url);
    c.http = reqwest::Client::builder()
        .default_headers(headers(&[("authorization", &format!("Bearer {TOKEN}"))]))
        .build()
        .unwrap();
    c.initialize().await;
    let r = c
        .call(json!(1), "env", json!({"name": "MCP_HTTP_BRIDGE_TOKEN"}))
        .await;
    assert_eq!(text(&r), "", "the child does not inherit the token");
    let wrong = reqwest::Client::new()
        .post(&running.url)
        .header("authorization", "Bearer nope-nope-nope-nope")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let health = reqwest::get(running.url.replace("/mcp", "/health"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!health.contains(TOKEN));
    running.signal("-TERM");
    assert_eq!(running.wait().code(), Some(0));
    let logs = logs.join().unwrap();
    assert!(logs.contains("token=env"), "token names are logged");
    assert!(!logs.contains(TOKEN), "token values are not");
}

#[test]
fn a_bad_tokens_file_is_a_usage_error_that_shows_no_token() {
    let dir = std::env::temp_dir().join(format!("mcp-bridge-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(&file, "alice:short\n").unwrap();
    let out = bridge(&["--tokens-file", file.to_str().unwrap(), "--", FIXTURE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1") && !err.contains("short"), "{err}");
    let out = bridge(&["--tokens-file", "/nonexistent/tokens", "--", FIXTURE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn session_isolation_from_the_command_line() {
    let b = Running::start(&["--isolation", "session"]);
    let mut pids = Vec::new();
    for _ in 0..2 {
        let mut c = Client::new(&b.url);
        c.initialize().await;
        pids.push(text(&c.call(json!(1), "pid", json!({})).await).to_owned());
    }
    assert_ne!(pids[0], pids[1]);
}

#[tokio::test]
async fn the_childs_pipes_are_widened_for_the_first_eight_children_only() {
    let max: i32 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let wide = max.min(1 << 20);
    let b = Running::start(&["--isolation", "session"]);
    let mut clients = Vec::new();
    let mut seen = Vec::new();
    for i in 0..10 {
        let mut c = Client::new(&b.url);
        c.initialize().await;
        seen.push(text(&c.call(json!(i), "pipes", json!({})).await).to_owned());
        clients.push(c);
    }
    let widened = format!("stdin={wide} stdout={wide}");
    let count = seen.iter().filter(|s| **s == widened).count();
    assert_eq!(count, 8, "{seen:?}");
    assert!(seen[..8].iter().all(|s| *s == widened), "{seen:?}");
    // A session's end gives its child's share back.
    assert_eq!(clients[0].delete().await, 200);
    let mut c = Client::new(&b.url);
    c.initialize().await;
    within("a widened child again", async {
        loop {
            let got = text(&c.call(json!(0), "pipes", json!({})).await).to_owned();
            if got == widened {
                break;
            }
            // The ended session's child may still be on its way out: another session then,
            // this one ended so that it holds no child.
            assert_eq!(c.delete().await, 200);
            c = Client::new(&b.url);
            c.initialize().await;
        }
    })
    .await;
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_server_session_and_request() {
    let mut child = bridge(&["--port", "0", "--log-format", "json", "--", FIXTURE])
        .spawn()
        .unwrap();
    let line = url_line(&mut child);
    let mut c = Client::new(line.trim_end());
    c.initialize().await;
    c.assert_echo(json!(1), "logged").await;
    assert_eq!(c.delete().await, 200);
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    // "session created" happens while the initialize request is handled.
    let created = lines
        .iter()
        .find(|l| l["message"] == "session created")
        .expect("a session-created line");
    assert_eq!(created["level"], "INFO");
    assert_eq!(&created["session"], &json!(c.session.as_deref().unwrap()));
    assert_eq!(
        (&created["span"], &created["server"]),
        (&json!("request"), &json!("default"))
    );
    assert_eq!(
        (&created["http_method"], &created["path"]),
        (&json!("POST"), &json!("/mcp"))
    );
    assert!(created["request"].as_u64().is_some(), "{created}");
    // A later request of the session names it, from its header.
    let ended = lines
        .iter()
        .find(|l| l["message"] == "session deleted")
        .unwrap_or_else(|| panic!("a session-end line in {lines:?}"));
    assert_eq!(
        (&ended["session"], &ended["http_method"]),
        (&json!(c.session.as_deref().unwrap()), &json!("DELETE"))
    );
    assert_ne!(ended["request"], created["request"]);
    // What a child's tasks log names the server too.
    assert!(lines
        .iter()
        .any(|l| l["span"] == "child" && l["server"] == "default" && l["pid"].is_u64()));
}
