//! Unit tests of attribution: messages that no request ties to a session reach one user at
//! most, and server requests whose session is certain wait for its stream.

use super::*;
use tokio::sync::mpsc::Receiver;

fn owner(s: &str) -> Owner {
    Owner::from(s)
}

fn stream() -> (StreamTx, Receiver<Outbound>) {
    let (tx, rx) = stream_channel(16);
    (tx, rx.rx)
}

/// A shared child's routes with sessions `(name, user)`.
fn routes(sessions: &[(&str, Option<&str>)]) -> Routes {
    let mut r = Routes::new(1, RouteRules::new(8));
    for (o, user) in sessions {
        r.attach(owner(o), user.map(Arc::from));
    }
    r
}

fn call(r: &mut Routes, who: &str) -> Receiver<Outbound> {
    let (tx, rx) = stream();
    let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}});
    let reg = Registration {
        stream: tx,
        sse: true,
    };
    r.register(&owner(who), &mut msg, reg).unwrap();
    rx
}

fn sampling(id: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "sampling/createMessage", "params": {}})
}

fn log_line() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "error", "data": "secret"}})
}

/// Sessions with their users.
type Users = &'static [(&'static str, Option<&'static str>)];

#[test]
fn unattributable_messages_never_cross_users() {
    // (sessions, whose call is in flight, server request routed?, log delivered to n)
    let cases: &[(Users, &str, bool, usize)] = &[
        (&[("a", None), ("b", None)], "a", true, 2),
        (&[("a", Some("alice")), ("b", Some("alice"))], "a", true, 2),
        (&[("a", Some("alice")), ("b", Some("bob"))], "a", false, 0),
        (&[("a", Some("alice")), ("b", None)], "a", false, 0),
    ];
    for (i, (sessions, caller, routed, logs)) in cases.iter().enumerate() {
        let mut r = routes(sessions);
        let mut standalone = Vec::new();
        for (o, _) in sessions.iter() {
            let (tx, rx) = stream();
            assert!(r.set_standalone(&owner(o), tx).unwrap().is_empty());
            standalone.push(rx);
        }
        let _in_flight = call(&mut r, caller);
        match (r.from_child(sampling("s")), routed) {
            (Action::Deliver { .. }, true) => {}
            (
                Action::ToChild {
                    msg,
                    refused: Some(refusal),
                },
                false,
            ) => {
                assert_eq!(refusal.method, "sampling/createMessage", "case {i}");
                assert!(
                    refusal.why.contains("several users"),
                    "case {i}: {}",
                    refusal.why
                );
                assert_eq!(
                    msg["error"]["code"],
                    json!(jsonrpc::UNROUTABLE_SERVER_REQUEST)
                );
            }
            (a, _) => panic!("case {i}: {a:?}"),
        }
        match r.from_child(log_line()) {
            Action::Broadcast { to, .. } => assert_eq!(to.len(), *logs, "case {i}"),
            Action::Drop { why, .. } => {
                assert_eq!(*logs, 0, "case {i}: {why}");
                assert!(why.contains("several users"));
            }
            a => panic!("case {i}: {a:?}"),
        }
    }
}

#[test]
fn only_the_first_unattributable_log_line_is_a_warning() {
    let mut r = routes(&[("a", Some("alice")), ("b", Some("bob"))]);
    let warns: Vec<bool> = (0..3)
        .map(|_| match r.from_child(log_line()) {
            Action::Drop { warn, .. } => warn,
            a => panic!("{a:?}"),
        })
        .collect();
    assert_eq!(warns, [true, false, false]);
}

#[test]
fn a_single_owner_child_holds_server_requests_until_its_session_opens_a_stream() {
    let rules = RouteRules {
        single_owner: true,
        ..RouteRules::new(8)
    };
    let mut r = Routes::new(1, rules);
    // Before any session: the next one to attach owns it (the official filesystem server asks
    // for roots right after it is initialized).
    let roots = json!({"jsonrpc": "2.0", "id": 7, "method": "roots/list"});
    assert!(matches!(
        r.from_child(roots),
        Action::Drop { warn: false, .. }
    ));
    r.attach(owner("s"), Some(Arc::from("alice")));
    // A JSON-only request cannot carry it; its event stream could.
    let (tx, _rx) = stream();
    let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let json_reg = Registration {
        stream: tx,
        sse: false,
    };
    r.register(&owner("s"), &mut msg, json_reg).unwrap();
    let (tx, _rx) = stream();
    let sent = r.set_standalone(&owner("s"), tx).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["method"], "roots/list");
    let bridge_id = sent[0]["id"].clone();
    assert_ne!(bridge_id, json!(7), "the client sees a bridge id");
    // Its answer goes back to the child under the child's id.
    let mut reply = json!({"jsonrpc": "2.0", "id": bridge_id, "result": {"roots": []}});
    r.reply_from_client(&owner("s"), &mut reply).unwrap();
    assert_eq!(reply["id"], json!(7));
    // Later requests go straight to the open stream.
    assert!(matches!(
        r.from_child(json!({"jsonrpc": "2.0", "id": 8, "method": "roots/list"})),
        Action::Deliver { .. }
    ));
}

#[test]
fn held_server_requests_are_bounded_and_refused_when_their_session_ends() {
    let mut r = routes(&[("a", None)]);
    for n in 0..RouteRules::MAX_HELD {
        let a = r.from_child(sampling(&format!("s{n}")));
        assert!(matches!(a, Action::Drop { .. }), "{n}: {a:?}");
    }
    match r.from_child(sampling("one too many")) {
        Action::ToChild {
            msg,
            refused: Some(_),
        } => assert_eq!(msg["id"], "one too many"),
        a => panic!("{a:?}"),
    }
    let to_child = r.detach(&owner("a"));
    let refused: Vec<&Value> = to_child
        .iter()
        .filter(|m| m.get("error").is_some())
        .collect();
    assert_eq!(refused.len(), RouteRules::MAX_HELD);
    assert_eq!(refused[0]["id"], "s0");
}
