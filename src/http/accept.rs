//! What a POST's `Accept` and `Content-Type` headers allow.

use axum::http::{header, HeaderMap};

use crate::error::HttpError;

/// How a POST that carries a request will be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// `text/event-stream`: related messages, then the response.
    Sse,
    /// One `application/json` body holding the response.
    Json,
}

/// The media ranges `Accept` lists, without their parameters, as written: compare them with
/// `is_one_of`, which ignores case (no lowercased copy per range and request).
fn media_ranges(headers: &HeaderMap) -> impl Iterator<Item = &str> + '_ {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|r| r.split(';').next().unwrap_or("").trim())
}

/// Whether media range `r` is one of `names` (lowercase), ignoring case.
fn is_one_of(r: &str, names: &[&str]) -> bool {
    names.iter().any(|n| r.eq_ignore_ascii_case(n))
}

/// The reply mode for a POST: SSE when the client lists `text/event-stream`, JSON when it
/// accepts `application/json` (or anything, or sends no `Accept`, as curl users do).
///
/// # Errors
/// `NotAcceptable` when `Accept` allows neither.
pub fn post_reply_mode(headers: &HeaderMap) -> Result<ReplyMode, HttpError> {
    if headers.get(header::ACCEPT).is_none() {
        return Ok(ReplyMode::Json);
    }
    let mut json = false;
    for r in media_ranges(headers) {
        if is_one_of(r, &["text/event-stream"]) {
            return Ok(ReplyMode::Sse);
        }
        json |= is_one_of(r, &["application/json", "application/*", "*/*"]);
    }
    if json {
        Ok(ReplyMode::Json)
    } else {
        Err(HttpError::NotAcceptable(
            "application/json or text/event-stream",
        ))
    }
}

/// Whether a GET may be answered with an event stream.
///
/// # Errors
/// `NotAcceptable` when `Accept` is present and excludes `text/event-stream`.
pub fn check_get_accept(headers: &HeaderMap) -> Result<(), HttpError> {
    if headers.get(header::ACCEPT).is_none()
        || media_ranges(headers).any(|r| is_one_of(r, &["text/event-stream", "text/*", "*/*"]))
    {
        Ok(())
    } else {
        Err(HttpError::NotAcceptable("text/event-stream"))
    }
}

/// Checks that a POST body is declared as JSON.
///
/// # Errors
/// `UnsupportedMediaType` for any other `Content-Type`, or none.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match ct.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(HttpError::UnsupportedMediaType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_accept(v: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = v {
            h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn post_modes() {
        let cases = [
            (
                Some("application/json, text/event-stream"),
                Some(ReplyMode::Sse),
            ),
            (Some("text/event-stream"), Some(ReplyMode::Sse)),
            (Some("application/json"), Some(ReplyMode::Json)),
            (Some("application/json;q=0.9"), Some(ReplyMode::Json)),
            (Some("*/*"), Some(ReplyMode::Json)),
            (None, Some(ReplyMode::Json)),
            (Some("text/html"), None),
            // Media types are case-insensitive (RFC 9110 section 8.3.1).
            (Some("Text/Event-Stream"), Some(ReplyMode::Sse)),
            (Some("APPLICATION/JSON ; q=1"), Some(ReplyMode::Json)),
            (Some("Application/*"), Some(ReplyMode::Json)),
        ];
        for (accept, want) in cases {
            assert_eq!(
                post_reply_mode(&with_accept(accept)).ok(),
                want,
                "{accept:?}"
            );
        }
    }

    #[test]
    fn get_accept() {
        assert!(check_get_accept(&with_accept(Some("text/event-stream"))).is_ok());
        assert!(check_get_accept(&with_accept(None)).is_ok());
        assert!(check_get_accept(&with_accept(Some("application/json"))).is_err());
        assert!(check_get_accept(&with_accept(Some("TEXT/*; q=0.5"))).is_ok());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(check_content_type(&h).is_err());
    }
}
