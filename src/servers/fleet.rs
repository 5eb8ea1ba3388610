//! `Fleet`: the servers of a configuration file, each started, served and stopped on its own.
//! One server failing to start, or giving up on its children, leaves the others serving. A
//! reload (SIGHUP) reads the file again: added servers start, removed ones drain and stop,
//! changed ones are replaced, and unchanged ones keep their sessions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use super::file::{self, ServerSpec, ServerTable};
use super::{Running, Servers, Slot, PREFIX};
use crate::access::Policy;
use crate::children::Children;
use crate::config::Config;
use crate::metrics::Metrics;

/// How `serve_file` is run: beside its listener and shutdown token.
pub struct FileOptions {
    /// The configuration file.
    pub path: std::path::PathBuf,
    /// The command line's settings, under every server's.
    pub base: Config,
    /// Metrics to record and serve on their own listener.
    pub metrics: Option<(Arc<Metrics>, TcpListener)>,
    /// Each notification reloads the file (SIGHUP).
    pub reload: Arc<tokio::sync::Notify>,
}

/// Serves the servers of a configuration file on `listener` until `shutdown` is cancelled.
/// HTTP is served at once (`/ready` answers 503 while servers start); `on_started` is called
/// once every server has started or failed. A server that fails leaves the others serving.
///
/// # Errors
/// When the file cannot be read, or TLS cannot be set up.
pub async fn serve_file(
    options: FileOptions,
    listener: TcpListener,
    shutdown: CancellationToken,
    on_started: impl FnOnce(),
) -> anyhow::Result<()> {
    let FileOptions {
        path,
        base,
        metrics,
        reload,
    } = options;
    let tls = base.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    let addr = listener.local_addr()?;
    let servers = Arc::new(Servers::new(Policy::new(&base.access, addr)));
    let recorder = metrics.as_ref().map(|(m, _)| m.clone());
    let fleet = Fleet::new(path, base.clone(), addr, servers.clone(), recorder);
    let specs = fleet.read().map_err(|e| anyhow::anyhow!(e))?;
    let stop_metrics = CancellationToken::new();
    let connections = Arc::new(crate::listener::Connections::default());
    let metrics_server = metrics.map(|(metrics, listener)| {
        metrics.watch(&servers);
        metrics.watch_connections(&connections);
        crate::metrics::serve::spawn(listener, metrics, stop_metrics.clone())
    });
    let settings = crate::listener::Settings::for_config(&base);
    info!(%addr, instance = crate::instance::id(), servers = specs.len(), "listening");
    let stop_accepting = CancellationToken::new();
    let app = crate::http::top(servers.clone());
    let listening = crate::listener::spawn_server(
        listener,
        tls,
        app,
        settings,
        stop_accepting.clone(),
        connections,
    );
    tokio::select! {
        () = fleet.start_all(specs) => on_started(),
        () = shutdown.cancelled() => {}
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = reload.notified() => tokio::select! {
                // Servers still starting are the shutdown's to stop.
                () = fleet.reload() => {}
                () = shutdown.cancelled() => break,
            },
        }
    }
    // Draining first, as `Bridge::serve` does.
    servers.begin_shutdown();
    let deadline = std::time::Instant::now() + base.shutdown_grace;
    futures_util::future::join_all(servers.running().iter().map(|r| r.settle(deadline))).await;
    stop_accepting.cancel();
    fleet.stop_all(deadline).await;
    if !listening.finish(base.shutdown_grace).await {
        warn!("open connections did not finish within the grace period; closed them");
    }
    stop_metrics.cancel();
    if let Some(task) = metrics_server {
        let _ = tokio::time::timeout(base.shutdown_grace, task).await;
    }
    info!("server stopped");
    Ok(())
}

/// The servers of one configuration file.
pub struct Fleet {
    path: PathBuf,
    base: Config,
    addr: SocketAddr,
    servers: Arc<Servers>,
    metrics: Option<Arc<Metrics>>,
    /// Each server's table as it runs, and the token that retires it.
    live: Mutex<BTreeMap<String, (ServerTable, CancellationToken)>>,
    /// Start, watch and stop tasks of the servers.
    tasks: TaskTracker,
}

impl Fleet {
    /// A fleet for the file at `path`, over `base` (the command line's settings), serving
    /// into `servers`.
    pub fn new(
        path: PathBuf,
        base: Config,
        addr: SocketAddr,
        servers: Arc<Servers>,
        metrics: Option<Arc<Metrics>>,
    ) -> Arc<Fleet> {
        Arc::new(Fleet {
            path,
            base,
            addr,
            servers,
            metrics,
            live: Mutex::new(BTreeMap::new()),
            tasks: TaskTracker::new(),
        })
    }

