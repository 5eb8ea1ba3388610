//! The plain requests of a connection, served here without hyper: a `GET` (how every event
//! stream opens) and a `POST` whose whole body is announced by `Content-Length` (how every
//! MCP message comes). Anything else goes to hyper with the bytes read so far, and hyper keeps
//! the connection until a `GET` after an idle pause hands it back (`connection.rs`).
//!
//! Why: an event stream stays open for as long as its session lives, mostly idle. hyper keeps
//! an 8 KiB read buffer and an 8 KiB write buffer for every connection for all of its life, so
//! 10,000 idle sessions would hold 160 MiB in buffers that carry a few keep-alive comments an
//! hour. Here a head is read into a buffer that is freed once the request is served, and a
//! response is written from the body's own bytes. And a `POST` is most of the traffic: here it
//! costs one read, a parse whose header values share the read's buffer, and one write of the
//! head and the whole body together, without hyper's dispatcher and body channel (about a
//! tenth of the bridge's CPU per call, by `perf`).
//!
//! Only the simple case is taken: HTTP/1.1, a head of at most `MAX_HEAD` bytes that parses,
//! no `Transfer-Encoding`, `Expect` or `Upgrade`; a `GET` without a body; a `POST` with one
//! `Content-Length` of at most `MAX_BODY`. Anything else is hyper's, so the answers to odd
//! requests stay hyper's.

use std::io;

use axum::body::{Body, Bytes};
use axum::http::{
    header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The longest head taken here (a longer one is hyper's, with its own limits).
const MAX_HEAD: usize = 16 * 1024;
/// The longest `POST` body taken here (a longer one is hyper's, read as it streams in). (With
/// 1 MiB, calls with 64 KiB texts measured no faster, at more CPU.)
const MAX_BODY: usize = 64 * 1024;
/// The most headers taken here.
const MAX_HEADERS: usize = 64;
/// What is read from the client at a time while a response streams: a client sends nothing
/// then, normally; the read is there to notice that it went away.
const PROBE: usize = 64;

/// What the first bytes of a connection (or of its next request) turned out to be.
pub(super) enum First {
    /// A plain request, parsed (a `POST` with its body), and the bytes that came after it.
    Plain(Box<Request<Body>>, Vec<u8>),
    /// Something for hyper, with the bytes read so far.
    Other(Vec<u8>),
    /// The client closed (or the read failed) before sending anything useful.
    Gone,
}

/// Reads (after `buf`, the bytes read already) until the next request is known to be a plain
/// one and has come whole, or is known not to be.
pub(super) async fn read_first<I: AsyncRead + Unpin>(io: &mut I, mut buf: Vec<u8>) -> First {
    // The request's length once its head has come and was found plain.
    let mut whole = None;
    loop {
        if whole.is_none() && (buf.len() >= 5 || !could_be_plain(&buf)) {
            if !buf.starts_with(b"GET ") && !buf.starts_with(b"POST ") {
                return First::Other(buf);
            }
            match measure(&buf) {
                Measured::Plain(len) => whole = Some(len),
                Measured::NotPlain => return First::Other(buf),
                Measured::Partial if buf.len() >= MAX_HEAD => return First::Other(buf),
                Measured::Partial => {}
            }
        }
        if let Some(len) = whole.filter(|len| buf.len() >= *len) {
            return build(buf, len);
        }
        // Grows as a request arrives; 1 KiB covers the usual head and body in one read.
        let want = match whole {
            Some(len) => len - buf.len(),
            None if buf.is_empty() => 1024,
            None => buf.len(),
        };
        buf.reserve(want);
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) if buf.is_empty() => return First::Gone,
            // Cut short: hyper says what is wrong with it.
            Ok(0) | Err(_) => return First::Other(buf),
            Ok(_) => {}
        }
    }
}

/// Whether `buf`, a prefix of a request, may still begin a `GET` or a `POST`.
fn could_be_plain(buf: &[u8]) -> bool {
    b"GET ".starts_with(buf) || b"POST ".starts_with(buf)
}

enum Measured {
    /// A plain request of this many bytes, head and body.
    Plain(usize),
    NotPlain,
    Partial,
}

/// Parses a head to decide whether the request is plain, and how long it is.
fn measure(buf: &[u8]) -> Measured {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Measured::Partial,
        Err(_) => return Measured::NotPlain,
    };
    match body_length(&head) {
        Some(body) => Measured::Plain(len + body),
        None => Measured::NotPlain,
    }
}

