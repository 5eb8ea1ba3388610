//! User isolation: each user's child, started at their first `initialize` (or stateless
//! request), shared by their sessions, ended once idle.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::{lock, Children};
use crate::child::{self, ChildHandle};
use crate::router::Refused;
use crate::shutdown;

/// A user's child and how many of their sessions use it.
pub(super) struct UserChild {
    pub(super) child: Arc<ChildHandle>,
    pub(super) sessions: usize,
    /// Since when no session has used it (`None` while one does).
    pub(super) idle_since: Option<tokio::time::Instant>,
}

/// What takes a user's child: a session (counted until it ends) or one stateless request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    Session,
    Request,
}

impl Children {
    /// The child for one stateless request of `user` in user isolation: theirs, started with
    /// `extra_env` if they have none running. Its idle clock restarts.
    ///
    /// # Errors
    /// As `for_session`.
    pub async fn for_user_request(
        &self,
        user: &Arc<str>,
        extra_env: &[(String, String)],
    ) -> Result<Arc<ChildHandle>, Refused> {
        self.for_user(user, extra_env, Use::Request).await
    }

    /// User isolation: `user`'s running child, used by one more session (or a request), or a
    /// new one.
    pub(super) async fn for_user(
        &self,
        user: &Arc<str>,
        extra_env: &[(String, String)],
        by: Use,
    ) -> Result<Arc<ChildHandle>, Refused> {
        if let Some(child) = self.take_user_child(user, by) {
            return Ok(child);
        }
        let (place, _) = self.reserve(false).ok_or_else(|| {
            warn!(
                max = self.config.supervision.max_children,
                "session refused: child limit reached"
            );
            Refused::TooManySessions
        })?;
        let child = child::spawn(&self.config, extra_env, &self.tasks)
            .await
            .map_err(|e| {
                error!(err = format!("{e:#}"), "cannot start a child for a user");
                Refused::ChildGone
            })?;
        // Two first sessions of one user may have started a child each: the first one kept
        // serves both, the other is ended.
        if let Some(theirs) = self.take_user_child(user, by) {
            let grace = self.config.shutdown_grace;
            self.tasks
                .spawn(async move { shutdown::stop_child(&child, grace).await });
            return Ok(theirs);
        }
        place.fill(&child);
        info!(pid = child.pid, "child started for a user");
        lock(&self.users).insert(
            user.clone(),
            UserChild {
                child: child.clone(),
                sessions: usize::from(by == Use::Session),
                idle_since: (by == Use::Request).then(tokio::time::Instant::now),
            },
        );
        Ok(child)
    }

    /// `user`'s running child, with one more session counted (or, for a request, its idle
    /// clock restarted); `None` when they have none.
    fn take_user_child(&self, user: &Arc<str>, by: Use) -> Option<Arc<ChildHandle>> {
        let mut users = lock(&self.users);
        let entry = users.get_mut(user)?;
        if !entry.child.is_running() {
            // Its sessions ended with it (`front::session::open` watches it); so does its place.
            let key = entry.child.key;
            users.remove(user);
            lock(&self.live).children.remove(&key);
            return None;
        }
        match by {
            Use::Session => {
                entry.sessions += 1;
                entry.idle_since = None;
            }
            Use::Request if entry.sessions == 0 => {
                entry.idle_since = Some(tokio::time::Instant::now())
            }
            Use::Request => {}
        }
        Some(entry.child.clone())
    }

    /// User isolation: ends the children no session has used for `idle`, and forgets those
    /// that exited. Returns how many were ended.
    pub fn reap_idle_users(&self, now: tokio::time::Instant, idle: Duration) -> usize {
        let mut ended = Vec::new();
        lock(&self.users).retain(|_, u| {
            // A stateless request in flight keeps its child.
            let idle_out = u
                .idle_since
                .is_some_and(|t| now.saturating_duration_since(t) > idle)
                && u.child.waiting_clients() == 0;
            if idle_out || !u.child.is_running() {
                ended.push(u.child.clone());
                return false;
            }
            true
        });
        let grace = self.config.shutdown_grace;
        for child in &ended {
            lock(&self.live).children.remove(&child.key);
            info!(pid = child.pid, "child of an idle user ended");
            let child = child.clone();
            self.tasks
                .spawn(async move { shutdown::stop_child(&child, grace).await });
        }
        ended.len()
    }
}
