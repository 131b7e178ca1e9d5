//! Configuration in two phases: read the file and interpolate `${VAR}` ([`env`]), then validate
//! everything into typed values — durations, compiled jq, verifiers and signers — before anything
//! starts, and assemble them into one [`Config`].
//!
//! Each stage writes down and validates its own section beside its code (`ingress::config`,
//! `route::config`, `deliver::config`) with the shared [`Validator`]; what is left here is the
//! gateway-wide sections ([`raw`], their ranges in [`bounds`]), the assembly, and keeping values
//! from the environment out of every problem ([`redact`]). Validation reports every problem it
//! finds, each with its key, rather than stopping at the first. Nothing here serves traffic or
//! touches the store, and nothing here reaches into a stage beyond its settings (its `config`
//! module and the types it validates into): the stages' runtime reads the assembled `Config`,
//! never the other way round.

pub(crate) mod bounds;
mod env;
pub(crate) mod raw;
mod redact;
pub(crate) mod reload;

use crate::deliver::config::Target;
use crate::ingress::config::Source;
use crate::route::rules::Route;
use crate::signature::Secret;
use crate::validate::{Interpolated, Validator, toml_message};
use crate::{deliver, ingress, route};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) path: Option<PathBuf>,
    /// The config as TOML after `${VAR}` interpolation: what the route-evaluator process loads.
    /// It holds secrets; it never leaves this process except down that private pipe.
    pub resolved: Secret,
    pub(crate) server: ServerConfig,
    pub(crate) admin: Option<AdminConfig>,
    pub(crate) store: StoreConfig,
    pub(crate) jq_timeout: Duration,
    pub(crate) jq_memory_mb: u64,
    pub(crate) plugins: PluginsConfig,
    pub(crate) sources: BTreeMap<String, Arc<Source>>,
    pub(crate) targets: BTreeMap<String, Arc<Target>>,
    pub(crate) routes: Vec<Arc<Route>>,
    /// Per source, what its routes can read of an envelope (`route::needs`).
    pub(crate) envelope_needs: BTreeMap<String, route::needs::Tree>,
    /// `(key, why)` of what loads but the event catalog says cannot match (`hookgate check`
    /// prints them, a reload logs them).
    pub(crate) warnings: Vec<(String, String)>,
    /// The values of the variables `${VAR}` put into the config, which usually are secrets (a PagerDuty routing
    /// key in a plugin's config, say): what the gateway shows of its own doing (dry runs, plugin
    /// diffs) masks them with [`Config::mask`], since a transform may copy them into a body.
    pub(crate) interpolated: Arc<[Secret]>,
}

impl Config {
    /// `text` with every interpolated value of at least [`redact::ANYWHERE`] characters shown as
    /// `***` (shorter ones would mask ordinary words).
    pub(crate) fn mask(&self, text: &str) -> String {
        redact::values(text, &self.interpolated)
    }

