//! Unit tests of the fast path's routes: the same decisions as the full path, from bytes.

use super::*;
use crate::envelope::{self, RawRequest};
use bytes::Bytes;
use tokio::sync::mpsc::Receiver;

fn routes_with(owners: &[&str]) -> Routes {
    let mut r = Routes::new(1, RouteRules::new(8));
    for o in owners {
        r.attach(Owner::from(*o), None);
    }
    r
}

/// Registers `body` from `who` on the fast path: its bridge id, its line, its stream.
fn register(r: &mut Routes, who: &str, body: &str) -> (u64, Value, Receiver<Outbound>) {
    let (tx, rx) = stream_channel(16);
    let req = RawRequest::new(&Bytes::from(body.to_owned())).expect("a plain request");
    let reg = Registration {
        stream: tx,
        sse: true,
    };
    let (id, line) = r.register_raw(&Owner::from(who), &req, reg).unwrap();
    (id, serde_json::from_slice(&line).unwrap(), rx.rx)
}

/// Routes the child's `line` the way the reader does: fast when it can, fully otherwise.
fn from_child(r: &mut Routes, line: &str) -> Option<Action> {
    let env = envelope::read(line.as_bytes())?;
    r.response_raw(line.as_bytes(), &env)
}

fn sent(a: Option<Action>) -> (Value, bool) {
    match a {
        Some(Action::Send { to, json, last }) => {
            assert!(!to.is_closed());
            (serde_json::from_slice(&json).unwrap(), last)
        }
        other => panic!("expected Send, got {other:?}"),
    }
}

#[test]
fn colliding_ids_of_two_sessions_go_back_to_their_own_callers() {
    let mut r = routes_with(&["a", "b"]);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    let (ida, line_a, _rxa) = register(&mut r, "a", call);
    let (idb, line_b, _rxb) = register(&mut r, "b", call);
    assert_ne!(ida, idb);
    assert_eq!(
        (line_a["id"].clone(), line_b["id"].clone()),
        (json!(ida), json!(idb))
    );
    assert_eq!(line_a["params"], json!({"name": "echo"}));
    // Answered out of order: each answer finds its own caller, under the caller's id.
    for id in [idb, ida] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"from":{id}}}}}"#);
        let (msg, last) = sent(from_child(&mut r, &line));
        assert!(last);
        assert_eq!(msg["id"], json!(1));
        assert_eq!(msg["result"]["from"], json!(id));
    }
    assert_eq!(r.pending_len(), 0);
    assert!(!r.has_pending(&Owner::from("a")));
}

#[test]
fn a_progress_token_becomes_the_bridge_id_and_comes_back_as_the_clients() {
    let mut r = routes_with(&["a"]);
    let body = r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"_meta":{"progressToken":"tok"}}}"#;
    let (id, line, mut rx) = register(&mut r, "a", body);
    assert_eq!(line["params"]["_meta"]["progressToken"], json!(id));
    let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                          "params": {"progressToken": id, "progress": 1}});
    match r.from_child(progress) {
        Action::Deliver { to, msg, .. } => {
            assert_eq!(msg["params"]["progressToken"], json!("tok"));
            assert!(to
                .try_send(Outbound {
                    json: crate::jsonrpc::to_bytes(&msg),
                    last: false
                })
                .is_ok());
        }
        other => panic!("expected Deliver, got {other:?}"),
    }
    assert!(rx.try_recv().is_ok());
}

#[test]
fn answers_that_need_more_than_an_id_take_the_full_path_and_stay_pending() {
    let mut r = routes_with(&["a"]);
    let task = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"task":{}}}"#;
    let (id, _, _rx) = register(&mut r, "a", task);
    let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"task":{{"taskId":"t"}}}}}}"#);
    assert!(from_child(&mut r, &line).is_none());
    assert_eq!(
        r.pending_len(),
        1,
        "left for the full path, which records the task"
    );
    // Unknown, and never issued, ids: the full path decides (and explains) those too.
    for line in [
        r#"{"jsonrpc":"2.0","id":999,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":"1","result":{}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
    ] {
        assert!(from_child(&mut r, line).is_none(), "{line}");
    }
    assert_eq!(r.pending_len(), 1);
}

#[test]
fn the_limits_of_register_hold_on_the_fast_path() {
    let mut r = Routes::new(1, RouteRules::new(1));
    r.attach(Owner::from("a"), None);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let req = RawRequest::new(&Bytes::from(call)).unwrap();
    let reg = || Registration {
        stream: stream_channel(4).0,
        sse: false,
    };
    assert!(r.register_raw(&Owner::from("a"), &req, reg()).is_ok());
    let again = r.register_raw(&Owner::from("a"), &req, reg());
    assert_eq!(again.err(), Some(Refused::TooManyRequests));
    let nobody = r.register_raw(&Owner::from("z"), &req, reg());
    assert_eq!(nobody.err(), Some(Refused::UnknownOwner));
}
