//! One accepted connection, from its permit to its close: TLS handshake (if any), HTTP/1.1
//! (plain `GET`s and `POST`s served by `plain`, anything else by hyper, with the bridge's `App`
//! behind both), and the `Activity` timer that closes it when it is silent, half-sent or idle
//! for too long. Reads, requests and response bodies are wrapped
//! here so that they report to the connection's `Activity`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::activity::{Activity, InFlight};
use super::Shared;
use super::{h2, plain};

/// Serves one connection until it ends; its permit is released when this returns.
pub(super) async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
) {
    let _permit = permit;
    let _open = shared.connections.count_open();
    // Streamed replies are written as several small frames; without TCP_NODELAY, Nagle's
    // algorithm and delayed ACKs add ~40 ms to every SSE reply.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(err = %e, "cannot set TCP_NODELAY");
    }
    match &shared.tls {
        None => serve_http(stream, addr, &shared, false).await,
        // Boxed: a handshake's state is large, and a plain connection should not carry room
        // for it (a task is as large as its future's largest state, for all of its life).
        Some(acceptor) => Box::pin(serve_tls(stream, addr, acceptor, &shared)).await,
    }
}

async fn serve_tls(stream: TcpStream, addr: SocketAddr, acceptor: &TlsAcceptor, shared: &Shared) {
    let handshake = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    // Cancel safety: a handshake given up at shutdown is dropped with its socket.
    let tls = tokio::select! {
        _ = shared.stop.cancelled() => return,
        r = handshake => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                debug!(err = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!("TLS handshake timed out");
                return;
            }
        },
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_http(tls, addr, shared, h2).await
}

/// HTTP/1.1 on `io` until the client or hyper closes it, a wait expires, or shutdown. Plain
/// requests are served without hyper (`plain`), one after the other. The first request that
/// is not plain starts hyper's connection, which then serves the connection until a `GET` or
/// a `POST` comes after an idle pause: hyper's connection, and with it its buffers, is ended,
/// and that request and what follows are served here again.
///
/// HTTP/2 (`h2`: negotiated by ALPN; or the connection opens with its preface) is hyper's
/// from the start (`h2::serve`).
async fn serve_http<I>(io: I, addr: SocketAddr, shared: &Shared, h2: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let mut io = TrackedIo {
        io,
        activity: activity.clone(),
        prefix: Bytes::new(),
        watch: false,
        taken: None,
    };
    if h2 {
        return Box::pin(h2::serve(&mut io, addr, shared, activity)).await;
    }
    let settings = &shared.settings;
    let mut read = Vec::new();
    loop {
        let first = tokio::select! {
            first = plain::read_first(&mut io, read) => first,
            phase = activity.expired(settings.header_timeout, settings.idle_timeout) => {
                shared.log_expired(phase, addr);
                return;
            }
            // Nothing is being served: closing is what hyper does to an idle connection, also
            // one whose next head has begun.
            _ = shared.stop.cancelled() => return,
            _ = shared.abort.cancelled() => return,
        };
        let rest = match first {
            plain::First::Gone => return,
            plain::First::Other(mut bytes) if h2::may_begin(&bytes) => {
                let preface = tokio::select! {
                    preface = h2::read_preface(&mut io, &mut bytes) => preface,
                    phase = activity.expired(settings.header_timeout, settings.idle_timeout) => {
                        shared.log_expired(phase, addr);
                        return;
                    }
                    _ = shared.stop.cancelled() => return,
                    _ = shared.abort.cancelled() => return,
                };
                match preface {
                    None => return,
                    Some(false) => bytes,
                    Some(true) => {
                        io.prefix = Bytes::from(bytes);
                        // Boxed, as hyper's HTTP/1.1 below.
                        return Box::pin(h2::serve(&mut io, addr, shared, activity)).await;
                    }
                }
            }
            plain::First::Other(bytes) => bytes,
            plain::First::Plain(req, rest) => {
                match serve_plain(&mut io, *req, rest, shared).await {
                    Some(rest) => {
                        read = rest;
                        continue;
                    }
                    None => return,
                }
            }
        };
        io.prefix = Bytes::from(rest);
        io.watch = true;
        // Boxed: hyper's connection state is large, and a connection that only holds an event
        // stream never needs it.
        let handed_over = Box::pin(serve_hyper(&mut io, addr, shared, activity.clone())).await;
        io.watch = false;
        match handed_over {
            Some(taken) => read = taken,
            None => return,
        }
    }
}

/// Serves one plain request without hyper; returns the bytes that came after it when the
/// connection stays open for more.
async fn serve_plain<I>(
    io: &mut TrackedIo<I>,
    req: Request<Body>,
    rest: Vec<u8>,
    shared: &Shared,
) -> Option<Vec<u8>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let in_flight = io.activity.request();
    let close = req
        .headers()
        .get(axum::http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    let served = async {
        // Boxed (by `App`): the handler's future is done with before the stream starts; the
        // connection's task keeps no room for it while the stream idles.
        let resp = (shared.app)(req).await;
        // After the response: nothing more once shutdown began, as hyper does.
        match plain::respond(io, close, resp, rest).await {
            plain::Ended::KeepAlive(rest) if !shared.stop.is_cancelled() => Some(rest),
            _ => None,
        }
    };
    // Cancel safety: at abort the response is dropped half-sent, with the connection.
    let rest = tokio::select! {
        rest = served => rest,
        _ = shared.abort.cancelled() => None,
    };
    drop(in_flight);
    rest
}

