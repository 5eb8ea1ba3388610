//! mcp-bench: starts mcp-http-bridge in front of the example stdio server once per scenario,
//! drives it over 127.0.0.1, checks every reply and prints a markdown table.

mod bridge;
mod client;
mod cold;
mod http;
mod huge;
mod null;
mod procs;
mod scenario;

use std::path::PathBuf;
use std::time::Duration;

use scenario::{Row, Settings, Spec, What, DEFAULT_SCENARIOS};

const HELP: &str = "\
mcp-bench: load generator for mcp-http-bridge

USAGE: mcp-bench [OPTIONS] [SCENARIO]...

Each scenario runs on a freshly started bridge (port 0, 127.0.0.1) in front of the example
server; every reply is checked (id and echoed text). Progress goes to stderr; the markdown
table of results to stdout at the end. The exit status is 1 when a scenario failed to run or
counted errors.

SCENARIOS (default: all of the list below)
  KIND-SxC            S sessions x C workers each, every worker on its own keep-alive
                      connection, ids 1, 2, 3, ... per session; `echo` with short texts
  KIND-SxC-mixed      every 4th call of a worker sleeps 1-5 ms in the child (out of order)
  KIND-SxC-large      64 KiB texts both ways
  KIND-SxC[-VARIANT]-h2  over HTTP/2 (prior knowledge): a session's workers share one
                      connection, a stream per call (KIND: stream, json, modern)
      KIND: stream   Streamable HTTP session taking both reply kinds (JSON when ready at once)
            json     Streamable HTTP session, `Accept: application/json` replies
            sse      legacy HTTP+SSE (POST /message, replies on GET /sse)
            modern   stateless 2026-07-28 (no session; `_meta` and Mcp-* headers)
  idle-N              N sessions each holding an open GET /mcp stream; RSS per session and
                      a checked call on a sample of them
  idle-N-bare         the same without the streams: N is not bound by the open-files limit
  idle-N-h2           the streams over HTTP/2, 1000 to a connection: N is not bound by it either
  huge[-N]            one call at a time: `echo` of an N MiB text and `huge` (an N MiB result,
                      N default 8), timed over the example server's own pipes, then through
                      the bridge (--max-body/--max-line raised); rows huge-echo, huge-result
  cold[-N]            N fresh bridges (default 20), one after the other: spawn to URL line
                      (the columns), and to a first checked call's answer; each must exit 0
                      on SIGTERM
  default: cold stream-1x1 stream-16x4 stream-16x4-mixed stream-16x4-large json-16x4 sse-16x4
           modern-16x4 idle-10000 huge

OPTIONS
  --bridge PATH           the bridge binary [../target/release/mcp-http-bridge]
  --server PATH           the stdio MCP server it fronts [../target/release/fake-mcp-server]
  --duration SECS         measured time per scenario [10]
  --warmup SECS           calls before the measured window, not counted [2]
  --request-timeout SECS  a call without reply by then is an error [5]
  --idle-batch N          idle: sessions opened at the same time [256]
  --idle-sample N         idle: sessions that get a checked call [200]
  --huge-repeat N         huge: timed calls of each kind, pipe and bridge (median) [5]
  --bridge-arg ARG        one more argument for the bridge (repeatable)
  --log-dir DIR           write each bridge's stderr to DIR/SCENARIO.log
  --threads N             runtime threads of this load generator [number of cores]
  --ceiling               run each HTTP/1.1 load scenario against the null server too, before
                          and after the bridge: rows `SCENARIO (null)`, and the bridge's req/s
                          as a share of them in its notes
  -h, --help              this text

  mcp-bench null-server   the null server alone: a childless MCP echo endpoint (hyper,
                          HTTP/1.1) answering the calls of every load scenario itself; prints
                          its URL, exits 0 on SIGTERM
";

struct Args {
    specs: Vec<Spec>,
    settings: Settings,
    bridge: bridge::Options,
    threads: Option<usize>,
    log_dir: Option<PathBuf>,
    /// Run each load scenario against the null server before and after the bridge.
    ceiling: bool,
}

