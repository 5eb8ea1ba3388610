//! Task ownership (revision 2025-11-25, experimental tasks): a task belongs to the session
//! whose request created it. Only that session may get, await, cancel or list it, and only it
//! hears about it; to any other session the task does not exist.

use serde_json::Value;

use super::{Owner, Routes, StreamTx};
use crate::jsonrpc;

/// The `_meta` key that ties a message to a task.
const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// The task a message names: `params.taskId`, or `params._meta[related-task].taskId`.
pub fn task_of(msg: &Value) -> Option<&str> {
    let params = msg.get("params")?;
    params
        .get("taskId")
        .or_else(|| params.get("_meta")?.get(RELATED_TASK)?.get("taskId"))
        .and_then(Value::as_str)
}

impl Routes {
    /// Records the task a response created (`result.task.taskId`) as `owner`'s.
    pub(super) fn record_task(&mut self, owner: &Owner, response: &Value) {
        let id = response
            .get("result")
            .and_then(|r| r.get("task"))
            .and_then(|t| t.get("taskId"));
        if let Some(id) = id.and_then(Value::as_str) {
            self.tasks.insert(id.to_owned(), owner.clone());
        }
    }

    /// Whether `owner` may act on the task a `tasks/get|result|cancel` request names.
    pub fn may_use_task(&self, owner: &Owner, msg: &Value) -> bool {
        task_of(msg)
            .and_then(|t| self.tasks.get(t))
            .is_some_and(|o| o == owner)
    }

    /// Keeps only `owner`'s tasks in a `tasks/list` result.
    pub(super) fn filter_task_list(&self, owner: &Owner, response: &mut Value) {
        let list = response
            .get_mut("result")
            .and_then(|r| r.get_mut("tasks"))
            .and_then(Value::as_array_mut);
        if let Some(list) = list {
            list.retain(|t| {
                t.get("taskId")
                    .and_then(Value::as_str)
                    .and_then(|id| self.tasks.get(id))
                    == Some(owner)
            });
        }
    }

    /// The owner of the task a child message names, with the stream to reach it on: for a
    /// request, its newest SSE request stream first (server requests belong on one); for a
    /// notification, its standalone stream first.
    pub(super) fn task_route(
        &self,
        msg: &Value,
        request: bool,
    ) -> Option<(Owner, Option<StreamTx>)> {
        let owner = self.tasks.get(task_of(msg)?)?.clone();
        let (first, second) = (
            self.newest_request_stream(&owner),
            self.standalone_of(&owner),
        );
        let stream = if request {
            first.or(second)
        } else {
            second.or(first)
        };
        Some((owner, stream))
    }

    /// Forgets an owner's tasks (its session ended: nobody may reach them any more).
    pub(super) fn forget_tasks(&mut self, owner: &Owner) {
        self.tasks.retain(|_, o| o != owner);
    }
}

/// The error a session gets for a task that is not its own: the same as for no task at all.
pub fn task_not_found(id: Value) -> Value {
    jsonrpc::error_value(id, jsonrpc::INVALID_PARAMS, "Task not found")
}