/// hyper's HTTP/1.1 on `io` until the client or hyper closes it, a wait expires, shutdown, or
/// a `GET` or `POST` after an idle pause is handed over: then its first bytes (taken from hyper by
/// `TrackedIo`) are returned, and the connection goes on; `None` means it is done.
async fn serve_hyper<I>(
    io: &mut TrackedIo<I>,
    addr: SocketAddr,
    shared: &Shared,
    activity: Arc<Activity>,
) -> Option<Vec<u8>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TrackedService::new(shared.app.clone(), activity.clone(), false);
    // Both timeouts are `activity`'s: hyper's header timer also runs while a keep-alive
    // connection waits for its next request, so it cannot tell idling from a slow head.
    let mut conn = http1::Builder::new()
        .header_read_timeout(None::<std::time::Duration>)
        .serve_connection(TokioIo::new(&mut *io), service);
    let settings = &shared.settings;
    let (mut stopping, mut handing_over) = (false, false);
    let handed_over = loop {
        // Cancel safety: `conn` lives outside the loop and is polled on after a shutdown or
        // hand-over request; `expired`, the hand-over flag and the token futures keep no state
        // of their own.
        tokio::select! {
            r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                if let Err(e) = r {
                    debug!(err = %e, "connection ended with an error");
                    break false;
                }
                break handing_over;
            }
            phase = activity.expired(settings.header_timeout, settings.idle_timeout) => {
                // Dropping `conn` closes the socket; no request is being served.
                shared.log_expired(phase, addr);
                return None;
            }
            _ = shared.stop.cancelled(), if !stopping => {
                // Closes an idle connection now, a busy one once its response is sent.
                stopping = true;
                handing_over = false;
                Pin::new(&mut conn).graceful_shutdown();
            }
            () = activity.handover_wanted(), if !handing_over && !stopping => {
                // hyper is idle (waiting for a request head it will not get): this ends it.
                handing_over = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
            _ = shared.abort.cancelled() => return None,
        }
    };
    drop(conn);
    if handed_over {
        return io.taken.take();
    }
    // What hyper does when it closes: the end of the stream (TLS: its close_notify), as long
    // as a client that reads nothing may hold a connection.
    tokio::select! {
        _ = io.shutdown() => {}
        _ = activity.expired(settings.header_timeout, settings.idle_timeout) => {}
        _ = shared.abort.cancelled() => {}
    }
    None
}

/// The socket, reporting every read to the connection's `Activity`, with bytes already read
/// put back in front (`prefix`). While hyper serves the connection (`watch`), the first bytes
/// after an idle pause are looked at: when they begin a `GET` or a `POST`, they are kept from
/// hyper (`taken`) and the connection is told to end hyper's part and read the request itself
/// (it may still be one for hyper: then hyper starts again with those bytes).
pub(super) struct TrackedIo<I> {
    io: I,
    activity: Arc<Activity>,
    prefix: Bytes,
    watch: bool,
    taken: Option<Vec<u8>>,
}

impl<I: AsyncRead + Unpin> AsyncRead for TrackedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        if this.taken.is_some() {
            // Handed over: hyper gets nothing more, and is being ended.
            return Poll::Pending;
        }
        let idle = this.watch && this.activity.is_idle();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read();
            let got = &buf.filled()[before..];
            if idle && (got.starts_with(b"GET ") || got.starts_with(b"POST ")) {
                this.taken = Some(got.to_vec());
                buf.set_filled(before);
                this.activity.want_handover();
                // The connection's task polls its hand-over branch next.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TrackedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The bridge's `App`, marking the connection busy from a request's head to its response's end.
pub(super) struct TrackedService {
    app: super::App,
    activity: Arc<Activity>,
    /// HTTP/2: `:authority` stands for a missing `Host`.
    h2: bool,
}

impl TrackedService {
    pub(super) fn new(app: super::App, activity: Arc<Activity>, h2: bool) -> TrackedService {
        TrackedService { app, activity, h2 }
    }
}

impl hyper::service::Service<Request<Incoming>> for TrackedService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Tracked;

    fn call(&self, mut req: Request<Incoming>) -> Tracked {
        if self.h2 {
            h2::host_from_authority(&mut req);
        }
        // Taken before the handler runs: a handler that waits long (a slow tool) is busy too.
        Tracked {
            in_flight: Some(self.activity.request()),
            response: (self.app)(req.map(Body::new)),
        }
    }
}

/// A response on its way, holding its connection busy; then the body holds it.
pub(super) struct Tracked {
    in_flight: Option<InFlight>,
    response: super::BoxFuture<Response<Body>>,
}

impl Future for Tracked {
    type Output = Result<Response<TrackedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let resp = std::task::ready!(this.response.as_mut().poll(cx));
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(resp.map(|body| TrackedBody {
            body,
            _in_flight: in_flight,
        })))
    }
}

/// A response body that keeps its connection busy until hyper drops it (sent, or abandoned).
pub(super) struct TrackedBody {
    body: Body,
    _in_flight: Option<InFlight>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