fn usage_error(msg: &str) -> ! {
    eprintln!("mcp-bench: {msg}\n(see mcp-bench --help)");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut names = Vec::new();
    let mut settings = Settings {
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        idle_batch: 256,
        idle_sample: 200,
        huge_repeat: 5,
    };
    let mut opts = bridge::Options {
        null: false,
        bridge: "../target/release/mcp-http-bridge".into(),
        server: "../target/release/fake-mcp-server".into(),
        extra_args: Vec::new(),
        log: None,
    };
    let mut threads = None;
    let mut log_dir = None;
    let mut ceiling = false;
    let secs = |v: String, what: &str| -> Duration {
        match v.parse::<f64>() {
            Ok(s) if (0.0..=3600.0).contains(&s) => Duration::from_secs_f64(s),
            _ => usage_error(&format!("{what} wants seconds (0 to 3600), not {v:?}")),
        }
    };
    let count = |v: String, what: &str| -> usize {
        match v.parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => usage_error(&format!(
                "{what} wants a number from 1 to 100000, not {v:?}"
            )),
        }
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage_error(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0)
            }
            "--bridge" => opts.bridge = value().into(),
            "--server" => opts.server = value().into(),
            "--duration" => settings.duration = secs(value(), "--duration"),
            "--warmup" => settings.warmup = secs(value(), "--warmup"),
            "--request-timeout" => settings.request_timeout = secs(value(), "--request-timeout"),
            "--idle-batch" => settings.idle_batch = count(value(), "--idle-batch"),
            "--idle-sample" => settings.idle_sample = count(value(), "--idle-sample"),
            "--huge-repeat" => settings.huge_repeat = count(value(), "--huge-repeat"),
            "--bridge-arg" => opts.extra_args.push(value()),
            "--log-dir" => log_dir = Some(PathBuf::from(value())),
            "--threads" => threads = Some(count(value(), "--threads")),
            "--ceiling" => ceiling = true,
            flag if flag.starts_with('-') => usage_error(&format!("unknown option {flag}")),
            name => names.push(name.to_owned()),
        }
    }
    if settings.duration.is_zero() {
        usage_error("--duration must be more than 0");
    }
    if settings.request_timeout.is_zero() {
        usage_error("--request-timeout must be more than 0");
    }
    if names.is_empty() {
        names = DEFAULT_SCENARIOS.iter().map(|s| s.to_string()).collect();
    }
    let specs = names
        .iter()
        .map(|n| Spec::parse(n).unwrap_or_else(|e| usage_error(&e)))
        .collect();
    Args {
        specs,
        settings,
        bridge: opts,
        threads,
        log_dir,
        ceiling,
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(null::COMMAND) {
        std::process::exit(null::main());
    }
    let args = parse_args();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build().expect("a tokio runtime");
    let ok = rt.block_on(run(args));
    std::process::exit(if ok { 0 } else { 1 });
}

/// Runs every scenario on a bridge of its own (with `--ceiling`, a load scenario also on the
/// null server before and after); prints the table; true when all went cleanly.
async fn run(mut args: Args) -> bool {
    for path in [&args.bridge.bridge, &args.bridge.server] {
        if !path.is_file() {
            eprintln!("mcp-bench: {} does not exist (cargo build --release --bins at the repository root)", path.display());
            return false;
        }
    }
    if let Some(dir) = &args.log_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("mcp-bench: cannot create {}: {e}", dir.display());
            return false;
        }
    }
    let nofile = procs::raise_nofile();
    let mut lines: Vec<String> = Vec::new();
    let mut clean = true;
    for spec in std::mem::take(&mut args.specs) {
        let ceiling = args.ceiling && matches!(spec.what, What::Load { h2: false, .. });
        let mut rows = Vec::new();
        let mut null_rps = Vec::new();
        for null in [true, false, true] {
            if null && !ceiling {
                continue;
            }
            let (mut got, ok) = run_spec(&spec, &args, nofile, null).await;
            clean &= ok;
            if null {
                null_rps.extend(got.iter().filter_map(|r| r.rps));
                for row in &mut got {
                    row.name = format!("{} (null)", row.name);
                }
            }
            rows.extend(got);
        }
        if let [before, after] = null_rps[..] {
            for row in rows.iter_mut().filter(|r| !r.name.ends_with("(null)")) {
                if let Some(rps) = row.rps {
                    row.note.push_str(&share_of_null(rps, before, after));
                }
            }
        }
        for row in rows {
            let line = row.markdown();
            eprintln!("{line}");
            lines.push(line);
        }
    }
    println!("{}", scenario::table_header());
    for l in &lines {
        println!("{l}");
    }
    clean
}

/// "; 78–88 % of null (98,561 before, 111,244 after)".
fn share_of_null(rps: f64, before: f64, after: f64) -> String {
    let pct = |n: f64| if n > 0.0 { 100.0 * rps / n } else { 0.0 };
    let (lo, hi) = (pct(before.max(after)), pct(before.min(after)));
    format!(
        "; {lo:.0}–{hi:.0} % of null ({} before, {} after)",
        scenario::thousands(before),
        scenario::thousands(after)
    )
}

