//! SIGHUP: each one asks for the configuration file to be read again (`servers::fleet`).

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Notifies `reload` at each SIGHUP until `stop` is cancelled.
pub fn on_sighup(reload: Arc<Notify>, stop: CancellationToken) {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => return warn!(err = %e, "cannot watch SIGHUP; reloads are off"),
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    info!("SIGHUP: reloading the configuration file");
                    reload.notify_one();
                }
                () = stop.cancelled() => return,
            }
        }
    });
}
