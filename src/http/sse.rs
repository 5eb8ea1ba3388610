//! Turns a stream receiver into a `text/event-stream` body: one `message` event per outbound
//! message, keep-alive comments while idle, and the end of the body after a request's response,
//! when the sender side goes away, or when `end` is cancelled (session end, shutdown).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::router::Outbound;

const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// One SSE `message` event carrying `json`.
pub fn frame(json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 24);
    b.put_slice(b"event: message\ndata: ");
    b.put_slice(json);
    b.put_slice(b"\n\n");
    b.freeze()
}

/// How long a request's reply waits for its first message before the response headers go out
/// and the body streams. A response that arrives within it is sent as one complete body (one
/// write, no chunked framing): most tool calls take the fast path.
const FIRST_MESSAGE_WAIT: Duration = Duration::from_millis(20);

/// The SSE reply to one request: complete when its response comes quickly, streaming
/// otherwise (progress, server requests, slow calls).
pub async fn request_reply(
    mut rx: mpsc::Receiver<Outbound>,
    end: CancellationToken,
    keep_alive: Duration,
) -> Response {
    let first = tokio::select! {
        biased;
        m = rx.recv() => m,
        _ = tokio::time::sleep(FIRST_MESSAGE_WAIT) => return response(rx, end, keep_alive, None),
    };
    match first {
        Some(m) if m.last => complete(&[&m.json]),
        Some(m) => response(rx, end, keep_alive, Some(frame(&m.json))),
        // Cancelled before anything was sent: an empty stream.
        None => complete(&[]),
    }
}

struct State {
    rx: mpsc::Receiver<Outbound>,
    /// A frame to send before anything from `rx`.
    first: Option<Bytes>,
    end: CancellationToken,
    keep_alive: tokio::time::Interval,
    done: bool,
}

/// A streaming SSE response fed by `rx`, starting with `first` if given.
pub fn response(
    rx: mpsc::Receiver<Outbound>,
    end: CancellationToken,
    keep_alive: Duration,
    first: Option<Bytes>,
) -> Response {
    let start = tokio::time::Instant::now() + keep_alive;
    let mut keep_alive = tokio::time::interval_at(start, keep_alive);
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        rx,
        first,
        end,
        keep_alive,
        done: false,
    };
    let body = stream::unfold(state, |mut s| async move {
        if let Some(first) = s.first.take() {
            return Some((Ok(first), s));
        }
        if s.done {
            return None;
        }
        // Cancel safety: `recv` and `tick` lose nothing when another branch wins; `biased`
        // drains queued messages before noticing the end.
        let chunk = tokio::select! {
            biased;
            m = s.rx.recv() => {
                let m = m?;
                s.done = m.last;
                s.keep_alive.reset();
                frame(&m.json)
            }
            _ = s.end.cancelled() => return None,
            _ = s.keep_alive.tick() => Bytes::from_static(KEEP_ALIVE_COMMENT),
        };
        Some((Ok::<_, Infallible>(chunk), s))
    });
    event_stream_response(Body::from_stream(body))
}

/// A complete SSE response holding the given events (an answer the bridge gives itself).
pub fn complete(events: &[&[u8]]) -> Response {
    let body: Vec<u8> = events.iter().flat_map(|e| frame(e).to_vec()).collect();
    event_stream_response(Body::from(body))
}

fn event_stream_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Ask reverse proxies (nginx) not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
