//! Unit tests of multi round-trip calls across eras: a modern child's `input_required` becomes
//! server requests to a session client, and its answers a retry.

use super::*;
use tokio::sync::mpsc::Receiver;

fn owner(s: &str) -> Owner {
    Owner::from(s)
}

fn routes() -> Routes {
    let rules = RouteRules {
        request_timeout: Some(Duration::from_secs(5)),
        ..RouteRules::new(8)
    };
    let mut r = Routes::new(1, rules);
    r.attach(owner("a"), None);
    r
}

/// A `tools/call` of session "a" under client id "call", answered on an SSE stream or not, and
/// retried on input (a session client before a modern child).
fn call(r: &mut Routes, sse: bool) -> (u64, StreamTx, Receiver<Outbound>) {
    let (id, tx, rx) = register(r, sse);
    let line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                      "params": {"name": "book", "arguments": {"day": "monday"}, "_meta": {"progressToken": id}}});
    r.retry_on_input(id, &line);
    (id, tx, rx)
}

/// The same call, registered only (a client that handles input requests itself).
fn register(r: &mut Routes, sse: bool) -> (u64, StreamTx, Receiver<Outbound>) {
    let (tx, rx) = stream_channel(16);
    let mut msg = json!({"jsonrpc": "2.0", "id": "call", "method": "tools/call",
                         "params": {"name": "book", "arguments": {"day": "monday"}, "_meta": {"progressToken": "p"}}});
    let reg = Registration {
        stream: tx.clone(),
        sse,
    };
    (r.register(&owner("a"), &mut msg, reg).unwrap(), tx, rx.rx)
}

fn input_required(id: u64, requests: Value, state: Option<&str>) -> Value {
    let mut result = json!({"resultType": "input_required", "inputRequests": requests});
    if let Some(s) = state {
        result["requestState"] = json!(s);
    }
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn two_inputs() -> Value {
    json!({
        "who": {"method": "elicitation/create", "params": {"message": "Your name?"}},
        "where": {"method": "roots/list"},
    })
}

fn answer(to: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": to["id"], "result": result})
}

#[test]
fn input_requests_become_server_requests_and_their_answers_a_retry() {
    let mut r = routes();
    let (bid, _tx, _rx) = call(&mut r, true);
    let Action::Ask { requests, .. } =
        r.from_child(input_required(bid, two_inputs(), Some("opaque")))
    else {
        panic!("an ask")
    };
    let methods: Vec<&str> = requests
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods.len(), 2);
    assert!(methods.contains(&"elicitation/create") && methods.contains(&"roots/list"));
    assert!(
        !r.has_pending(&owner("a")),
        "nothing is at the child while the client is asked"
    );
    let who = requests
        .iter()
        .find(|m| m["method"] == "elicitation/create")
        .unwrap();
    let place = requests
        .iter()
        .find(|m| m["method"] == "roots/list")
        .unwrap();
    assert_eq!(who["params"]["message"], "Your name?");
    // Only the session asked may answer.
    let mut stranger = answer(who, json!({"action": "accept", "content": {"name": "x"}}));
    r.attach(owner("b"), None);
    assert!(r.reply_from_client(&owner("b"), &mut stranger).is_err());
    let mut first = answer(who, json!({"action": "accept", "content": {"name": "Ada"}}));
    assert!(matches!(
        r.reply_from_client(&owner("a"), &mut first).unwrap(),
        ReplyRoute::Recorded
    ));
    let mut second = answer(place, json!({"roots": []}));
    let ReplyRoute::Retry(retry) = r.reply_from_client(&owner("a"), &mut second).unwrap() else {
        panic!("a retry")
    };
    let retry_id = retry["id"].as_u64().unwrap();
    assert_ne!(retry_id, bid, "a retry is a new request");
    assert_eq!(retry["method"], "tools/call");
    assert_eq!(retry["params"]["arguments"], json!({"day": "monday"}));
    assert_eq!(retry["params"]["requestState"], "opaque");
    assert_eq!(
        retry["params"]["inputResponses"]["who"]["content"]["name"],
        "Ada"
    );
    assert_eq!(
        retry["params"]["inputResponses"]["where"],
        json!({"roots": []})
    );
    assert_eq!(retry["params"]["_meta"]["progressToken"], json!(retry_id));
    assert!(r.has_pending(&owner("a")));
    // The complete result reaches the caller under its own id, and ends its stream.
    let done = json!({"jsonrpc": "2.0", "id": retry_id, "result": {"resultType": "complete", "content": []}});
    let Action::Deliver { msg, last, .. } = r.from_child(done) else {
        panic!()
    };
    assert!(last);
    assert_eq!(msg["id"], "call");
}

#[test]
fn a_retry_that_asks_again_asks_again_and_state_alone_is_retried_at_once() {
    let mut r = routes();
    let (bid, _tx, _rx) = call(&mut r, true);
    let Action::ToChild {
        msg: retry,
        refused: None,
    } = r.from_child(input_required(bid, json!({}), Some("s1")))
    else {
        panic!("retried at once")
    };
    assert_eq!(retry["params"]["requestState"], "s1");
    assert!(retry["params"].get("inputResponses").is_none());
    let again = retry["id"].as_u64().unwrap();
    let Action::Ask { .. } = r.from_child(input_required(again, two_inputs(), None)) else {
        panic!("asked")
    };
}

