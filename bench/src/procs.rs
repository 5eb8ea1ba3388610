//! Memory and CPU time of a process tree, read from /proc (Linux).

use std::collections::HashMap;
use std::fs;

/// Resident memory and CPU time (user + system, in clock ticks) of a set of processes.
#[derive(Clone, Copy, Default)]
pub struct Usage {
    pub rss_bytes: u64,
    pub ticks: u64,
}

struct Stat {
    ppid: i32,
    ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: &str) -> Option<Stat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after it.
    let rest = s.get(s.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, rss 24.
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        rss_pages: f.get(21)?.parse().ok()?,
    })
}

/// The usage of `root` and all its descendants now.
pub fn tree(root: i32) -> Usage {
    let mut stats: HashMap<i32, Stat> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(pid) = name.parse::<i32>() else {
                continue;
            };
            if let Some(st) = read_stat(name) {
                stats.insert(pid, st);
            }
        }
    }
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, st) in &stats {
        children.entry(st.ppid).or_default().push(*pid);
    }
    let page = page_size();
    let mut usage = Usage::default();
    let mut todo = vec![root];
    // Bounded: each pid is visited once (a pid is the child of one parent).
    while let Some(pid) = todo.pop() {
        if let Some(st) = stats.get(&pid) {
            usage.rss_bytes += st.rss_pages * page;
            usage.ticks += st.ticks;
        }
        if let Some(kids) = children.get(&pid) {
            todo.extend(kids);
        }
    }
    usage
}

/// CPU ticks this process (all its threads) has used so far.
pub fn own_ticks() -> u64 {
    read_stat("self").map_or(0, |s| s.ticks)
}

pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Raises this process's soft open-files limit to the hard one; returns the new soft limit.
pub fn raise_nofile() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
    }
    lim.rlim_cur
}
