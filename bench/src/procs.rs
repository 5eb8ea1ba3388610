//! Memory and CPU time of a process tree, read from /proc (Linux).

use std::collections::HashMap;
use std::fs;

/// Resident memory and CPU time (user + system, in clock ticks) of a process tree.
#[derive(Clone, Copy, Default)]
pub struct Usage {
    pub rss_bytes: u64,
    /// The whole tree's.
    pub ticks: u64,
    /// The root process's alone (all its threads, those that ended included).
    pub root_ticks: u64,
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

/// Every process in /proc, by pid.
fn all_stats() -> HashMap<i32, Stat> {
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
    stats
}

/// `root` and its descendants among `stats` (`root` first).
fn descendants(root: i32, stats: &HashMap<i32, Stat>) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, st) in stats {
        children.entry(st.ppid).or_default().push(*pid);
    }
    let mut found = Vec::new();
    let mut todo = vec![root];
    // Bounded: each pid is visited once (a pid is the child of one parent).
    while let Some(pid) = todo.pop() {
        if stats.contains_key(&pid) {
            found.push(pid);
        }
        if let Some(kids) = children.get(&pid) {
            todo.extend(kids);
        }
    }
    found
}

/// The usage of `root` and all its descendants now.
pub fn tree(root: i32) -> Usage {
    let stats = all_stats();
    let page = page_size();
    let mut usage = Usage::default();
    for pid in descendants(root, &stats) {
        let st = &stats[&pid];
        usage.rss_bytes += st.rss_pages * page;
        usage.ticks += st.ticks;
        if pid == root {
            usage.root_ticks = st.ticks;
        }
    }
    usage
}

/// The pids of `root` and all its descendants now (`root` first).
pub fn tree_pids(root: i32) -> Vec<i32> {
    descendants(root, &all_stats())
}

/// A `kB` field of `/proc/PID/status`, in bytes.
fn status_bytes(pid: i32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A process's resident memory now (`VmRSS`), in bytes.
pub fn rss(pid: i32) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// The kernel's high-water mark of a process's resident memory (`VmHWM`), in bytes: unlike a
/// sampled peak it cannot miss a short one.
pub fn peak_rss(pid: i32) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

/// Sets a process's `VmHWM` back to its RSS now (Linux 4.0+; our own children only), so that
/// the next reading is the peak of what ran in between. False when the kernel refused.
pub fn reset_peak_rss(pid: i32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
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
