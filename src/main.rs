//! Entry point: parse the command line (or print completions or the man page), set up
//! logging, bind, start the child (or the servers of `--config`), print the URL line, serve
//! until a signal. Exit codes: 0 clean, 1 runtime failure, 2 usage.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mcp_http_bridge::logs::{self, LogFormat};
use mcp_http_bridge::metrics::Metrics;
use mcp_http_bridge::{cli::Cli, reload, shutdown, Bridge, Config, FileOptions};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

mod math;

fn main() -> ExitCode {
    // Large messages pass through buffers of their size: glibc would hand their pages back to
    // the kernel after each one and fault them in afresh for the next. Keep up to 64 MiB of
    // freed memory for reuse (measured with the benchmark's `huge` scenario).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
    let cli = Cli::parse_or_exit();
    if let Some(tool) = &cli.tool {
        return match mcp_http_bridge::cli::docs::write(tool, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        };
    }
    init_logs(&cli);
    if let Some(id) = &cli.instance_id {
        // Before anything is minted; the value was validated with the other flags.
        if let Err(e) = mcp_http_bridge::instance::set(id) {
            eprintln!("mcp-http-bridge: error: --instance-id: {e}");
            return ExitCode::from(2);
        }
    }
    let at = Listen {
        host: cli.host.clone(),
        port: cli.port,
        metrics: cli.metrics_listen,
        file: cli.config.clone(),
    };
    let threads = cli
        .threads
        .map_or_else(mcp_http_bridge::cli::default_threads, usize::from);
    let config = cli.into_config().unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    match runtime.block_on(serve(at, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-http-bridge: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logging as `--log-level` (or RUST_LOG) and `--log-format` say; a bad filter exits 2.
fn init_logs(cli: &Cli) {
    let filter = match &cli.log_level {
        Some(level) => EnvFilter::try_new(level),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let filter = filter.unwrap_or_else(|e| {
        clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("bad log filter: {e}\n"),
        )
        .exit()
    });
    let format = match cli.log_format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Human,
    };
    logs::init(format, filter);
}

/// Where to listen, beside the configuration.
struct Listen {
    host: String,
    port: u16,
    metrics: Option<SocketAddr>,
    file: Option<PathBuf>,
}

async fn serve(at: Listen, mut config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signal = shutdown::signal();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if signal.await.is_ok() {
            on_signal.cancel();
        }
    });
    let (host, port) = (&at.host, at.port);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    let addr = listener.local_addr()?;
    let metrics = match at.metrics {
        Some(on) => {
            let listener = tokio::net::TcpListener::bind(on)
                .await
                .with_context(|| format!("cannot listen on {on} (--metrics-listen)"))?;
            let metrics = Arc::new(Metrics::new());
            // With --config, each server of the file gets its own handle.
            if at.file.is_none() {
                config.metrics = metrics.server(&config.name);
            }
            Some((metrics, listener))
        }
        None => None,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if let Some(path) = at.file {
        let reload = Arc::new(tokio::sync::Notify::new());
        reload::on_sighup(reload.clone(), shutdown.clone());
        let options = FileOptions {
            path,
            base: config,
            metrics,
            reload,
        };
        // The servers' paths are under the printed URL: /servers/NAME/mcp.
        let print = || print_url(&format!("{scheme}://{addr}"));
        return mcp_http_bridge::serve_file(options, listener, shutdown, print).await;
    }
    // The endpoint to print: Streamable HTTP, or the legacy SSE stream when that is all there is.
    let path = config
        .mcp_path
        .clone()
        .or(config.sse_path.clone())
        .unwrap_or_default();
    let mut bridge = tokio::select! {
        b = Bridge::start(config) => b?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    if let Some((metrics, listener)) = metrics {
        bridge = bridge.with_metrics(metrics, listener);
    }
    print_url(&format!("{scheme}://{addr}{path}"));
    bridge.serve(listener, shutdown).await
}

/// The one line on stdout, once the bridge serves: scripts read the endpoint from it.
fn print_url(url: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{url}").and_then(|()| out.flush()).ok();
}
