//! `text/event-stream` bodies. A stream sends its prelude (the legacy `endpoint` event, a
//! priming event, frames being replayed), then one `message` event per outbound message, with
//! keep-alive comments while idle. It ends after a request's response (request streams), when
//! its senders are gone, or when `end` is cancelled (session end, shutdown). A resumable stream
//! whose client disconnects early is parked in its session for a `GET` with `Last-Event-ID`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use tokio_util::sync::CancellationToken;

use crate::router::{Outbound, StreamRx};
use crate::session::{Parked, Session};

const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// Frames kept per stream for replay after a reconnection.
pub const REPLAY_FRAMES: usize = 32;

/// How long a request's reply waits for its first message before the response headers go out
/// and the body streams. A response that arrives within it is sent as one complete body (one
/// write, no chunked framing): most tool calls take the fast path.
pub(super) const FIRST_MESSAGE_WAIT: Duration = Duration::from_millis(20);

/// One SSE event: optional `id`, optional `event` name, and `data` (a JSON message on one line).
pub fn frame(id: Option<(u64, u64)>, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 48);
    frame_into(&mut b, id, event, data);
    b.freeze()
}

/// Appends the frame `frame` makes to `b`.
fn frame_into(b: &mut BytesMut, id: Option<(u64, u64)>, event: Option<&str>, data: &[u8]) {
    frame_head_into(b, id, event);
    b.put_slice(data);
    b.put_slice(b"\n\n");
}

/// A payload this large is sent from its own buffer, between chunks that frame it.
const LARGE: usize = 64 * 1024;

/// One `message` event as sent. A large payload is never copied into a frame: it stays in its
/// own buffer and goes out between the event's head and its end.
#[derive(Clone)]
pub struct Frame {
    /// The whole event, or only its head (`id`, `event`, `data: `) when `payload` is not empty.
    head: Bytes,
    /// A large payload, sent after `head` and followed by the event's end.
    payload: Bytes,
}

impl Frame {
    /// The frame of message `json`.
    fn message(id: Option<(u64, u64)>, json: &Bytes) -> Frame {
        if json.len() < LARGE {
            return Frame {
                head: frame(id, Some("message"), json),
                payload: Bytes::new(),
            };
        }
        let mut head = BytesMut::with_capacity(48);
        frame_head_into(&mut head, id, Some("message"));
        Frame {
            head: head.freeze(),
            payload: json.clone(),
        }
    }

    /// Appends the buffers to send, in order, to `out`.
    fn push_to(self, out: &mut Vec<Bytes>) {
        out.push(self.head);
        if !self.payload.is_empty() {
            out.push(self.payload);
            out.push(Bytes::from_static(b"\n\n"));
        }
    }
}

/// A complete event-stream reply: `prelude`, then one `message` event (with `id`) carrying
/// `json`. A large payload is not copied: the body is sent as chunks around it.
pub fn complete_message(prelude: &[Bytes], id: Option<(u64, u64)>, json: Bytes) -> Response {
    let framing: usize = prelude.iter().map(Bytes::len).sum::<usize>() + 48;
    let mut head =
        BytesMut::with_capacity(framing + if json.len() < LARGE { json.len() } else { 0 });
    for p in prelude {
        head.put_slice(p);
    }
    frame_head_into(&mut head, id, Some("message"));
    if json.len() < LARGE {
        head.put_slice(&json);
        head.put_slice(b"\n\n");
        return event_stream_response(Body::from(head.freeze()));
    }
    let parts = VecDeque::from([head.freeze(), json, Bytes::from_static(b"\n\n")]);
    event_stream_response(Body::new(Chunks::new(parts)))
}

/// A complete body sent as the chunks it is made of: hyper writes them as they are, and
/// announces their total length.
struct Chunks {
    parts: VecDeque<Bytes>,
    left: u64,
}

