//! `cold` and `cold-N`: N fresh bridges (20 by default) started one after the other, each in
//! front of a fresh example server. Timed from spawning the binary to its URL line (by then the
//! child has been started and initialized and the port is bound) and to the answer of a first
//! checked call (`initialize`, `notifications/initialized`, `echo`); each bridge is then
//! stopped with SIGTERM and must exit 0.

use std::time::{Duration, Instant};

use crate::bridge::{Bridge, Options};
use crate::client::{self, Kind};
use crate::http::{Conn, Fail};
use crate::scenario::{percentiles, Cpu, Errors, Row, Settings, What};

const DEFAULT_STARTS: usize = 20;
const MAX_STARTS: usize = 1000;

/// `cold` or `cold-N` (N from 1 to 1000); `None` for the names of other scenarios.
pub fn parse(name: &str) -> Option<Result<What, String>> {
    crate::scenario::name_with_count(name, "cold", DEFAULT_STARTS, MAX_STARTS, "N")
        .map(|starts| starts.map(|starts| What::Cold { starts }))
}

/// One start: (to the URL line, to the first answer, RSS of the tree at the URL line).
async fn one(
    opts: &Options,
    n: usize,
    timeout: Duration,
) -> Result<(Duration, Duration, u64), String> {
    let bridge = Bridge::start(opts).await?;
    // Taken inside `start`, before it reads the tree's memory from /proc (about a millisecond,
    // left out of both figures).
    let to_url = bridge.started_in;
    let calling = Instant::now();
    let call = async {
        let mut conn = Conn::open(bridge.addr).await?;
        let session = client::open_stream_session(&mut conn, &bridge.mcp_path).await?;
        let text = format!("cold-{n}");
        client::echo(
            Kind::Stream,
            &mut conn,
            &bridge.mcp_path,
            &session,
            2,
            &text,
            0,
        )
        .await
    };
    let answered = tokio::time::timeout(timeout, call).await;
    let to_answer = to_url + calling.elapsed();
    let rss = bridge.rss_start;
    let stopped = bridge.stop().await;
    match answered {
        Err(_) => Err(Fail::Timeout.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(())) if stopped != "exit 0" => Err(format!("the bridge did not exit 0: {stopped}")),
        Ok(Ok(())) => Ok((to_url, to_answer, rss)),
    }
}

pub async fn run(name: &str, starts: usize, set: &Settings, opts: &Options) -> Row {
    let (mut to_url, mut to_answer, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = Errors::default();
    for n in 0..starts {
        match one(opts, n, set.request_timeout).await {
            Ok((url, answer, r)) => {
                to_url.push(url.as_nanos() as u64);
                to_answer.push(answer.as_nanos() as u64);
                rss.push(r);
            }
            Err(e) => {
                errors.http += 1;
                if errors.first.len() < 3 {
                    errors.first.push(e);
                }
            }
        }
    }
    let answer = percentiles(to_answer);
    rss.sort_unstable();
    let note = match (answer, rss.get(rss.len() / 2)) {
        (Some([p50, _, _, max]), Some(&mid)) => format!(
            "{} of {starts} starts: spawn to URL line (the columns); to the first checked call answered p50 {p50:.2} ms, max {max:.2} ms; RSS at the URL line, median {:.1} MiB",
            to_url.len(),
            mid as f64 / (1 << 20) as f64,
        ),
        _ => format!("0 of {starts} starts"),
    };
    Row {
        name: name.into(),
        rps: None,
        latency: percentiles(to_url),
        errors,
        rss_start: rss.first().copied().unwrap_or(0),
        rss_peak: rss.last().copied().unwrap_or(0),
        cpu: Cpu::default(),
        calls: None,
        note,
    }
}
