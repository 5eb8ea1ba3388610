//! Stateless listeners (2026-07-28 `subscriptions/listen`) served from a legacy child's
//! notifications: a listener hears the list-changed kinds it asked for and the updates of the
//! resources it named (the child is subscribed to each resource once, while anyone wants it,
//! as for sessions), each tagged with its listen request's id as the subscription id.

use serde_json::{json, Value};

use super::{Action, Attached, Owner, Routes, StreamTx};
use crate::jsonrpc;

/// What one stateless listener asked to hear.
#[derive(Debug, Clone)]
pub struct Listen {
    /// Its stream.
    pub stream: StreamTx,
    /// Its listen request's id: the subscription id its notifications carry.
    pub id: Value,
    /// The list-changed kinds it wants (`tools`, `prompts`, `resources`).
    pub kinds: Vec<String>,
}

impl Routes {
    /// Makes `owner` a listener; it also subscribes to `uris`. Returns the lines the child
    /// must get (`resources/subscribe` for the URIs nobody wanted before).
    pub fn listen(&mut self, owner: &Owner, listen: Listen, uris: &[String]) -> Vec<Value> {
        let mut to_child = Vec::new();
        for uri in uris {
            if self.subscribe(owner, uri) {
                let mut msg = json!({"jsonrpc": "2.0", "id": 0, "method": "resources/subscribe",
                                     "params": {"uri": uri}});
                self.register_internal(&mut msg);
                to_child.push(msg);
            }
        }
        if let Some(a) = self.attached.get_mut(owner) {
            a.listen = Some(listen);
        }
        to_child
    }

    /// The listeners `wants` picks, with their streams and subscription ids.
    pub(super) fn listeners(&self, wants: impl Fn(&Attached, &Listen) -> bool) -> Vec<Listen> {
        self.attached
            .values()
            .filter_map(|a| a.listen.as_ref().filter(|l| wants(a, l)))
            .filter(|l| !l.stream.is_closed())
            .cloned()
            .collect()
    }

    /// `then` (the sessions' share of a notification), plus a copy for each listener tagged
    /// with its subscription id.
    pub(super) fn to_listeners(&self, listeners: Vec<Listen>, then: Action) -> Action {
        if listeners.is_empty() {
            return then;
        }
        let Action::Broadcast { msg, .. } = &then else {
            return then;
        };
        let mut actions: Vec<Action> = listeners
            .into_iter()
            .map(|l| {
                let mut copy = msg.clone();
                tag(&mut copy, l.id);
                Action::Deliver {
                    to: l.stream,
                    msg: copy,
                    last: false,
                }
            })
            .collect();
        actions.push(then);
        Action::Several(actions)
    }
}

/// Puts the subscription id in a notification's `params._meta`.
fn tag(msg: &mut Value, id: Value) {
    let Some(obj) = msg.as_object_mut() else {
        return;
    };
    let params = obj.entry("params").or_insert_with(|| json!({}));
    if let Some(params) = params.as_object_mut() {
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(jsonrpc::SUBSCRIPTION_ID.into(), id);
        }
    }
}
