//! Config reload (`POST /admin/v1/reload`, SIGHUP): re-read the file, validate it whole, and only
//! then publish it to every stage through one watch channel.
//!
//! A file that does not validate changes nothing, and the caller is told every problem. Settings
//! that belong to resources opened at start (the store, the listeners) cannot change in place: a
//! new store URL refuses the reload; new listen addresses are applied at the next restart and the
//! answer says so. Deliveries already in the store are untouched by a reload: they go out with the
//! target's new settings, and those of a target that disappeared stay pending until it returns.

use super::{Config, ConfigError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    #[error("the gateway was not started from a config file")]
    NoFile,
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    #[error("{0} cannot change while the gateway runs; restart it to apply")]
    NeedsRestart(&'static str),
}

/// What a successful reload changed.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Reloaded {
    pub(crate) sources: usize,
    pub(crate) targets: usize,
    pub(crate) routes: usize,
    /// Settings that only a restart applies.
    pub(crate) restart_needed: Vec<&'static str>,
    /// `key: why` of what the event catalog says cannot match (the config loaded all the same).
    pub(crate) warnings: Vec<String>,
}

/// Publishes reloaded configs. One reload at a time.
#[derive(Debug)]
pub(crate) struct Reloader {
    path: Option<PathBuf>,
    tx: watch::Sender<Arc<Config>>,
    one_at_a_time: Mutex<()>,
}

impl Reloader {
    pub(crate) fn new(path: Option<PathBuf>, tx: watch::Sender<Arc<Config>>) -> Self {
        Self {
            path,
            tx,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// Reads and validates the file; publishes it only if it is whole.
    pub(crate) async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one = self.one_at_a_time.lock().await;
        let path = self.path.clone().ok_or(ReloadError::NoFile)?;
        // Validation compiles every jq program: keep it off the async threads.
        let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .map_err(|e| ReloadError::Invalid(ConfigError::single("", format!("{e}"))))??;
        let current = self.tx.borrow().clone();
        let restart_needed = compare(&current, &loaded)?;
        let summary = Reloaded {
            sources: loaded.sources.len(),
            targets: loaded.targets.len(),
            routes: loaded.routes.len(),
            restart_needed,
            warnings: loaded
                .warnings
                .iter()
                .map(|(k, why)| format!("{k}: {why}"))
                .collect(),
        };
        for w in &summary.warnings {
            tracing::warn!(warning = %w, "reloaded config");
        }
        self.tx.send_replace(Arc::new(loaded));
        Ok(summary)
    }
}

/// Settings of resources opened at start: a store change refuses the reload, listeners wait.
fn compare(current: &Config, new: &Config) -> Result<Vec<&'static str>, ReloadError> {
    if current.store.url != new.store.url {
        return Err(ReloadError::NeedsRestart("store.url"));
    }
    let mut later = Vec::new();
    if current.server.listen != new.server.listen {
        later.push("server.listen");
    }
    let admin_listen = |c: &Config| c.admin.as_ref().map(|a| a.listen.clone());
    if admin_listen(current) != admin_listen(new) {
        later.push("admin.listen");
    }
    if current.plugins_dir() != new.plugins_dir()
        || current.plugins.timeout != new.plugins.timeout
        || current.plugins.memory_mb != new.plugins.memory_mb
    {
        later.push("plugins");
    }
    Ok(later)
}
