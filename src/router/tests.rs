//! Unit tests of the routing rules: plain data in, decisions out, no runtime.

use super::*;
use tokio::sync::mpsc::Receiver;

fn owner(s: &str) -> Owner {
    Owner::from(s)
}

fn stream() -> (StreamTx, Receiver<Outbound>) {
    let (tx, rx) = stream_channel(16);
    (tx, rx.rx)
}

fn routes_with(owners: &[&str]) -> Routes {
    let mut r = Routes::new(1, RouteRules::new(8));
    for o in owners {
        r.attach(owner(o), None);
    }
    r
}

fn request(id: Value, method: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}})
}

/// Registers a request from `who` with client id `id`; returns its bridge id and receiver.
fn reg(r: &mut Routes, who: &str, id: Value, sse: bool) -> (u64, Receiver<Outbound>) {
    let (tx, rx) = stream();
    let mut msg = request(id, "tools/call");
    let bid = r
        .register(&owner(who), &mut msg, Registration { stream: tx, sse })
        .unwrap();
    assert_eq!(msg["id"], json!(bid));
    (bid, rx)
}

fn response(bid: u64, marker: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": bid, "result": {"m": marker}})
}

/// Performs a `Deliver` action the way the reader does, asserting it is one.
fn deliver(a: Action) -> (StreamTx, Value, bool) {
    match a {
        Action::Deliver { to, msg, last } => (to, msg, last),
        other => panic!("expected Deliver, got {other:?}"),
    }
}

fn recv(rx: &mut Receiver<Outbound>) -> (Value, bool) {
    let o = rx.try_recv().expect("a message");
    (serde_json::from_slice(&o.json).unwrap(), o.last)
}

fn send(a: Action) {
    let (to, msg, last) = deliver(a);
    to.try_send(Outbound {
        json: crate::jsonrpc::to_bytes(&msg),
        last,
    })
    .unwrap();
}

#[test]
fn colliding_client_ids_answered_out_of_order_reach_their_callers() {
    let mut r = routes_with(&["a", "b"]);
    let (ba, mut rxa) = reg(&mut r, "a", json!(1), true);
    let (bb, mut rxb) = reg(&mut r, "b", json!(1), true);
    let (bs, mut rxs) = reg(&mut r, "b", json!("1"), true);
    assert!(ba != bb && bb != bs);
    // The child answers in reverse order.
    for (bid, m) in [(bs, "s"), (bb, "b"), (ba, "a")] {
        send(r.from_child(response(bid, m)));
    }
    let (ma, la) = recv(&mut rxa);
    assert_eq!(
        (ma["id"].clone(), ma["result"]["m"].clone(), la),
        (json!(1), json!("a"), true)
    );
    assert_eq!(recv(&mut rxb).0["result"]["m"], json!("b"));
    let (ms, _) = recv(&mut rxs);
    assert_eq!(
        (ms["id"].clone(), ms["result"]["m"].clone()),
        (json!("1"), json!("s"))
    );
    assert_eq!(r.pending_len(), 0);
}

#[test]
fn unknown_and_foreign_ids_are_dropped_with_a_warning() {
    let mut r = routes_with(&["a"]);
    for id in [json!(99), json!("x"), json!(-1)] {
        let a = r.from_child(json!({"jsonrpc": "2.0", "id": id, "result": {}}));
        assert!(matches!(a, Action::Drop { warn: true, .. }), "{a:?}");
    }
    let a = r.from_child(json!({"not": "jsonrpc"}));
    assert!(matches!(a, Action::Drop { warn: true, .. }));
}

#[test]
fn progress_tokens_are_remapped_both_ways() {
    let mut r = routes_with(&["a", "b"]);
    let mut rxs = Vec::new();
    let mut bids = Vec::new();
    for who in ["a", "b"] {
        let (tx, rx) = stream();
        let mut msg = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                             "params": {"_meta": {"progressToken": "same"}}});
        let bid = r
            .register(
                &owner(who),
                &mut msg,
                Registration {
                    stream: tx,
                    sse: true,
                },
            )
            .unwrap();
        assert_eq!(msg["params"]["_meta"]["progressToken"], json!(bid));
        rxs.push(rx);
        bids.push(bid);
    }
    let progress = |t: u64, p: u64| {
        json!({"jsonrpc": "2.0", "method": "notifications/progress",
               "params": {"progressToken": t, "progress": p}})
    };
    send(r.from_child(progress(bids[1], 7)));
    send(r.from_child(progress(bids[0], 3)));
    let (m, last) = recv(&mut rxs[0]);
    assert_eq!(
        (
            m["params"]["progressToken"].clone(),
            m["params"]["progress"].clone(),
            last
        ),
        (json!("same"), json!(3), false)
    );
    assert_eq!(recv(&mut rxs[1]).0["params"]["progress"], json!(7));
    // A token nobody holds is dropped quietly.
    assert!(matches!(
        r.from_child(progress(999, 1)),
        Action::Drop { warn: false, .. }
    ));
}

