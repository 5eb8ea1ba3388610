//! `--metrics-listen`: the exposition at `GET /metrics` on an address of its own, never on
//! the MCP listener.

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Metrics;

/// The media type of the Prometheus text format `Metrics::render` writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `metrics` on `listener` until `stop` is cancelled.
pub fn spawn(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving metrics at /metrics");
    }
    let kept = metrics.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { exposition(&metrics) }
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        let upkeep = async {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tick.tick().await;
                kept.upkeep();
            }
        };
        // The upkeep never ends: the task ends with the server.
        tokio::select! {
            served = served => {
                if let Err(e) = served {
                    warn!(err = %e, "the metrics server failed");
                }
            }
            () = upkeep => {}
        }
    })
}

fn exposition(metrics: &Metrics) -> Response {
    let mut resp = metrics.render().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}