    /// [`Config::mask`] for a body: one that is not UTF-8 text is shown as it is.
    pub(crate) fn mask_bytes(&self, body: &bytes::Bytes) -> bytes::Bytes {
        match std::str::from_utf8(body) {
            Ok(text) if !self.interpolated.is_empty() => bytes::Bytes::from(self.mask(text)),
            _ => body.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub(crate) listen: String,
    pub(crate) max_body_bytes: usize,
    /// Committed-but-unrouted events past which ingress answers 503 (see `route::backlog`).
    pub(crate) max_backlog: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct AdminConfig {
    pub(crate) listen: String,
    pub(crate) token: Secret,
}

/// `[plugins]`: where uploaded wasm plugins live and what each call may use.
#[derive(Debug, Clone)]
pub(crate) struct PluginsConfig {
    /// As written; relative paths are relative to the config file (see [`Config::plugins_dir`]).
    pub(crate) dir: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) memory_mb: u64,
}

impl PluginsConfig {
    /// The per-call limits `[plugins]` sets.
    pub(crate) fn limits(&self) -> crate::transform::wasm::Limits {
        crate::transform::wasm::Limits {
            timeout: self.timeout,
            memory_bytes: (self.memory_mb as usize) << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    pub(crate) url: String,
    /// Finished events, deliveries and attempts older than this are pruned; `None` keeps them.
    pub(crate) retention: Option<Duration>,
    pub(crate) sync: crate::store::sqlite::Sync,
}

pub(crate) const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub(crate) const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8081";
pub(crate) const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// A few seconds of routing on a small machine: deep enough to absorb bursts, shallow enough that
/// an overload pushes back on producers within seconds instead of filling the disk.
pub(crate) const DEFAULT_MAX_BACKLOG: u64 = 20_000;
pub(crate) const DEFAULT_STORE: &str = "sqlite://hookgate.db";
pub(crate) const DEFAULT_JQ_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_JQ_MEMORY_MB: u64 = 1024;
pub(crate) const DEFAULT_PLUGINS_DIR: &str = "plugins";
pub(crate) const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_millis(100);
pub(crate) const DEFAULT_PLUGIN_MEMORY_MB: u64 = 64;

/// Every problem found in a config file, each with its key.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub(crate) file: String,
    pub(crate) problems: Vec<(String, String)>,
}

impl ConfigError {
    /// An error with one problem.
    pub(crate) fn single(key: &str, why: String) -> Self {
        Self {
            file: String::new(),
            problems: vec![(key.to_string(), why)],
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for (key, why) in &self.problems {
            if key.is_empty() {
                write!(f, "\n  {}: {why}", self.file)?;
            } else {
                write!(f, "\n  {}: {key}: {why}", self.file)?;
            }
        }
        Ok(())
    }
}

impl Config {
    /// Reads, interpolates from the process environment, and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            problems: vec![(String::new(), format!("cannot read: {e}"))],
        })?;
        let mut config = Self::parse(&text, &file, &|name| std::env::var(name).ok())?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// The address `[admin]` says the admin API listens on; `None` when there is no admin API.
    /// Whoever runs the gateway binds it and passes the listener in [`crate::ServerOptions`].
    pub fn admin_listen(&self) -> Option<&str> {
        self.admin.as_ref().map(|admin| admin.listen.as_str())
    }

    /// The plugins the routes name (a name may repeat).
    pub(crate) fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.routes
            .iter()
            .filter_map(|r| r.wasm.as_ref().map(|w| w.plugin.as_str()))
    }

    /// Where plugins live: `plugins.dir`, relative to the config file's folder when relative.
    pub(crate) fn plugins_dir(&self) -> PathBuf {
        let dir = &self.plugins.dir;
        match self.path.as_deref().and_then(Path::parent) {
            Some(base) if dir.is_relative() => base.join(dir),
            _ => dir.clone(),
        }
    }

    /// Parses text that [`Config::resolved`] produced: already interpolated, so `${` is literal.
    pub fn parse_resolved(text: &str) -> Result<Self, ConfigError> {
        let fail = |problems| ConfigError {
            file: "<resolved>".into(),
            problems,
        };
        let doc: toml::Value =
            toml::from_str(text).map_err(|e| fail(vec![(String::new(), toml_message(&e))]))?;
        let mut v = Validator::default();
        let config = assemble(&mut v, doc).map(|c| Config {
            resolved: Secret::new(text),
            ..c
        });
        match (v.problems.is_empty(), config) {
            (true, Some(config)) => Ok(config),
            _ => Err(fail(v.problems)),
        }
    }

    /// Parses config text; `lookup` resolves `${VAR}`.
    pub fn parse(
        text: &str,
        file: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let fail = |problems| ConfigError {
            file: file.to_string(),
            problems,
        };
        let mut doc: toml::Value =
            toml::from_str(text).map_err(|e| fail(vec![(String::new(), toml_message(&e))]))?;
        let (mut problems, mut spliced) = (Vec::new(), Vec::new());
        env::interpolate(&mut doc, "", lookup, &mut problems, &mut spliced);
        // The evaluator children parse this text: a config that cannot be written back is refused
        // here, not handed to them empty.
        let resolved = match toml::to_string(&doc) {
            Ok(text) => Secret::new(text),
            Err(e) => {
                problems.push((String::new(), format!("cannot write the config back: {e}")));
                Secret::new("")
            }
        };
        // The validator learns which keys took a variable, never the values.
        let interpolated = spliced
            .iter()
            .map(|s| Interpolated {
                key: s.key.clone(),
                vars: s.vars.clone(),
            })
            .collect();
        let mut v = Validator {
            problems,
            interpolated,
            warnings: Vec::new(),
        };
        // Each variable's own value: a plugin may copy the token out of `Bearer ${TOKEN}`.
        let mut values: Vec<String> = spliced
            .iter()
            .flat_map(|s| s.values.iter().cloned())
            .collect();
        values.sort_unstable();
        values.dedup();
        let secrets: Arc<[Secret]> = values.into_iter().map(Secret::new).collect();
        let config = assemble(&mut v, doc).map(|c| Config {
            resolved,
            interpolated: secrets,
            ..c
        });
        if let (true, Some(config)) = (v.problems.is_empty(), config) {
            return Ok(config);
        }
        redact::problems(&mut v.problems, &spliced);
        Err(fail(v.problems))
    }
}

/// Every section of `doc` validated (the stages' by the stages) and put together; `None` when the
/// document is not a table. Problems are in `v`, and a `Some` with problems is never used.
fn assemble(v: &mut Validator, doc: toml::Value) -> Option<Config> {
    let toml::Value::Table(mut top) = doc else {
        v.problem("", "the config must be a table");
        return None;
    };
    let mut take = |k: &str| top.remove(k);
    let server: raw::Server = take("server")
        .and_then(|value| v.section("server", value))
        .unwrap_or_default();
    let admin: Option<raw::Admin> = take("admin").and_then(|value| v.section("admin", value));
    let store: raw::Store = take("store")
        .and_then(|value| v.section("store", value))
        .unwrap_or_default();
    let plugins: raw::Plugins = take("plugins")
        .and_then(|value| v.section("plugins", value))
        .unwrap_or_default();
    let jq: raw::Jq = take("jq")
        .and_then(|value| v.section("jq", value))
        .unwrap_or_default();
    let sources = v.table_of::<ingress::config::raw::Source>("sources", take("sources"));
    let targets = v.table_of::<deliver::config::raw::Target>("targets", take("targets"));
    let routes = route::config::routes_raw(v, take("routes"));
    for key in top.keys() {
        v.problem(key.clone(), "unknown section");
    }

    let sources: BTreeMap<String, Arc<Source>> = sources
        .into_iter()
        .filter_map(|(name, s)| {
            Some((
                name.clone(),
                Arc::new(ingress::config::source(v, &name, s)?),
            ))
        })
        .collect();
    let targets: BTreeMap<String, Arc<Target>> = targets
        .into_iter()
        .filter_map(|(name, t)| {
            Some((
                name.clone(),
                Arc::new(deliver::config::target(v, &name, t)?),
            ))
        })
        .collect();
    let routes: Vec<Arc<Route>> = routes
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let preset = r
                .as_ref()
                .and_then(|r| sources.get(&r.source))
                .and_then(|s| s.catalog_preset());
            route::config::route(v, i, r, &sources, &targets, preset).map(Arc::new)
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (i, r) in routes.iter().enumerate() {
        if !seen.insert(r.name.clone()) {
            v.problem(
                format!("routes[{i}].name"),
                format!("duplicate route name `{}`", r.name),
            );
        }
    }

    let sync = match store.sync.as_deref() {
        None | Some("full") => crate::store::sqlite::Sync::Full,
        Some("normal") => crate::store::sqlite::Sync::Normal,
        Some(other) => {
            v.problem(
                "store.sync",
                format!("expected `full` or `normal`, found `{other}`"),
            );
            crate::store::sqlite::Sync::Full
        }
    };
    let url = store.url.unwrap_or_else(|| DEFAULT_STORE.into());
    if store.sync.is_some()
        && matches!(
            crate::store::Backend::of(&url),
            Some(crate::store::Backend::Postgres)
        )
    {
        v.problem(
            "store.sync",
            "applies to SQLite only; PostgreSQL commits as its own synchronous_commit says",
        );
    }
    if crate::store::Backend::of(&url).is_none() {
        v.problem(
            "store.url",
            "expected sqlite://PATH, postgres://... or postgresql://...",
        );
    }
    let retention = match store.retention.as_deref() {
        Some("off") => None,
        other => Some(v.duration(
            "store.retention",
            other,
            DEFAULT_RETENTION,
            bounds::MAX_RETENTION,
        )),
    };
    let listen = server.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
    v.socket_addr("server.listen", &listen);
    let admin = admin.map(|a| {
        let listen = a.listen.unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.into());
        v.socket_addr("admin.listen", &listen);
        bounds::admin_token(v, &a.token);
        AdminConfig {
            listen,
            token: Secret::new(a.token),
        }
    });
    let max_body_bytes = v.within(
        "server.max_body_bytes",
        server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
        1,
        bounds::MAX_BODY_BYTES,
    );
    let max_backlog = v.within(
        "server.max_backlog",
        server.max_backlog.unwrap_or(DEFAULT_MAX_BACKLOG),
        1,
        bounds::MAX_BACKLOG,
    );
    Some(Config {
        path: None,
        resolved: Secret::new(""),
        server: ServerConfig {
            listen,
            max_body_bytes,
            max_backlog,
        },
        admin,
        store: StoreConfig {
            url,
            retention,
            sync,
        },
        jq_timeout: v.millis(
            "jq.timeout_ms",
            jq.timeout_ms,
            DEFAULT_JQ_TIMEOUT,
            bounds::MAX_JQ_TIMEOUT,
        ),
        jq_memory_mb: jq
            .memory_mb
            .map_or(DEFAULT_JQ_MEMORY_MB, |m| {
                v.within("jq.memory_mb", m, 0, bounds::MAX_JQ_MEMORY_MB)
            })
            .max(16),
        plugins: bounds::plugins(v, plugins),
        envelope_needs: sources
            .iter()
            .map(|(name, s)| {
                let routes = routes.iter().map(|r| &**r);
                (
                    name.clone(),
                    route::needs::of_source(name, &s.event_type, routes),
                )
            })
            .collect(),
        sources,
        targets,
        routes,
        warnings: v.warnings.clone(),
        interpolated: Arc::from([]),
    })
}

#[cfg(test)]
mod tests;