#[test]
fn a_call_that_only_ever_gets_state_back_fails_instead_of_looping() {
    let mut r = routes();
    let (mut id, _tx, _rx) = call(&mut r, true);
    for _ in 0..20 {
        match r.from_child(input_required(id, json!({}), Some("again"))) {
            Action::ToChild { msg, .. } => id = msg["id"].as_u64().unwrap(),
            Action::Deliver {
                msg, last: true, ..
            } => {
                assert_eq!(msg["id"], "call");
                assert!(msg["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("retried"));
                return;
            }
            a => panic!("{a:?}"),
        }
    }
    panic!("never gave up");
}

#[test]
fn input_cannot_be_asked_on_a_json_reply_nor_of_an_unknown_kind() {
    let mut r = routes();
    let (bid, _tx, _rx) = call(&mut r, false);
    let Action::Deliver {
        msg, last: true, ..
    } = r.from_child(input_required(bid, two_inputs(), None))
    else {
        panic!()
    };
    assert!(msg["error"]["message"]
        .as_str()
        .unwrap()
        .contains("text/event-stream"));
    let (bid, _tx, _rx) = call(&mut r, true);
    let odd = json!({"x": {"method": "tools/call", "params": {}}});
    let Action::Deliver { msg, .. } = r.from_child(input_required(bid, odd, None)) else {
        panic!()
    };
    assert_eq!(msg["id"], "call");
    assert!(msg.get("error").is_some());
}

#[test]
fn a_refused_input_ends_the_call_with_an_error() {
    let mut r = routes();
    let (bid, _tx, _rx) = call(&mut r, true);
    let Action::Ask { requests, .. } = r.from_child(input_required(bid, two_inputs(), None)) else {
        panic!()
    };
    let mut refusal = json!({"jsonrpc": "2.0", "id": requests[0]["id"], "error": {"code": -1, "message": "user declined"}});
    let ReplyRoute::Fail(_, error) = r.reply_from_client(&owner("a"), &mut refusal).unwrap() else {
        panic!()
    };
    assert_eq!(error["id"], "call");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("user declined"));
    // The other input request is void now.
    let mut late = answer(&requests[1], json!({}));
    assert!(r.reply_from_client(&owner("a"), &mut late).is_err());
}

#[test]
fn an_unanswered_input_request_times_the_call_out() {
    let mut r = routes();
    let (bid, _tx, _rx) = call(&mut r, true);
    let Action::Ask { .. } = r.from_child(input_required(bid, two_inputs(), None)) else {
        panic!()
    };
    let expired = r.expire(Instant::now() + Duration::from_secs(60));
    assert!(
        expired.to_child.is_empty(),
        "the child asked nothing itself"
    );
    let sent: Vec<Value> = expired
        .to_clients
        .iter()
        .map(|(_, o)| serde_json::from_slice(&o.json).unwrap())
        .collect();
    assert_eq!(
        sent.iter()
            .filter(|m| m["method"] == "notifications/cancelled")
            .count(),
        2
    );
    let error = sent.last().unwrap();
    assert_eq!(error["id"], "call");
    assert_eq!(error["error"]["code"], json!(jsonrpc::REQUEST_TIMEOUT));
    assert!(
        expired.to_clients.last().unwrap().1.last,
        "the error ends the call's stream"
    );
}

#[test]
fn a_session_that_ends_while_asked_leaves_nothing_behind() {
    let mut r = routes();
    let (bid, _tx, _rx) = call(&mut r, true);
    let Action::Ask { requests, .. } = r.from_child(input_required(bid, two_inputs(), None)) else {
        panic!()
    };
    let to_child = r.detach(&owner("a"));
    assert!(to_child.is_empty(), "{to_child:?}");
    r.attach(owner("a"), None);
    let mut late = answer(&requests[0], json!({}));
    assert!(r.reply_from_client(&owner("a"), &mut late).is_err());
    assert!(r.next_deadline().is_none());
}

#[test]
fn input_requests_pass_untouched_to_a_client_that_handles_them() {
    let mut r = routes();
    let (bid, _tx, _rx) = register(&mut r, true);
    let Action::Deliver { msg, .. } = r.from_child(input_required(bid, two_inputs(), None)) else {
        panic!()
    };
    assert_eq!(msg["result"]["resultType"], "input_required");
}

#[test]
fn calls_waiting_for_input_are_bounded() {
    let mut r = routes();
    for n in 0..RouteRules::MAX_WAITING_FOR_INPUT {
        let (bid, _tx, _rx) = call(&mut r, true);
        let a = r.from_child(input_required(bid, two_inputs(), None));
        assert!(matches!(a, Action::Ask { .. }), "{n}: {a:?}");
    }
    let (bid, _tx, _rx) = call(&mut r, true);
    let Action::Deliver {
        msg, last: true, ..
    } = r.from_child(input_required(bid, two_inputs(), None))
    else {
        panic!()
    };
    assert!(msg["error"]["message"]
        .as_str()
        .unwrap()
        .contains("too many"));
}
