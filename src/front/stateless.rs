//! The stateless front: clients of revision 2026-07-28. There is no session: every request
//! carries its own `_meta` (revision, capabilities, client info), is served by a shared child,
//! and ends with its reply; closing the reply's stream cancels it at the child.
//!
//! In front of a modern child the request passes through with its id remapped. In front of a
//! legacy child the bridge answers `server/discover` from the child's `initialize` result and
//! gives every result the fields a modern client requires (`resultType`, and `ttlMs` and
//! `cacheScope` on cacheable results).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio_util::task::TaskTracker;

use super::request_state;
use crate::back::modern::{self, META_CAPABILITIES, META_SERVER_INFO, META_VERSION};
use crate::back::ChildEra;
use crate::child::{ChildHandle, Forwarded, Forwarding, Outgoing};
use crate::config::Isolation;
use crate::envelope::modern::{ModernRequest, Present};
use crate::envelope::{self, Envelope};
use crate::jsonrpc;
use crate::loglevel::LogLevel;
use crate::router::{
    Finish, InputKinds, Insertion, Listen, Outbound, Owner, Refused, Registration, ResumeError,
    Resumed, RouteRules,
};
use crate::state::BridgeState;

/// The revisions this front serves.
pub const SUPPORTED: [&str; 1] = [modern::VERSION];

/// The client requests of revision 2026-07-28 (with the tasks extension).
const METHODS: [&str; 14] = [
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "subscriptions/listen",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
];

