//! HTTP/2 on one connection: with prior knowledge on plain TCP (the client opens with the
//! connection preface, RFC 9113 §3.3), or negotiated over TLS by ALPN `h2`. hyper serves it with
//! the bridge's `App`, as for HTTP/1.1. What it buys: many sessions' event streams and calls
//! share one connection, so open streams are no longer bound by open files (one socket here per
//! connection, not per stream).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use hyper::server::conn::http2;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::activity::Activity;
use super::connection::{TrackedIo, TrackedService};
use super::Shared;

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Streams one connection may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`): a client
/// past it gets `REFUSED_STREAM` and may open another connection. Each open stream costs the
/// bridge what the same request costs over HTTP/1.1, less the socket; sessions and calls stay
/// bound by their own limits (`--max-sessions`, the child's).
pub const MAX_STREAMS: u32 = 1024;

/// Whether `read` (the first bytes of a connection, not a plain request) may begin the preface.
pub(super) fn may_begin(read: &[u8]) -> bool {
    !read.is_empty() && PREFACE.starts_with(&read[..read.len().min(PREFACE.len())])
}

/// Reads on until `read` holds the whole preface or is known not to begin with it; `None` when
/// the client closed first. The caller bounds the wait (its header timeout).
pub(super) async fn read_preface<I: AsyncRead + Unpin>(
    io: &mut I,
    read: &mut Vec<u8>,
) -> Option<bool> {
    while read.len() < PREFACE.len() && PREFACE.starts_with(read) {
        read.reserve(PREFACE.len());
        match io.read_buf(read).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    Some(read.starts_with(PREFACE))
}

/// hyper's HTTP/2 on `io` (its first bytes already read: `io.prefix`) until the client closes,
/// the connection idles too long, or shutdown (a `GOAWAY`, then the streams in flight end).
pub(super) async fn serve<I>(
    io: &mut TrackedIo<I>,
    addr: SocketAddr,
    shared: &Shared,
    activity: Arc<Activity>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _counted = shared.connections.count_http2();
    let streams = Streams(TaskTracker::new());
    let service = TrackedService::new(shared.app.clone(), activity.clone(), true);
    let conn = http2::Builder::new(streams.clone())
        .max_concurrent_streams(MAX_STREAMS)
        // Both are hyper's defaults today, set here because the security of the bridge relies on
        // them: a client that resets streams in a loop (CVE-2023-44487) is cut off.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024)
        .serve_connection(TokioIo::new(&mut *io), service);
    {
        let mut conn = std::pin::pin!(conn);
        let settings = &shared.settings;
        // HTTP/2 frames (PING, WINDOW_UPDATE) come between requests; there is no request head to
        // time. The connection's limit is the idle one, counted from the last frame or stream.
        let wait = settings.idle_timeout;
        let mut stopping = false;
        loop {
            // Cancel safety: `conn` lives outside the loop and is polled on after shutdown
            // began.
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(err = %e, "HTTP/2 connection ended with an error");
                    }
                    break;
                }
                phase = activity.expired(wait, wait) => {
                    shared.log_expired(phase, addr);
                    break;
                }
                _ = shared.stop.cancelled(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = shared.abort.cancelled() => break,
            }
        }
    }
    // `conn` is dropped: every stream still open is reset, which wakes hyper's task for it, and
    // that task ends. This connection's task outlives none of them.
    streams.0.close();
    tokio::select! {
        _ = streams.0.wait() => {}
        _ = shared.abort.cancelled() => {}
    }
}

/// Where hyper runs each stream's response: tracked by the connection that owns the streams.
#[derive(Clone)]
struct Streams(TaskTracker);

impl<F> hyper::rt::Executor<F> for Streams
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

/// An HTTP/2 request names its authority in `:authority`, which hyper puts in the URI; the
/// bridge's Host checks (DNS-rebinding protection) read `Host`, which HTTP/2 clients need not
/// send. RFC 9113 §8.3.1: a server treats `:authority` as `Host` when `Host` is absent.
pub(super) fn host_from_authority<B>(req: &mut axum::http::Request<B>) {
    if req.headers().contains_key(header::HOST) {
        return;
    }
    let authority = req.uri().authority();
    if let Some(value) = authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
        req.headers_mut().insert(header::HOST, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_is_told_from_its_first_bytes() {
        for (read, may) in [
            (&b"P"[..], true),
            (b"PRI * HT", true),
            (PREFACE, true),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\x12\x04", true),
            (b"", false),
            (b"POST /mcp HTTP/1.1\r\n", false),
            (b"PROPFIND / HTTP/1.1", false),
            (b"PRI * HTTP/1.1\r\n", false),
        ] {
            assert_eq!(may_begin(read), may, "{:?}", String::from_utf8_lossy(read));
        }
    }

    #[test]
    fn authority_stands_for_a_missing_host() {
        let host = |uri: &str, host: Option<&'static str>| {
            let mut req = axum::http::Request::get(uri).body(()).unwrap();
            if let Some(h) = host {
                req.headers_mut()
                    .insert(header::HOST, HeaderValue::from_static(h));
            }
            host_from_authority(&mut req);
            req.headers()
                .get(header::HOST)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            host("http://bridge.example:8000/mcp", None).as_deref(),
            Some("bridge.example:8000")
        );
        assert_eq!(
            host("http://bridge.example:8000/mcp", Some("given")).as_deref(),
            Some("given")
        );
        assert_eq!(host("/mcp", None), None);
    }

    #[tokio::test]
    async fn the_preface_is_read_whole_before_deciding() {
        let (mut client, mut server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt as _;
        client.write_all(&PREFACE[5..]).await.unwrap();
        let mut read = PREFACE[..5].to_vec();
        assert_eq!(read_preface(&mut server, &mut read).await, Some(true));
        assert_eq!(read, PREFACE);

        let mut read = b"PRI * HTTP/1.1\r\n".to_vec();
        assert_eq!(read_preface(&mut server, &mut read).await, Some(false));

        drop(client);
        let mut read = b"PRI".to_vec();
        assert_eq!(read_preface(&mut server, &mut read).await, None);
    }
}
