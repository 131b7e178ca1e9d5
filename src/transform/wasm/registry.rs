//! The plugin registry: which wasm plugin is active under each name, and the files behind them.
//!
//! Plugins live as `<name>.wasm` in `plugins.dir` (compiled code is cached beside them in
//! `.cache/`, keyed by the module's sha256). At start every file there is loaded; an upload is
//! validated and compiled before anything changes, then written (temp file, fsync, rename) and
//! swapped in under the name. Callers hold a cloned [`Plugin`] for the length of a call, so events
//! in flight finish on the version they started with. The registry never runs plugins itself and
//! never touches the store.

use crate::transform::wasm::{Engine, Limits, LoadError, Plugin};
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// Largest plugin accepted, in bytes.
pub(crate) const MAX_PLUGIN_BYTES: usize = 64 * 1024 * 1024;

/// Whether `name` can name a plugin (and its file).
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why the registry refused an operation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("`{0}` is not a plugin name (letters, digits, `-` and `_`, at most 64)")]
    BadName(String),
    #[error("plugin is larger than {MAX_PLUGIN_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Invalid(#[from] LoadError),
    #[error("no plugin named `{0}`")]
    NotFound(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One active plugin: what the admin API shows of it.
#[derive(Debug, Clone)]
pub(crate) struct PluginInfo {
    pub(crate) name: String,
    pub(crate) sha256: String,
    pub(crate) size: usize,
    /// RFC 3339: when the file was written.
    pub(crate) uploaded_at: String,
}

#[derive(Clone)]
struct Entry {
    plugin: Plugin,
    uploaded_at: String,
}

/// Active plugins by name, backed by `plugins.dir`.
pub(crate) struct Registry {
    engine: Engine,
    dir: PathBuf,
    active: RwLock<BTreeMap<String, Entry>>,
    /// Bumped on every install: the pipeline re-runs routes that waited for a plugin.
    changed: watch::Sender<u64>,
    /// Held across a change and its sharing with other instances (see [`Registry::changing`]).
    changing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("dir", &self.dir).finish()
    }
}