/// Results a modern client may cache: they carry `ttlMs` and `cacheScope`.
const CACHEABLE: [&str; 6] = [
    "server/discover",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// Methods that need a request's `Mcp-Name` header, and the parameter it mirrors.
pub fn named_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Whether a message is a modern request: it carries the per-request `_meta` revision.
pub fn is_modern(msg: &Value) -> bool {
    jsonrpc::param(msg, "_meta").is_some_and(|m| m.get(META_VERSION).is_some())
}

/// The revision a modern request names.
pub fn version_of(msg: &Value) -> Option<&str> {
    jsonrpc::param(msg, "_meta")?.get(META_VERSION)?.as_str()
}

/// Why a modern request is refused before it reaches a child.
#[derive(Debug)]
pub enum Refusal {
    /// A required `_meta` key is missing (-32602).
    MissingMeta(&'static str),
    /// The revision is not one the bridge serves (-32022, with the supported ones).
    UnsupportedVersion(String),
    /// Not a 2026-07-28 method (-32601, HTTP 404).
    UnknownMethod(String),
    /// Routing refused it.
    Routing(Refused),
    /// Its `requestState` is not one the bridge minted for this caller, or its call is gone.
    BadState(request_state::Invalid),
    /// Its `inputResponses` is not an object of objects.
    InvalidInput,
    /// Session isolation: every child belongs to a session, and a stateless request has none.
    NoSharedChild,
}

/// The input requests a client can answer, from the capabilities it declared.
fn input_methods(meta: Option<&Value>) -> InputKinds {
    let caps = meta.and_then(|m| m.get(META_CAPABILITIES));
    let declared = |cap: &str| caps.and_then(|c| c.get(cap)).is_some();
    InputKinds {
        elicitation: declared("elicitation"),
        sampling: declared("sampling"),
        roots: declared("roots"),
    }
}

/// An open stateless request: its owner stays attached to the child until this is dropped,
/// which detaches it and so cancels at the child whatever it still has running.
pub struct Call {
    owner: Owner,
    child: Arc<ChildHandle>,
    tasks: TaskTracker,
}

impl Drop for Call {
    fn drop(&mut self) {
        // A restart meanwhile handed the request's owner to the successor: leave it there too.
        let mut child = Some(self.child.clone());
        while let Some(c) = child {
            let detached = c.detach_now(&self.owner);
            let next = c.successor();
            // Most calls have ended by now and leave nothing to tell the child: no task then.
            if !detached.is_empty() {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    self.tasks
                        .spawn_on(async move { c.finish_detach(detached).await }, &rt);
                }
            }
            child = next;
        }
    }
}

/// A fresh owner key for one stateless request (never a session id: those are hex).
fn new_owner() -> Owner {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    const PREFIX: &[u8] = b"stateless-";
    let mut digits = itoa::Buffer::new();
    let n = digits
        .format(NEXT.fetch_add(1, Ordering::Relaxed))
        .as_bytes();
    // Written on the stack: the key is allocated once, as the `Arc`.
    let mut key = [0u8; PREFIX.len() + 20];
    key[..PREFIX.len()].copy_from_slice(PREFIX);
    key[PREFIX.len()..PREFIX.len() + n.len()].copy_from_slice(n);
    Arc::from(std::str::from_utf8(&key[..PREFIX.len() + n.len()]).unwrap_or("stateless"))
}

/// Serves one modern request: checks its `_meta` and method, then answers it (a legacy
/// child's `server/discover`, a listen, a retry of a parked call) or forwards it. The reply
/// arrives on `reg.stream`; the request lives as long as the returned `Call`.
///
/// # Errors
/// A `Refusal` to answer with an error (the transport picks the status).
pub async fn request(
    app: &BridgeState,
    principal: Option<Arc<str>>,
    extra_env: &[(String, String)],
    msg: Value,
    reg: Registration,
) -> Result<Call, Refusal> {
    let method = check(&msg)?;
    let kinds = input_methods(jsonrpc::param(&msg, "_meta"));
    let (child, owner, call) = open(app, principal.clone(), extra_env, kinds).await?;
    if let Some(unknown) = app.config.tools.refuse_call(&msg) {
        answer(&reg, unknown);
        return Ok(call);
    }
    let legacy = child.era == ChildEra::Legacy;
    let state = jsonrpc::param(&msg, "requestState").and_then(Value::as_str);
    match (legacy, state, method) {
        (true, Some(state), _) => {
            retry(&child, &owner, principal.as_deref(), state, &msg, &reg).await?
        }
        (true, None, "server/discover") => {
            let result = discover_result(&child);
            answer(&reg, jsonrpc::result_value(jsonrpc::id(&msg), result));
        }
        (true, None, "subscriptions/listen") => listen(&child, &owner, &msg, &reg)
            .await
            .map_err(Refusal::Routing)?,
        _ => forward(&child, &owner, msg, reg, legacy).await?,
    }
    Ok(call)
}

/// `request` for a plain request read as its bytes (`envelope::modern`): forwarded as they
/// are, with the id spliced in (and the `_meta` emptied for a legacy child). The caller
/// checked the tool filter.
///
/// # Errors
/// As `request`.
pub async fn request_plain(
    app: &BridgeState,
    principal: Option<Arc<str>>,
    extra_env: &[(String, String)],
    req: ModernRequest<'_>,
    reg: Registration,
) -> Result<Call, Refusal> {
    if !SUPPORTED.contains(&req.version) {
        return Err(Refusal::UnsupportedVersion(req.version.to_owned()));
    }
    let kinds = InputKinds {
        elicitation: req.elicitation,
        sampling: req.sampling,
        roots: req.roots,
    };
    let (child, owner, call) = open(app, principal, extra_env, kinds).await?;
    let legacy = child.era == ChildEra::Legacy;
    let finish = finish_for(legacy, req.method);
    let id = req.raw_id();
    let id = || envelope::value_of(id);
    let msg = Outgoing::Raw(req.into_request(legacy));
    send(&child, &owner, msg, id, reg, finish).await?;
    Ok(call)
}

/// The child that serves a stateless request, and the request's owner attached to it (until
/// the `Call` is dropped).
async fn open(
    app: &BridgeState,
    principal: Option<Arc<str>>,
    extra_env: &[(String, String)],
    kinds: InputKinds,
) -> Result<(Arc<ChildHandle>, Owner, Call), Refusal> {
    let child = match app.config.supervision.isolation {
        Isolation::Shared => app.children.for_request(),
        // The user's own child (started with `extra_env` when they have none running).
        Isolation::User => {
            let user = principal.clone().unwrap_or_else(|| Arc::from(""));
            app.children.for_user_request(&user, extra_env).await
        }
        // Every child belongs to a session, and a stateless request has none.
        Isolation::Session => return Err(Refusal::NoSharedChild),
    }
    .map_err(Refusal::Routing)?;
    let owner = new_owner();
    child.attach_stateless(&owner, principal, kinds);
    let call = Call {
        owner: owner.clone(),
        child: child.clone(),
        tasks: app.children.tasks().clone(),
    };
    Ok((child, owner, call))
}

/// The method of a request whose `_meta` and revision are fine.
fn check(msg: &Value) -> Result<&str, Refusal> {
    let meta = jsonrpc::param(msg, "_meta");
    for key in [META_VERSION, META_CAPABILITIES] {
        if meta.and_then(|m| m.get(key)).is_none() {
            return Err(Refusal::MissingMeta(key));
        }
    }
    let version = version_of(msg).unwrap_or_default();
    if !SUPPORTED.contains(&version) {
        return Err(Refusal::UnsupportedVersion(version.to_owned()));
    }
    let method = jsonrpc::method(msg);
    if !METHODS.contains(&method) {
        return Err(Refusal::UnknownMethod(method.to_owned()));
    }
    Ok(method)
}

/// A retry of a call parked at a legacy child while its client was asked for input: answers
/// the child with its `inputResponses`, or asks again for what is missing.
async fn retry(
    child: &ChildHandle,
    owner: &Owner,
    caller: Option<&str>,
    state: &str,
    msg: &Value,
    reg: &Registration,
) -> Result<(), Refusal> {
    let parked = request_state::verify(state, caller).map_err(Refusal::BadState)?;
    match child.resume(parked, owner, msg, reg.clone()).await {
        Ok(Resumed::Answer(_)) => Ok(()),
        Ok(Resumed::AskAgain(asks)) => {
            let state = request_state::mint(parked, caller, RouteRules::HOLD_FOR);
            let result = json!({"resultType": "input_required", "inputRequests": asks, "requestState": state});
            answer(reg, jsonrpc::result_value(jsonrpc::id(msg), result));
            Ok(())
        }
        Err(ResumeError::Gone) => Err(Refusal::BadState(request_state::Invalid::Expired)),
        Err(ResumeError::Invalid) => Err(Refusal::InvalidInput),
    }
}

/// Forwards a request to the child: as it is to a modern child; to a legacy one without the
/// 2026-07-28 `_meta` (it was told the clients' capabilities at `initialize`, and hears the
/// request's log level from the bridge), with its result given what a modern client requires.
async fn forward(
    child: &ChildHandle,
    owner: &Owner,
    mut msg: Value,
    reg: Registration,
    legacy: bool,
) -> Result<(), Refusal> {
    // The request hears the child's logs while it is the one in flight (stdio does not say
    // whose a log line is); a legacy child is set to the level (merged with everyone else's).
    let level = jsonrpc::param(&msg, "_meta")
        .and_then(|m| m.get(modern::META_LOG_LEVEL))
        .and_then(Value::as_str)
        .and_then(LogLevel::parse);
    if let Some(level) = level {
        child
            .set_log_level(owner, level)
            .await
            .map_err(Refusal::Routing)?;
    }
    let finish = finish_for(legacy, jsonrpc::method(&msg));
    if legacy {
        modern::unstamp(&mut msg);
    }
    let id = jsonrpc::id(&msg);
    send(child, owner, msg.into(), || id, reg, finish).await
}

/// What a legacy child's answer to `method` needs before a modern client gets it.
fn finish_for(legacy: bool, method: &str) -> Option<Finish> {
    match (legacy, CACHEABLE.contains(&method)) {
        (false, _) => None,
        (true, _) if method == "resources/read" => Some(Finish {
            value: complete_read,
            bytes: complete_read_bytes,
        }),
        (true, true) => Some(Finish {
            value: complete_cacheable,
            bytes: complete_cacheable_bytes,
        }),
        (true, false) => Some(Finish {
            value: complete,
            bytes: complete_bytes,
        }),
    }
}

/// Sends a request to the child; a limit's refusal is answered under the client's `id`.
async fn send(
    child: &ChildHandle,
    owner: &Owner,
    msg: Outgoing,
    id: impl FnOnce() -> Value,
    reg: Registration,
    finish: Option<Finish>,
) -> Result<(), Refusal> {
    let stream = reg.stream.clone();
    let how = Forwarding {
        caller: None,
        finish,
    };
    match child.forward_request(owner, msg, reg, how).await {
        Ok(Forwarded::Sent) => Ok(()),
        Ok(Forwarded::Refused(why)) => {
            child.metrics().refused("limit");
            let error = jsonrpc::error_value(id(), jsonrpc::TOO_MANY_REQUESTS, why);
            let _ = stream.try_send(Outbound {
                json: jsonrpc::to_bytes(&error),
                last: true,
            });
            Ok(())
        }
        Err(r) => Err(Refusal::Routing(r)),
    }
}

/// Serves `subscriptions/listen` from a legacy child's notifications: acknowledges the part of
/// the filter the child can honour (the list-changed kinds it declares, resource updates when
/// it supports subscriptions), then tags each matching notification with the listen
/// request's id. The stream stays open until the client closes it.
async fn listen(
    child: &ChildHandle,
    owner: &Owner,
    msg: &Value,
    reg: &Registration,
) -> Result<(), Refused> {
    let filter = jsonrpc::param(msg, "notifications");
    let asked = |key: &str| filter.and_then(|f| f.get(key)).and_then(Value::as_bool) == Some(true);
    let caps = child.init.result.get("capabilities");
    let declares = |kind: &str| caps.and_then(|c| c.get(kind)).is_some();
    let mut honoured = json!({});
    let mut kinds = Vec::new();
    for (key, kind) in [
        ("toolsListChanged", "tools"),
        ("promptsListChanged", "prompts"),
        ("resourcesListChanged", "resources"),
    ] {
        if asked(key) && declares(kind) {
            honoured[key] = json!(true);
            kinds.push(kind.to_owned());
        }
    }
    let can_subscribe = caps
        .and_then(|c| c.get("resources"))
        .and_then(|r| r.get("subscribe"))
        .and_then(Value::as_bool)
        == Some(true);
    let uris: Vec<String> = filter
        .and_then(|f| f.get("resourceSubscriptions"))
        .and_then(Value::as_array)
        .filter(|_| can_subscribe)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !uris.is_empty() {
        honoured["resourceSubscriptions"] = json!(uris);
    }
    let id = jsonrpc::id(msg);
    let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
                     "params": {"notifications": honoured, "_meta": {jsonrpc::SUBSCRIPTION_ID: id}}});
    let _ = reg.stream.try_send(Outbound {
        json: jsonrpc::to_bytes(&ack),
        last: false,
    });
    let listen = Listen {
        stream: reg.stream.clone(),
        id,
        kinds,
    };
    child.listen(owner, listen, &uris).await
}