#[test]
fn progress_is_not_sent_to_json_replies() {
    let mut r = routes_with(&["a"]);
    let (tx, _rx) = stream();
    let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"_meta": {"progressToken": 1}}});
    let bid = r
        .register(
            &owner("a"),
            &mut msg,
            Registration {
                stream: tx,
                sse: false,
            },
        )
        .unwrap();
    let p = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": bid, "progress": 1}});
    assert!(matches!(r.from_child(p), Action::Drop { .. }));
}

#[test]
fn cancellation_is_rewritten_and_touches_only_its_session() {
    let mut r = routes_with(&["a", "b"]);
    let (ba, _rxa) = reg(&mut r, "a", json!(3), true);
    let (bb, mut rxb) = reg(&mut r, "b", json!(3), true);
    let mut cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": 3, "reason": "user"}});
    assert!(r.cancel_from_client(&owner("a"), &mut cancel));
    assert_eq!(cancel["params"]["requestId"], json!(ba));
    // Cancelling again, or an id not in flight, forwards nothing.
    let mut again =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}});
    assert!(!r.cancel_from_client(&owner("a"), &mut again));
    let mut other =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}});
    assert!(!r.cancel_from_client(&owner("b"), &mut other));
    assert_eq!(r.pending_len(), 1, "a cancelled request holds no memory");
    // The late response of the cancelled request is dropped quietly; b still gets its own.
    assert!(matches!(
        r.from_child(response(ba, "late")),
        Action::Drop { warn: false, .. }
    ));
    send(r.from_child(response(bb, "b")));
    assert_eq!(recv(&mut rxb).0["result"]["m"], json!("b"));
}