impl Registry {
    /// Opens `dir` (creating it) and loads every `*.wasm` in it, compiled code cached in `cache`.
    /// A file that does not load is reported and skipped, so one bad file cannot keep the gateway
    /// from starting.
    pub(crate) fn open(dir: &Path, cache: PathBuf, limits: Limits) -> Result<Self, RegistryError> {
        let io = |source| RegistryError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let engine = Engine::new(limits, Some(cache))?;
        let registry = Self {
            engine,
            dir: dir.to_path_buf(),
            active: RwLock::default(),
            changed: watch::channel(0).0,
            changing: tokio::sync::Mutex::new(()),
        };
        for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
            let path = entry.path();
            let Some(name) = wasm_file_name(&path) else {
                continue;
            };
            match registry.load_file(&name, &path) {
                Ok(info) => tracing::info!(plugin = %name, sha256 = %info.sha256, "plugin loaded"),
                Err(e) => tracing::error!(plugin = %name, error = %e, "plugin not loaded"),
            }
        }
        Ok(registry)
    }

    /// For `check` and `try`: loads the plugins `names` (those the config's routes name) from
    /// `dir` without creating anything there; compiled code is cached only in `cache`, when given.
    /// Answers the registry, the plugins that failed to load (with why), and those not uploaded
    /// yet.
    pub(crate) fn for_routes<'a>(
        dir: PathBuf,
        cache: Option<PathBuf>,
        limits: Limits,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(Self, Vec<String>, Vec<String>), RegistryError> {
        let registry = Self {
            engine: Engine::new(limits, cache)?,
            dir: dir.clone(),
            active: RwLock::default(),
            changed: watch::channel(0).0,
            changing: tokio::sync::Mutex::new(()),
        };
        let (mut broken, mut missing) = (Vec::new(), Vec::new());
        let names: BTreeSet<&str> = names.into_iter().collect();
        for name in names {
            let path = dir.join(format!("{name}.wasm"));
            if !path.exists() {
                missing.push(format!("plugin `{name}` is not in {} yet: its routes' events wait until it is uploaded", dir.display()));
                continue;
            }
            if let Err(e) = registry.load_file(name, &path) {
                broken.push(format!("plugin `{name}` ({}): {e}", path.display()));
            }
        }
        Ok((registry, broken, missing))
    }

    fn load_file(&self, name: &str, path: &Path) -> Result<PluginInfo, RegistryError> {
        let io = |source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let plugin = self.engine.load(name, &bytes)?;
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_or(0, |t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64)
            });
        Ok(self.activate(name, plugin, crate::rfc3339(modified)))
    }

    fn activate(&self, name: &str, plugin: Plugin, uploaded_at: String) -> PluginInfo {
        let entry = Entry {
            plugin,
            uploaded_at,
        };
        let info = info(name, &entry);
        self.active.write().insert(name.to_string(), entry);
        self.changed.send_modify(|n| *n += 1);
        info
    }

    /// The active version of `name`, if any.
    pub(crate) fn get(&self, name: &str) -> Option<Plugin> {
        self.active.read().get(name).map(|e| e.plugin.clone())
    }

    pub(crate) fn list(&self) -> Vec<PluginInfo> {
        self.active.read().iter().map(|(n, e)| info(n, e)).collect()
    }

    /// Validates and compiles `bytes`, stores them durably, then makes them the active `name`.
    /// Blocking (compilation takes a while): call it from a blocking thread.
    pub(crate) fn install(&self, name: &str, bytes: &[u8]) -> Result<PluginInfo, RegistryError> {
        let plugin = self.candidate(name, bytes)?;
        let path = self.dir.join(format!("{name}.wasm"));
        write_durably(&path, bytes).map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(self.activate(name, plugin, crate::rfc3339(crate::now_ms())))
    }

    /// Validates and compiles `bytes` as plugin `name` the way an upload would, without storing
    /// or activating anything (`plugin diff` runs it beside the active one). The compiled code
    /// is cached, so pushing the same bytes afterwards does not compile them again.
    pub(crate) fn candidate(&self, name: &str, bytes: &[u8]) -> Result<Plugin, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::BadName(name.to_string()));
        }
        if bytes.len() > MAX_PLUGIN_BYTES {
            return Err(RegistryError::TooLarge);
        }
        Ok(self.engine.load(name, bytes)?)
    }

    /// Unloads `name` and deletes its file. The caller checks that no route uses it.
    pub(crate) fn remove(&self, name: &str) -> Result<(), RegistryError> {
        let removed = self.active.write().remove(name).is_some();
        if !removed {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        let path = self.dir.join(format!("{name}.wasm"));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RegistryError::Io { path, source }),
        }
    }

    /// Held by whoever changes plugins and shares the change (an upload, a delete, the cluster
    /// applying what others shared), so the cluster never sees a local change half-shared and
    /// undoes it.
    pub(crate) async fn changing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changing.lock().await
    }

    /// The stored bytes of `name` (to share them with other instances).
    pub(crate) fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(format!("{name}.wasm")))
    }

    /// Changes whenever a plugin is installed.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

fn info(name: &str, e: &Entry) -> PluginInfo {
    PluginInfo {
        name: name.to_string(),
        sha256: e.plugin.sha256().to_string(),
        size: e.plugin.size(),
        uploaded_at: e.uploaded_at.clone(),
    }
}

fn wasm_file_name(path: &Path) -> Option<String> {
    if path.extension()? != "wasm" {
        return None;
    }
    let name = path.file_stem()?.to_str()?;
    valid_name(name).then(|| name.to_string())
}

/// Temp file, fsync, rename, fsync the folder: a crash leaves the old file or the new one.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("wasm.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn plugin_names() {
        for ok in ["slack-notify", "port_entity", "a", "A1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "../x", "a/b", "a.wasm", "sp ace", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
