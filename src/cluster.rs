//! Keeps the gateway instances that share one store in step: plugins uploaded to or deleted on
//! any of them, config reloads asked of any of them, targets switched off or on.
//!
//! The store holds what is shared (PostgreSQL: the `plugins`, `config_reloads` and `target_state`
//! tables) and signals changes (`NOTIFY hookgate_cluster`); this module applies them to the local
//! [`Registry`], [`Reloader`] and [`TargetSwitch`]. It also looks every [`POLL`] without a signal,
//! so a change made while this instance's LISTEN connection was down arrives late, not never.
//! Each instance validates and compiles a shared plugin itself: a plugin that fails here is
//! logged and the version already running stays. It never runs for a store one process owns.

use crate::config::reload::Reloader;
use crate::deliver::TargetSwitch;
use crate::store::{SharedPlugin, Store, StoreError};
use crate::transform::wasm::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often an instance looks for changes without being told.
pub(crate) const POLL: Duration = Duration::from_secs(5);

/// This instance's view of what it has applied.
pub(crate) struct Cluster {
    store: Arc<dyn Store>,
    plugins: Arc<Registry>,
    reloader: Arc<Reloader>,
    switch: TargetSwitch,
    /// The newest shared reload this instance has applied.
    applied_reload: i64,
}

impl Cluster {
    /// Joins the instances sharing `store`: installs the plugins they share, shares the local
    /// plugins they have never seen, and takes the config file as read as the newest reload.
    /// `None` when the store is not shared.
    pub(crate) async fn join(
        store: Arc<dyn Store>,
        plugins: Arc<Registry>,
        reloader: Arc<Reloader>,
        switch: TargetSwitch,
    ) -> Result<Option<Self>, StoreError> {
        if !store.is_shared() {
            return Ok(None);
        }
        let applied_reload = store.reload_generation().await?;
        let cluster = Self {
            store,
            plugins,
            reloader,
            switch,
            applied_reload,
        };
        cluster.sync_plugins(true).await?;
        Ok(Some(cluster))
    }

    /// Applies changes as they are signalled (or found by polling) until `stop`.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let signal = self.store.signals().cluster;
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = signal.notified() => {}
                _ = poll.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "cannot read what instances share; retrying");
            }
        }
    }

    async fn sync(&mut self) -> Result<(), StoreError> {
        self.sync_plugins(false).await?;
        self.switch.refresh(&*self.store).await?;
        let generation = self.store.reload_generation().await?;
        if generation > self.applied_reload {
            match self.reloader.reload().await {
                Ok(done) => tracing::info!(
                    routes = done.routes,
                    targets = done.targets,
                    restart_needed = ?done.restart_needed,
                    "config reloaded: another instance asked"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "config reload asked by another instance refused here; nothing changed"
                ),
            }
            // Applied or refused, it is answered: the next request is a new generation.
            self.applied_reload = generation;
        }
        Ok(())
    }

    /// Brings local plugins to what is shared; with `seed`, shares local ones never shared.
    async fn sync_plugins(&self, seed: bool) -> Result<(), StoreError> {
        let _changing = self.plugins.changing().await;
        let shared = self.store.shared_plugins().await?;
        let local: BTreeMap<String, String> = self
            .plugins
            .list()
            .into_iter()
            .map(|p| (p.name, p.sha256))
            .collect();
        for plugin in &shared {
            self.apply(plugin, local.get(&plugin.name)).await?;
        }
        if seed {
            for (name, sha256) in &local {
                if shared.iter().all(|s| &s.name != name) {
                    self.share_local(name, sha256).await?;
                }
            }
        }
        Ok(())
    }

    async fn apply(&self, shared: &SharedPlugin, local: Option<&String>) -> Result<(), StoreError> {
        let name = &shared.name;
        if shared.deleted {
            if local.is_some() {
                match self.plugins.remove(name) {
                    Ok(()) => {
                        tracing::info!(plugin = %name, "plugin deleted: another instance asked")
                    }
                    Err(e) => tracing::error!(plugin = %name, error = %e, "cannot delete plugin"),
                }
            }
            return Ok(());
        }
        if local == Some(&shared.sha256) {
            return Ok(());
        }
        let Some(bytes) = self.store.shared_plugin_bytes(name).await? else {
            return Ok(()); // deleted meanwhile: the next pass unloads it
        };
        let registry = self.plugins.clone();
        let plugin = name.clone();
        let installed =
            tokio::task::spawn_blocking(move || registry.install(&plugin, &bytes)).await;
        match installed {
            Ok(Ok(info)) => tracing::info!(
                plugin = %name, sha256 = %info.sha256, "plugin installed: shared by another instance"
            ),
            Ok(Err(e)) => tracing::error!(
                plugin = %name, sha256 = %shared.sha256, error = %e,
                "shared plugin does not load here; the running version stays"
            ),
            Err(e) => tracing::error!(plugin = %name, error = %e, "plugin install did not finish"),
        }
        Ok(())
    }

    async fn share_local(&self, name: &str, sha256: &str) -> Result<(), StoreError> {
        match self.plugins.read(name) {
            Ok(bytes) => {
                self.store
                    .share_plugin(name, Some((bytes.into(), sha256.to_string())))
                    .await?;
                tracing::info!(plugin = %name, "local plugin shared with the other instances");
            }
            Err(e) => tracing::error!(plugin = %name, error = %e, "cannot read plugin to share it"),
        }
        Ok(())
    }
}
