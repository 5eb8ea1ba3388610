//! Who may talk to the bridge: the `Host` and `Origin` rules that stop DNS rebinding and
//! cross-site requests, and the bearer tokens. Plain data and pure functions; the HTTP
//! middleware in `http::guard` applies them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Access settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Extra allowed `Origin`s (`scheme://host[:port]`); `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Extra allowed `Host` names (without port) when bound to loopback.
    pub allowed_hosts: Vec<String>,
    /// Bearer tokens as (name, token); empty: no authentication.
    pub tokens: Vec<(String, String)>,
}

/// The rules in force for one listening address.
#[derive(Debug)]
pub struct Policy {
    loopback: bool,
    port: u16,
    origins: Vec<String>,
    any_origin: bool,
    hosts: Vec<String>,
    tokens: Vec<(Arc<str>, Vec<u8>)>,
}

/// Whether `host` (no port, IPv6 without brackets) names this machine's loopback.
pub fn is_loopback_name(host: &str) -> bool {
    // Runs on every request: no allocation.
    let host = host.trim_end_matches('.');
    let (b, suffix) = (host.as_bytes(), b".localhost");
    b.eq_ignore_ascii_case(b"localhost")
        || (b.len() > suffix.len() && b[b.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` or `[v6][:port]` into the host (brackets removed) and the port.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (authority, None),
    }
}

/// Constant-time equality of two byte strings (the length is not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Policy {
    /// The rules for a bridge listening on `addr`.
    pub fn new(access: &Access, addr: SocketAddr) -> Policy {
        Policy {
            loopback: addr.ip().is_loopback(),
            port: addr.port(),
            origins: access
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            any_origin: access.allowed_origins.iter().any(|o| o == "*"),
            hosts: access
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            tokens: access
                .tokens
                .iter()
                .map(|(n, t)| (Arc::from(n.as_str()), t.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// DNS-rebinding protection: bound to loopback, the `Host` must name loopback (or be
    /// allowed explicitly). A request without `Host` (HTTP/1.0 tools) passes.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let (name, _) = split_authority(host);
        !self.loopback
            || is_loopback_name(name)
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// The MCP spec's Origin rule: allowed are `*`, the listed origins, and the bridge's own
    /// origins (a loopback name with the bridge's port when bound to loopback).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let (host, port) = split_authority(authority);
        let default_port = match scheme {
            "http" => "80",
            "https" => "443",
            _ => return false,
        };
        let port_ok = port.unwrap_or(default_port) == self.port.to_string();
        self.loopback && port_ok && is_loopback_name(host)
    }

    /// Whether requests must carry a bearer token.
    pub fn requires_token(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The name of the token an `Authorization` header carries, if it is one of ours. Every
    /// token is compared, in constant time, whatever matched.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Option<Arc<str>> {
        let presented = authorization?;
        let scheme_len = b"bearer ".len();
        if presented.len() <= scheme_len
            || !presented[..scheme_len].eq_ignore_ascii_case(b"bearer ")
        {
            return None;
        }
        let presented = presented[scheme_len..].trim_ascii();
        let mut found = None;
        for (name, token) in &self.tokens {
            if ct_eq(presented, token) && found.is_none() {
                found = Some(name.clone());
            }
        }
        found
    }
}

/// Parses a tokens file: one `name:token` per line; blank lines and `#` comments skipped.
///
/// # Errors
/// The line number and what is wrong (never the token itself).
pub fn parse_tokens(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, token)) = line.split_once(':') else {
            return Err(format!("line {}: expected name:token", i + 1));
        };
        let (name, token) = (name.trim(), token.trim());
        if name.is_empty() || token.len() < 16 {
            return Err(format!(
                "line {}: a name and a token of at least 16 characters are needed",
                i + 1
            ));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("line {}: the name {name:?} appears twice", i + 1));
        }
        out.push((name.to_owned(), token.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bind: &str, access: Access) -> Policy {
        Policy::new(&access, bind.parse().unwrap())
    }

    #[test]
    fn host_rules() {
        let local = policy(
            "127.0.0.1:8000",
            Access {
                allowed_hosts: vec!["bridge.internal".into()],
                ..Access::default()
            },
        );
        for (host, ok) in [
            (Some("localhost:8000"), true),
            (Some("127.0.0.1:8000"), true),
            (Some("[::1]:8000"), true),
            (Some("LOCALHOST"), true),
            (Some("bridge.internal:8000"), true),
            (Some("evil.example.com"), false),
            (Some("evil.example.com:8000"), false),
            (Some("10.0.0.1:8000"), false),
            (None, true),
        ] {
            assert_eq!(local.host_allowed(host), ok, "{host:?}");
        }
        let public = policy("0.0.0.0:8000", Access::default());
        assert!(public.host_allowed(Some("anything.example.com")));
    }

    #[test]
    fn origin_rules() {
        let local = policy(
            "127.0.0.1:8000",
            Access {
                allowed_origins: vec!["https://app.example.com/".into()],
                ..Access::default()
            },
        );
        for (origin, ok) in [
            ("http://localhost:8000", true),
            ("http://127.0.0.1:8000", true),
            ("http://[::1]:8000", true),
            ("https://app.example.com", true),
            ("http://localhost:3000", false),
            ("http://evil.example.com:8000", false),
            ("null", false),
            ("file://", false),
        ] {
            assert_eq!(local.origin_allowed(origin), ok, "{origin}");
        }
        let public = policy("0.0.0.0:8000", Access::default());
        assert!(!public.origin_allowed("http://localhost:8000"));
        let any = policy(
            "0.0.0.0:8000",
            Access {
                allowed_origins: vec!["*".into()],
                ..Access::default()
            },
        );
        assert!(any.origin_allowed("https://whoever.example"));
    }

    #[test]
    fn bearer_tokens() {
        let tokens = vec![
            ("alice".into(), "a".repeat(20)),
            ("bob".into(), "b".repeat(20)),
        ];
        let p = policy(
            "127.0.0.1:1",
            Access {
                tokens,
                ..Access::default()
            },
        );
        assert!(p.requires_token());
        let auth = |h: &str| p.authenticate(Some(h.as_bytes())).map(|n| n.to_string());
        assert_eq!(
            auth(&format!("Bearer {}", "b".repeat(20))),
            Some("bob".into())
        );
        assert_eq!(
            auth(&format!("bearer {}", "a".repeat(20))),
            Some("alice".into())
        );
        assert_eq!(auth(&format!("Bearer {}", "a".repeat(19))), None);
        assert_eq!(auth(&format!("Basic {}", "a".repeat(20))), None);
        assert_eq!(auth("Bearer "), None);
        assert_eq!(p.authenticate(None), None);
    }

    #[test]
    fn tokens_file() {
        let ok = parse_tokens("# team\nalice: aaaaaaaaaaaaaaaaaaaa\n\nbob:bbbbbbbbbbbbbbbbbbbb\n")
            .unwrap();
        assert_eq!(ok[0], ("alice".into(), "a".repeat(20)));
        assert_eq!(ok.len(), 2);
        for bad in [
            "nocolon",
            "x:short",
            ":aaaaaaaaaaaaaaaaaaaa",
            "a:aaaaaaaaaaaaaaaaaaaa\na:bbbbbbbbbbbbbbbbbbbb",
        ] {
            let err = parse_tokens(bad).unwrap_err();
            assert!(
                !err.contains("aaaaaaaaaaaaaaaa"),
                "no token in errors: {err}"
            );
        }
    }
}