impl Chunks {
    fn new(parts: VecDeque<Bytes>) -> Chunks {
        let left = parts.iter().map(|p| p.len() as u64).sum();
        Chunks { parts, left }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let next = self.parts.pop_front();
        if let Some(part) = &next {
            self.left -= part.len() as u64;
        }
        std::task::Poll::Ready(next.map(|p| Ok(http_body::Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// Appends a frame's lines up to `data: ` (its payload and the blank line follow).
fn frame_head_into(b: &mut BytesMut, id: Option<(u64, u64)>, event: Option<&str>) {
    if let Some((stream, seq)) = id {
        let mut digits = itoa::Buffer::new();
        b.put_slice(b"id: ");
        b.put_slice(digits.format(stream).as_bytes());
        b.put_slice(b"-");
        b.put_slice(digits.format(seq).as_bytes());
        b.put_slice(b"\n");
    }
    if let Some(event) = event {
        b.put_slice(b"event: ");
        b.put_slice(event.as_bytes());
        b.put_slice(b"\n");
    }
    b.put_slice(b"data: ");
}

/// Parses a `Last-Event-ID` of ours: `(stream, sequence)`.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (s, q) = id.split_once('-')?;
    Some((s.parse().ok()?, q.parse().ok()?))
}

/// Event ids of one resumable stream, and the frames kept for replay.
pub struct EventIds {
    session: Arc<Session>,
    stream: u64,
    next_seq: u64,
    ring: VecDeque<(u64, Frame)>,
}

impl EventIds {
    /// Ids for a new stream of `session`.
    pub fn new(session: Arc<Session>) -> EventIds {
        let stream = session.next_stream();
        EventIds {
            session,
            stream,
            next_seq: 1,
            ring: VecDeque::new(),
        }
    }

    /// The SSE polling priming event (2025-11-25): an id and empty data, so a client can
    /// resume even before the first message.
    pub fn priming(&self) -> Bytes {
        frame(Some((self.stream, 0)), None, b"")
    }

    /// The next event's id.
    fn next_id(&mut self) -> (u64, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (self.stream, seq)
    }

    /// The next message frame, kept for replay.
    fn message(&mut self, json: &Bytes) -> Frame {
        let id = self.next_id();
        let f = Frame::message(Some(id), json);
        let seq = id.1;
        if self.ring.len() == REPLAY_FRAMES {
            self.ring.pop_front();
        }
        self.ring.push_back((seq, f.clone()));
        f
    }
}

/// Everything a streaming body needs.
pub struct EventStream {
    /// Where messages come from (taken when the stream is parked).
    pub rx: Option<StreamRx>,
    /// Ends the stream when cancelled.
    pub end: CancellationToken,
    /// Interval of keep-alive comments.
    pub keep_alive: Duration,
    /// Frames sent before any message.
    pub prelude: Vec<Bytes>,
    /// Responses after which the stream ends (request streams: 1, or a batch's size); 0 for
    /// streams that only end with their session.
    pub responses: usize,
    /// Event ids, for resumable streams (parked on early disconnect).
    pub ids: Option<EventIds>,
    /// Dropped with the body (e.g. a guard that ends a legacy session): never read, only
    /// owned.
    #[allow(dead_code)]
    pub on_drop: Option<Box<dyn Send>>,
}

struct State {
    s: EventStream,
    keep_alive: tokio::time::Interval,
    done: bool,
    /// The rest of a large frame, in reverse order (the next to send is last).
    later: Vec<Bytes>,
}

impl State {
    /// Small frames gathered into one chunk at most.
    const BATCH: usize = 64 * 1024;

    /// The chunk for message `m` and the messages queued behind it: one write for all that is
    /// ready (a keep-alive comment may still come between messages; it costs nothing).
    /// A large message goes out as its parts instead, without batching.
    fn frames(&mut self, m: Outbound) -> Bytes {
        let first = self.frame(m);
        if !first.payload.is_empty() {
            return self.send_later(first);
        }
        let first = first.head;
        let mut chunk: Option<BytesMut> = None;
        while !self.done && chunk.as_ref().map_or(first.len(), BytesMut::len) < Self::BATCH {
            let Some(next) = self.s.rx.as_mut().and_then(|rx| rx.rx.try_recv().ok()) else {
                break;
            };
            let frame = self.frame(next);
            let chunk = chunk.get_or_insert_with(|| BytesMut::from(&first[..]));
            if !frame.payload.is_empty() {
                chunk.put_slice(&self.send_later(frame));
                break;
            }
            chunk.put_slice(&frame.head);
        }
        chunk.map_or(first, BytesMut::freeze)
    }

    /// The first buffer of `frame`; the others wait in `later`.
    fn send_later(&mut self, frame: Frame) -> Bytes {
        let mut parts = Vec::with_capacity(3);
        frame.push_to(&mut parts);
        parts.reverse();
        let first = parts.pop().unwrap_or_default();
        self.later.extend(parts);
        first
    }

    /// One message's frame; counts the responses a request stream still waits for.
    fn frame(&mut self, m: Outbound) -> Frame {
        if m.last && self.s.responses > 0 {
            self.s.responses -= 1;
            self.done = self.s.responses == 0;
        }
        self.s.frame(&m)
    }

    /// Marks the stream as ended normally (nothing to park) and ends the body.
    fn finish(&mut self) -> Option<(Result<Bytes, Infallible>, State)> {
        self.done = true;
        None
    }
}

impl Drop for State {
    /// A stream dropped before its end lost its client: park it for resumption.
    fn drop(&mut self) {
        if self.done || self.s.end.is_cancelled() {
            return;
        }
        if let (Some(ids), Some(rx)) = (self.s.ids.take(), self.s.rx.take()) {
            let parked = Parked {
                stream: ids.stream,
                rx,
                ring: ids.ring,
                next_seq: ids.next_seq,
                responses: self.s.responses,
            };
            tracing::debug!(session = %ids.session.id, stream = parked.stream, "stream parked");
            ids.session.park(parked);
        }
    }
}

impl EventStream {
    /// A stream of `rx` with nothing before it, no ids, ending when `end` is cancelled.
    pub fn new(rx: StreamRx, end: CancellationToken, keep_alive: Duration) -> Self {
        EventStream {
            rx: Some(rx),
            end,
            keep_alive,
            prelude: Vec::new(),
            responses: 0,
            ids: None,
            on_drop: None,
        }
    }

    /// Resumes a parked stream after the frame `after` the client saw last.
    pub fn resume(session: Arc<Session>, p: Parked, after: u64, keep_alive: Duration) -> Self {
        let mut prelude = Vec::new();
        for (_, f) in p.ring.iter().filter(|(seq, _)| *seq > after) {
            f.clone().push_to(&mut prelude);
        }
        let end = session.cancel.clone();
        let ids = EventIds {
            session,
            stream: p.stream,
            next_seq: p.next_seq,
            ring: p.ring,
        };
        EventStream {
            prelude,
            responses: p.responses,
            ids: Some(ids),
            ..EventStream::new(p.rx, end, keep_alive)
        }
    }

    fn frame(&mut self, m: &Outbound) -> Frame {
        match &mut self.ids {
            Some(ids) => ids.message(&m.json),
            None => Frame::message(None, &m.json),
        }
    }

    /// The streaming response.
    pub fn into_response(mut self) -> Response {
        // (No placeholder channel: `rx` is an `Option`, so parking takes it out of the state.)
        let start = tokio::time::Instant::now() + self.keep_alive;
        let mut keep_alive = tokio::time::interval_at(start, self.keep_alive);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.prelude.reverse();
        let state = State {
            s: self,
            keep_alive,
            done: false,
            later: Vec::new(),
        };
        let body = stream::unfold(state, |mut st| async move {
            if let Some(f) = st.s.prelude.pop().or_else(|| st.later.pop()) {
                return Some((Ok::<_, Infallible>(f), st));
            }
            if st.done {
                return None;
            }
            let rx = st.s.rx.as_mut()?;
            // Cancel safety: `recv` and `tick` lose nothing when another branch wins; `biased`
            // drains queued messages before noticing the end.
            let chunk = tokio::select! {
                biased;
                m = rx.rx.recv() => match m {
                    Some(m) => st.frames(m),
                    None => return st.finish(),
                },
                _ = st.s.end.cancelled() => return st.finish(),
                // The client stopped reading: end now, nothing to park.
                _ = rx.stop.stopped() => return st.finish(),
                _ = st.keep_alive.tick() => Bytes::from_static(KEEP_ALIVE_COMMENT),
            };
            Some((Ok(chunk), st))
        });
        event_stream_response(Body::from_stream(body))
    }
}

/// Whether streams of this session start with a priming event (revision 2025-11-25 on; older
/// clients would try to parse its empty data as JSON).
pub fn primes(session: &Session) -> bool {
    session.protocol_version() >= "2025-11-25"
}

/// The reply to one request of a Streamable HTTP session: complete when its response comes
/// quickly (one JSON body when `json` allows it, else one event), streaming otherwise
/// (progress, server requests, slow calls).
pub async fn request_reply(
    session: &Arc<Session>,
    mut rx: StreamRx,
    responses: usize,
    keep_alive: Duration,
    json: bool,
) -> Response {
    let first = tokio::select! {
        biased;
        m = rx.rx.recv() => m,
        _ = tokio::time::sleep(FIRST_MESSAGE_WAIT) => None,
    };
    let first = match first {
        // Complete at once with nothing before it: no stream, ids or replay to keep.
        Some(m) if json && m.last && responses == 1 => {
            return crate::error::json_bytes_response(StatusCode::OK, m.json);
        }
        first => first,
    };
    let mut ids = EventIds::new(session.clone());
    let mut prelude = Vec::with_capacity(2);
    if primes(session) {
        prelude.push(ids.priming());
    }
    let mut responses = responses;
    match first {
        Some(m) if m.last && responses == 1 => {
            return complete_message(&prelude, Some(ids.next_id()), m.json);
        }
        Some(m) => {
            responses -= usize::from(m.last);
            ids.message(&m.json).push_to(&mut prelude);
        }
        // Cancelled before anything was sent: an empty stream.
        None if rx.rx.is_closed() && rx.rx.is_empty() => return complete(prelude),
        None => {}
    }
    EventStream {
        prelude,
        responses,
        ids: Some(ids),
        ..EventStream::new(rx, session.cancel.clone(), keep_alive)
    }
    .into_response()
}

/// A complete SSE response holding the given frames.
pub fn complete(mut frames: Vec<Bytes>) -> Response {
    let body = match frames.len() {
        1 => frames.pop().unwrap_or_default(),
        _ => frames.concat().into(),
    };
    event_stream_response(Body::from(body))
}

fn event_stream_response(body: Body) -> Response {
    let mut resp = crate::error::empty_response(StatusCode::OK);
    *resp.body_mut() = body;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::stream_channel;
    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn idle_streams_get_keep_alive_comments_and_end_with_their_token() {
        let (tx, rx) = stream_channel(4);
        let end = CancellationToken::new();
        let resp = EventStream::new(rx, end.clone(), Duration::from_secs(15)).into_response();
        let mut body = resp.into_body().into_data_stream();
        // Nothing before the interval; a comment after it.
        let quiet = tokio::time::timeout(Duration::from_secs(14), body.next()).await;
        assert!(quiet.is_err(), "no keep-alive before 15 s");
        let ka = body.next().await.unwrap().unwrap();
        assert_eq!(&ka[..], KEEP_ALIVE_COMMENT);
        tx.try_send(Outbound {
            json: Bytes::from_static(b"{}"),
            last: false,
        })
        .unwrap();
        assert_eq!(
            &body.next().await.unwrap().unwrap()[..],
            b"event: message\ndata: {}\n\n"
        );
        end.cancel();
        assert!(
            body.next().await.is_none(),
            "the stream ends when its token is cancelled"
        );
    }

    /// A large message goes out from its own buffer (the very allocation it came in), between
    /// its frame's head and end; small ones queued with it are batched before it. The stream
    /// ends after the response it waited for.
    #[tokio::test]
    async fn large_messages_are_sent_without_a_copy() {
        let (tx, rx) = stream_channel(4);
        let big = Bytes::from(vec![b'x'; LARGE]);
        let small = |json: &'static [u8], last| Outbound {
            json: Bytes::from_static(json),
            last,
        };
        tx.try_send(small(b"{}", false)).unwrap();
        tx.try_send(Outbound {
            json: big.clone(),
            last: true,
        })
        .unwrap();
        let stream = EventStream {
            responses: 1,
            ..EventStream::new(rx, CancellationToken::new(), Duration::from_secs(15))
        };
        let body = stream.into_response().into_body().into_data_stream();
        let chunks: Vec<Bytes> = body.map(Result::unwrap).collect().await;
        assert_eq!(
            chunks.len(),
            3,
            "head (with the batched small frame), payload, end"
        );
        assert_eq!(
            &chunks[0][..],
            b"event: message\ndata: {}\n\nevent: message\ndata: "
        );
        assert_eq!(
            chunks[1].as_ptr(),
            big.as_ptr(),
            "the payload is not copied"
        );
        assert_eq!(&chunks[2][..], b"\n\n");
    }

    #[test]
    fn frames_and_ids() {
        assert_eq!(
            &frame(Some((3, 7)), Some("message"), b"{}")[..],
            b"id: 3-7\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(
            &frame(None, Some("endpoint"), b"/m?s=1")[..],
            b"event: endpoint\ndata: /m?s=1\n\n"
        );
        assert_eq!(&frame(Some((1, 0)), None, b"")[..], b"id: 1-0\ndata: \n\n");
        assert_eq!(parse_event_id("3-7"), Some((3, 7)));
        for bad in ["", "3", "a-1", "1-b", "-1", "1-"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }
}
