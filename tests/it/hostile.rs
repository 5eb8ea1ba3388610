//! Hostile input on both sides, as property tests: random bodies and headers at the HTTP side,
//! random HTTP/2 frames after the preface, random lines on the child's stdout. The bridge must
//! not panic or hang, must answer a client that waits with an error, and other sessions must
//! keep working. `PROPTEST_CASES` sets how many cases run (a short run by default, for CI).

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::support::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

/// Bodies a hostile or broken client might send.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    let shapes = prop_oneof![
        Just(json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"})),
        Just(json!({"jsonrpc": "2.0", "id": 1, "method": 5})),
        Just(json!({"jsonrpc": "2.0", "id": 1})),
        Just(json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
        Just(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "not an object"})),
        Just(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": {"deep": [1]}}})),
        Just(json!([])),
        Just(json!([1, 2, 3])),
        Just(json!({"jsonrpc": "2.0", "id": 1e300, "method": "ping"})),
        Just(json!(null)),
    ]
    .prop_map(|v| serde_json::to_vec(&v).unwrap());
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        (1usize..20_000).prop_map(|d| format!("{}1{}", "[".repeat(d), "]".repeat(d)).into_bytes()),
        (1usize..400).prop_map(|d| format!(
            r#"{{"jsonrpc":"2.0","id":1{},"method":"ping"}}"#,
            "0".repeat(d)
        )
        .into_bytes()),
        "[\\PC]{0,200}".prop_map(String::into_bytes),
        shapes,
    ]
}

#[test]
fn random_http_bodies_and_headers_get_errors_and_harm_no_one() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bridge, victim, bystander) = rt.block_on(async {
        let bridge = TestBridge::start().await;
        let (v, b) = (bridge.client().await, bridge.client().await);
        (bridge, v, b)
    });
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in hostile_body(), accept in "[ -~]{0,40}", junk_headers in 0usize..120)| {
        rt.block_on(async {
            let mut req = victim.post(BOTH).body(body);
            if !accept.is_empty() {
                req = req.header("accept", accept);
            }
            for i in 0..junk_headers {
                req = req.header(format!("x-junk-{i}"), "y".repeat(64));
            }
            let resp = within("hostile POST", req.send()).await.unwrap();
            let status = resp.status().as_u16();
            let body = within("hostile body", resp.bytes()).await.unwrap();
            if status >= 400 && status != 431 {
                let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{status}: no JSON-RPC body"));
                assert!(v["error"]["code"].is_i64(), "{status}: {v}");
            }
            assert!(status < 500, "no server error for client input: {status}");
            let ok = bystander.call(json!(1), "echo", json!({"text": "fine"})).await;
            assert_eq!(text(&ok), "fine");
        });
    });
    rt.block_on(async {
        assert_eq!(
            text(
                &victim
                    .call(json!(2), "echo", json!({"text": "victim ok"}))
                    .await
            ),
            "victim ok"
        );
        bridge.stop().await.unwrap();
    });
}

#[test]
fn random_lines_on_the_childs_stdout_are_survived() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bridge, a, b) = rt.block_on(async {
        let bridge = TestBridge::start().await;
        let (a, b) = (bridge.client().await, bridge.client().await);
        (bridge, a, b)
    });
    let config = ProptestConfig {
        cases: cases() / 4 + 1,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(seed in 1u64.., n in 1u64..300)| {
        rt.block_on(async {
            let (spew, other) = tokio::join!(
                a.call(json!("s"), "spew", json!({"seed": seed, "n": n})),
                b.call(json!("e"), "echo", json!({"text": "meanwhile", "ms": 1})),
            );
            assert_eq!(text(&spew), "spewed");
            assert_eq!(text(&other), "meanwhile");
        });
    });
    rt.block_on(async {
        let h = bridge.health().await;
        assert_eq!(h["child"]["state"], "running");
        bridge.stop().await.unwrap();
    });
}

/// HTTP/2 frames with valid 9-byte headers and random type, flags, stream and payload.
fn hostile_frames() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(kind, flags, stream, payload)| {
            let len = payload.len() as u32;
            let mut f = vec![
                (len >> 16) as u8,
                (len >> 8) as u8,
                len as u8,
                kind % 12,
                flags,
            ];
            f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
            f.extend_from_slice(&payload);
            f
        });
    prop_oneof![
        proptest::collection::vec(frame, 1..24).prop_map(|fs| fs.concat()),
        proptest::collection::vec(any::<u8>(), 0..1024),
    ]
}

#[test]
fn random_http2_frames_after_the_preface_are_survived() {
    use tokio::io::AsyncWriteExt as _;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bridge, bystander) = rt.block_on(async {
        let bridge = TestBridge::start().await;
        let mut b = Client::new(&bridge.url);
        b.http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        b.initialize().await;
        (bridge, b)
    });
    let addr = addr_of(&bridge);
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(frames in hostile_frames())| {
        rt.block_on(async {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
            // The bridge may close before reading it all: a failed write is an answer too.
            let _ = s.write_all(&frames).await;
            let _ = s.shutdown().await;
            closed_by_bridge(&mut s).await;
            let ok = bystander.call(json!(1), "echo", json!({"text": "fine"})).await;
            assert_eq!(text(&ok), "fine");
        });
    });
    rt.block_on(async {
        assert_eq!(bridge.health().await["status"], "ok");
        bridge.stop().await.unwrap();
    });
}