/// Puts the bridge's own response on a request's stream (its caller's: it is still there).
fn answer(reg: &Registration, reply: Value) {
    let _ = reg.stream.try_send(Outbound {
        json: jsonrpc::to_bytes(&reply),
        last: true,
    });
}

/// A legacy child's `DiscoverResult`, made from its `initialize` result.
fn discover_result(child: &ChildHandle) -> Value {
    let init = &child.init.result;
    let mut result = json!({
        "supportedVersions": SUPPORTED,
        "capabilities": init.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "_meta": {META_SERVER_INFO: init.get("serverInfo").cloned().unwrap_or_else(|| json!({}))},
    });
    if let Some(text) = init.get("instructions").filter(|i| i.is_string()) {
        result["instructions"] = text.clone();
    }
    fill(&mut result, true, &Value::Null);
    result
}

/// Adds `resultType` (and, for cacheable results, `ttlMs: 0` and `cacheScope: "private"`:
/// a legacy child promises nothing about caching, and its answers may differ per user) where
/// the child did not set them, and the server's name and version in the result's `_meta`.
fn fill(result: &mut Value, cacheable: bool, server_info: &Value) {
    let Some(obj) = result.as_object_mut() else {
        return;
    };
    obj.entry("resultType").or_insert_with(|| json!("complete"));
    if cacheable {
        obj.entry("ttlMs").or_insert_with(|| json!(0));
        obj.entry("cacheScope").or_insert_with(|| json!("private"));
    }
    if server_info.is_object() {
        let meta = obj.entry("_meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.entry(META_SERVER_INFO)
                .or_insert_with(|| server_info.clone());
        }
    }
}

