//! What the bridge tells OAuth clients: its protected-resource metadata (RFC 9728), where that
//! is served, and the `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1) that point to
//! it. Pure functions of the configuration.

use reqwest::Url;
use serde_json::{json, Value};

/// The well-known path of protected-resource metadata (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document.
pub fn document(resource: &str, issuers: &[String], scopes: &[String]) -> Value {
    let mut doc = json!({
        "resource": resource,
        "authorization_servers": issuers,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-http-bridge",
    });
    if !scopes.is_empty() {
        doc["scopes_supported"] = json!(scopes);
    }
    doc
}

/// The metadata URL for `resource`: the well-known path inserted before the resource's path
/// (RFC 9728 §3.1), the form MCP clients try first.
pub fn metadata_url(resource: &Url) -> String {
    let mut url = resource.clone();
    url.set_path(&format!("{WELL_KNOWN}{}", suffix(resource.path())));
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

fn suffix(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// The paths the document is served at: the root form and the path-suffixed form of each
/// endpoint (and of the public URL's path, which a proxy may have prefixed).
pub fn paths<'a>(endpoints: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = vec![WELL_KNOWN.to_owned()];
    for p in endpoints {
        let p = format!("{WELL_KNOWN}{}", suffix(p));
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// A refusal: the status (401 or 403) and the `WWW-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// 401, or 403 for a missing scope.
    pub status: u16,
    /// The `WWW-Authenticate` header's value.
    pub www_authenticate: String,
}

/// What a challenge says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem<'a> {
    /// No token was presented: no error code (RFC 6750 §3.1).
    NoToken,
    /// `invalid_token`, with a description.
    InvalidToken(&'a str),
    /// `insufficient_scope` (answered with 403).
    InsufficientScope,
}

/// A `WWW-Authenticate` value.
pub fn challenge(metadata_url: &str, scopes: &[String], problem: Problem<'_>) -> String {
    let mut parts = Vec::new();
    match problem {
        Problem::NoToken => {}
        Problem::InvalidToken(why) => {
            parts.push("error=\"invalid_token\"".to_owned());
            parts.push(format!("error_description=\"{}\"", quotable(why)));
        }
        Problem::InsufficientScope => parts.push("error=\"insufficient_scope\"".to_owned()),
    }
    if !scopes.is_empty() {
        parts.push(format!("scope=\"{}\"", quotable(&scopes.join(" "))));
    }
    parts.push(format!("resource_metadata=\"{}\"", quotable(metadata_url)));
    format!("Bearer {}", parts.join(", "))
}

/// Only the characters RFC 6750 §3 allows inside these quoted values (no `"`, no `\`, no
/// control characters), at most 200 of them: descriptions may echo what a client sent.
fn quotable(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_are_path_suffixed() {
        let url = |r: &str| metadata_url(&Url::parse(r).unwrap());
        assert_eq!(
            url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            url("https://mcp.example.com/"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            url("http://127.0.0.1:8000/tools/mcp/"),
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource/tools/mcp"
        );
        assert_eq!(
            paths(["/mcp", "/sse", "/mcp", "/"]),
            [
                WELL_KNOWN,
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource/sse"
            ]
        );
    }

    #[test]
    fn challenges() {
        let m = "https://b/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            challenge(m, &[], Problem::NoToken),
            format!("Bearer resource_metadata=\"{m}\"")
        );
        let scopes = vec!["mcp:tools".to_owned(), "email".to_owned()];
        assert_eq!(
            challenge(m, &scopes, Problem::InvalidToken("bad \"alg\"\n")),
            format!("Bearer error=\"invalid_token\", error_description=\"bad alg\", scope=\"mcp:tools email\", resource_metadata=\"{m}\"")
        );
        assert_eq!(
            challenge(m, &scopes, Problem::InsufficientScope),
            format!("Bearer error=\"insufficient_scope\", scope=\"mcp:tools email\", resource_metadata=\"{m}\"")
        );
    }

    #[test]
    fn the_document_names_the_resource_and_its_servers() {
        let doc = document("https://b/mcp", &["https://id".into()], &[]);
        assert_eq!(doc["resource"], "https://b/mcp");
        assert_eq!(doc["authorization_servers"], json!(["https://id"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert!(doc.get("scopes_supported").is_none());
        let doc = document("https://b/mcp", &[], &["a".into()]);
        assert_eq!(doc["scopes_supported"], json!(["a"]));
    }
}
