//! The metrics around each server's requests: body bytes in and out (a body of
//! known length counted whole, others frame by frame), and refusals
//! told by their status (421 Host, 403 Origin or, with `insufficient_scope`, scope, 401 token,
//! and the limits' 413 and 503, which `HttpError` marks).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::ServerMetrics;

/// Marks a response that refused a request for a reason its status does not tell: `limit`
/// (sessions, body size) or `draining` (no new session while stopping).
#[derive(Debug, Clone, Copy)]
pub struct Refusal(pub &'static str);

/// Counts a request's and its response's body bytes, and the refusal, if it is one, around
/// `next`, which serves the request.
pub async fn record<F, Fut>(m: &ServerMetrics, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    if m.is_off() {
        return next(req).await;
    }
    // A body of known length is counted whole, without wrapping it (no allocation); others
    // (chunked requests, event streams) are counted as their frames pass.
    // A refused request's body is never read, so it is not counted.
    let declared = req.body().size_hint().exact();
    let req = match declared {
        Some(_) => req,
        None => req.map(|b| Body::new(Counted::new(b, m.clone(), true))),
    };
    let resp = next(req).await;
    match refusal(&resp) {
        Some(reason) => m.refused(reason),
        None => m.bytes(declared.unwrap_or(0), 0),
    }
    match resp.body().size_hint().exact() {
        Some(n) => {
            m.bytes(0, n);
            resp
        }
        None => resp.map(|b| Body::new(Counted::new(b, m.clone(), false))),
    }
}

fn refusal(resp: &Response) -> Option<&'static str> {
    let challenge = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match resp.status() {
        StatusCode::MISDIRECTED_REQUEST => Some("host"),
        StatusCode::FORBIDDEN if challenge.contains("insufficient_scope") => Some("scope"),
        StatusCode::FORBIDDEN => Some("origin"),
        StatusCode::UNAUTHORIZED => Some("token"),
        _ => resp.extensions().get::<Refusal>().map(|r| r.0),
    }
}

/// A body that counts its data bytes as they pass.
struct Counted {
    inner: Body,
    metrics: ServerMetrics,
    incoming: bool,
}

impl Counted {
    fn new(inner: Body, metrics: ServerMetrics, incoming: bool) -> Counted {
        Counted {
            inner,
            metrics,
            incoming,
        }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let n = data.len() as u64;
                match self.incoming {
                    true => self.metrics.bytes(n, 0),
                    false => self.metrics.bytes(0, n),
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;

    #[test]
    fn refusals_are_told_by_status_challenge_and_mark() {
        let with = |status: StatusCode, challenge: Option<&'static str>| {
            let mut resp = status.into_response();
            if let Some(c) = challenge {
                let v = HeaderValue::from_static(c);
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            refusal(&resp)
        };
        assert_eq!(with(StatusCode::MISDIRECTED_REQUEST, None), Some("host"));
        assert_eq!(with(StatusCode::FORBIDDEN, None), Some("origin"));
        let scope = r#"Bearer error="insufficient_scope", scope="tools""#;
        assert_eq!(with(StatusCode::FORBIDDEN, Some(scope)), Some("scope"));
        assert_eq!(
            with(StatusCode::UNAUTHORIZED, Some("Bearer")),
            Some("token")
        );
        assert_eq!(with(StatusCode::SERVICE_UNAVAILABLE, None), None);
        assert_eq!(with(StatusCode::OK, None), None);
        let limit = crate::error::HttpError::TooManySessions.into_response();
        assert_eq!(refusal(&limit), Some("limit"));
        let draining = crate::error::HttpError::Draining.into_response();
        assert_eq!(refusal(&draining), Some("draining"));
        let gone = crate::error::HttpError::ChildGone.into_response();
        assert_eq!(refusal(&gone), None);
    }
}
