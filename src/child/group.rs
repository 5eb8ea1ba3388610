//! The child's process group: signalling it, and telling whether any member is alive.

use tracing::debug;

#[allow(unsafe_code)]
pub(super) fn signal_group(pgid: u32, sig: i32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    // SAFETY: killpg only sends a signal; it touches no memory of ours. The group id is the
    // child's pid, which is its own group leader (spawned with process_group(0)).
    let rc = unsafe { libc::killpg(pgid, sig) };
    if rc != 0 {
        debug!(pgid, sig, err = %std::io::Error::last_os_error(), "killpg");
    }
    rc == 0
}

/// Whether a process of group `pgid` is alive, from `/proc` (Linux); elsewhere, whether the
/// group can be signalled at all.
pub(super) fn group_has_live_members(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return signal_group(pgid, 0);
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command's closing parenthesis: state, ppid, pgrp, ...
            let mut rest = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace();
            let state = rest.next();
            let group = rest.nth(1).and_then(|g| g.parse::<u32>().ok());
            group == Some(pgid) && state != Some("Z")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn group_liveness_follows_its_members() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = sleeper.id();
        assert!(group_has_live_members(pgid));
        assert!(signal_group(pgid, libc::SIGKILL));
        sleeper.wait().unwrap();
        assert!(!group_has_live_members(pgid));
        assert!(
            !signal_group(pgid, libc::SIGTERM),
            "an empty group cannot be signalled"
        );
    }
}
