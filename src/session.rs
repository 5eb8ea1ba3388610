//! Sessions: the registry of live Streamable HTTP sessions. A session is a record, not a
//! task: its id, the child it is bound to, its negotiated revision and a cancellation token
//! that ends its streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::child::ChildHandle;

/// A session id as sent in `Mcp-Session-Id`.
pub type SessionId = Arc<str>;

/// One live session.
pub struct Session {
    /// Its id (also its owner key in the child's routes).
    pub id: SessionId,
    /// The child serving it.
    pub child: Arc<ChildHandle>,
    /// The revision negotiated at `initialize`.
    pub protocol_version: &'static str,
    /// Cancelled when the session ends: ends its streams.
    pub cancel: CancellationToken,
}

/// A fresh, unguessable session id: 64 hex digits from two random v4 UUIDs (244 random bits).
pub fn new_session_id() -> SessionId {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("{}{}", a.simple(), b.simple()).into()
}

/// The registry of live sessions.
#[derive(Default)]
pub struct Sessions {
    // Lock: map operations only, never held across `.await` nor while taking a child's lock.
    map: Mutex<HashMap<SessionId, Arc<Session>>>,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a session.
    pub fn insert(&self, s: Arc<Session>) {
        self.map().insert(s.id.clone(), s);
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map().get(id).cloned()
    }

    /// Removes and returns a session.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.map().remove(id)
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every session (shutdown).
    pub fn drain(&self) -> Vec<Arc<Session>> {
        self.map().drain().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_long_visible_ascii_and_distinct() {
        let a = new_session_id();
        let b = new_session_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