/// The body length of a request this module serves; `None` for hyper's.
fn body_length(head: &httparse::Request<'_, '_>) -> Option<usize> {
    if head.version != Some(1) {
        return None;
    }
    let post = match head.method? {
        "GET" => false,
        "POST" => true,
        _ => return None,
    };
    let mut length = None;
    for h in head.headers.iter() {
        let name = h.name.as_bytes();
        let refused = [b"transfer-encoding".as_slice(), b"expect", b"upgrade"];
        if refused.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return None;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let digits = h.value;
            let plain =
                !digits.is_empty() && digits.len() <= 7 && digits.iter().all(u8::is_ascii_digit);
            // Twice, or not plain digits: hyper's to refuse.
            if length.is_some() || !plain {
                return None;
            }
            length = Some(digits.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')));
        }
    }
    match (post, length) {
        (false, None | Some(0)) => Some(0),
        (true, Some(n)) if n <= MAX_BODY => Some(n),
        _ => None,
    }
}

/// The request in the first `len` bytes of `buf` (measured plain); the bytes after it.
/// Header values and the body are slices of one buffer, not copies.
fn build(buf: Vec<u8>, len: usize) -> First {
    let mut bytes = Bytes::from(buf);
    let rest = bytes.split_off(len).to_vec();
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = head.parse(&bytes) else {
        return First::Other([bytes.to_vec(), rest].concat());
    };
    match request(&head, &bytes, head_len) {
        Some(req) => First::Plain(Box::new(req), rest),
        None => First::Other([bytes.to_vec(), rest].concat()),
    }
}

/// The request parsed from `head`, borrowing from `bytes`, with the body after `head_len`.
fn request(
    head: &httparse::Request<'_, '_>,
    bytes: &Bytes,
    head_len: usize,
) -> Option<Request<Body>> {
    let method = match head.method? {
        "POST" => Method::POST,
        _ => Method::GET,
    };
    let uri = Uri::from_maybe_shared(bytes.slice_ref(head.path?.as_bytes())).ok()?;
    let body = bytes.slice(head_len..);
    let mut req = Request::new(if body.is_empty() {
        Body::empty()
    } else {
        Body::from(body)
    });
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    headers.reserve(head.headers.len());
    for h in head.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(bytes.slice_ref(h.value)).ok()?;
        headers.append(name, value);
    }
    Some(req)
}

/// How a response written here ended.
pub(super) enum Ended {
    /// Completely, and the connection may carry more requests (the bytes that came meanwhile).
    KeepAlive(Vec<u8>),
    /// The connection is done: the client left, a write failed, the body failed, or the
    /// client asked to close.
    Close,
}

/// Writes `resp` for `req` and watches the client while it streams.
pub(super) async fn respond<I: AsyncRead + AsyncWrite + Unpin>(
    io: &mut I,
    close_requested: bool,
    resp: Response<Body>,
    mut rest: Vec<u8>,
) -> Ended {
    let (parts, mut body) = resp.into_parts();
    // A 1xx, 204 or 304 response has no body and says nothing of one (RFC 9110, 8.6 and 6.4.1).
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if bodiless {
        body = Body::empty();
    }
    let length = body.size_hint().exact();
    let mut head = Vec::with_capacity(256);
    let mut digits = itoa::Buffer::new();
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if matches!(
            *name,
            header::CONNECTION | header::TRANSFER_ENCODING | header::CONTENT_LENGTH
        ) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        head.extend_from_slice(b"date: ");
        date::append(&mut head);
        head.extend_from_slice(b"\r\n");
    }
    match length {
        _ if bodiless => {}
        Some(n) => {
            head.extend_from_slice(b"content-length: ");
            head.extend_from_slice(digits.format(n).as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if close_requested {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    drop(parts);
    // A body that is ready whole (most replies) goes out with the head, in one write.
    if let (Some(n), false) = (length, bodiless) {
        let ready = futures_util::FutureExt::now_or_never(std::future::poll_fn(|cx| {
            std::pin::Pin::new(&mut body).poll_frame(cx)
        }));
        if let Some(Some(Ok(frame))) = ready {
            let data = frame.into_data().unwrap_or_default();
            if data.len() as u64 == n {
                let written = write_all_parts(io, &[&head, &data]).await;
                if written.is_err() || io.flush().await.is_err() {
                    return Ended::Close;
                }
                return match close_requested {
                    true => Ended::Close,
                    false => Ended::KeepAlive(rest),
                };
            }
            // Not the whole body: the head and this part, then the rest below.
            let written = write_all_parts(io, &[&head, &data]).await;
            if written.is_err() || io.flush().await.is_err() {
                return Ended::Close;
            }
            head.clear();
        }
    }
    if !head.is_empty() && (io.write_all(&head).await.is_err() || io.flush().await.is_err()) {
        return Ended::Close;
    }
    drop(head);
    let chunked = length.is_none();
    loop {
        // Cancel safety: `frame` keeps no state of its own (the body does), and the probe's
        // read loses nothing: what it read is in `rest`.
        let frame = tokio::select! {
            frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)) => frame,
            gone = probe(io, &mut rest) => {
                if gone {
                    return Ended::Close;
                }
                continue;
            }
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers: not sent (no client here asks for them).
                Err(_) => continue,
            },
            // The body failed: the response is cut off, as hyper does, and the connection closed.
            Some(Err(_)) => return Ended::Close,
        };
        if data.is_empty() {
            continue;
        }
        let written = match chunked {
            true => write_chunk(io, &data).await,
            false => io.write_all(&data).await,
        };
        if written.is_err() || io.flush().await.is_err() {
            return Ended::Close;
        }
    }
    if chunked && (io.write_all(b"0\r\n\r\n").await.is_err() || io.flush().await.is_err()) {
        return Ended::Close;
    }
    match close_requested {
        true => Ended::Close,
        false => Ended::KeepAlive(rest),
    }
}

