//! The process's open-files limit: raised to its hard limit at start, as servers do, and the
//! default connection cap derived from it, so that accepting connections can never use up the
//! descriptors the children's pipes need.

/// Descriptors kept back from connections for the bridge itself (listener, runtime, logs,
/// files it reads at start) and for connections in the middle of closing.
pub const RESERVED: u64 = 64;
/// Descriptors kept back per child: its stdin, stdout and stderr pipes, and one to spare.
pub const PER_CHILD: u64 = 4;
/// The smallest default cap, however low the open-files limit.
pub const MIN_CONNECTIONS: usize = 16;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
///
/// # Errors
/// When the limit cannot be read. A limit that cannot be raised (macOS refuses an unlimited
/// hard limit) is not an error: the current one is returned.
pub fn raise_limit() -> std::io::Result<u64> {
    let (soft, hard) = get()?;
    if soft >= hard {
        return Ok(soft);
    }
    match set(hard, hard) {
        Ok(()) => Ok(hard),
        Err(e) => {
            tracing::debug!(soft, hard, err = %e, "cannot raise the open-files limit");
            Ok(soft)
        }
    }
}

/// The default cap on connections for an open-files limit of `limit` with at most `children`
/// children running: what remains after `RESERVED` and `PER_CHILD` per child, at least
/// `MIN_CONNECTIONS`.
pub fn default_max_connections(limit: u64, children: usize) -> usize {
    let children = u64::try_from(children).unwrap_or(u64::MAX);
    let reserve = RESERVED.saturating_add(PER_CHILD.saturating_mul(children));
    let free = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX);
    free.max(MIN_CONNECTIONS)
}

/// (soft, hard) RLIMIT_NOFILE.
#[allow(unsafe_code)]
fn get() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the pointer, which points to ours.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Sets RLIMIT_NOFILE.
#[allow(unsafe_code)]
fn set(soft: u64, hard: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the `rlimit` the pointer points to, which is ours.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_for_the_children() {
        assert_eq!(default_max_connections(20_000, 1), 20_000 - 64 - 4);
        assert_eq!(
            default_max_connections(1_048_576, 1000),
            1_048_576 - 64 - 4000
        );
        assert_eq!(default_max_connections(256, 1000), MIN_CONNECTIONS);
        assert_eq!(
            default_max_connections(u64::MAX, usize::MAX),
            MIN_CONNECTIONS
        );
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let now = raise_limit().unwrap();
        let (soft, hard) = get().unwrap();
        assert_eq!(now, soft, "the limit in force is returned");
        if cfg!(target_os = "linux") {
            assert_eq!(soft, hard);
        }
    }
}