/// `finish` for a legacy child's result to a modern client (`server_info`: the child's).
fn complete(msg: &mut Value, server_info: &Value) {
    if let Some(result) = msg.get_mut("result") {
        fill(result, false, server_info);
    }
}

/// `finish` for a legacy child's `resources/read` answer to a modern client: a cacheable
/// result, and the resource-not-found error under its 2026-07-28 code (SEP-2164 moved it from
/// -32002 to -32602; its `data` stays).
fn complete_read(msg: &mut Value, server_info: &Value) {
    complete_cacheable(msg, server_info);
    let code = msg.get_mut("error").and_then(|e| e.get_mut("code"));
    if let Some(code) = code.filter(|c| c.as_i64() == Some(RESOURCE_NOT_FOUND_BEFORE)) {
        *code = json!(jsonrpc::INVALID_PARAMS);
    }
}

/// The resource-not-found error code of the session era.
const RESOURCE_NOT_FOUND_BEFORE: i64 = -32002;

/// `finish` for a legacy child's cacheable result to a modern client.
fn complete_cacheable(msg: &mut Value, server_info: &Value) {
    if let Some(result) = msg.get_mut("result") {
        fill(result, true, server_info);
    }
}

/// Which of the keys `fill` adds a result already has (present even when null).
#[derive(serde::Deserialize)]
struct FilledKeys {
    #[serde(default, rename = "resultType")]
    result_type: Present,
    #[serde(default, rename = "ttlMs")]
    ttl_ms: Present,
    #[serde(default, rename = "cacheScope")]
    cache_scope: Present,
    #[serde(default, rename = "_meta")]
    meta: Present,
}

