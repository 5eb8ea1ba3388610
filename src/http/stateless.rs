//! HTTP for the stateless front (revision 2026-07-28): the request-metadata headers must match
//! the body (`MCP-Protocol-Version` = `_meta` revision, `Mcp-Method` = method, `Mcp-Name` =
//! `params.name` or `params.uri`, Base64-encoded values decoded first); errors carry the
//! request's id with the status the revision prescribes; the reply is JSON or an event stream
//! that ends with the response, without session, event ids or resumption.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::accept::ReplyMode;
use super::guard::Principal;
use super::sse::{self, EventStream};
use crate::envelope::{self, modern::ModernRequest};
use crate::error::{json_bytes_response, HttpError, RpcError};
use crate::front::stateless::{self, Refusal};
use crate::jsonrpc;
use crate::router::{stream_channel, Outbound, Registration, StreamRx, MISSING_CAPABILITY};
use crate::state::BridgeState;

/// JSON-RPC error: the headers do not match the body, or a required one is missing.
pub const HEADER_MISMATCH: i64 = -32020;

const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// Serves one modern request.
///
/// # Errors
/// The HTTP error answering a request that is refused before reaching a child.
pub async fn post(
    app: &Arc<BridgeState>,
    principal: Principal,
    identity: &super::guard::Identity,
    headers: &HeaderMap,
    msg: Value,
    mode: ReplyMode,
) -> Result<Response, HttpError> {
    let method = jsonrpc::method(&msg);
    let stated = Stated {
        version: stateless::version_of(&msg),
        method,
        name: stateless::named_param(method)
            .and_then(|param| jsonrpc::param(&msg, param))
            .and_then(Value::as_str),
    };
    check_headers(headers, &stated, || jsonrpc::id(&msg))?;
    let extra_env = super::child_env(app, headers, identity);
    if let ("tools/call", Some(tool)) = (method, stated.name) {
        let known = &app.config.param_headers;
        if !known.listed() && !known.knows(tool) {
            let meta = jsonrpc::param(&msg, "_meta").cloned().unwrap_or_default();
            list_tools(app, &principal, &extra_env, meta).await;
        }
        let arguments = jsonrpc::param(&msg, "arguments").unwrap_or(&Value::Null);
        known
            .check(headers, tool, arguments)
            .map_err(|message| header_mismatch(jsonrpc::id(&msg), message))?;
    }
    let id = jsonrpc::id(&msg);
    let (reg, rx) = registration(app, mode);
    let call = stateless::request(app, principal.0, &extra_env, msg, reg)
        .await
        .map_err(|r| refusal(id, r))?;
    Ok(reply(app, call, rx, mode).await)
}

/// Serves a plain modern request as its own bytes (`envelope::modern`), without building it;
/// `None` leaves it to `post` after the full parse. A tool filter needs the parsed request.
pub async fn post_plain(
    app: &Arc<BridgeState>,
    principal: &Principal,
    identity: &super::guard::Identity,
    headers: &HeaderMap,
    body: &Bytes,
    mode: ReplyMode,
) -> Option<Result<Response, HttpError>> {
    if !app.config.tools.is_empty() {
        return None;
    }
    let req = ModernRequest::read(body)?;
    // A call with `Mcp-Param-*` headers to check needs its arguments (the full parse), and
    // one of a tool not known yet needs the tools listed first (`post`).
    let known = &app.config.param_headers;
    if req.method == "tools/call" && (!known.listed() || req.name.is_some_and(|n| known.knows(n))) {
        return None;
    }
    Some(
        async {
            let stated = Stated {
                version: Some(req.version),
                method: req.method,
                name: req.name,
            };
            check_headers(headers, &stated, || req.client_id())?;
            let id = req.raw_id();
            let (reg, rx) = registration(app, mode);
            let extra_env = super::child_env(app, headers, identity);
            let call = stateless::request_plain(app, principal.0.clone(), &extra_env, req, reg)
                .await
                .map_err(|r| refusal(envelope::value_of(id), r))?;
            Ok(reply(app, call, rx, mode).await)
        }
        .await,
    )
}

