//! Ending things in order: the signal future, and the child's shutdown (close stdin, wait a
//! grace period, SIGTERM to its process group, wait, SIGKILL), as the MCP stdio transport asks.

use std::time::Duration;

use tracing::{info, warn};

use crate::child::ChildHandle;

/// How long the child's group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Resolves on SIGINT or SIGTERM, logging which.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub async fn signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "shutting down");
    Ok(())
}

/// Ends the child: closes its stdin, waits up to `grace` for it to exit, then signals its
/// process group with SIGTERM and, `TERM_GRACE` later, SIGKILL. Grandchildren left in the group
/// after the child exits are ended the same way.
pub async fn stop_child(handle: &ChildHandle, grace: Duration) {
    handle.close_stdin();
    if tokio::time::timeout(grace, handle.exited()).await.is_err() {
        warn!(
            ?grace,
            "child still running after stdin closed; sending SIGTERM to its group"
        );
    }
    // The whole group, grandchildren included, gets SIGTERM, then SIGKILL if it lingers.
    if !handle.signal_group(libc::SIGTERM) {
        return;
    }
    let group_gone = || async {
        handle.exited().await;
        while handle.group_alive() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(TERM_GRACE, group_gone())
        .await
        .is_err()
    {
        warn!("processes of the child's group ignored SIGTERM; sending SIGKILL");
        handle.signal_group(libc::SIGKILL);
        let _ = tokio::time::timeout(TERM_GRACE, group_gone()).await;
    }
}
