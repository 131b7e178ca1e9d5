//! The server: opens the store and runs ingress, the pipeline and the delivery worker together
//! until shutdown, then drains them in order — stop accepting, finish routing, finish attempts.

use crate::config::Config;
use crate::config::reload::Reloader;
use crate::metrics::Metrics;
use crate::transform::wasm::registry::Registry;
use crate::{deliver, ingress, route, store};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long shutdown waits for delivery attempts in flight.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How this process runs the gateway, beyond the config file.
#[derive(Debug, Default)]
pub struct Options {
    /// The admin API's bound listener; `None` serves no admin API.
    pub admin_listener: Option<TcpListener>,
    /// The `hookgate` executable that evaluates routes in a child process (`__route-worker`).
    /// `None` evaluates on a thread instead, without crash containment.
    pub evaluator_exe: Option<std::path::PathBuf>,
    /// Reload the config file on SIGHUP (the binary does; in-process tests need not).
    pub reload_on_sighup: bool,
    /// The public listener's timeouts and connection cap (defaults: [`ingress::Limits`]).
    pub ingress: ingress::Limits,
    /// Where compiled plugins are cached (`--plugin-cache`); `None`: `<plugins.dir>/.cache`.
    pub plugin_cache: Option<std::path::PathBuf>,
}

/// Runs the gateway on a bound `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    install_crypto();
    let clock = crate::Clock::new();
    let store = store::open(&config.store.url, config.store.sync).await?;
    let ctx = deliver::Context {
        store: store.clone(),
        client: deliver::client::Http::new()?,
        clock,
        switch: deliver::TargetSwitch::load(&*store).await?,
        gates: deliver::Gates::default(),
        metrics: Arc::new(Metrics::default()),
    };
    let plugins = open_plugins(&config, options.plugin_cache.clone()).await?;
    let retention = config.store.retention;
    let admin = config.admin.is_some();
    for (key, why) in &config.warnings {
        tracing::warn!(warning = %format!("{key}: {why}"), "config");
    }
    let (config_tx, config_rx) = watch::channel(Arc::new(config));
    let reloader = Arc::new(Reloader::new(config_rx.borrow().path.clone(), config_tx));
    // In-memory hand-offs between the stages; the store stays the source of truth.
    let (inbox, mailbox) = route::inbox::inbox();
    let (handoff, handed) = deliver::handoff::handoff(ctx.switch.clone(), ctx.gates.clone());
    let worker = deliver::Worker::new(ctx.clone(), config_rx.clone(), handed);
    let cluster = crate::cluster::Cluster::join(
        store.clone(),
        plugins.clone(),
        reloader.clone(),
        ctx.switch.clone(),
    )
    .await?;
    let admin_task = match options.admin_listener.filter(|_| admin) {
        Some(listener) => {
            let app = crate::admin::router(crate::admin::Admin {
                store: store.clone(),
                config: config_rx.clone(),
                reloader: reloader.clone(),
                plugins: plugins.clone(),
                clock,
                switch: ctx.switch.clone(),
                gates: ctx.gates.clone(),
                client: ctx.client.clone(),
                metrics: ctx.metrics.clone(),
                sessions: Default::default(),
                evaluators: Arc::new(tokio::sync::Mutex::new(crate::route::evaluator::Pool::new(
                    options.evaluator_exe.clone(),
                    1,
                ))),
            });
            tracing::info!(addr = %listener.local_addr()?, "admin listening");
            Some(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ))
        }
        None => None,
    };
    let sighup_task = options
        .reload_on_sighup
        .then(|| tokio::spawn(reload_on_sighup(reloader.clone())));
    let (stop_tx, stop_rx) = watch::channel(false);
    let backlog = Arc::new(route::backlog::Backlog::default());
    if let Err(e) = backlog.count_in(&*store).await {
        // Ingress's inserts will say whether the store can take events; the refresher retries.
        tracing::warn!(error = %e, "cannot count the routing backlog before opening ingress");
    }
    let (depths, queues) = route::shed::queues();
    let backlog_task = tokio::spawn(route::backlog::refresh(
        backlog.clone(),
        depths,
        store.clone(),
        stop_rx.clone(),
    ));

    let pipeline = route::Pipeline {
        store: store.clone(),
        config: config_rx.clone(),
        evaluators: crate::route::evaluator::Pool::new(
            options.evaluator_exe,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        backlog: backlog.clone(),
        inbox: mailbox,
        handoff,
        queues,
        plugins: plugins.clone(),
        clock,
        metrics: ctx.metrics.clone(),
    };
    let pipeline_task = tokio::spawn(pipeline.run(stop_rx.clone()));
    let retention_task =
        retention.map(|r| tokio::spawn(store::retention::run(store.clone(), r, stop_rx.clone())));
    let cluster_task = cluster.map(|c| tokio::spawn(c.run(stop_rx.clone())));
    let worker_task = tokio::spawn(worker.run(stop_rx, SHUTDOWN_GRACE));
    let limits = options.ingress;
    let app = std::sync::Arc::new(ingress::App::new(ingress::Ingress {
        store: store.clone(),
        config: config_rx,
        metrics: ctx.metrics.clone(),
        gates: ctx.gates.clone(),
        switch: ctx.switch.clone(),
        backlog,
        inbox,
        limits,
        drift: Default::default(),
    }));
    tracing::info!(addr = %listener.local_addr()?, max_connections = limits.max_connections,
        "ingress listening");
    // A request in flight at shutdown needs at most the body deadline to reach its commit.
    let drain = limits.body_read_timeout + SHUTDOWN_GRACE;
    ingress::listener::serve(listener, app, limits, drain, shutdown).await;
    let _ = stop_tx.send(true);
    for task in [
        admin_task.map(|t| t.abort_handle()),
        sighup_task.map(|t| t.abort_handle()),
        cluster_task.map(|t| t.abort_handle()),
        Some(backlog_task.abort_handle()),
    ]
    .into_iter()
    .flatten()
    {
        task.abort();
    }
    let _ = pipeline_task.await;
    if let Some(task) = retention_task {
        let _ = task.await;
    }
    let _ = worker_task.await;
    Ok(())
}

/// Opens `plugins.dir` and loads (or, with a warm cache, just maps) every plugin in it.
async fn open_plugins(
    config: &Config,
    cache: Option<std::path::PathBuf>,
) -> anyhow::Result<Arc<Registry>> {
    let dir = config.plugins_dir();
    let cache = cache.unwrap_or_else(|| dir.join(".cache"));
    let limits = config.plugins.limits();
    let registry =
        tokio::task::spawn_blocking(move || Registry::open(&dir, cache, limits)).await??;
    Ok(Arc::new(registry))
}

/// SIGHUP reloads the config file, like `POST /admin/v1/reload`.
async fn reload_on_sighup(reloader: Arc<Reloader>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload through the admin API");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match reloader.reload().await {
            Ok(done) => tracing::info!(routes = done.routes, targets = done.targets,
                restart_needed = ?done.restart_needed, "config reloaded on SIGHUP"),
            Err(e) => {
                tracing::warn!(error = %e, "config reload on SIGHUP refused; nothing changed")
            }
        }
    }
}

/// rustls needs one process-wide crypto provider; installing it twice is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
