//! The server: opens the store and runs ingress, the pipeline and the delivery worker together
//! until shutdown, then drains them in order — stop accepting, finish routing, finish attempts.

use crate::config::Config;
use crate::{deliver, ingress, pipeline, store};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long shutdown waits for delivery attempts in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How this process runs the gateway, beyond the config file.
#[derive(Debug, Default)]
pub struct Options {
    /// The admin API's bound listener; `None` serves no admin API.
    pub admin_listener: Option<TcpListener>,
    /// The `hookgate` executable that evaluates routes in a child process (`__route-worker`).
    /// `None` evaluates on a thread instead, without crash containment.
    pub evaluator_exe: Option<std::path::PathBuf>,
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
    let client = deliver::http_client()?;
    let switch = deliver::TargetSwitch::load(&*store).await?;
    let worker = deliver::Worker::new(
        store.clone(),
        client.clone(),
        &config.targets,
        clock,
        switch.clone(),
    );
    let admin_task = match (options.admin_listener, &config.admin) {
        (Some(listener), Some(admin)) => {
            let app = crate::admin::router(crate::admin::Admin {
                store: store.clone(),
                token: admin.token.clone(),
                clock,
                switch: switch.clone(),
                targets: config.targets.clone(),
                client: client.clone(),
            });
            tracing::info!(addr = %listener.local_addr()?, "admin listening");
            Some(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ))
        }
        _ => None,
    };
    let (_config_tx, config_rx) = watch::channel(Arc::new(config));
    let (stop_tx, stop_rx) = watch::channel(false);

    let pipeline_task = tokio::spawn(pipeline::run(
        store.clone(),
        config_rx.clone(),
        crate::evaluator::Evaluator::new(options.evaluator_exe),
        clock,
        stop_rx.clone(),
    ));
    let retention = config_rx.borrow().store.retention;
    let retention_task =
        retention.map(|r| tokio::spawn(store::retention::run(store.clone(), r, stop_rx.clone())));
    let worker_task = tokio::spawn(worker.run(stop_rx, SHUTDOWN_GRACE));
    let app = ingress::router(ingress::Ingress {
        store: store.clone(),
        config: config_rx,
        metrics: Arc::new(ingress::Metrics::default()),
    });
    tracing::info!(addr = %listener.local_addr()?, "ingress listening");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    if let Some(task) = admin_task {
        task.abort();
    }
    let _ = pipeline_task.await;
    if let Some(task) = retention_task {
        let _ = task.await;
    }
    let _ = worker_task.await;
    served?;
    Ok(())
}

/// rustls needs one process-wide crypto provider; installing it twice is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