#[test]
fn server_request_owner_rules() {
    // (sessions, in-flight requests per session, standalone stream open) -> routed?
    struct Case {
        sessions: &'static [&'static str],
        in_flight: &'static [&'static str],
        standalone: bool,
        routed_to: Option<&'static str>,
        held: bool,
    }
    let cases = [
        Case {
            sessions: &["a"],
            in_flight: &["a"],
            standalone: false,
            routed_to: Some("a"),
            held: false,
        },
        Case {
            sessions: &["a", "b"],
            in_flight: &["a"],
            standalone: false,
            routed_to: Some("a"),
            held: false,
        },
        Case {
            sessions: &["a", "b"],
            in_flight: &["a", "a"],
            standalone: true,
            routed_to: Some("a"),
            held: false,
        },
        Case {
            sessions: &["a", "b"],
            in_flight: &["a", "b"],
            standalone: true,
            routed_to: None,
            held: false,
        },
        Case {
            sessions: &["a"],
            in_flight: &[],
            standalone: true,
            routed_to: Some("a"),
            held: false,
        },
        // The only session is certainly the owner: the request waits for its stream.
        Case {
            sessions: &["a"],
            in_flight: &[],
            standalone: false,
            routed_to: None,
            held: true,
        },
        Case {
            sessions: &["a", "b"],
            in_flight: &[],
            standalone: true,
            routed_to: None,
            held: false,
        },
        Case {
            sessions: &[],
            in_flight: &[],
            standalone: false,
            routed_to: None,
            held: false,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let mut r = routes_with(c.sessions);
        let mut streams = Vec::new();
        for who in c.in_flight {
            let (bid, rx) = reg(&mut r, who, json!(1), true);
            streams.push((*who, bid, rx));
        }
        let mut standalone = Vec::new();
        if c.standalone {
            for who in c.sessions {
                let (tx, rx) = stream();
                r.set_standalone(&owner(who), tx).unwrap();
                standalone.push(rx);
            }
        }
        let sample = json!({"jsonrpc": "2.0", "id": "child-1", "method": "sampling/createMessage", "params": {}});
        match (r.from_child(sample), c.routed_to) {
            (
                Action::Deliver {
                    to,
                    msg,
                    last: false,
                },
                Some(who),
            ) => {
                assert_ne!(
                    msg["id"],
                    json!("child-1"),
                    "case {i}: the client sees a bridge id"
                );
                // Newest request stream of the owner, else its standalone stream.
                to.try_send(Outbound {
                    json: Bytes::new(),
                    last: false,
                })
                .unwrap();
                let newest = streams
                    .iter_mut()
                    .filter(|s| s.0 == who)
                    .max_by_key(|s| s.1);
                match newest {
                    Some((_, _, rx)) => assert!(rx.try_recv().is_ok(), "case {i}: newest stream"),
                    None => {
                        let k = c.sessions.iter().position(|s| *s == who).unwrap();
                        assert!(
                            standalone[k].try_recv().is_ok(),
                            "case {i}: standalone stream"
                        );
                    }
                }
                // Only the owner may answer, and the child gets its own id back.
                let mut reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {}});
                let stranger = if who == "a" { "b" } else { "a" };
                assert_eq!(
                    r.reply_from_client(&owner(stranger), &mut reply.clone()),
                    Err(Refused::NoSuchServerRequest)
                );
                r.reply_from_client(&owner(who), &mut reply).unwrap();
                assert_eq!(reply["id"], json!("child-1"));
                assert_eq!(
                    r.reply_from_client(&owner(who), &mut reply),
                    Err(Refused::NoSuchServerRequest)
                );
            }
            (
                Action::ToChild {
                    msg,
                    refused: Some(_),
                },
                None,
            ) => {
                assert_eq!(msg["id"], json!("child-1"), "case {i}");
                assert_eq!(
                    msg["error"]["code"],
                    json!(crate::jsonrpc::UNROUTABLE_SERVER_REQUEST)
                );
            }
            (Action::Drop { .. }, None) if c.held => {
                let (tx, mut rx) = stream();
                let released = r.release_held(&owner(c.sessions[0]), &tx);
                assert_eq!(released.len(), 1, "case {i}: released on the new stream");
                assert_eq!(released[0]["method"], "sampling/createMessage");
                assert!(rx.try_recv().is_err(), "the caller delivers them");
            }
            (a, want) => panic!("case {i}: got {a:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn child_ping_is_answered_by_the_bridge() {
    let mut r = routes_with(&["a", "b"]);
    match r.from_child(json!({"jsonrpc": "2.0", "id": 9, "method": "ping"})) {
        Action::ToChild { msg, refused: None } => {
            assert_eq!(msg, json!({"jsonrpc": "2.0", "id": 9, "result": {}}))
        }
        a => panic!("{a:?}"),
    }
}

#[test]
fn child_cancelling_its_request_reaches_the_client_with_the_bridge_id() {
    let mut r = routes_with(&["a"]);
    let (_bid, mut rx) = reg(&mut r, "a", json!(1), true);
    let sample =
        json!({"jsonrpc": "2.0", "id": 77, "method": "sampling/createMessage", "params": {}});
    send(r.from_child(sample));
    let (req, _) = recv(&mut rx);
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77}});
    send(r.from_child(cancel));
    let (m, _) = recv(&mut rx);
    assert_eq!(m["params"]["requestId"], req["id"]);
}

#[test]
fn notifications_fan_out_by_kind() {
    let mut r = routes_with(&["a", "b", "c"]);
    let mut rx = HashMap::new();
    for who in ["a", "b", "c"] {
        let (tx, x) = stream();
        r.set_standalone(&owner(who), tx).unwrap();
        rx.insert(who, x);
    }
    assert!(r.subscribe(&owner("a"), "file:///x"));
    assert!(!r.subscribe(&owner("b"), "file:///x"));
    assert_eq!(
        r.set_log_level(&owner("a"), LogLevel::Error),
        Some(LogLevel::Error)
    );
    assert_eq!(
        r.set_log_level(&owner("b"), LogLevel::Debug),
        Some(LogLevel::Debug)
    );
    assert_eq!(r.set_log_level(&owner("c"), LogLevel::Info), None);
    let n =
        |method: &str, params: Value| json!({"jsonrpc": "2.0", "method": method, "params": params});
    let cases = [
        (
            n("notifications/tools/list_changed", json!({})),
            vec!["a", "b", "c"],
        ),
        (
            n(
                "notifications/resources/updated",
                json!({"uri": "file:///x"}),
            ),
            vec!["a", "b"],
        ),
        (
            n(
                "notifications/resources/updated",
                json!({"uri": "file:///y"}),
            ),
            vec![],
        ),
        (
            n("notifications/message", json!({"level": "info", "data": 1})),
            vec!["b", "c"],
        ),
        (
            n(
                "notifications/message",
                json!({"level": "error", "data": 1}),
            ),
            vec!["a", "b", "c"],
        ),
        (
            n(
                "notifications/message",
                json!({"level": "debug", "data": 1}),
            ),
            vec!["b"],
        ),
    ];
    for (msg, want) in cases {
        let Action::Broadcast { to, .. } = r.from_child(msg.clone()) else {
            panic!("{msg}")
        };
        for tx in &to {
            tx.try_send(Outbound {
                json: Bytes::new(),
                last: false,
            })
            .unwrap();
        }
        let mut got: Vec<&str> = rx
            .iter_mut()
            .filter_map(|(w, x)| x.try_recv().ok().map(|_| *w))
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "{msg}");
    }
}

