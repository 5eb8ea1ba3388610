//! mcp-bench: starts mcp-http-bridge in front of the example stdio server once per scenario,
//! drives it over 127.0.0.1, checks every reply and prints a markdown table.

mod bridge;
mod client;
mod cold;
mod http;
mod huge;
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
  -h, --help              this text
";

struct Args {
    specs: Vec<Spec>,
    settings: Settings,
    bridge: bridge::Options,
    threads: Option<usize>,
    log_dir: Option<PathBuf>,
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
        bridge: "../target/release/mcp-http-bridge".into(),
        server: "../target/release/fake-mcp-server".into(),
        extra_args: Vec::new(),
        log: None,
    };
    let mut threads = None;
    let mut log_dir = None;
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
    }
}

fn main() {
    let args = parse_args();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build().expect("a tokio runtime");
    let ok = rt.block_on(run(args));
    std::process::exit(if ok { 0 } else { 1 });
}

/// Runs every scenario on a bridge of its own; prints the table; true when all went cleanly.
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
    let mut rows: Vec<String> = Vec::new();
    let mut clean = true;
    let base_args = args.bridge.extra_args.clone();
    for spec in std::mem::take(&mut args.specs) {
        let mut spec = spec;
        args.bridge.extra_args = base_args.clone();
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
            args.bridge
                .extra_args
                .extend(["--max-sessions".into(), (*sessions + 64).to_string()]);
        }
        if let What::Huge { mib } = spec.what {
            args.bridge.extra_args.extend(huge::bridge_args(mib));
        }
        args.bridge.log = args
            .log_dir
            .as_ref()
            .map(|d| d.join(format!("{}.log", spec.name)));
        eprintln!("mcp-bench: {} ...", spec.name);
        if let What::Cold { starts } = spec.what {
            // Starts bridges of its own, each bounded (URL line, call, stop).
            let row = cold::run(&spec.name, starts, &args.settings, &args.bridge).await;
            if row.errors.total() > 0 {
                clean = false;
                for m in &row.errors.first {
                    eprintln!("mcp-bench: {}: {m}", row.name);
                }
            }
            rows.push(row.markdown());
            continue;
        }
        let bridge = match bridge::Bridge::start(&args.bridge).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("mcp-bench: {}: {e}", spec.name);
                rows.push(failed_row(&spec.name, &e));
                clean = false;
                continue;
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
        let lines = match result {
            Ok(Ok(done)) => done
                .into_iter()
                .map(|mut row| {
                    if stopped != "exit 0" {
                        row.note.push_str(&format!("; bridge: {stopped}"));
                        clean = false;
                    }
                    if row.errors.total() > 0 {
                        clean = false;
                        for m in &row.errors.first {
                            eprintln!("mcp-bench: {}: {m}", row.name);
                        }
                    }
                    row.markdown()
                })
                .collect(),
            Ok(Err(e)) => {
                clean = false;
                eprintln!("mcp-bench: {}: {e}", spec.name);
                vec![failed_row(&spec.name, &e)]
            }
            Err(_) => {
                clean = false;
                vec![failed_row(&spec.name, "did not finish in time")]
            }
        };
        for line in lines {
            eprintln!("{line}");
            rows.push(line);
        }
    }
    println!("{}", scenario::table_header());
    for r in &rows {
        println!("{r}");
    }
    clean
}

fn failed_row(name: &str, why: &str) -> String {
    let why = why.replace('|', "/");
    let row = Row {
        name: name.into(),
        rps: None,
        latency: None,
        errors: Default::default(),
        rss_start: 0,
        rss_peak: 0,
        cpu: Default::default(),
        calls: None,
        note: format!("FAILED: {why}"),
    };
    row.markdown()
}
