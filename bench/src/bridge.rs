//! Starting the bridge in front of the example server, watching its process tree, stopping it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::procs;

#[derive(Clone)]
pub struct Options {
    /// Start the bench's own childless server (`null`) instead of the bridge: the ceiling.
    pub null: bool,
    pub bridge: PathBuf,
    pub server: PathBuf,
    pub extra_args: Vec<String>,
    /// Where the bridge's stderr goes (one file per scenario); `None`: discarded.
    pub log: Option<PathBuf>,
}

pub struct Bridge {
    child: Child,
    pub pid: i32,
    pub addr: SocketAddr,
    pub mcp_path: String,
    /// RSS of the tree once the bridge printed its URL (the child is initialized by then).
    pub rss_start: u64,
    /// From spawning the binary to having read its URL line.
    pub started_in: Duration,
    peak: Arc<AtomicU64>,
    stop_sampling: Arc<AtomicBool>,
    sampler: JoinHandle<()>,
}

impl Options {
    /// What `start` starts, for messages.
    pub fn what(&self) -> String {
        match self.null {
            true => "the null server".into(),
            false => self.bridge.display().to_string(),
        }
    }
}

impl Bridge {
    pub async fn start(opts: &Options) -> Result<Bridge, String> {
        let stderr = match &opts.log {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            ),
            None => Stdio::null(),
        };
        let spawned = std::time::Instant::now();
        let mut command = match opts.null {
            true => {
                let me = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
                let mut c = Command::new(me);
                c.arg(crate::null::COMMAND);
                c
            }
            false => {
                let mut c = Command::new(&opts.bridge);
                c.args(["--host", "127.0.0.1", "--port", "0", "--log-level", "warn"])
                    .args(&opts.extra_args)
                    .arg("--")
                    .arg(&opts.server);
                c
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.what()))?;
        let pid = child.id().ok_or("the bridge exited at once")? as i32;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        let read = stdout.read_line(&mut line);
        match tokio::time::timeout(Duration::from_secs(30), read).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return Err("the bridge exited before printing its URL".into()),
            Err(_) => return Err("the bridge printed no URL within 30 s".into()),
        }
        let started_in = spawned.elapsed();
        let url = line.trim();
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("unexpected URL line {url:?}"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr: SocketAddr = authority
            .parse()
            .map_err(|e| format!("unexpected address in {url:?}: {e}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("the bridge listens on {addr}, not on loopback"));
        }
        let rss_start = procs::tree(pid).rss_bytes;
        let peak = Arc::new(AtomicU64::new(rss_start));
        let stop_sampling = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop_sampling.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(procs::tree(pid).rss_bytes, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Ok(Bridge {
            child,
            pid,
            addr,
            mcp_path: if path.is_empty() {
                "/mcp".into()
            } else {
                path.into()
            },
            rss_start,
            started_in,
            peak,
            stop_sampling,
            sampler,
        })
    }

    pub fn usage(&self) -> procs::Usage {
        procs::tree(self.pid)
    }

    /// The highest RSS of the tree seen so far (sampled every 50 ms, and now).
    pub fn peak_rss(&self) -> u64 {
        self.peak
            .fetch_max(self.usage().rss_bytes, Ordering::Relaxed)
            .max(self.peak.load(Ordering::Relaxed))
    }

    /// Starts the sampled peak over from the RSS now: a scenario of phases reports one per phase.
    pub fn reset_peak(&self) {
        self.peak.store(self.usage().rss_bytes, Ordering::Relaxed);
    }

    /// SIGTERM, then waits up to 15 s (SIGKILL after that). Returns how it ended.
    pub async fn stop(mut self) -> String {
        self.stop_sampling.store(true, Ordering::Relaxed);
        let _ = (&mut self.sampler).await;
        // SAFETY: plain kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => "exit 0".into(),
            Ok(Ok(status)) => format!("{status}"),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => {
                let _ = self.child.kill().await;
                "did not stop within 15 s of SIGTERM (killed)".into()
            }
        }
    }
}