/// Pages of `tools/list` the bridge asks for at most when it lists the tools itself.
const LIST_PAGES: usize = 32;
/// How long it waits for each page.
const LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Lists the tools, every page, as the client whose call needs them would (its `_meta`), for
/// their `Mcp-Param-*` annotations: the answers pass through the router, which learns them
/// (`ParamHeaders`). Nothing of it reaches the client; a page that fails ends the listing.
async fn list_tools(
    app: &Arc<BridgeState>,
    principal: &Principal,
    extra_env: &[(String, String)],
    meta: Value,
) {
    let mut cursor = None;
    for page in 0..LIST_PAGES {
        let mut params = json!({"_meta": meta});
        if let Some(c) = cursor.take() {
            params["cursor"] = c;
        }
        let id = format!("bridge-tools-{page}");
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
        let (reg, mut rx) = registration(app, ReplyMode::Json);
        let Ok(call) = stateless::request(app, principal.0.clone(), extra_env, msg, reg).await
        else {
            break;
        };
        let answer = tokio::time::timeout(LIST_WAIT, async {
            loop {
                match rx.rx.recv().await {
                    Some(Outbound { json, last: true }) => return Some(json),
                    Some(_) => {}
                    None => return None,
                }
            }
        });
        let answer = answer.await.ok().flatten();
        drop(call);
        let next = answer
            .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
            .and_then(|v| v["result"]["nextCursor"].as_str().map(|c| json!(c)));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    app.config.param_headers.mark_listed();
}

/// The stream a request's answer comes back on.
fn registration(app: &BridgeState, mode: ReplyMode) -> (Registration, StreamRx) {
    let (tx, rx) = stream_channel(app.config.limits.stream_queue);
    let reg = Registration {
        stream: tx,
        sse: mode.streams(),
    };
    (reg, rx)
}

/// The reply to a forwarded request: its answer as JSON, or an event stream that ends with it.
async fn reply(
    app: &BridgeState,
    call: stateless::Call,
    mut rx: StreamRx,
    mode: ReplyMode,
) -> Response {
    match mode {
        ReplyMode::Json => {
            // The call lives until its answer came (or the client left: dropping it cancels).
            let reply = json_answer(rx).await;
            drop(call);
            reply
        }
        ReplyMode::Sse | ReplyMode::Either => {
            // Cancel safety: `recv` loses nothing when the wait ends first.
            let first = tokio::select! {
                biased;
                m = rx.rx.recv() => m,
                _ = tokio::time::sleep(sse::FIRST_MESSAGE_WAIT) => None,
            };
            if let Some(Outbound { json, last: true }) = first {
                let status = status_of(&json);
                if mode == ReplyMode::Either {
                    return json_bytes_response(status, json);
                }
                let mut reply = sse::complete_message(&[], None, json);
                *reply.status_mut() = status;
                return reply;
            }
            let prelude = first
                .map(|m| vec![sse::frame(None, Some("message"), &m.json)])
                .unwrap_or_default();
            let stream = EventStream {
                prelude,
                responses: 1,
                on_drop: Some(Box::new(call)),
                ..EventStream::new(rx, app.root.clone(), app.config.keep_alive)
            };
            stream.into_response()
        }
    }
}

/// The JSON reply: the request's answer, with the status its error (if any) calls for.
async fn json_answer(mut rx: StreamRx) -> Response {
    loop {
        // Cancel safety: `recv` loses nothing when the stream is stopped instead.
        let next = tokio::select! {
            m = rx.rx.recv() => m,
            _ = rx.stop.stopped() => None,
        };
        match next {
            Some(Outbound { json, last: true }) => {
                return json_bytes_response(status_of(&json), json)
            }
            Some(_) => {}
            // Cancelled before any answer.
            None => return StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// The HTTP status of a stateless answer: the 2026-07-28 errors that describe the request
/// (header mismatch, missing capability, unsupported revision) are 400, an unknown method 404,
/// anything else 200 (an invalid-params error of a tool or resource, such as a resource that
/// does not exist, is the server's answer, not a malformed request).
fn status_of(json: &[u8]) -> StatusCode {
    // Only an error changes it; most answers are results and are not parsed again.
    if memchr::memmem::find(json, b"\"error\"").is_none() {
        return StatusCode::OK;
    }
    let code = serde_json::from_slice::<Value>(json)
        .ok()
        .and_then(|v| v.get("error")?.get("code")?.as_i64());
    match code {
        Some(HEADER_MISMATCH) => StatusCode::BAD_REQUEST,
        Some(c) if c == MISSING_CAPABILITY || c == crate::back::modern::UNSUPPORTED_VERSION => {
            StatusCode::BAD_REQUEST
        }
        Some(jsonrpc::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// The error for a request the front refused.
fn refusal(id: Value, r: Refusal) -> HttpError {
    let rpc = |status, code, message: String, data: Option<Value>| {
        HttpError::Rpc(RpcError {
            status,
            id: id.clone(),
            code,
            message,
            data,
        })
    };
    match r {
        Refusal::MissingMeta(key) => rpc(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_PARAMS,
            format!("Invalid params: _meta must carry {key}"),
            None,
        ),
        Refusal::UnsupportedVersion(v) => rpc(
            StatusCode::BAD_REQUEST,
            crate::back::modern::UNSUPPORTED_VERSION,
            "Unsupported protocol version".into(),
            Some(json!({"supported": stateless::SUPPORTED, "requested": v})),
        ),
        Refusal::UnknownMethod(m) => rpc(
            StatusCode::NOT_FOUND,
            jsonrpc::METHOD_NOT_FOUND,
            format!("Method not found: {m}"),
            None,
        ),
        Refusal::Routing(r) => super::refused(r),
        Refusal::NoSharedChild => rpc(
            StatusCode::SERVICE_UNAVAILABLE,
            jsonrpc::CHILD_EXITED,
            "Service Unavailable: with --isolation session every MCP server process belongs to a session; use initialize (a 2026-07-28 request has no session)".into(),
            None,
        ),
        Refusal::InvalidInput => rpc(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_PARAMS,
            "Invalid params: inputResponses must be an object whose values are the results of the input requests".into(),
            None,
        ),
        Refusal::BadState(crate::front::request_state::Invalid::OtherInstance) => rpc(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_PARAMS,
            "Invalid params: requestState was issued by another instance of the bridge (the part before its first dot names it); the load balancer must send the retry there".into(),
            None,
        ),
        Refusal::BadState(why) => rpc(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_PARAMS,
            format!("Invalid params: requestState is not valid here ({why:?}): retry the original request without it"),
            None,
        ),
    }
}

/// What a request's body says that its headers must mirror.
struct Stated<'a> {
    /// The revision its `_meta` names.
    version: Option<&'a str>,
    method: &'a str,
    /// The parameter `Mcp-Name` mirrors (`named_param`), when it is a string.
    name: Option<&'a str>,
}

/// 400 with -32020 (`HeaderMismatch`).
fn header_mismatch(id: Value, message: String) -> HttpError {
    HttpError::Rpc(RpcError {
        status: StatusCode::BAD_REQUEST,
        id,
        code: HEADER_MISMATCH,
        message,
        data: None,
    })
}

/// Checks the request-metadata headers against the body (`id`: the request's, for the error).
fn check_headers(
    headers: &HeaderMap,
    stated: &Stated<'_>,
    id: impl Fn() -> Value,
) -> Result<(), HttpError> {
    let mismatch = |message: String| header_mismatch(id(), message);
    let header = |name: &str| -> Result<Option<&str>, HttpError> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(Some)
                .map_err(|_| mismatch(format!("Header mismatch: {name} holds invalid characters"))),
        }
    };
    // A body without its `_meta` revision is refused by the front (-32602), not here.
    let version = stated.version;
    match header(VERSION_HEADER)? {
        None => {
            return Err(mismatch(
                "Header mismatch: MCP-Protocol-Version is required".into(),
            ))
        }
        Some(v) if version.is_some_and(|version| v != version) => {
            return Err(mismatch(format!(
                "Header mismatch: MCP-Protocol-Version {v:?} does not match the body's {version:?}"
            )))
        }
        Some(_) => {}
    }
    let method = stated.method;
    match header(METHOD_HEADER)? {
        None => return Err(mismatch("Header mismatch: Mcp-Method is required".into())),
        Some(m) if m != method => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method {m:?} does not match the body's {method:?}"
            )))
        }
        Some(_) => {}
    }
    let Some(param) = stateless::named_param(method) else {
        return Ok(());
    };
    let body = stated.name;
    let Some(raw) = header(NAME_HEADER)? else {
        return Err(mismatch(format!(
            "Header mismatch: Mcp-Name is required for {method}"
        )));
    };
    let name = crate::param_headers::decode(raw).ok_or_else(|| {
        mismatch("Header mismatch: Mcp-Name holds an invalid Base64 value".into())
    })?;
    if body != Some(&*name) {
        return Err(mismatch(format!(
            "Header mismatch: Mcp-Name {name:?} does not match the body's {param} {body:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Header pairs, the tool named in the body, and the error expected (a part of its message).
    type Case<'a> = (&'a [(&'static str, &'a str)], &'a str, Option<&'a str>);

    #[test]
    fn headers_must_mirror_the_body() {
        let ok = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
        ];
        let cases: &[Case<'_>] = &[
            (&[ok[0], ok[1], ("mcp-name", "echo")], "echo", None),
            (
                &[
                    ok[0],
                    ok[1],
                    ("mcp-name", "=?base64?SGVsbG8sIOS4lueVjA==?="),
                ],
                "Hello, 世界",
                None,
            ),
            (
                &[ok[1], ("mcp-name", "echo")],
                "echo",
                Some("MCP-Protocol-Version is required"),
            ),
            (
                &[
                    ("mcp-protocol-version", "2025-11-25"),
                    ok[1],
                    ("mcp-name", "echo"),
                ],
                "echo",
                Some("does not match"),
            ),
            (
                &[ok[0], ("mcp-name", "echo")],
                "echo",
                Some("Mcp-Method is required"),
            ),
            (
                &[ok[0], ("mcp-method", "tools/list"), ("mcp-name", "echo")],
                "echo",
                Some("Mcp-Method"),
            ),
            (&[ok[0], ok[1]], "echo", Some("Mcp-Name is required")),
            (
                &[ok[0], ok[1], ("mcp-name", "other")],
                "echo",
                Some("does not match"),
            ),
            (
                &[ok[0], ok[1], ("mcp-name", "=?base64?!!!?=")],
                "echo",
                Some("invalid Base64"),
            ),
        ];
        for (i, (pairs, name, want)) in cases.iter().enumerate() {
            let stated = Stated {
                version: Some("2026-07-28"),
                method: "tools/call",
                name: Some(name),
            };
            let got = check_headers(&headers(pairs), &stated, || json!(7));
            match (got, want) {
                (Ok(()), None) => {}
                (Err(HttpError::Rpc(e)), Some(w)) => {
                    assert_eq!(e.code, HEADER_MISMATCH, "case {i}");
                    assert_eq!(e.id, json!(7), "case {i}: the request's id is echoed");
                    assert!(e.message.contains(w), "case {i}: {}", e.message);
                }
                (got, _) => panic!("case {i}: {got:?}"),
            }
        }
    }
}
