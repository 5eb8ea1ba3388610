//! The `requestState` the bridge mints when it turns a legacy child's server request into an
//! `input_required` result for a stateless client (2026-07-28 `basic/patterns/mrtr`): opaque to
//! the client, authenticated with HMAC-SHA256 under a key drawn at start (so a state outlives
//! neither its bridge process nor its expiry), and bound to the caller who got it. The state
//! itself stays in the bridge (`router::parked`); the token only names it. It starts with the
//! instance id and a dot (`crate::instance`), so a load balancer can send the retry where the
//! call is parked.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Value};

/// Why a `requestState` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not one of ours, or changed since it was minted.
    Tampered,
    /// Minted for another caller.
    Foreign,
    /// Past its expiry.
    Expired,
    /// Minted by another instance of the bridge (the prefix before its first dot names it).
    OtherInstance,
}

fn key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut bytes = [0u8; 32];
        // The system's randomness failing leaves the bridge no safe way to mint states; a zero
        // key would let anyone forge them, so the process aborts rather than go on.
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random number generator works");
        hmac::Key::new(hmac::HMAC_SHA256, &bytes)
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token naming continuation `id` for `caller` (a token's or subject's name; `None` without
/// authentication), valid for `ttl`.
pub fn mint(id: u64, caller: Option<&str>, ttl: Duration) -> String {
    let payload = json!({"c": id, "p": caller, "e": now() + ttl.as_secs().max(1)}).to_string();
    let tag = hmac::sign(key(), payload.as_bytes());
    format!(
        "{}.{}.{}",
        crate::instance::id(),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    )
}

/// The continuation a token names, if it is ours, unchanged, the caller's and not expired.
///
/// # Errors
/// Why it is refused.
pub fn verify(token: &str, caller: Option<&str>) -> Result<u64, Invalid> {
    let (instance, signed) = token.split_once('.').ok_or(Invalid::Tampered)?;
    if instance != crate::instance::id() {
        return Err(if crate::instance::validate(instance).is_ok() {
            Invalid::OtherInstance
        } else {
            Invalid::Tampered
        });
    }
    let (payload, tag) = signed.split_once('.').ok_or(Invalid::Tampered)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Invalid::Tampered)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Invalid::Tampered)?;
    hmac::verify(key(), &payload, &tag).map_err(|_| Invalid::Tampered)?;
    let payload: Value = serde_json::from_slice(&payload).map_err(|_| Invalid::Tampered)?;
    if payload["p"].as_str() != caller {
        return Err(Invalid::Foreign);
    }
    if payload["e"].as_u64().unwrap_or(0) < now() {
        return Err(Invalid::Expired);
    }
    payload["c"].as_u64().ok_or(Invalid::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_names_its_continuation_for_its_caller_only_and_resists_tampering() {
        let t = mint(42, Some("alice"), Duration::from_secs(60));
        assert_eq!(verify(&t, Some("alice")), Ok(42));
        assert_eq!(verify(&t, Some("bob")), Err(Invalid::Foreign));
        assert_eq!(verify(&t, None), Err(Invalid::Foreign));
        let anonymous = mint(7, None, Duration::from_secs(60));
        assert_eq!(verify(&anonymous, None), Ok(7));
        // Any change to either signed part is caught.
        let me = crate::instance::id();
        let signed = t
            .strip_prefix(&format!("{me}."))
            .expect("the instance first");
        let (payload, tag) = signed.split_once('.').unwrap();
        let forged = json!({"c": 43, "p": "alice", "e": now() + 60}).to_string();
        let cases = [
            format!("{me}.{}.{tag}", URL_SAFE_NO_PAD.encode(forged)),
            format!("{me}.{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            format!("{me}.{payload}x.{tag}"),
            format!("{me}.{payload}"),
            format!("{payload}.{tag}"),
            "garbage".to_owned(),
            String::new(),
        ];
        for bad in cases {
            assert_eq!(verify(&bad, Some("alice")), Err(Invalid::Tampered), "{bad}");
        }
    }

    #[test]
    fn a_state_of_another_instance_is_named_so() {
        let t = mint(42, None, Duration::from_secs(60));
        let other = format!("zz-other{}", &t[crate::instance::id().len()..]);
        assert_eq!(verify(&other, None), Err(Invalid::OtherInstance));
    }

    #[test]
    fn a_state_expires() {
        let payload = json!({"c": 1, "p": null, "e": now() - 1}).to_string();
        let tag = hmac::sign(key(), payload.as_bytes());
        let old = format!(
            "{}.{}.{}",
            crate::instance::id(),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        );
        assert_eq!(verify(&old, None), Err(Invalid::Expired));
    }
}