/// One chunk of a chunked body: its size line, the bytes (not copied), CRLF; one write
/// call when the socket takes it all.
async fn write_chunk<I: AsyncWrite + Unpin>(io: &mut I, data: &[u8]) -> io::Result<()> {
    let mut size = [0u8; 18];
    let digits = hex(data.len(), &mut size);
    write_all_parts(io, &[&size[..digits], data, b"\r\n"]).await
}

/// Writes `parts` in order, with vectored writes: one call when the socket takes it all.
async fn write_all_parts<I: AsyncWrite + Unpin>(io: &mut I, parts: &[&[u8]]) -> io::Result<()> {
    let (mut part, mut offset) = (0, 0);
    while part < parts.len() {
        let mut slices = [io::IoSlice::new(&[]); 3];
        for (k, slice) in slices.iter_mut().enumerate() {
            *slice = match parts.get(part + k) {
                Some(p) if k == 0 => io::IoSlice::new(&p[offset..]),
                Some(p) => io::IoSlice::new(p),
                None => io::IoSlice::new(&[]),
            };
        }
        let mut n = io.write_vectored(&slices).await?;
        if n == 0 && parts[part..].iter().any(|p| !p.is_empty()) {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while part < parts.len() && n >= parts[part].len() - offset {
            n -= parts[part].len() - offset;
            part += 1;
            offset = 0;
        }
        offset += n;
    }
    Ok(())
}

/// `n` in hexadecimal followed by CRLF, into `out`; returns the length written.
fn hex(mut n: usize, out: &mut [u8; 18]) -> usize {
    let mut digits = [0u8; 16];
    let mut len = 0;
    loop {
        digits[len] = b"0123456789abcdef"[n % 16];
        len += 1;
        n /= 16;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        out[i] = *d;
    }
    out[len] = b'\r';
    out[len + 1] = b'\n';
    len + 2
}

/// Reads what the client sends while a response streams, to notice when it goes away:
/// resolves when bytes came (kept in `rest`; `false`) or the client is gone (`true`). Bytes
/// beyond `MAX_HEAD` while one response is still streaming count as gone: nothing legitimate
/// sends that much ahead.
async fn probe<I: AsyncRead + Unpin>(io: &mut I, rest: &mut Vec<u8>) -> bool {
    if rest.len() >= MAX_HEAD {
        return true;
    }
    // On the stack: an idle stream's connection keeps no read buffer.
    let mut buf = [0u8; PROBE];
    match io.read(&mut buf).await {
        Ok(n) if n > 0 => {
            rest.extend_from_slice(&buf[..n]);
            false
        }
        _ => true,
    }
}

/// The `date` header's value, formatted once a second per thread (as hyper does).
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }

    /// Appends the current date in the format of RFC 9110 to `out`.
    pub(super) fn append(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        CACHED.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != second {
                *c = (second, httpdate::fmt_http_date(now));
            }
            out.extend_from_slice(c.1.as_bytes());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    fn first(bytes: &[u8]) -> First {
        let mut io: &[u8] = bytes;
        futures_util::FutureExt::now_or_never(read_first(&mut io, Vec::new()))
            .expect("no wait on a slice")
    }

    #[test]
    fn plain_gets_and_posts_are_taken_and_everything_else_is_left_to_hyper() {
        let get = b"GET /mcp?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\nPOST";
        match first(get) {
            First::Plain(req, rest) => {
                assert_eq!(req.uri(), "/mcp?x=1");
                assert_eq!(req.headers()["accept"], "text/event-stream");
                assert_eq!(req.headers()["host"], "a");
                assert_eq!(rest, b"POST");
            }
            _ => panic!("a plain GET"),
        }
        let post =
            b"POST /mcp HTTP/1.1\r\ncontent-length: 7\r\nMcp-Session-Id: s1\r\n\r\n{\"a\":1}GET /";
        match first(post) {
            First::Plain(req, rest) => {
                assert_eq!(req.method(), Method::POST);
                assert_eq!(req.headers()["mcp-session-id"], "s1");
                assert_eq!(req.body().size_hint().exact(), Some(7));
                assert_eq!(rest, b"GET /");
            }
            _ => panic!("a plain POST"),
        }
        let too_long = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let cases: [&[u8]; 14] = [
            b"POST /mcp HTTP/1.1\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
            b"POST /mcp HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
            b"POST /mcp HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            too_long.as_bytes(),
            b"DELETE /mcp HTTP/1.1\r\n\r\n",
            b"GE",
            b"GET /mcp HTTP/1.0\r\n\r\n",
            b"GET /mcp HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /mcp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /mcp HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /mcp HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET /mcp HTTP/1.1\r\nHost: a\r\n",
        ];
        for case in cases {
            match first(case) {
                First::Other(bytes) => assert_eq!(bytes, case, "{}", String::from_utf8_lossy(case)),
                _ => panic!("for hyper: {}", String::from_utf8_lossy(case)),
            }
        }
        assert!(matches!(first(b""), First::Gone));
        // Bytes read before (taken from hyper) count as the start of the head.
        let mut io: &[u8] = b"/x HTTP/1.1\r\n\r\n";
        let taken = futures_util::FutureExt::now_or_never(read_first(&mut io, b"GET ".to_vec()));
        assert!(matches!(taken, Some(First::Plain(req, _)) if req.uri() == "/x"));
        let zero = b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(first(zero), First::Plain(..)));
        // A body that is cut short is hyper's to answer.
        let short = b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n{}";
        assert!(matches!(first(short), First::Other(b) if b == short));
    }

    #[test]
    fn a_head_longer_than_the_limit_is_left_to_hyper() {
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        match first(&long) {
            // What was read so far; hyper reads the rest from the socket.
            First::Other(bytes) => assert!(bytes.len() >= MAX_HEAD && long.starts_with(&bytes)),
            _ => panic!("for hyper"),
        }
    }

    async fn written(resp: Response<Body>, close: bool) -> (String, bool) {
        let (mut ours, mut theirs) = tokio::io::duplex(1 << 16);
        let ended = respond(&mut ours, close, resp, Vec::new()).await;
        drop(ours);
        let mut out = String::new();
        theirs.read_to_string(&mut out).await.unwrap();
        (out, matches!(ended, Ended::KeepAlive(_)))
    }

    #[tokio::test]
    async fn responses_are_framed_by_length_or_in_chunks() {
        let resp = Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (out, keep) = written(resp, false).await;
        assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
        assert!(
            out.contains("\r\ncontent-type: application/json\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\ncontent-length: 2\r\n"), "{out}");
        assert!(out.contains("\r\ndate: "), "{out}");
        assert!(out.ends_with("\r\n\r\n{}"), "{out}");
        assert!(keep);

        let resp = Response::builder()
            .status(204)
            .body(Body::from("x"))
            .unwrap();
        let (out, keep) = written(resp, false).await;
        assert!(out.starts_with("HTTP/1.1 204 No Content\r\n"), "{out}");
        assert!(
            !out.contains("content-length") && !out.contains("chunked"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(keep);

        let frames = futures_util::stream::iter(["event: a\n\n", "", "data: 12345\n\n"])
            .map(|s| Ok::<_, std::convert::Infallible>(Bytes::from_static(s.as_bytes())));
        let resp = Response::new(Body::from_stream(frames));
        let (out, keep) = written(resp, true).await;
        assert!(out.contains("\r\ntransfer-encoding: chunked\r\n"), "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        let body = out.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(
            body,
            "a\r\nevent: a\n\n\r\nd\r\ndata: 12345\n\n\r\n0\r\n\r\n"
        );
        assert!(!keep);
    }

    use futures_util::StreamExt as _;

    /// A writer that takes at most 3 bytes per call, to cover partial vectored writes.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(3);
            self.get_mut().0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_chunk_survives_short_writes() {
        let mut w = Trickle(Vec::new());
        let data = vec![b'x'; 300];
        write_chunk(&mut w, &data).await.unwrap();
        let mut want = b"12c\r\n".to_vec();
        want.extend_from_slice(&data);
        want.extend_from_slice(b"\r\n");
        assert_eq!(w.0, want);
    }

    #[test]
    fn chunk_sizes_are_hexadecimal() {
        let mut out = [0u8; 18];
        for (n, want) in [
            (0, "0\r\n"),
            (10, "a\r\n"),
            (300, "12c\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            let len = hex(n, &mut out);
            assert_eq!(&out[..len], want.as_bytes());
        }
    }
}
