//! Entry point: parse the command line, set up logging, bind, start the child, print the
//! endpoint URL, serve until a signal. Exit codes: 0 clean, 1 runtime failure, 2 usage.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use mcp_http_bridge::{cli::Cli, shutdown, Bridge, Config};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let (host, port) = (cli.host.clone(), cli.port);
    let threads = cli
        .threads
        .map_or_else(mcp_http_bridge::cli::default_threads, usize::from);
    let config = cli.into_config().unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    match runtime.block_on(serve(host, port, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-http-bridge: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(host: String, port: u16, config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signal = shutdown::signal();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if signal.await.is_ok() {
            on_signal.cancel();
        }
    });
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    let addr = listener.local_addr()?;
    // The endpoint to print: Streamable HTTP, or the legacy SSE stream when that is all there is.
    let path = config
        .mcp_path
        .clone()
        .or(config.sse_path.clone())
        .unwrap_or_default();
    let bridge = tokio::select! {
        b = Bridge::start(config) => b?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    let mut out = std::io::stdout().lock();
    // The one line on stdout: scripts read the endpoint from it.
    let scheme = if bridge.is_tls() { "https" } else { "http" };
    writeln!(out, "{scheme}://{addr}{path}")
        .and_then(|()| out.flush())
        .ok();
    drop(out);
    bridge.serve(listener, shutdown).await
}
