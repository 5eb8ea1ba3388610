//! What a POST's `Accept` and `Content-Type` headers allow.

use axum::http::{header, HeaderMap};

use crate::error::HttpError;

/// How a POST that carries a request may be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Only `text/event-stream`: related messages, then the response.
    Sse,
    /// Either, as the reply needs: one `application/json` body when the response is the first
    /// message and comes at once (most calls: nothing to frame, and the cheapest reply for a
    /// client to read), an event stream when messages come before it or it is slow.
    Either,
    /// Only one `application/json` body holding the response (related messages are left out).
    Json,
}

impl ReplyMode {
    /// Whether messages related to the request (progress, logs, server requests) can reach
    /// the client on this reply.
    pub fn streams(self) -> bool {
        self != Self::Json
    }
}

/// The media ranges `Accept` lists, as written (compare them with `eq_ignore_ascii_case`, no
/// lowercased copy per range and request), each with its quality in thousandths.
fn media_ranges(headers: &HeaderMap) -> impl Iterator<Item = (&str, u16)> + '_ {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|r| {
            let (range, params) = r.split_once(';').unwrap_or((r, ""));
            (range.trim(), quality_param(params))
        })
}

/// The `q` parameter among a range's parameters, in thousandths (RFC 9110, 12.4.2); absent or
/// malformed reads as 1.
fn quality_param(params: &str) -> u16 {
    let Some(q) = params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("q").then(|| value.trim())
    }) else {
        return 1000;
    };
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    let digits_ok = fraction.len() <= 3 && fraction.bytes().all(|b| b.is_ascii_digit());
    match (whole, digits_ok) {
        ("0", true) => fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |n, d| n * 10 + u16::from(d - b'0')),
        _ => 1000,
    }
}

/// The quality `Accept` gives a media type, in thousandths: that of the most specific listed
/// range matching it (RFC 9110, 12.5.1); `ranges` go from the type itself to the widest one
/// allowed to stand for it. 0 when none is listed or the type is refused (`q=0`).
fn quality(headers: &HeaderMap, ranges: &[&str]) -> u16 {
    let mut best: Option<(usize, u16)> = None;
    for (r, q) in media_ranges(headers) {
        let Some(rank) = ranges.iter().position(|n| r.eq_ignore_ascii_case(n)) else {
            continue;
        };
        if best.map_or(true, |(b, bq)| rank < b || (rank == b && q > bq)) {
            best = Some((rank, q));
        }
    }
    best.map_or(0, |(_, q)| q)
}

/// The reply mode for a POST: `Either` when the client takes `text/event-stream` and
/// `application/json` alike (the transports spec has clients list both), SSE when it takes
/// only the former or prefers it by its quality, JSON when it takes only `application/json`
/// (or anything, or sends no `Accept`, as curl users do). An event stream is only sent when
/// named: `*/*` stands for JSON.
///
/// # Errors
/// `NotAcceptable` when `Accept` allows neither.
pub fn post_reply_mode(headers: &HeaderMap) -> Result<ReplyMode, HttpError> {
    let Some(first) = headers.get(header::ACCEPT) else {
        return Ok(ReplyMode::Json);
    };
    // What the SDK clients send on every request, known without a parse: both types at
    // quality 1, which no further `Accept` field can change (a type's best quality counts).
    // A test checks that the parse agrees.
    if BOTH_ALIKE
        .iter()
        .any(|b| first.as_bytes().eq_ignore_ascii_case(b))
    {
        return Ok(ReplyMode::Either);
    }
    parsed_reply_mode(headers)
}

/// `Accept` values that take both reply types alike.
const BOTH_ALIKE: [&[u8]; 2] = [
    b"application/json, text/event-stream",
    b"text/event-stream, application/json",
];

/// `post_reply_mode` from the media ranges and their qualities.
fn parsed_reply_mode(headers: &HeaderMap) -> Result<ReplyMode, HttpError> {
    let sse = quality(headers, &["text/event-stream"]);
    let json = quality(headers, &["application/json", "application/*", "*/*"]);
    match (sse, json) {
        (0, 0) => Err(HttpError::NotAcceptable(
            "application/json or text/event-stream",
        )),
        (_, 0) => Ok(ReplyMode::Sse),
        (0, _) => Ok(ReplyMode::Json),
        (s, j) if s > j => Ok(ReplyMode::Sse),
        _ => Ok(ReplyMode::Either),
    }
}

/// Whether a GET may be answered with an event stream.
///
/// # Errors
/// `NotAcceptable` when `Accept` is present and excludes `text/event-stream`.
pub fn check_get_accept(headers: &HeaderMap) -> Result<(), HttpError> {
    if headers.get(header::ACCEPT).is_none()
        || quality(headers, &["text/event-stream", "text/*", "*/*"]) > 0
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
                Some(ReplyMode::Either),
            ),
            (Some("text/event-stream, */*"), Some(ReplyMode::Either)),
            (Some("text/event-stream"), Some(ReplyMode::Sse)),
            (Some("text/event-stream, text/html"), Some(ReplyMode::Sse)),
            // Qualities: a stream preferred, a type refused, the most specific range ruling.
            (
                Some("text/event-stream, application/json;q=0.5"),
                Some(ReplyMode::Sse),
            ),
            (
                Some("application/json;q=0.5, text/event-stream;q=0.5"),
                Some(ReplyMode::Either),
            ),
            (
                Some("application/json;q=0, text/event-stream"),
                Some(ReplyMode::Sse),
            ),
            (Some("*/*, application/json;q=0"), None),
            (Some("text/event-stream;q=0, */*"), Some(ReplyMode::Json)),
            (Some("application/json; Q=0.000"), None),
            (Some("application/json;q=bad"), Some(ReplyMode::Json)),
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
    fn the_values_known_without_a_parse_parse_the_same() {
        for known in BOTH_ALIKE {
            let accept = std::str::from_utf8(known).unwrap();
            for value in [accept.to_owned(), accept.to_uppercase()] {
                let h = with_accept(Some(&value));
                assert_eq!(
                    parsed_reply_mode(&h).ok(),
                    Some(ReplyMode::Either),
                    "{value}"
                );
                assert_eq!(post_reply_mode(&h).ok(), Some(ReplyMode::Either), "{value}");
            }
        }
        // Whatever a further field says of them, both keep quality 1.
        for more in ["text/event-stream;q=0", "application/json;q=0", "*/*;q=0"] {
            let mut h = with_accept(Some("application/json, text/event-stream"));
            h.append(header::ACCEPT, HeaderValue::from_static(more));
            assert_eq!(
                parsed_reply_mode(&h).ok(),
                Some(ReplyMode::Either),
                "{more}"
            );
        }
    }

    #[test]
    fn get_accept() {
        assert!(check_get_accept(&with_accept(Some("text/event-stream"))).is_ok());
        assert!(check_get_accept(&with_accept(None)).is_ok());
        assert!(check_get_accept(&with_accept(Some("application/json"))).is_err());
        assert!(check_get_accept(&with_accept(Some("TEXT/*; q=0.5"))).is_ok());
        assert!(check_get_accept(&with_accept(Some("*/*, text/event-stream;q=0"))).is_err());
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
