use std::time::Duration;

use mcp_http_bridge::access::Access;
use serde_json::{json, Value};

use crate::support::*;

const ALICE: &str = "alice-secret-token-0123456789";
const BOB: &str = "bob-secret-token-9876543210";

fn ping() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})
}

async fn post_with(bridge: &TestBridge, headers: &[(&'static str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(&bridge.url)
        .json(&initialize_msg(json!(1), "2025-11-25"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn foreign_host_names_get_421_unless_allowed() {
    let bridge =
        TestBridge::start_with(|c| c.access.allowed_hosts = vec!["bridge.test".into()]).await;
    let r = post_with(&bridge, &[("host", "evil.example.com")]).await;
    assert_eq!(r.status(), 421);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Host"));
    assert_eq!(
        post_with(&bridge, &[("host", "bridge.test:1234")])
            .await
            .status(),
        200
    );
    assert_eq!(
        post_with(&bridge, &[("host", "localhost")]).await.status(),
        200
    );
}

#[tokio::test]
async fn origins_are_checked_and_cors_is_answered() {
    let bridge = TestBridge::start_with(|c| {
        c.access.allowed_origins = vec!["https://app.example.com".into()]
    })
    .await;
    let own = bridge.base.clone();
    for (origin, status) in [
        ("http://evil.example.com", 403),
        (own.as_str(), 200),
        ("https://app.example.com", 200),
    ] {
        let r = post_with(&bridge, &[("origin", origin)]).await;
        assert_eq!(r.status(), status, "{origin}");
        if status == 200 {
            assert_eq!(r.headers()["access-control-allow-origin"], origin);
            let exposed = r.headers()["access-control-expose-headers"]
                .to_str()
                .unwrap();
            assert!(exposed.contains("Mcp-Session-Id") && exposed.contains("MCP-Protocol-Version"));
        } else {
            let body: Value = r.json().await.unwrap();
            assert!(body["error"]["code"].is_i64());
        }
    }
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &bridge.url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, mcp-session-id",
            )
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(ok.status(), 204);
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
        "mcp-method",
        "mcp-name",
    ] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed}");
    }
    assert_eq!(
        preflight("http://evil.example.com").await.unwrap().status(),
        403
    );
}

fn with_tokens(c: &mut mcp_http_bridge::Config) {
    c.access = Access {
        tokens: vec![("alice".into(), ALICE.into()), ("bob".into(), BOB.into())],
        ..Access::default()
    };
}

#[tokio::test]
async fn bearer_tokens_guard_every_mcp_request_and_bind_sessions() {
    let bridge = TestBridge::start_with(with_tokens).await;
    for auth in [
        None,
        Some("Bearer wrong-token-wrong-token"),
        Some("Basic YWxpY2U6eA=="),
    ] {
        let headers: Vec<(&'static str, &str)> =
            auth.map(|a| ("authorization", a)).into_iter().collect();
        let r = post_with(&bridge, &headers).await;
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    let legacy = reqwest::get(&bridge.sse_url).await.unwrap();
    assert_eq!(legacy.status(), 401, "the legacy transport is guarded too");
    assert_eq!(
        reqwest::get(format!("{}/health", bridge.base))
            .await
            .unwrap()
            .status(),
        200
    );

    // alice's session is alice's.
    let alice = format!("Bearer {ALICE}");
    let r = post_with(&bridge, &[("authorization", &alice)]).await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let as_token = |token: &str| {
        reqwest::Client::new()
            .post(&bridge.url)
            .header("authorization", format!("Bearer {token}"))
            .header("mcp-session-id", &sid)
            .json(&ping())
            .send()
    };
    assert_eq!(as_token(ALICE).await.unwrap().status(), 200);
    assert_eq!(
        as_token(BOB).await.unwrap().status(),
        404,
        "another token does not see the session"
    );
    let health = reqwest::get(format!("{}/health", bridge.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!health.contains(ALICE) && !health.contains(BOB));
}

#[tokio::test]
async fn session_and_in_flight_limits() {
    let bridge = TestBridge::start_with(|c| {
        c.limits.max_sessions = 2;
        c.limits.max_requests_per_session = 2;
    })
    .await;
    let a = bridge.client().await;
    let _b = bridge.client().await;
    let third = Client::new(&bridge.url)
        .send(BOTH, &initialize_msg(json!(1), "2025-11-25"))
        .await;
    assert_eq!(third.status, 503);
    assert_eq!(reqwest::get(&bridge.sse_url).await.unwrap().status(), 503);

    let slow = |id: u64| {
        let a = a.clone();
        tokio::spawn(async move { a.call(json!(id), "slow", json!({"ms": 300})).await })
    };
    let (s1, s2) = (slow(1), slow(2));
    bridge.wait_pending(2).await;
    let refused = a.call(json!(3), "echo", json!({"text": "x"})).await;
    assert_eq!(
        (refused["id"].clone(), refused["error"]["code"].clone()),
        (json!(3), json!(-32052))
    );
    for s in [s1, s2] {
        assert_eq!(text(&within("slow", s).await.unwrap()), "slept 300");
    }
    a.assert_echo(json!(4), "again").await;
}

#[tokio::test]
async fn https_with_a_certificate_the_test_generates() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("mcp-bridge-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let files = mcp_http_bridge::tls::TlsFiles {
        cert: cert_path.clone(),
        key: key_path.clone(),
    };
    let bridge = TestBridge::start_with(|c| c.tls = Some(files)).await;
    assert!(bridge.url.starts_with("https://127.0.0.1:"));

    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let mut c = Client::new(&bridge.url);
    c.http = trusted;
    c.initialize().await;
    assert_eq!(
        text(&c.call(json!(1), "add", json!({"a": 20, "b": 22})).await),
        "42"
    );
    let mut events = c.open_stream().await;
    c.call(json!(2), "list_changed", json!({})).await;
    events.next_method("notifications/tools/list_changed").await;
    // ALPN offers h2 first: a client that speaks it gets HTTP/2, one that does not HTTP/1.1.
    let health = format!("{}/health", bridge.base);
    let r = c.http.get(&health).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.version()),
        (200, reqwest::Version::HTTP_2)
    );
    let http1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let r = http1.get(&health).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.version()),
        (200, reqwest::Version::HTTP_11)
    );

    // A client that does not trust the certificate is refused; plain HTTP gets nothing useful.
    assert!(reqwest::Client::new()
        .post(&bridge.url)
        .json(&ping())
        .send()
        .await
        .is_err());
    let plain = bridge.url.replace("https://", "http://");
    let r = reqwest::Client::new()
        .post(&plain)
        .json(&ping())
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(r.is_err() || !r.unwrap().status().is_success());
    // A key that does not exist is a clear start-up error.
    let missing = mcp_http_bridge::tls::TlsFiles {
        cert: cert_path,
        key: dir.join("nope.pem"),
    };
    let mut config = mcp_http_bridge::Config::new(FIXTURE, Vec::<String>::new());
    config.tls = Some(missing);
    let err = mcp_http_bridge::Bridge::start(config).await.err().unwrap();
    assert!(format!("{err:#}").contains("--tls-key"), "{err:#}");
    std::fs::remove_dir_all(dir).unwrap();
}
