//! A connection whose first request is a plain `GET` is served here, without hyper, until
//! that response has ended; then hyper takes the connection over for whatever follows.
//!
//! Why: a `GET` is how a client opens an event stream (the Streamable HTTP standalone stream,
//! the legacy `GET /sse`), and such a stream stays open for as long as its session lives,
//! mostly idle. hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for every
//! connection for all of its life, so 10,000 idle sessions would hold 160 MiB in buffers that
//! carry a few keep-alive comments an hour. Here the head is read into a buffer that is freed
//! once it is parsed, and the response is written frame by frame from the body's own bytes.
//!
//! Only the simple case is taken: HTTP/1.1, a head of at most `MAX_HEAD` bytes that parses,
//! and no request body (`Content-Length` other than 0, `Transfer-Encoding`), `Expect` or
//! `Upgrade`. Anything else, and every connection whose first request is not a `GET`, goes to
//! hyper with the bytes read so far, so the answers to odd requests stay hyper's.

use std::io;

use axum::body::Body;
use axum::http::{
    header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The longest head taken here (a longer one is hyper's, with its own limits).
const MAX_HEAD: usize = 16 * 1024;
/// The most headers taken here.
const MAX_HEADERS: usize = 64;
/// What is read from the client at a time while a response streams: a client sends nothing
/// then, normally; the read is there to notice that it went away.
const PROBE: usize = 64;

/// What the first bytes of a connection turned out to be.
pub(super) enum First {
    /// A plain `GET`, parsed, and the bytes that came after its head.
    Get(Box<Request<Body>>, Vec<u8>),
    /// Something for hyper, with the bytes read so far.
    Other(Vec<u8>),
    /// The client closed (or the read failed) before sending anything useful.
    Gone,
}

/// Reads (after `buf`, the bytes read already) until the request is known to be a plain `GET`
/// (and its head is complete), or known not to be.
pub(super) async fn read_first<I: AsyncRead + Unpin>(io: &mut I, mut buf: Vec<u8>) -> First {
    loop {
        if buf.len() >= 4 || !b"GET ".starts_with(&buf) {
            if !buf.starts_with(b"GET ") {
                return First::Other(buf);
            }
            match parse(&buf) {
                Parsed::Get(req, len) => {
                    let rest = buf.split_off(len);
                    return First::Get(req, rest);
                }
                Parsed::NotPlain => return First::Other(buf),
                Parsed::Partial if buf.len() >= MAX_HEAD => return First::Other(buf),
                Parsed::Partial => {}
            }
        }
        // Grows as a request head arrives; 1 KiB covers the usual one in one read.
        buf.reserve(if buf.is_empty() { 1024 } else { buf.len() });
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) if buf.is_empty() => return First::Gone,
            // A partial head and then the end: hyper says what is wrong with it.
            Ok(0) | Err(_) => return First::Other(buf),
            Ok(_) => {}
        }
    }
}

enum Parsed {
    Get(Box<Request<Body>>, usize),
    NotPlain,
    Partial,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotPlain,
    };
    match request(&head) {
        Some(req) => Parsed::Get(Box::new(req), len),
        None => Parsed::NotPlain,
    }
}

/// The request, when it is one this module serves.
fn request(head: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    if head.method != Some("GET") || head.version != Some(1) {
        return None;
    }
    let uri: Uri = head.path?.parse().ok()?;
    let mut req = Request::new(Body::empty());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    headers.reserve(head.headers.len());
    for h in head.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        let refused = match name {
            header::TRANSFER_ENCODING | header::EXPECT | header::UPGRADE => true,
            header::CONTENT_LENGTH => value.as_bytes() != b"0",
            _ => false,
        };
        if refused {
            return None;
        }
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
    let reason = parts.status.canonical_reason().unwrap_or("");
    head.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", parts.status.as_u16()).as_bytes());
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
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        head.extend_from_slice(format!("date: {date}\r\n").as_bytes());
    }
    match length {
        _ if bodiless => {}
        Some(n) => head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if close_requested {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    drop(parts);
    if io.write_all(&head).await.is_err() || io.flush().await.is_err() {
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
    let parts: [&[u8]; 3] = [&size[..digits], data, b"\r\n"];
    let (mut part, mut offset) = (0, 0);
    while part < parts.len() {
        let left = |k: usize| match k.cmp(&part) {
            std::cmp::Ordering::Less => &[][..],
            std::cmp::Ordering::Equal => &parts[k][offset..],
            std::cmp::Ordering::Greater => parts[k],
        };
        let slices = [0, 1, 2].map(|k| io::IoSlice::new(left(k)));
        let mut n = io.write_vectored(&slices).await?;
        if n == 0 {
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
    fn a_plain_get_is_taken_and_everything_else_is_left_to_hyper() {
        let get = b"GET /mcp?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\nPOST";
        match first(get) {
            First::Get(req, rest) => {
                assert_eq!(req.uri(), "/mcp?x=1");
                assert_eq!(req.headers()["accept"], "text/event-stream");
                assert_eq!(req.headers()["host"], "a");
                assert_eq!(rest, b"POST");
            }
            _ => panic!("a plain GET"),
        }
        let cases: [&[u8]; 8] = [
            b"POST /mcp HTTP/1.1\r\n\r\n",
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
        assert!(matches!(taken, Some(First::Get(req, _)) if req.uri() == "/x"));
        let zero = b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(first(zero), First::Get(..)));
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
