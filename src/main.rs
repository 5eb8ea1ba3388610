//! Entry point: parse the command line, set up logging, bind, start the child, print the
//! endpoint URL, serve until a signal. Exit codes: 0 clean, 1 runtime failure, 2 usage.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mcp_http_bridge::logs::{self, LogFormat};
use mcp_http_bridge::metrics::Metrics;
use mcp_http_bridge::{cli::Cli, shutdown, Bridge, Config};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
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
    let format = match cli.log_format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Human,
    };
    logs::init(format, filter);
    let (host, port, metrics) = (cli.host.clone(), cli.port, cli.metrics_listen);
    let config = cli.into_config().unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    match runtime.block_on(serve(host, port, metrics, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-http-bridge: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(
    host: String,
    port: u16,
    metrics_addr: Option<SocketAddr>,
    mut config: Config,
) -> anyhow::Result<()> {
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
    let metrics = match metrics_addr {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (--metrics-listen)"))?;
            let metrics = Arc::new(Metrics::new());
            config.metrics = metrics.server(&config.name);
            Some((metrics, listener))
        }
        None => None,
    };
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
    let mut out = std::io::stdout().lock();
    // The one line on stdout: scripts read the endpoint from it.
    let scheme = if bridge.is_tls() { "https" } else { "http" };
    writeln!(out, "{scheme}://{addr}{path}")
        .and_then(|()| out.flush())
        .ok();
    drop(out);
    bridge.serve(listener, shutdown).await
}