#[test]
fn subscriptions_and_levels_are_released_when_sessions_go() {
    let mut r = routes_with(&["a", "b"]);
    assert!(r.subscribe(&owner("a"), "u"));
    assert!(!r.subscribe(&owner("b"), "u"));
    assert!(!r.unsubscribe(&owner("a"), "u"), "b still holds it");
    assert!(!r.unsubscribe(&owner("a"), "u"), "a held nothing any more");
    r.set_log_level(&owner("a"), LogLevel::Warning);
    assert_eq!(
        r.set_log_level(&owner("b"), LogLevel::Debug),
        Some(LogLevel::Debug)
    );
    let (bid, _rx) = reg(&mut r, "b", json!(1), true);
    let to_child = r.detach(&owner("b"));
    let methods: Vec<&str> = to_child.iter().map(crate::jsonrpc::method).collect();
    assert_eq!(
        methods,
        [
            "resources/unsubscribe",
            "logging/setLevel",
            "notifications/cancelled"
        ]
    );
    assert_eq!(
        r.pending_len(),
        2,
        "only the bridge's own two requests wait"
    );
    assert_eq!(to_child[1]["params"]["level"], json!("warning"));
    assert_eq!(to_child[2]["params"]["requestId"], json!(bid));
    // Internal requests' responses are dropped quietly.
    for m in &to_child[..2] {
        let id = m["id"].as_u64().unwrap();
        assert!(matches!(
            r.from_child(response(id, "")),
            Action::Drop { warn: false, .. }
        ));
    }
    assert_eq!(
        r.register(
            &owner("b"),
            &mut request(json!(1), "x"),
            Registration {
                stream: stream().0,
                sse: true
            }
        )
        .err(),
        Some(Refused::UnknownOwner)
    );
}

#[test]
fn detach_answers_the_childs_open_requests_to_that_session() {
    let mut r = routes_with(&["a"]);
    let (_bid, _rx) = reg(&mut r, "a", json!(1), true);
    send(r.from_child(
        json!({"jsonrpc": "2.0", "id": "e1", "method": "elicitation/create", "params": {}}),
    ));
    let to_child = r.detach(&owner("a"));
    let err = to_child
        .iter()
        .find(|m| m["id"] == json!("e1"))
        .expect("an error for the child");
    assert!(err["error"]["code"].is_i64());
}

#[test]
fn closing_fails_every_waiting_request_and_refuses_new_ones() {
    let mut r = routes_with(&["a", "b"]);
    let (_b1, _r1) = reg(&mut r, "a", json!(1), true);
    let (_b2, _r2) = reg(&mut r, "b", json!("q"), false);
    let mut cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    assert!(r.cancel_from_client(&owner("a"), &mut cancel));
    let waiting = r.close();
    let ids: Vec<Value> = waiting.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, vec![json!("q")], "the cancelled request gets nothing");
    assert!(r.is_closed());
    let refused = r.register(
        &owner("a"),
        &mut request(json!(2), "x"),
        Registration {
            stream: stream().0,
            sse: true,
        },
    );
    assert_eq!(refused.err(), Some(Refused::ChildGone));
}

#[test]
fn an_unregistered_request_leaves_no_route() {
    let mut r = routes_with(&["a"]);
    let (bid, _rx) = reg(&mut r, "a", json!(1), true);
    r.unregister(bid);
    assert_eq!(r.pending_len(), 0);
    assert!(matches!(
        r.from_child(response(bid, "")),
        Action::Drop { .. }
    ));
}

