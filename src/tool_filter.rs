//! `ToolFilter`: which of a server's tools its clients see (`--allow-tool`, `--deny-tool`, or
//! a server's `allow`/`deny` keys). A tool is shown when it matches an allow pattern (or there
//! are none) and no deny pattern. Patterns are globs over the whole name: `*` matches any run
//! of characters, `?` one character, anything else itself.
//!
//! Hidden tools leave `tools/list` results, and a `tools/call` naming one is answered as an
//! unknown tool is (JSON-RPC -32602, "Unknown tool: NAME"); list-changed notifications pass.

use std::sync::Arc;

use serde_json::Value;

use crate::jsonrpc;

/// Allow and deny patterns; the default hides nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFilter {
    inner: Option<Arc<Patterns>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Patterns {
    allow: Vec<String>,
    deny: Vec<String>,
}

impl ToolFilter {
    /// A filter from allow and deny patterns (both empty: hides nothing).
    pub fn new(allow: Vec<String>, deny: Vec<String>) -> ToolFilter {
        let inner =
            (!allow.is_empty() || !deny.is_empty()).then(|| Arc::new(Patterns { allow, deny }));
        ToolFilter { inner }
    }

    /// Whether it hides nothing.
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// Whether clients may see and call tool `name`.
    pub fn allows(&self, name: &str) -> bool {
        let Some(p) = &self.inner else { return true };
        (p.allow.is_empty() || p.allow.iter().any(|g| glob(g, name)))
            && !p.deny.iter().any(|g| glob(g, name))
    }

    /// Removes hidden tools from a `tools/list` response (`result.tools`).
    pub fn retain_listed(&self, response: &mut Value) {
        if self.is_empty() {
            return;
        }
        let tools = response
            .get_mut("result")
            .and_then(|r| r.get_mut("tools"))
            .and_then(Value::as_array_mut);
        if let Some(tools) = tools {
            tools.retain(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| self.allows(n))
            });
        }
    }

    /// For a `tools/call` request naming a hidden tool, the error an unknown tool gets.
    pub fn refuse_call(&self, request: &Value) -> Option<Value> {
        if self.is_empty() || jsonrpc::method(request) != "tools/call" {
            return None;
        }
        let name = jsonrpc::param(request, "name")
            .and_then(Value::as_str)
            .unwrap_or("");
        (!self.allows(name)).then(|| unknown_tool(jsonrpc::id(request), name))
    }
}

/// The JSON-RPC error response for an unknown tool (as the specification's example words it).
pub fn unknown_tool(id: Value, name: &str) -> Value {
    jsonrpc::error_value(
        id,
        jsonrpc::INVALID_PARAMS,
        &format!("Unknown tool: {name}"),
    )
}

/// Whether `text` matches glob `pattern` as a whole (`*`: any run, `?`: one character).
/// Iterative with one backtrack point: linear in practice, never exponential; no allocation
/// for ASCII names.
pub fn glob(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return glob_in(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    glob_in(&p, &t, '*', '?')
}

fn glob_in<T: Copy + PartialEq>(p: &[T], t: &[T], star_sym: T, one: T) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(&c) if c == star_sym => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == one || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == star_sym)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_whole_names() {
        for (p, t, m) in [
            ("echo", "echo", true),
            ("echo", "echoes", false),
            ("e*", "echo", true),
            ("*o", "echo", true),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("?cho", "echo", true),
            ("?cho", "cho", false),
            ("files_*_read", "files_x_read", true),
            ("", "x", false),
            ("ö*", "ölçü", true),
            ("?lç?", "ölçü", true),
        ] {
            assert_eq!(glob(p, t), m, "{p} ~ {t}");
        }
    }

    #[test]
    fn allow_then_deny() {
        let f = ToolFilter::new(vec!["e*".into(), "add".into()], vec!["env".into()]);
        assert!(f.allows("echo") && f.allows("add"));
        assert!(!f.allows("env") && !f.allows("slow"));
        let deny_only = ToolFilter::new(vec![], vec!["crash".into()]);
        assert!(deny_only.allows("echo") && !deny_only.allows("crash"));
        assert!(ToolFilter::default().allows("anything"));
        let mut listed =
            json!({"id": 1, "result": {"tools": [{"name": "echo"}, {"name": "env"}, {"x": 1}]}});
        f.retain_listed(&mut listed);
        assert_eq!(listed["result"]["tools"], json!([{"name": "echo"}]));
        let call =
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "env"}});
        let refused = f.refuse_call(&call).unwrap();
        assert_eq!(refused["error"]["code"], -32602);
        assert_eq!(refused["error"]["message"], "Unknown tool: env");
        assert_eq!(refused["id"], 7);
        let allowed =
            json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "echo"}});
        assert!(f.refuse_call(&allowed).is_none());
    }
}
