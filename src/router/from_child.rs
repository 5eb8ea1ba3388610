//! What the child says, and where it goes: responses back to the request's stream under the
//! client's id, progress to the request that asked for it, cancellations of server requests,
//! logging and resource updates to the sessions that want them, broadcasts to all.

use serde_json::{json, Value};

use super::{continuations, tasks, Action, Pending, Routes};
use crate::jsonrpc::{self, Kind};
use crate::loglevel::LogLevel;

impl Routes {
    /// Decides where a message from the child goes, rewriting ids on the way.
    pub fn from_child(&mut self, msg: Value) -> Action {
        match jsonrpc::classify(&msg) {
            Ok(Kind::Response) => self.child_response(msg),
            Ok(Kind::Notification) => self.child_notification(msg),
            Ok(Kind::Request) => self.child_request(msg),
            Err(_) => Action::Drop {
                why: "child sent JSON that is not JSON-RPC",
                warn: true,
            },
        }
    }

    fn child_response(&mut self, mut msg: Value) -> Action {
        let id = jsonrpc::as_bridge_id(&jsonrpc::id(&msg));
        let Some(p) = id.and_then(|id| self.remove_pending(id)) else {
            return match id {
                // An id we issued and forgot: its request was cancelled or its session ended.
                Some(id) if id < self.next_id => Action::Drop {
                    why: "response for a cancelled request",
                    warn: false,
                },
                _ => Action::Drop {
                    why: "response for an id the bridge never sent",
                    warn: true,
                },
            };
        };
        let Some(to) = p.stream.clone() else {
            return Action::Drop {
                why: "response for a request of the bridge's own",
                warn: false,
            };
        };
        if p.retry.is_some() && continuations::asks_for_input(&msg) {
            return self.ask_for_input(p, to, msg);
        }
        let outcome = if msg.get("error").is_some() {
            "error"
        } else {
            "ok"
        };
        self.rules
            .metrics
            .request_done(p.method, outcome, p.started.elapsed());
        self.record_task(&p.owner, &msg);
        if p.lists_tasks {
            self.filter_task_list(&p.owner, &mut msg);
        }
        if p.lists_tools {
            self.rules.tools.retain_listed(&mut msg);
            self.rules.param_headers.learn(&msg);
        }
        if let Some(finish) = p.finish {
            (finish.value)(&mut msg, &self.rules.finish_context);
        }
        jsonrpc::replace_id(&mut msg, p.client_id);
        Action::Deliver {
            to,
            msg,
            last: true,
        }
    }