    fn live(&self) -> MutexGuard<'_, BTreeMap<String, (ServerTable, CancellationToken)>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the file.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn read(&self) -> Result<BTreeMap<String, ServerSpec>, String> {
        file::load(&self.path, &self.base)
    }

    /// Starts every server of `specs` and waits until each has started or failed.
    pub async fn start_all(self: &Arc<Self>, specs: BTreeMap<String, ServerSpec>) {
        let started: Vec<_> = specs
            .into_iter()
            .map(|(name, spec)| self.start(name, spec))
            .collect();
        futures_util::future::join_all(started).await;
    }

    /// Reads the file again and applies the difference. A file that cannot be read changes
    /// nothing.
    pub async fn reload(self: &Arc<Self>) {
        let specs = match self.read() {
            Ok(specs) => specs,
            Err(e) => return error!(err = e, "reload refused; the servers go on as they are"),
        };
        // A server that failed (to start, or later) is started again.
        let failed = |name: &str| match self.servers.get(name) {
            Some(Slot::Failed(_)) => true,
            Some(Slot::Running(r)) => r.state.children.has_given_up(),
            _ => false,
        };
        let gone: Vec<String> = {
            let live = self.live();
            live.iter()
                .filter(|(name, (table, _))| {
                    specs.get(*name).map_or(true, |s| s.table != *table) || failed(name)
                })
                .map(|(name, _)| name.clone())
                .collect()
        };
        for name in &gone {
            self.retire(name);
        }
        let fresh: Vec<_> = specs
            .into_iter()
            .filter(|(name, _)| !self.live().contains_key(name))
            .map(|(name, spec)| self.start(name, spec))
            .collect();
        info!(
            stopped = gone.len(),
            started = fresh.len(),
            "configuration reloaded"
        );
        futures_util::future::join_all(fresh).await;
    }

    /// Takes server `name` out of the routes; it drains and stops in the background.
    fn retire(&self, name: &str) {
        if let Some((_, token)) = self.live().remove(name) {
            token.cancel();
        }
        if let Some(Slot::Running(r)) = self.servers.remove(name) {
            info!(server = name, "server removed; draining it");
            self.tasks.spawn(async move {
                r.stop(Some(r.drain_deadline())).await;
                r.wait_tasks().await;
            });
        }
    }

    /// Starts server `name`: `Starting` in the routes until its children have started, then
    /// `Running`, or `Failed`. The returned future ends once that is decided.
    fn start(
        self: &Arc<Self>,
        name: String,
        spec: ServerSpec,
    ) -> impl std::future::Future<Output = ()> {
        let retired = CancellationToken::new();
        self.live()
            .insert(name.clone(), (spec.table.clone(), retired.clone()));
        let default = spec.table.default;
        self.servers
            .set(name.as_str().into(), Slot::Starting, default);
        let mut config = spec.config;
        if let Some(m) = &self.metrics {
            config.metrics = m.server(&name);
        }
        let (this, decided) = (self.clone(), CancellationToken::new());
        let done = decided.clone();
        let span = tracing::info_span!("server", server = %name);
        self.tasks.spawn(
            async move {
                this.run(name, config, default, retired, decided).await;
            }
            .instrument(span),
        );
        async move { done.cancelled().await }
    }

    /// Starts, then serves server `name` until it is retired or gives up; `decided` is
    /// cancelled once it runs or has failed to start.
    async fn run(
        &self,
        name: String,
        config: Config,
        default: bool,
        retired: CancellationToken,
        decided: CancellationToken,
    ) {
        let _decided = decided.clone().drop_guard();
        let children = match Children::start(config.clone()).await {
            Ok(c) => c,
            Err(e) => {
                let why = format!("{e:#}");
                error!(err = why, "the server did not start; the others go on");
                if !retired.is_cancelled() {
                    self.servers
                        .set(name.into(), Slot::Failed(why.into()), default);
                }
                return;
            }
        };
        let policy = Policy::new(&config.access, self.addr);
        let prefix = Some(format!("{PREFIX}{name}").into());
        // OAuth is not served with --config (the CLI refuses both): no resource server.
        let running = Running::launch(
            name.as_str().into(),
            config,
            children,
            (policy, None),
            prefix,
        );
        if retired.is_cancelled() || self.servers.is_shutting_down() {
            running.stop(None).await;
            return running.wait_tasks().await;
        }
        self.servers
            .set(name.into(), Slot::Running(running.clone()), default);
        info!("server started");
        decided.cancel();
        tokio::select! {
            _ = running.gave_up() => error!(
                reason = running.fatal_reason(),
                "the server gave up on its MCP server; the others go on"
            ),
            _ = retired.cancelled() => {}
        }
    }

    /// Shutdown: every server drains (until `deadline`) and stops, in parallel, then their
    /// tasks end.
    pub async fn stop_all(&self, deadline: std::time::Instant) {
        self.servers.begin_shutdown();
        for (_, (_, token)) in std::mem::take(&mut *self.live()) {
            token.cancel();
        }
        let running = self.servers.running();
        futures_util::future::join_all(running.iter().map(|r| r.stop(Some(deadline)))).await;
        for r in &running {
            r.wait_tasks().await;
        }
        self.tasks.close();
        if tokio::time::timeout(self.base.shutdown_grace, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("server tasks still running after the grace period");
        }
    }
}
