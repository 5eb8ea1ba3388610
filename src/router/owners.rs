//! What each owner (session) told this child's routing about itself: its standalone stream,
//! resource subscriptions and logging level; and what its departure means for the child.

use serde_json::{json, Value};

use super::{Attached, Owner, Refused, Routes, StreamTx};

/// What an owner had told a child that exited, carried to the child that replaces it.
#[derive(Debug)]
pub struct Carried {
    principal: Option<std::sync::Arc<str>>,
    standalone: Option<StreamTx>,
    log_level: Option<LogLevel>,
    subscriptions: std::collections::HashSet<String>,
    input_methods: Option<super::InputKinds>,
    listen: Option<super::Listen>,
}
use crate::loglevel::LogLevel;

impl Routes {
    /// Sets the owner's standalone stream (GET), replacing (and so ending) a previous one.
    /// Returns the server requests held for the owner, now to be sent on it.
    ///
    /// # Errors
    /// `UnknownOwner` when the owner is not attached, `ChildGone` after the child exited.
    pub fn set_standalone(&mut self, owner: &Owner, tx: StreamTx) -> Result<Vec<Value>, Refused> {
        if self.closed {
            return Err(Refused::ChildGone);
        }
        let a = self.attached.get_mut(owner).ok_or(Refused::UnknownOwner)?;
        a.standalone = Some(tx.clone());
        Ok(self.release_held(owner, &tx))
    }

    /// A `logging/setLevel` request from the bridge itself, registered.
    pub fn set_level_request(&mut self, level: LogLevel) -> Value {
        let mut msg = json!({"jsonrpc": "2.0", "id": 0, "method": "logging/setLevel",
                             "params": {"level": level.as_str()}});
        self.register_internal(&mut msg);
        msg
    }

    pub(super) fn standalone_where(&self, keep: impl Fn(&Attached) -> bool) -> Vec<StreamTx> {
        self.attached
            .values()
            .filter(|a| keep(a))
            .filter_map(|a| a.standalone.clone())
            .filter(|s| !s.is_closed())
            .collect()
    }

    /// Records `owner`'s subscription to `uri`. True when it is the first owner to subscribe,
    /// so the child must be told; otherwise the bridge answers the client itself.
    pub fn subscribe(&mut self, owner: &Owner, uri: &str) -> bool {
        let first = !self
            .attached
            .values()
            .any(|a| a.subscriptions.contains(uri));
        if let Some(a) = self.attached.get_mut(owner) {
            a.subscriptions.insert(uri.to_owned());
        }
        first
    }

    /// Drops `owner`'s subscription to `uri`. True when it was the last one, so the child must
    /// be told to unsubscribe.
    pub fn unsubscribe(&mut self, owner: &Owner, uri: &str) -> bool {
        let removed = self
            .attached
            .get_mut(owner)
            .is_some_and(|a| a.subscriptions.remove(uri));
        removed
            && !self
                .attached
                .values()
                .any(|a| a.subscriptions.contains(uri))
    }

    /// Records `owner`'s logging level. Returns the level to send the child when the most
    /// verbose level wanted by any owner changed.
    pub fn set_log_level(&mut self, owner: &Owner, level: LogLevel) -> Option<LogLevel> {
        if let Some(a) = self.attached.get_mut(owner) {
            a.log_level = Some(level);
        }
        self.recompute_log_level()
    }

    /// The logging level `owner` asked for, if any.
    pub fn log_level(&self, owner: &Owner) -> Option<LogLevel> {
        self.attached.get(owner)?.log_level
    }

    fn recompute_log_level(&mut self) -> Option<LogLevel> {
        let want = self.attached.values().filter_map(|a| a.log_level).min();
        if want.is_some() && want != self.child_log_level {
            self.child_log_level = want;
            return want;
        }
        None
    }