    fn child_notification(&mut self, mut msg: Value) -> Action {
        if jsonrpc::method(&msg) == "notifications/tools/list_changed" {
            self.rules.param_headers.list_changed();
        }
        // A notification on a subscription stream (2026-07-28 `subscriptions/listen`) names
        // the listen request's id: it belongs to that request's stream, under the client's id.
        let subscription =
            jsonrpc::meta(&msg, jsonrpc::SUBSCRIPTION_ID).and_then(jsonrpc::as_bridge_id);
        match subscription.and_then(|id| self.pending.get(&id)) {
            Some(Pending {
                stream: Some(to),
                client_id,
                ..
            }) => {
                let to = to.clone();
                jsonrpc::replace_meta(&mut msg, jsonrpc::SUBSCRIPTION_ID, client_id.clone());
                return Action::Deliver {
                    to,
                    msg,
                    last: false,
                };
            }
            // The bridge's own listen: its changes go to the sessions by the rules below; the
            // rest of what it hears (its acknowledgement) is the bridge's.
            Some(_) if !is_change(jsonrpc::method(&msg)) => {
                return Action::Drop {
                    why: "a notification on the bridge's own subscription",
                    warn: false,
                }
            }
            _ => {}
        }
        let method = jsonrpc::method(&msg);
        match method {
            "notifications/progress" => self.child_progress(msg),
            "notifications/cancelled" => self.child_cancelled(msg),
            "notifications/message" if !self.one_user() => {
                let warn = !std::mem::replace(&mut self.warned_unattributable, true);
                Action::Drop {
                    why: "log message dropped: sessions of several users share this child, so it cannot be attributed to one (use --isolation session)",
                    warn,
                }
            }
            "notifications/message" => {
                let level = jsonrpc::param(&msg, "level")
                    .and_then(Value::as_str)
                    .and_then(LogLevel::parse);
                let wants = |min: Option<LogLevel>| match (level, min) {
                    (Some(l), Some(min)) => l >= min,
                    _ => true,
                };
                let mut to = self.standalone_where(|a| wants(a.log_level));
                // A stateless client hears logs on its request's stream, when it asked for them
                // (`_meta` logLevel) and its request is the only one in flight.
                if let Ok((owner, stream)) = self.sole_owner() {
                    let a = self.attached.get(&owner);
                    let level = a
                        .filter(|a| a.input_methods.is_some())
                        .and_then(|a| a.log_level);
                    if level.is_some() && wants(level) {
                        to.push(stream);
                    }
                }
                Action::Broadcast { to, msg }
            }
            "notifications/resources/updated" => {
                let uri = jsonrpc::param(&msg, "uri").and_then(Value::as_str);
                let uri = uri.unwrap_or_default().to_owned();
                let to = self.standalone_where(|a| a.subscriptions.contains(&uri));
                let listeners = self.listeners(|a, _| a.subscriptions.contains(&uri));
                self.to_listeners(listeners, Action::Broadcast { to, msg })
            }
            m if m.ends_with("/list_changed") => {
                let kind = m
                    .strip_prefix("notifications/")
                    .and_then(|k| k.strip_suffix("/list_changed"))
                    .unwrap_or_default()
                    .to_owned();
                let to = self.standalone_where(|_| true);
                let listeners = self.listeners(|_, l| l.kinds.contains(&kind));
                self.to_listeners(listeners, Action::Broadcast { to, msg })
            }
            _ => match self
                .task_route(&msg, false)
                .map(|(_, s)| s.ok_or("task owner has no open stream"))
            {
                Some(Ok(to)) => Action::Deliver {
                    to,
                    msg,
                    last: false,
                },
                Some(Err(why)) => Action::Drop { why, warn: false },
                None if tasks::task_of(&msg).is_some() => Action::Drop {
                    why: "notification about a task no session owns",
                    warn: false,
                },
                None => match self.sole_owner() {
                    Ok((_, to)) => Action::Deliver {
                        to,
                        msg,
                        last: false,
                    },
                    Err(why) => Action::Drop { why, warn: true },
                },
            },
        }
    }

    fn child_progress(&mut self, mut msg: Value) -> Action {
        let token = jsonrpc::param(&msg, "progressToken").and_then(jsonrpc::as_bridge_id);
        let target = token.and_then(|t| self.pending.get(&t));
        let Some(Pending {
            stream: Some(to),
            progress: Some(client_token),
            sse: true,
            ..
        }) = target
        else {
            return Action::Drop {
                why: "progress for no live streaming request",
                warn: false,
            };
        };
        let to = to.clone();
        jsonrpc::replace_param(&mut msg, "progressToken", client_token.clone());
        Action::Deliver {
            to,
            msg,
            last: false,
        }
    }

    fn child_cancelled(&mut self, mut msg: Value) -> Action {
        let child_id = jsonrpc::param(&msg, "requestId")
            .cloned()
            .unwrap_or_default();
        let found = self
            .server_requests
            .iter()
            .find(|(_, r)| r.input.is_none() && r.child_id == child_id)
            .map(|(&id, _)| id);
        let Some(r) = found.and_then(|id| self.server_requests.remove(&id).map(|r| (id, r))) else {
            return Action::Drop {
                why: "child cancelled a request no client holds",
                warn: false,
            };
        };
        jsonrpc::replace_param(&mut msg, "requestId", json!(r.0));
        Action::Deliver {
            to: r.1.stream,
            msg,
            last: false,
        }
    }
}

/// Whether a notification tells of a change sessions may hear about.
fn is_change(method: &str) -> bool {
    method.ends_with("/list_changed") || method == "notifications/resources/updated"
}
