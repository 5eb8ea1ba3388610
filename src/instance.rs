//! The instance id: the name of this bridge process among several behind one load balancer.
//! Every session id and every `requestState` the bridge mints starts with it and a dot
//! (`b1.3f9a…`), so a balancer can send a session's requests (the `Mcp-Session-Id` header, the
//! legacy `?sessionId=`) and a multi round-trip retry to the instance that holds their state by
//! a prefix match, with no store shared between instances (`deploy/haproxy.cfg`).
//!
//! It belongs to the process, not to a server of it, as the key that signs `requestState` does
//! (`front::request_state`): `main` sets it once from `--instance-id` before serving; otherwise
//! it is drawn at random on first use.

use std::sync::OnceLock;

/// The longest instance id accepted.
pub const MAX_LEN: usize = 32;

static ID: OnceLock<Box<str>> = OnceLock::new();

/// Whether `id` can name an instance: 1 to 32 ASCII letters, digits, `-` or `_` (no dot: the
/// dot ends the prefix; nothing a header, query string or load-balancer rule would escape).
///
/// # Errors
/// Why it cannot.
pub fn validate(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_LEN {
        return Err(format!(
            "an instance id has 1 to {MAX_LEN} characters, not {}",
            id.len()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "an instance id has only letters, digits, '-' and '_', not {c:?}"
        ));
    }
    Ok(())
}

/// Names this process `id` (validated). Only before the first `id()`.
///
/// # Errors
/// When `id` is not a valid instance id, or the process is already named otherwise.
pub fn set(id: &str) -> Result<(), String> {
    validate(id)?;
    let current = ID.get_or_init(|| id.into());
    if &**current == id {
        Ok(())
    } else {
        Err(format!("this process is already instance {current:?}"))
    }
}

/// This process's instance id.
pub fn id() -> &'static str {
    ID.get_or_init(|| {
        // Eight hex digits: short in logs and ids, and two instances drawing the same one
        // (1 in 4 billion per pair) only share a prefix: the random part still tells them apart.
        let random = uuid::Uuid::new_v4().simple().to_string();
        random[..8].into()
    })
}

/// The instance an id minted by some bridge names (the part before the first dot), if any.
pub fn of(minted: &str) -> Option<&str> {
    minted.split_once('.').map(|(instance, _)| instance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_tokens_without_a_dot() {
        for ok in ["b1", "mcp-0", "EU_west-2", &"x".repeat(MAX_LEN)] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a.b",
            "b 1",
            "b/1",
            "é",
            "b1\n",
            &"x".repeat(MAX_LEN + 1),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_id_is_drawn_once_and_valid() {
        let first = id();
        assert_eq!(validate(first), Ok(()));
        assert_eq!(first.len(), 8);
        assert_eq!(id(), first);
        // Naming it again the same is fine; renaming a process that has minted ids is not.
        assert_eq!(set(first), Ok(()));
        assert!(set("other").is_err());
    }

    #[test]
    fn the_instance_of_an_id_is_its_prefix() {
        assert_eq!(of("b1.00ff"), Some("b1"));
        assert_eq!(of("b1.x.y"), Some("b1"));
        assert_eq!(of("plain"), None);
    }
}
