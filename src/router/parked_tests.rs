//! Unit tests of parked calls: a stateless client's call is answered with `input_required`
//! when the child asks something, and resumed by its retry.

use super::*;

fn owner(s: &str) -> Owner {
    Owner::from(s)
}

fn routes() -> Routes {
    let rules = RouteRules {
        request_timeout: Some(Duration::from_secs(5)),
        ..RouteRules::new(8)
    };
    Routes::new(1, rules)
}

/// A stateless request "s1" (client id "c1") that may answer elicitation only.
fn stateless_call(r: &mut Routes) -> (u64, Registration) {
    r.attach_stateless(
        owner("s1"),
        Some(Arc::from("alice")),
        InputKinds {
            elicitation: true,
            ..Default::default()
        },
    );
    let (tx, _rx) = stream_channel(8);
    let reg = Registration {
        stream: tx,
        sse: false,
    };
    let mut msg =
        json!({"jsonrpc": "2.0", "id": "c1", "method": "tools/call", "params": {"name": "elicit"}});
    (
        r.register(&owner("s1"), &mut msg, reg.clone()).unwrap(),
        reg,
    )
}

fn ask(id: &str, method: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {"message": "?"}})
}

#[test]
fn a_server_request_parks_the_call_and_the_retry_resumes_it() {
    let mut r = routes();
    let (call, reg) = stateless_call(&mut r);
    assert!(matches!(
        r.from_child(ask("e1", "elicitation/create")),
        Action::Drop { .. }
    ));
    assert!(r.has_unannounced());
    // What the child asks at once joins the parking: the retry must answer both.
    let second = r.from_child(ask("e2", "elicitation/create"));
    assert!(matches!(second, Action::Drop { .. }), "{second:?}");
    let Some(Action::AskByResult {
        client_id,
        parked,
        caller,
        asks,
        ..
    }) = r.announce().pop()
    else {
        panic!()
    };
    assert!(!r.has_unannounced());
    assert_eq!(client_id, "c1");
    assert_eq!(caller.as_deref(), Some("alice"));
    assert_eq!(asks["input-1"]["method"], "elicitation/create");
    assert_eq!(asks.len(), 2);
    // Its owner can go (the reply stream closed): the call stays at the child.
    assert!(r.detach(&owner("s1")).is_empty(), "nothing cancelled");
    // Once announced, the call waits for its answers: what the child asks next is not its.
    assert!(matches!(
        r.from_child(ask("e3", "elicitation/create")),
        Action::ToChild {
            refused: Some(_),
            ..
        }
    ));
    r.attach_stateless(owner("s2"), Some(Arc::from("alice")), InputKinds::default());
    let partial =
        json!({"id": "c2", "params": {"inputResponses": {"input-1": {"action": "accept"}}}});
    let Resumed::AskAgain(again) = r
        .resume(parked, &owner("s2"), &partial, reg.clone())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(again.len(), 2);
    let full = json!({"id": "c2", "params": {"inputResponses": {"input-1": {"action": "accept"}, "input-2": {"action": "decline"}}}});
    let Resumed::Answer(lines) = r.resume(parked, &owner("s2"), &full, reg).unwrap() else {
        panic!()
    };
    let ids: Vec<&Value> = lines.iter().map(|l| &l["id"]).collect();
    assert!(ids.contains(&&json!("e1")) && ids.contains(&&json!("e2")));
    // The call's result now goes to the retry, under its id; the parking is gone.
    let Action::Deliver { msg, .. } =
        r.from_child(json!({"jsonrpc": "2.0", "id": call, "result": {}}))
    else {
        panic!()
    };
    assert_eq!(msg["id"], "c2");
    assert_eq!(
        r.resume(
            parked,
            &owner("s2"),
            &full,
            Registration {
                stream: stream_channel(1).0,
                sse: false
            }
        ),
        Err(ResumeError::Gone)
    );
}

#[test]
fn a_request_the_client_cannot_answer_is_refused_at_the_child_and_the_call_goes_on() {
    let mut r = routes();
    let (call, _reg) = stateless_call(&mut r);
    let Action::ToChild { msg, .. } = r.from_child(ask("s1", "sampling/createMessage")) else {
        panic!()
    };
    assert_eq!(msg["id"], "s1");
    assert_eq!(msg["error"]["code"], json!(MISSING_CAPABILITY));
    assert_eq!(
        msg["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    assert!(
        r.has_pending(&owner("s1")),
        "the call {call} is the child's to end"
    );
    assert!(!r.has_unannounced());
}

#[test]
fn a_parked_call_whose_client_never_retries_is_cancelled_in_time() {
    let mut r = routes();
    let (call, _reg) = stateless_call(&mut r);
    r.from_child(ask("e1", "elicitation/create"));
    let Some(Action::AskByResult { parked, .. }) = r.announce().pop() else {
        panic!()
    };
    let expired = r.expire(Instant::now() + Duration::from_secs(600));
    assert!(expired
        .to_child
        .iter()
        .any(|m| m["id"] == "e1" && m.get("error").is_some()));
    assert!(expired
        .to_child
        .iter()
        .any(|m| m["params"]["requestId"] == json!(call)));
    let reg = Registration {
        stream: stream_channel(1).0,
        sse: false,
    };
    assert_eq!(
        r.resume(parked, &owner("x"), &json!({}), reg),
        Err(ResumeError::Gone)
    );
    assert!(r.next_deadline().is_none());
}

#[test]
fn parked_calls_are_bounded() {
    let mut r = routes();
    for n in 0..RouteRules::MAX_WAITING_FOR_INPUT {
        let owner_n = owner(&format!("s{n}"));
        r.attach_stateless(
            owner_n.clone(),
            None,
            InputKinds {
                elicitation: true,
                ..Default::default()
            },
        );
        let (tx, _rx) = stream_channel(2);
        let reg = Registration {
            stream: tx,
            sse: false,
        };
        let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}});
        r.register(&owner_n, &mut msg, reg).unwrap();
        assert!(
            matches!(
                r.from_child(ask(&format!("e{n}"), "elicitation/create")),
                Action::Drop { .. }
            ),
            "{n}"
        );
        // Announced at once: the next one is another call's.
        assert_eq!(r.announce().len(), 1);
        r.detach(&owner_n);
    }
    r.attach_stateless(
        owner("last"),
        None,
        InputKinds {
            elicitation: true,
            ..Default::default()
        },
    );
    let (tx, _rx) = stream_channel(2);
    let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}});
    r.register(
        &owner("last"),
        &mut msg,
        Registration {
            stream: tx,
            sse: false,
        },
    )
    .unwrap();
    let Action::ToChild {
        refused: Some(refusal),
        ..
    } = r.from_child(ask("over", "elicitation/create"))
    else {
        panic!()
    };
    assert!(refusal.why.contains("too many"));
}