/// Starts the bridge (or with `null`, the null server), runs `spec` on it and stops it; the
/// rows, and whether all went cleanly.
async fn run_spec(spec: &Spec, args: &Args, nofile: libc::rlim_t, null: bool) -> (Vec<Row>, bool) {
    let mut spec = spec.clone();
    let mut opts = args.bridge.clone();
    opts.null = null;
    if let What::Idle { sessions, streams } = &mut spec.what {
        // Each stream holds one connection here and one at the bridge.
        let room = (nofile as usize).saturating_sub(args.settings.idle_batch + 256);
        if *streams == scenario::Streams::Http1 && *sessions > room {
            eprintln!(
                "mcp-bench: {}: only {room} sessions fit the open-files limit ({nofile})",
                spec.name
            );
            *sessions = room.max(1);
        }
        // The bridge's default --max-sessions is 10000.
        opts.extra_args
            .extend(["--max-sessions".into(), (*sessions + 64).to_string()]);
    }
    if let What::Huge { mib } = spec.what {
        opts.extra_args.extend(huge::bridge_args(mib));
    }
    let suffix = if null { "-null" } else { "" };
    opts.log = args
        .log_dir
        .as_ref()
        .map(|d| d.join(format!("{}{suffix}.log", spec.name)));
    eprintln!("mcp-bench: {} on {} ...", spec.name, opts.what());
    if let What::Cold { starts } = spec.what {
        // Starts bridges of its own, each bounded (URL line, call, stop).
        let row = cold::run(&spec.name, starts, &args.settings, &opts).await;
        let ok = report_errors(&row);
        return (vec![row], ok);
    }
    let bridge = match bridge::Bridge::start(&opts).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mcp-bench: {}: {e}", spec.name);
            return (vec![failed_row(&spec.name, &e)], false);
        }
    };
    // The whole scenario is bounded in time too.
    let limit = args.settings.warmup + args.settings.duration + Duration::from_secs(240);
    let one = |r: Result<Row, String>| r.map(|row| vec![row]);
    let result = match &spec.what {
        What::Load { .. } => {
            tokio::time::timeout(limit, scenario::run_load(&spec, &args.settings, &bridge))
                .await
                .map(one)
        }
        What::Idle { .. } => {
            tokio::time::timeout(limit, scenario::run_idle(&spec, &args.settings, &bridge))
                .await
                .map(one)
        }
        What::Huge { .. } => {
            let run = huge::run(&spec, &args.settings, &bridge, &args.bridge.server);
            tokio::time::timeout(limit, run).await
        }
        What::Cold { .. } => Ok(Err("a cold scenario starts bridges of its own".into())),
    };
    let stopped = bridge.stop().await;
    match result {
        Ok(Ok(mut rows)) => {
            let mut ok = true;
            for row in &mut rows {
                if stopped != "exit 0" {
                    row.note.push_str(&format!("; stopped: {stopped}"));
                    ok = false;
                }
                ok &= report_errors(row);
            }
            (rows, ok)
        }
        Ok(Err(e)) => {
            eprintln!("mcp-bench: {}: {e}", spec.name);
            (vec![failed_row(&spec.name, &e)], false)
        }
        Err(_) => (
            vec![failed_row(&spec.name, "did not finish in time")],
            false,
        ),
    }
}

/// Prints a row's first error messages; true when it has none.
fn report_errors(row: &Row) -> bool {
    for m in &row.errors.first {
        eprintln!("mcp-bench: {}: {m}", row.name);
    }
    row.errors.total() == 0
}

fn failed_row(name: &str, why: &str) -> Row {
    Row {
        name: name.into(),
        rps: None,
        latency: None,
        errors: Default::default(),
        rss_start: 0,
        rss_peak: 0,
        cpu: Default::default(),
        calls: None,
        note: format!("FAILED: {}", why.replace('|', "/")),
    }
}

#[cfg(test)]
mod tests {
    use super::share_of_null;

    #[test]
    fn share_of_null_names_the_lower_share_first() {
        assert_eq!(
            share_of_null(80_000.0, 100_000.0, 80_000.0),
            "; 80–100 % of null (100,000 before, 80,000 after)"
        );
        assert_eq!(
            share_of_null(45_000.0, 90_000.0, 100_000.0),
            "; 45–50 % of null (90,000 before, 100,000 after)"
        );
    }
}