/// `fill` as an insertion at the start of the result object: what `fill` would add, when the
/// result has no `_meta` of its own (adding into one takes the parsed path). An error passes
/// unchanged, as with `complete`.
fn fill_bytes(
    line: &[u8],
    env: &Envelope<'_>,
    cacheable: bool,
    server_info: &Value,
) -> Option<Insertion> {
    let Some(result) = env.result else {
        return Some((0, Vec::new()));
    };
    let text = result.get();
    let inner = text.strip_prefix('{')?;
    let has: FilledKeys = serde_json::from_str(text).ok()?;
    if has.meta.0 && server_info.is_object() {
        return None;
    }
    // One buffer for what is added (the result of every legacy call passes here).
    let mut added = Vec::with_capacity(256);
    if !has.result_type.0 {
        member(&mut added, br#""resultType":"complete""#);
    }
    if cacheable && !has.ttl_ms.0 {
        member(&mut added, br#""ttlMs":0"#);
    }
    if cacheable && !has.cache_scope.0 {
        member(&mut added, br#""cacheScope":"private""#);
    }
    if server_info.is_object() {
        member(&mut added, b"\"_meta\":{\"");
        added.extend_from_slice(META_SERVER_INFO.as_bytes());
        added.extend_from_slice(b"\":");
        serde_json::to_writer(&mut added, server_info).ok()?;
        added.push(b'}');
    }
    if !added.is_empty() && !inner.trim_start().starts_with('}') {
        added.push(b',');
    }
    Some((envelope::range_in(line, result).start + 1, added))
}

/// Appends an object member to `out`, after a comma when it holds one already.
fn member(out: &mut Vec<u8>, text: &[u8]) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(text);
}

fn complete_bytes(line: &[u8], env: &Envelope<'_>, info: &Value) -> Option<Insertion> {
    fill_bytes(line, env, false, info)
}

fn complete_cacheable_bytes(line: &[u8], env: &Envelope<'_>, info: &Value) -> Option<Insertion> {
    fill_bytes(line, env, true, info)
}

/// An error's code may change (`complete_read`): only results take the byte path.
fn complete_read_bytes(line: &[u8], env: &Envelope<'_>, info: &Value) -> Option<Insertion> {
    env.result?;
    fill_bytes(line, env, true, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte rendering equals the parsed one wherever it answers.
    #[test]
    fn byte_rendering_matches_the_parsed_rendering() {
        let info = json!({"name": "s", "version": "1"});
        let lines = [
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{ }}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"resultType":"complete"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"ttlMs":null,"x":{"_meta":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"gone"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"_meta":{"a":1}}}"#,
        ];
        type Pair = (
            fn(&mut Value, &Value),
            fn(&[u8], &Envelope<'_>, &Value) -> Option<Insertion>,
        );
        let pairs: [Pair; 3] = [
            (complete, complete_bytes),
            (complete_cacheable, complete_cacheable_bytes),
            (complete_read, complete_read_bytes),
        ];
        let mut answered = 0;
        for line in lines {
            for (value, bytes) in pairs {
                let env = envelope::read(line.as_bytes()).unwrap();
                let Some((at, added)) = bytes(line.as_bytes(), &env, &info) else {
                    continue;
                };
                answered += 1;
                let spliced = envelope::splice(line.as_bytes(), &mut [(at..at, &added)]);
                let mut expected: Value = serde_json::from_str(line).unwrap();
                value(&mut expected, &info);
                let got: Value = serde_json::from_slice(&spliced).unwrap();
                assert_eq!(got, expected, "{line}");
            }
        }
        assert!(answered >= 12, "only {answered} answered");
    }

    #[test]
    fn legacy_results_gain_the_fields_modern_clients_require() {
        let info = json!({"name": "s", "version": "1"});
        let mut listed = json!({"id": 1, "result": {"tools": []}});
        complete_cacheable(&mut listed, &info);
        assert_eq!(
            listed["result"],
            json!({"tools": [], "resultType": "complete", "ttlMs": 0, "cacheScope": "private",
                   "_meta": {META_SERVER_INFO: info}})
        );
        let mut called = json!({"id": 2, "result": {"content": [], "resultType": "complete"}});
        complete(&mut called, &info);
        assert!(called["result"].get("ttlMs").is_none());
        let mut error = json!({"id": 3, "error": {"code": 1, "message": "x"}});
        complete(&mut error, &info);
        assert!(error.get("result").is_none());
        let mut missing =
            json!({"id": 4, "error": {"code": -32002, "message": "no", "data": {"uri": "u"}}});
        complete_read(&mut missing, &info);
        assert_eq!(missing["error"]["code"], -32602);
        assert_eq!(missing["error"]["data"]["uri"], "u");
    }

    #[test]
    fn modern_requests_are_told_by_their_meta() {
        let modern = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                            "params": {"_meta": {META_VERSION: "2026-07-28"}}});
        assert!(is_modern(&modern));
        assert_eq!(version_of(&modern), Some("2026-07-28"));
        let legacy = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"progressToken": 1}}});
        assert!(!is_modern(&legacy));
        assert_eq!(named_param("resources/read"), Some("uri"));
        assert_eq!(named_param("tools/list"), None);
    }
}