#[test]
fn tasks_belong_to_the_session_that_created_them() {
    let mut r = routes_with(&["a", "b"]);
    let mut standalone = HashMap::new();
    for who in ["a", "b"] {
        let (tx, rx) = stream();
        r.set_standalone(&owner(who), tx).unwrap();
        standalone.insert(who, rx);
    }
    // a creates a task.
    let (bid, mut rxa) = reg(&mut r, "a", json!(1), true);
    let created = json!({"jsonrpc": "2.0", "id": bid, "result": {"task": {"taskId": "t1", "status": "working"}}});
    send(r.from_child(created));
    assert_eq!(recv(&mut rxa).0["result"]["task"]["taskId"], "t1");
    let get = |id: &str| json!({"jsonrpc": "2.0", "id": 5, "method": "tasks/get", "params": {"taskId": id}});
    assert!(r.may_use_task(&owner("a"), &get("t1")));
    assert!(
        !r.may_use_task(&owner("b"), &get("t1")),
        "another session's task"
    );
    assert!(
        !r.may_use_task(&owner("a"), &get("nobody's")),
        "a task the bridge never saw"
    );
    // tasks/list results are filtered per session.
    for (who, want) in [("a", vec!["t1"]), ("b", vec![])] {
        let (tx, mut rx) = stream();
        let mut list = request(json!(9), "tasks/list");
        let bid = r
            .register(
                &owner(who),
                &mut list,
                Registration {
                    stream: tx,
                    sse: true,
                },
            )
            .unwrap();
        let all = json!({"jsonrpc": "2.0", "id": bid, "result": {"tasks": [{"taskId": "t1"}, {"taskId": "t2"}]}});
        send(r.from_child(all));
        let got: Vec<String> = recv(&mut rx).0["result"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "{who}");
    }
    // Status notifications reach the owner only; related-task requests go to the owner too.
    let status = json!({"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": {"taskId": "t1", "status": "completed"}});
    send(r.from_child(status));
    assert!(standalone.get_mut("a").unwrap().try_recv().is_ok());
    assert!(standalone.get_mut("b").unwrap().try_recv().is_err());
    let elicit = json!({"jsonrpc": "2.0", "id": "c1", "method": "elicitation/create",
        "params": {"_meta": {"io.modelcontextprotocol/related-task": {"taskId": "t1"}}}});
    send(r.from_child(elicit));
    assert!(standalone.get_mut("a").unwrap().try_recv().is_ok());
    let unknown = json!({"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": {"taskId": "zz"}});
    assert!(matches!(r.from_child(unknown), Action::Drop { .. }));
    // When a's session ends, its tasks are nobody's.
    r.detach(&owner("a"));
    assert!(!r.may_use_task(&owner("a"), &get("t1")));
}

#[test]
fn in_flight_requests_are_bounded_per_owner() {
    let mut r = routes_with(&["a", "b"]);
    let ids: Vec<u64> = (0..8).map(|i| reg(&mut r, "a", json!(i), true).0).collect();
    let mut msg = request(json!(99), "x");
    let refused = r.register(
        &owner("a"),
        &mut msg,
        Registration {
            stream: stream().0,
            sse: true,
        },
    );
    assert_eq!(refused.err(), Some(Refused::TooManyRequests));
    assert_eq!(msg["id"], json!(99), "a refused message is unchanged");
    reg(&mut r, "b", json!(1), true); // others are not affected
                                      // A response, a cancellation and an unregistration each free a slot.
    let _ = r.from_child(response(ids[0], ""));
    let mut cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    assert!(r.cancel_from_client(&owner("a"), &mut cancel));
    r.unregister(ids[2]);
    for i in 0..3 {
        reg(&mut r, "a", json!(100 + i), true);
    }
    assert!(r.has_pending(&owner("a")));
}

#[test]
fn a_stream_whose_client_stopped_reading_is_dropped_and_its_requests_cancelled() {
    let mut r = routes_with(&["a", "b"]);
    let (tx, _rx) = stream();
    let mut ids = Vec::new();
    for i in 0..2 {
        let mut msg = request(json!(i), "tools/call");
        ids.push(
            r.register(
                &owner("a"),
                &mut msg,
                Registration {
                    stream: tx.clone(),
                    sse: true,
                },
            )
            .unwrap(),
        );
    }
    let (other, mut other_rx) = reg(&mut r, "b", json!(0), true);
    r.set_standalone(&owner("a"), tx.clone()).unwrap();
    let mut lines = r.drop_stream(&tx);
    lines.sort_by_key(|m| m["params"]["requestId"].as_u64());
    let cancelled: Vec<u64> = lines
        .iter()
        .map(|m| m["params"]["requestId"].as_u64().unwrap())
        .collect();
    assert_eq!(cancelled, ids);
    assert!(!r.has_pending(&owner("a")));
    send(r.from_child(response(other, "b")));
    assert_eq!(
        recv(&mut other_rx).0["result"]["m"],
        "b",
        "other sessions are untouched"
    );
    tx.stop();
    assert!(tx.is_closed());
}
