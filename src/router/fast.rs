//! The fast path's routes (`crate::envelope`): a plain client request registered and written
//! as its own bytes, and a plain response to it delivered as bytes under the client's id.
//! Whatever needs more than re-addressing (a retry, a rendering, a task, a filtered list)
//! returns `None` here and takes the full parse, so both paths decide alike.

use bytes::Bytes;

use super::{Action, Owner, Refused, Registration, Routes};
use crate::envelope::{self, Envelope, RawRequest};
use crate::jsonrpc::Kind;

impl Routes {
    /// Registers a plain request like `register` and returns its bridge id and its line for
    /// the child.
    ///
    /// # Errors
    /// As `register`.
    pub fn register_raw(
        &mut self,
        owner: &Owner,
        req: &RawRequest,
        reg: Registration,
    ) -> Result<(u64, Bytes), Refused> {
        let id = self.admit(owner)?;
        let entry = self.entry(req.method(), req.task);
        let (client_id, progress) = (req.client_id(), req.progress_token());
        self.record_pending(id, owner, client_id, progress, entry, reg);
        Ok((id, req.line_for(id)))
    }

    /// Routes the child's plain response `line` (read as `env`) by its bytes; `None` when the
    /// full path must decide (not a response, no such request, or one that needs more).
    pub fn response_raw(&mut self, line: &[u8], env: &Envelope<'_>) -> Option<Action> {
        if env.kind != Kind::Response {
            return None;
        }
        let raw_id = env.id?;
        let id = envelope::bridge_id(raw_id)?;
        let p = self.pending.get(&id)?;
        let plain =
            p.stream.is_some() && p.retry.is_none() && !p.lists_tasks && !p.lists_tools && !p.task;
        if !plain {
            return None;
        }
        let rendered = match p.finish {
            Some(finish) => Some((finish.bytes)(line, env, &self.rules.finish_context)?),
            None => None,
        };
        let client_id = serde_json::to_vec(&p.client_id).ok()?;
        let p = self.remove_pending(id)?;
        let outcome = if env.result.is_some() { "ok" } else { "error" };
        self.rules
            .metrics
            .request_done(p.method, outcome, p.started.elapsed());
        let id_at = envelope::range_in(line, raw_id);
        let json = match &rendered {
            Some((at, added)) => {
                envelope::splice(line, &mut [(id_at, &client_id), (*at..*at, added)])
            }
            None => envelope::splice(line, &mut [(id_at, &client_id)]),
        };
        Some(Action::Send {
            to: p.stream?,
            json,
            last: true,
        })
    }
}