    /// Takes every owner's state out of a closed table (its child exited), for `adopt` by the
    /// child that replaces it.
    pub fn take_owners(&mut self) -> Vec<(Owner, Carried)> {
        self.attached
            .drain()
            .map(|(owner, a)| {
                let carried = Carried {
                    principal: a.principal,
                    standalone: a.standalone,
                    log_level: a.log_level,
                    subscriptions: a.subscriptions,
                    input_methods: a.input_methods,
                    listen: a.listen,
                };
                (owner, carried)
            })
            .collect()
    }

    /// Attaches the owners of a replaced child with what they had told it. Returns the lines
    /// this child must get to serve them the same way when it is legacy (`legacy`: one
    /// `resources/subscribe` per URI, the merged logging level; registered as the bridge's own
    /// requests; a modern child hears both otherwise) and their standalone streams.
    pub fn adopt(
        &mut self,
        owners: Vec<(Owner, Carried)>,
        legacy: bool,
    ) -> (Vec<Value>, Vec<StreamTx>) {
        let mut to_child = Vec::new();
        let mut streams = Vec::new();
        for (owner, c) in owners {
            for uri in &c.subscriptions {
                if self.subscribe(&owner, uri) && legacy {
                    let mut msg = json!({"jsonrpc": "2.0", "id": 0, "method": "resources/subscribe",
                                         "params": {"uri": uri}});
                    self.register_internal(&mut msg);
                    to_child.push(msg);
                }
            }
            streams.extend(c.standalone.clone().filter(|s| !s.is_closed()));
            let a = self.attached.entry(owner).or_default();
            a.principal = c.principal;
            a.standalone = c.standalone;
            a.log_level = c.log_level;
            a.subscriptions = c.subscriptions;
            a.input_methods = c.input_methods;
            a.listen = c.listen;
        }
        if let Some(level) = self.recompute_log_level().filter(|_| legacy) {
            to_child.push(self.set_level_request(level));
        }
        (to_child, streams)
    }

    /// Removes an owner (its session ended). Returns the lines the child must get: a
    /// `notifications/cancelled` for each of its requests still running, and an error for each
    /// server request it will now never answer.
    pub fn detach(&mut self, owner: &Owner) -> Vec<Value> {
        self.detach_from(owner, true)
    }

    /// `detach`, for a legacy child (`legacy`: it is told of released subscriptions and
    /// logging levels) or a modern one (it hears them through the bridge's listen and each
    /// request's `_meta`).
    pub fn detach_from(&mut self, owner: &Owner, legacy: bool) -> Vec<Value> {
        let Some(gone) = self.attached.remove(owner) else {
            return Vec::new();
        };
        // Most owners that leave (every finished stateless request) left nothing behind: no
        // table needs a scan then.
        if gone.in_flight == 0
            && gone.subscriptions.is_empty()
            && gone.log_level.is_none()
            && self.server_requests.is_empty()
            && self.held.is_empty()
            && self.continuations.is_empty()
            && self.tasks.is_empty()
        {
            return Vec::new();
        }
        self.forget_tasks(owner);
        let mut to_child = Vec::new();
        for uri in gone.subscriptions {
            if legacy
                && !self
                    .attached
                    .values()
                    .any(|a| a.subscriptions.contains(&uri))
            {
                let mut msg = json!({"jsonrpc": "2.0", "id": 0, "method": "resources/unsubscribe",
                                     "params": {"uri": uri}});
                self.register_internal(&mut msg);
                to_child.push(msg);
            }
        }
        if let Some(level) = self.recompute_log_level().filter(|_| legacy) {
            to_child.push(self.set_level_request(level));
        }
        let why = match gone.input_methods {
            // A stateless request has no session: it ends when its client closes its reply.
            Some(_) => "the client closed the request's reply stream",
            None => "the client session ended",
        };
        to_child.extend(self.forget(|p| p.owner == *owner, |r| r.owner == *owner, why));
        to_child.extend(self.forget_held(owner, why));
        to_child
    }
}
