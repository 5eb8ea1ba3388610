//! Unit tests of time limits: overdue requests are answered, cancelled and forgotten.

use super::*;
use tokio::sync::mpsc::Receiver;

const TIMEOUT: Duration = Duration::from_secs(5);

fn owner(s: &str) -> Owner {
    Owner::from(s)
}

fn routes() -> Routes {
    let rules = RouteRules {
        request_timeout: Some(TIMEOUT),
        ..RouteRules::new(8)
    };
    let mut r = Routes::new(1, rules);
    r.attach(owner("a"), None);
    r
}

fn call(r: &mut Routes, id: Value) -> (u64, Receiver<Outbound>) {
    let (tx, rx) = stream_channel(16);
    let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {}});
    let reg = Registration {
        stream: tx,
        sse: true,
    };
    (r.register(&owner("a"), &mut msg, reg).unwrap(), rx.rx)
}

fn decode(o: &Outbound) -> Value {
    serde_json::from_slice(&o.json).unwrap()
}

#[test]
fn an_overdue_request_gets_an_error_and_is_cancelled_at_the_child() {
    let mut r = routes();
    let start = Instant::now();
    let (bid, _rx) = call(&mut r, json!("call-1"));
    assert!(r.next_deadline().is_some_and(|d| d >= start + TIMEOUT));
    assert!(r.expire(start + TIMEOUT / 2).to_child.is_empty(), "not yet");
    let expired = r.expire(start + TIMEOUT * 2);
    let [(_, answer)] = &expired.to_clients[..] else {
        panic!("{expired:?}")
    };
    let answer_json = decode(answer);
    assert!(answer.last, "the error ends the request's stream");
    assert_eq!(answer_json["id"], "call-1");
    assert_eq!(
        answer_json["error"]["code"],
        json!(jsonrpc::REQUEST_TIMEOUT)
    );
    assert!(answer_json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--request-timeout"));
    let [cancel] = &expired.to_child[..] else {
        panic!("{expired:?}")
    };
    assert_eq!(cancel["method"], "notifications/cancelled");
    assert_eq!(cancel["params"]["requestId"], json!(bid));
    // The route is freed: the session is idle again, and a late answer is dropped quietly.
    assert!(!r.has_pending(&owner("a")));
    let late = json!({"jsonrpc": "2.0", "id": bid, "result": {}});
    assert!(matches!(
        r.from_child(late),
        Action::Drop { warn: false, .. }
    ));
    assert!(r.next_deadline().is_none());
}

#[test]
fn an_unanswered_server_request_gets_an_error_at_the_child_and_a_cancellation_at_the_client() {
    let mut r = routes();
    let (_, mut rx) = call(&mut r, json!(1));
    let sample = json!({"jsonrpc": "2.0", "id": "child-9", "method": "sampling/createMessage"});
    let Action::Deliver { msg, .. } = r.from_child(sample) else {
        panic!()
    };
    let later = Instant::now() + TIMEOUT * 2;
    let expired = r.expire(later);
    let error = expired
        .to_child
        .iter()
        .find(|m| m["id"] == "child-9")
        .expect("an error for the child's request");
    assert_eq!(error["error"]["code"], json!(jsonrpc::REQUEST_TIMEOUT));
    let cancel = expired
        .to_clients
        .iter()
        .map(|(_, o)| decode(o))
        .find(|m| m["method"] == "notifications/cancelled")
        .expect("the client is told");
    assert_eq!(cancel["params"]["requestId"], msg["id"]);
    // The client's late answer is refused.
    let mut reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {}});
    assert_eq!(
        r.reply_from_client(&owner("a"), &mut reply),
        Err(Refused::NoSuchServerRequest)
    );
    assert!(
        rx.try_recv().is_err(),
        "expire only reports; the caller delivers"
    );
}

#[test]
fn a_held_server_request_is_refused_when_no_stream_opens_in_time() {
    let mut r = routes();
    let roots = json!({"jsonrpc": "2.0", "id": 3, "method": "roots/list"});
    assert!(matches!(r.from_child(roots), Action::Drop { .. }));
    let expired = r.expire(Instant::now() + RouteRules::HOLD_FOR);
    let [error] = &expired.to_child[..] else {
        panic!("{expired:?}")
    };
    assert_eq!(error["id"], 3);
    assert_eq!(
        error["error"]["code"],
        json!(jsonrpc::UNROUTABLE_SERVER_REQUEST)
    );
}

#[test]
fn without_a_timeout_nothing_expires() {
    let mut r = Routes::new(1, RouteRules::new(8));
    r.attach(owner("a"), None);
    let (tx, _rx) = stream_channel(4);
    let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"});
    let reg = Registration {
        stream: tx,
        sse: false,
    };
    r.register(&owner("a"), &mut msg, reg).unwrap();
    assert!(r.next_deadline().is_none());
    assert!(r
        .expire(Instant::now() + Duration::from_secs(86_400))
        .to_child
        .is_empty());
}

#[test]
fn a_server_request_on_the_stream_of_a_timed_out_call_goes_with_it() {
    let mut r = routes();
    let (_, _rx) = call(&mut r, json!("c"));
    let call_due = r.next_deadline().unwrap();
    // Until the clock has moved on, so that the server request's deadline comes later.
    while Instant::now() + TIMEOUT <= call_due {
        std::hint::spin_loop();
    }
    let sample = json!({"jsonrpc": "2.0", "id": "child-5", "method": "sampling/createMessage"});
    let Action::Deliver { msg, .. } = r.from_child(sample) else {
        panic!()
    };
    assert!(r.next_deadline() == Some(call_due));
    let expired = r.expire(call_due);
    assert!(
        expired
            .to_child
            .iter()
            .any(|m| m["id"] == "child-5" && m.get("error").is_some()),
        "the child hears at once: {expired:?}"
    );
    let to_client: Vec<Value> = expired.to_clients.iter().map(|(_, o)| decode(o)).collect();
    assert_eq!(to_client.len(), 2, "{to_client:?}");
    assert_eq!(to_client[0]["method"], "notifications/cancelled");
    assert_eq!(to_client[0]["params"]["requestId"], msg["id"]);
    assert_eq!(
        to_client[1]["id"], "c",
        "the call's error comes last and ends the stream"
    );
}
