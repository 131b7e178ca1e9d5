//! Configuration in two phases: parse the TOML into raw serde types ([`raw`]), interpolate
//! `${VAR}` ([`env`]), then validate everything into typed values — durations, compiled jq,
//! verifiers and signers — before anything starts.
//!
//! Validation reports every problem it finds, each with its key, rather than stopping at the
//! first, and never with a value that came from the environment ([`redact`]); ranges live in
//! [`bounds`]. Nothing here serves traffic or touches the store.

pub mod bounds;
mod env;
pub mod raw;
mod redact;
pub mod reload;

use crate::deliver::breaker::{BreakerPolicy, Rate};
use crate::deliver::retry::RetryPolicy;
use crate::deliver::sign::Signer;
use crate::ingress::verify::Verifier;
use crate::route::envelope::{BodyFormat, EventTypeRule};
use crate::route::rules::{Route, WasmSpec};
use crate::signature::{Algorithm, Encoding, HmacHeader, Secret};
use crate::transform::{JqTransform, Transform, jq::JqProgram};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: Option<PathBuf>,
    /// The config as TOML after `${VAR}` interpolation: what the route-evaluator process loads.
    /// It holds secrets; it never leaves this process except down that private pipe.
    pub resolved: Secret,
    pub server: ServerConfig,
    pub admin: Option<AdminConfig>,
    pub store: StoreConfig,
    pub jq_timeout: Duration,
    pub jq_memory_mb: u64,
    pub plugins: PluginsConfig,
    pub sources: BTreeMap<String, Arc<Source>>,
    pub targets: BTreeMap<String, Arc<Target>>,
    pub routes: Vec<Arc<Route>>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    pub max_body_bytes: usize,
    /// Committed-but-unrouted events past which ingress answers 503 (see `route::backlog`).
    pub max_backlog: u64,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: String,
    pub token: Secret,
}

/// `[plugins]`: where uploaded wasm plugins live and what each call may use.
#[derive(Debug, Clone)]
pub struct PluginsConfig {
    /// As written; relative paths are relative to the config file (see [`Config::plugins_dir`]).
    pub dir: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u64,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
    /// Finished events, deliveries and attempts older than this are pruned; `None` keeps them.
    pub retention: Option<Duration>,
    pub sync: crate::store::sqlite::Sync,
}

/// A producer that posts to `/hooks/{name}`.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub verifier: Option<Verifier>,
    pub event_type: EventTypeRule,
    pub format: BodyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Generic,
    Github,
    Spacelift,
    Pulumi,
    Hcp,
    Nullstone,
    StandardWebhooks,
}

impl Source {
    /// The event type of this preset's handshake (ping, verification): answered 2xx and stored,
    /// but routed only to routes whose `events` name it.
    pub fn control_event_type(&self) -> Option<&'static str> {
        match self.kind {
            SourceKind::Github | SourceKind::Pulumi => Some("ping"),
            SourceKind::Hcp => Some("hashicorp.webhook.verification.test"),
            _ => None,
        }
    }
}

/// Where deliveries go.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub signer: Signer,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub concurrency: usize,
    /// `None`: the breaker is off.
    pub breaker: Option<BreakerPolicy>,
    pub rate_limit: Option<Rate>,
}

/// Nullstone does not sign: a source with a secret expects it as this header…
pub const NULLSTONE_TOKEN_HEADER: &str = "X-Hookgate-Token";
/// …or as this query parameter (for webhook URLs that cannot carry headers).
pub const NULLSTONE_TOKEN_QUERY: &str = "token";
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8081";
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// A few seconds of routing on a small machine: deep enough to absorb bursts, shallow enough that
/// an overload pushes back on producers within seconds instead of filling the disk.
pub const DEFAULT_MAX_BACKLOG: u64 = 20_000;
pub const DEFAULT_STORE: &str = "sqlite://hookgate.db";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CONCURRENCY: usize = 64;
pub const DEFAULT_JQ_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_JQ_MEMORY_MB: u64 = 1024;
pub const DEFAULT_PLUGINS_DIR: &str = "plugins";
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_millis(100);
pub const DEFAULT_PLUGIN_MEMORY_MB: u64 = 64;

/// Every problem found in a config file, each with its key.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<(String, String)>,
}

impl ConfigError {
    /// An error with one problem.
    pub fn single(key: &str, why: String) -> Self {
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

    /// Where plugins live: `plugins.dir`, relative to the config file's folder when relative.
    pub fn plugins_dir(&self) -> PathBuf {
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
        let mut v = Validator {
            problems: Vec::new(),
            spliced: Vec::new(),
        };
        let config = v.config(doc).map(|c| Config {
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
        let resolved = Secret::new(toml::to_string(&doc).unwrap_or_default());
        let mut v = Validator { problems, spliced };
        let config = v.config(doc).map(|c| Config { resolved, ..c });
        if let (true, Some(config)) = (v.problems.is_empty(), config) {
            return Ok(config);
        }
        redact::problems(&mut v.problems, &v.spliced);
        Err(fail(v.problems))
    }
}

fn toml_message(e: &toml::de::Error) -> String {
    e.to_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Validator {
    problems: Vec<(String, String)>,
    /// Strings that took a `${VAR}`: refused in jq, and redacted from every problem.
    spliced: Vec<env::Spliced>,
}

impl Validator {
    fn problem(&mut self, key: impl Into<String>, why: impl Into<String>) {
        self.problems.push((key.into(), why.into()));
    }

    /// Deserialises one section, recording (not returning) its error.
    fn section<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: toml::Value,
    ) -> Option<T> {
        match value.try_into::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, toml_message(&e));
                None
            }
        }
    }

    fn config(&mut self, doc: toml::Value) -> Option<Config> {
        let toml::Value::Table(mut top) = doc else {
            self.problem("", "the config must be a table");
            return None;
        };
        let mut take = |k: &str| top.remove(k);
        let server: raw::Server = take("server")
            .and_then(|v| self.section("server", v))
            .unwrap_or_default();
        let admin: Option<raw::Admin> = take("admin").and_then(|v| self.section("admin", v));
        let store: raw::Store = take("store")
            .and_then(|v| self.section("store", v))
            .unwrap_or_default();
        let plugins: raw::Plugins = take("plugins")
            .and_then(|v| self.section("plugins", v))
            .unwrap_or_default();
        let jq: raw::Jq = take("jq")
            .and_then(|v| self.section("jq", v))
            .unwrap_or_default();
        let sources = self.table_of::<raw::Source>("sources", take("sources"));
        let targets = self.table_of::<raw::Target>("targets", take("targets"));
        let routes = self.routes_raw(take("routes"));
        for key in top.keys() {
            self.problem(key.clone(), "unknown section");
        }

        let sources: BTreeMap<String, Arc<Source>> = sources
            .into_iter()
            .filter_map(|(name, s)| Some((name.clone(), Arc::new(self.source(&name, s)?))))
            .collect();
        let targets: BTreeMap<String, Arc<Target>> = targets
            .into_iter()
            .filter_map(|(name, t)| Some((name.clone(), Arc::new(self.target(&name, t)?))))
            .collect();
        let routes: Vec<Arc<Route>> = routes
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| self.route(i, r, &sources, &targets).map(Arc::new))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for (i, r) in routes.iter().enumerate() {
            if !seen.insert(r.name.clone()) {
                self.problem(
                    format!("routes[{i}].name"),
                    format!("duplicate route name `{}`", r.name),
                );
            }
        }

        let sync = match store.sync.as_deref() {
            None | Some("full") => crate::store::sqlite::Sync::Full,
            Some("normal") => crate::store::sqlite::Sync::Normal,
            Some(other) => {
                self.problem(
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
            self.problem(
                "store.sync",
                "applies to SQLite only; PostgreSQL commits as its own synchronous_commit says",
            );
        }
        if crate::store::Backend::of(&url).is_none() {
            self.problem(
                "store.url",
                "expected sqlite://PATH, postgres://... or postgresql://...",
            );
        }
        let retention = match store.retention.as_deref() {
            Some("off") => None,
            other => Some(self.duration(
                "store.retention",
                other,
                DEFAULT_RETENTION,
                bounds::MAX_RETENTION,
            )),
        };
        let listen = server.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
        self.socket_addr("server.listen", &listen);
        let admin = admin.map(|a| {
            let listen = a.listen.unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.into());
            self.socket_addr("admin.listen", &listen);
            self.admin_token(&a.token);
            AdminConfig {
                listen,
                token: Secret::new(a.token),
            }
        });
        let max_body_bytes = self.within(
            "server.max_body_bytes",
            server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            1,
            bounds::MAX_BODY_BYTES,
        );
        let max_backlog = self.within(
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
            jq_timeout: self.millis(
                "jq.timeout_ms",
                jq.timeout_ms,
                DEFAULT_JQ_TIMEOUT,
                bounds::MAX_JQ_TIMEOUT,
            ),
            jq_memory_mb: jq
                .memory_mb
                .map_or(DEFAULT_JQ_MEMORY_MB, |m| {
                    self.within("jq.memory_mb", m, 0, bounds::MAX_JQ_MEMORY_MB)
                })
                .max(16),
            plugins: self.plugins(plugins),
            sources,
            targets,
            routes,
        })
    }

    /// `wasm = { plugin = "name", config = { ... } }`. The plugin need not exist yet.
    fn wasm(&mut self, key: &str, value: toml::Value) -> Option<WasmSpec> {
        let spec: raw::Wasm = match value.try_into() {
            Ok(w) => w,
            Err(e) => {
                self.problem(key, format!("expected {{ plugin, config }}: {e}"));
                return None;
            }
        };
        if !crate::transform::wasm::registry::valid_name(&spec.plugin) {
            self.problem(
                format!("{key}.plugin"),
                format!(
                    "`{}` is not a plugin name (letters, digits, `-` and `_`, at most 64)",
                    spec.plugin
                ),
            );
        }
        let config = match spec.config.map(|v| serde_json::to_string(&v)).transpose() {
            Ok(c) => c.unwrap_or_else(|| "{}".into()),
            Err(e) => {
                self.problem(format!("{key}.config"), format!("cannot be JSON: {e}"));
                return None;
            }
        };
        Some(WasmSpec {
            plugin: spec.plugin,
            config: config.into(),
        })
    }

    fn socket_addr(&mut self, key: &str, value: &str) {
        if value.parse::<std::net::SocketAddr>().is_err() {
            self.problem(
                key,
                format!("`{value}` is not an address like 127.0.0.1:8080"),
            );
        }
    }

    fn table_of<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: Option<toml::Value>,
    ) -> Vec<(String, T)> {
        match value {
            None => Vec::new(),
            Some(toml::Value::Table(t)) => t
                .into_iter()
                .filter_map(|(name, v)| {
                    let k = format!("{key}.{name}");
                    self.section::<T>(&k, v).map(|parsed| (name, parsed))
                })
                .collect(),
            Some(_) => {
                self.problem(key, "must be a table");
                Vec::new()
            }
        }
    }

    fn routes_raw(&mut self, value: Option<toml::Value>) -> Vec<Option<raw::Route>> {
        match value {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| self.section::<raw::Route>(&format!("routes[{i}]"), v))
                .collect(),
            Some(_) => {
                self.problem("routes", "must be an array of tables ([[routes]])");
                Vec::new()
            }
        }
    }

    fn jq(&mut self, key: &str, code: &str) -> Option<JqProgram> {
        if let Some(why) = redact::splice_in_code(key, &self.spliced) {
            self.problem(key, why);
            return None;
        }
        match JqProgram::compile(code) {
            Ok(p) => Some(p),
            Err(why) => {
                self.problem(key, format!("jq does not compile: {why}"));
                None
            }
        }
    }

    fn secrets(&mut self, key: &str, s: Option<raw::OneOrMany>) -> Vec<Secret> {
        let list = s.map(raw::OneOrMany::into_vec).unwrap_or_default();
        if list.iter().any(String::is_empty) {
            self.problem(key, "secret is empty");
        }
        list.into_iter()
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect()
    }

    fn source(&mut self, name: &str, s: raw::Source) -> Option<Source> {
        let key = format!("sources.{name}");
        let kind = match s.kind.as_str() {
            "generic" => SourceKind::Generic,
            "github" => SourceKind::Github,
            "spacelift" => SourceKind::Spacelift,
            "pulumi" => SourceKind::Pulumi,
            "hcp" => SourceKind::Hcp,
            "nullstone" => SourceKind::Nullstone,
            "standard-webhooks" => SourceKind::StandardWebhooks,
            other => {
                self.problem(format!("{key}.kind"), format!("unknown kind `{other}` (expected spacelift, pulumi, hcp, nullstone, github, standard-webhooks or generic)"));
                return None;
            }
        };
        let secrets = self.secrets(&format!("{key}.secret"), s.secret);
        let preset = |h: HmacHeader, secrets: Vec<Secret>| {
            (!secrets.is_empty()).then_some(Verifier::Hmac { header: h, secrets })
        };
        let mut verifier = match kind {
            SourceKind::Github => preset(HmacHeader::github(), secrets.clone()),
            SourceKind::Spacelift => preset(HmacHeader::spacelift(), secrets.clone()),
            SourceKind::Pulumi => preset(HmacHeader::pulumi(), secrets.clone()),
            SourceKind::Hcp => preset(HmacHeader::hcp(), secrets.clone()),
            SourceKind::StandardWebhooks => {
                (!secrets.is_empty()).then(|| Verifier::standard_webhooks(&secrets))
            }
            SourceKind::Nullstone => (!secrets.is_empty()).then(|| Verifier::Token {
                header: NULLSTONE_TOKEN_HEADER.into(),
                query: NULLSTONE_TOKEN_QUERY.into(),
                secrets: secrets.clone(),
            }),
            SourceKind::Generic => None,
        };
        if matches!(kind, SourceKind::Github | SourceKind::StandardWebhooks) && secrets.is_empty() {
            self.problem(
                format!("{key}.secret"),
                format!("required for kind `{}`", s.kind),
            );
        }
        if kind == SourceKind::Generic && !secrets.is_empty() {
            self.problem(
                format!("{key}.secret"),
                "a generic source takes its secret in `verify`",
            );
        }
        if let Some(v) = s.verify {
            if kind != SourceKind::Generic {
                self.problem(
                    format!("{key}.verify"),
                    "only generic sources take `verify`; presets verify by their own scheme",
                );
            }
            verifier = self.verify_spec(&format!("{key}.verify"), v);
        }
        let event_type = match (s.event_type, kind) {
            (Some(code), _) => self
                .jq(&format!("{key}.event_type"), &code)
                .map(EventTypeRule::Jq)
                .unwrap_or_default(),
            (None, SourceKind::Github) => EventTypeRule::Header("x-github-event".into()),
            (None, SourceKind::Pulumi) => EventTypeRule::Pulumi,
            (None, SourceKind::Spacelift) => EventTypeRule::Spacelift,
            (None, SourceKind::Hcp) => EventTypeRule::Hcp,
            (None, SourceKind::StandardWebhooks) => EventTypeRule::BodyFields(vec!["type".into()]),
            (None, SourceKind::Nullstone) => {
                EventTypeRule::BodyFields(vec!["eventAction".into(), "event".into()])
            }
            (None, _) => EventTypeRule::None,
        };
        let format = match s.format.as_deref() {
            None | Some("json") => BodyFormat::Json,
            Some("raw") => BodyFormat::Raw,
            Some(other) => {
                self.problem(
                    format!("{key}.format"),
                    format!("expected `json` or `raw`, found `{other}`"),
                );
                BodyFormat::Json
            }
        };
        Some(Source {
            name: name.to_string(),
            kind,
            verifier,
            event_type,
            format,
        })
    }

    fn verify_spec(&mut self, key: &str, v: raw::Verify) -> Option<Verifier> {
        let algorithm = self.algorithm(
            &format!("{key}.algorithm"),
            v.algorithm.as_deref().unwrap_or("sha256"),
        )?;
        let encoding = self.encoding(
            &format!("{key}.encoding"),
            v.encoding.as_deref().unwrap_or("hex"),
        )?;
        let secrets = self.secrets(&format!("{key}.secret"), Some(v.secret));
        if secrets.is_empty() {
            self.problem(format!("{key}.secret"), "at least one secret is required");
        }
        let header = HmacHeader::new(
            &v.header,
            algorithm,
            v.prefix.as_deref().unwrap_or(""),
            encoding,
        );
        Some(Verifier::Hmac { header, secrets })
    }

    fn algorithm(&mut self, key: &str, s: &str) -> Option<Algorithm> {
        let a = Algorithm::parse(s);
        if a.is_none() {
            self.problem(key, format!("expected sha1, sha256 or sha512, found `{s}`"));
        }
        a
    }

    fn encoding(&mut self, key: &str, s: &str) -> Option<Encoding> {
        let e = Encoding::parse(s);
        if e.is_none() {
            self.problem(key, format!("expected hex or base64, found `{s}`"));
        }
        e
    }

    fn target(&mut self, name: &str, t: raw::Target) -> Option<Target> {
        let key = format!("targets.{name}");
        match reqwest::Url::parse(&t.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(_) => self.problem(format!("{key}.url"), "must be an http or https URL"),
            Err(e) => self.problem(format!("{key}.url"), format!("not a URL: {e}")),
        }
        let mut headers = Vec::new();
        for (k, v) in t.headers {
            let ok = axum::http::HeaderName::try_from(k.as_str()).is_ok()
                && axum::http::HeaderValue::try_from(v.as_str()).is_ok();
            if ok {
                headers.push((k, v));
            } else {
                self.problem(format!("{key}.headers.{k}"), "not a valid HTTP header");
            }
        }
        let signer = match t.sign {
            None => Signer::None,
            Some(s) => self.signer(&format!("{key}.sign"), s)?,
        };
        let timeout = self.duration(
            &format!("{key}.timeout"),
            t.timeout.as_deref(),
            DEFAULT_TIMEOUT,
            bounds::MAX_TARGET_TIMEOUT,
        );
        let mut retry = RetryPolicy::default();
        if let Some(r) = t.retry {
            if let Some(n) = r.max_attempts {
                let key = format!("{key}.retry.max_attempts");
                retry.max_attempts = self.within(&key, n, 1, bounds::MAX_ATTEMPTS);
            }
            retry.initial = self.duration(
                &format!("{key}.retry.initial"),
                r.initial.as_deref(),
                retry.initial,
                bounds::MAX_RETRY_INITIAL,
            );
            retry.max = self.duration(
                &format!("{key}.retry.max"),
                r.max.as_deref(),
                retry.max,
                bounds::MAX_RETRY_MAX,
            );
            if retry.max < retry.initial {
                self.problem(
                    format!("{key}.retry.max"),
                    "must not be less than `initial`",
                );
            }
        }
        let concurrency = self.within(
            &format!("{key}.concurrency"),
            t.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
            1,
            bounds::MAX_CONCURRENCY,
        );
        let breaker = self.breaker(&format!("{key}.breaker"), t.breaker);
        let rate_limit = t.rate_limit.and_then(|r| {
            let parsed = Rate::parse(&r)
                .map_err(|e| self.problem(format!("{key}.rate_limit"), e))
                .ok()?;
            self.rate(&format!("{key}.rate_limit"), parsed.per_second);
            Some(parsed)
        });
        Some(Target {
            name: name.to_string(),
            url: t.url,
            headers,
            signer,
            timeout,
            retry,
            concurrency,
            breaker,
            rate_limit,
        })
    }

    fn signer(&mut self, key: &str, s: raw::Sign) -> Option<Signer> {
        let secret = match (s.scheme.as_str(), s.secret) {
            ("none", _) => None,
            (_, Some(secret)) if !secret.is_empty() => Some(Secret::new(secret)),
            _ => {
                self.problem(
                    format!("{key}.secret"),
                    format!("required for scheme `{}`", s.scheme),
                );
                return None;
            }
        };
        let secret = secret.unwrap_or_else(|| Secret::new(""));
        let signer = match s.scheme.as_str() {
            "none" => Signer::None,
            "github" => Signer::Hmac {
                header: HmacHeader::github(),
                secret,
            },
            "hcp" => Signer::Hmac {
                header: HmacHeader::hcp(),
                secret,
            },
            "spacelift" => Signer::Spacelift {
                secret,
                sha1: s.sha1,
            },
            "pulumi" => Signer::Pulumi { secret },
            "standard-webhooks" => {
                if !secret.expose().starts_with("whsec_") {
                    self.problem(
                        format!("{key}.secret"),
                        "a standard-webhooks secret starts with `whsec_`",
                    );
                }
                Signer::StandardWebhooks {
                    key: crate::signature::standard_webhooks_key(secret.expose()),
                }
            }
            "hmac-sha256" | "hmac-sha512" => {
                let algorithm = if s.scheme == "hmac-sha256" {
                    Algorithm::Sha256
                } else {
                    Algorithm::Sha512
                };
                let encoding = self.encoding(
                    &format!("{key}.encoding"),
                    s.encoding.as_deref().unwrap_or("hex"),
                )?;
                let header = s.header.unwrap_or_else(|| "X-Hookgate-Signature".into());
                if axum::http::HeaderName::try_from(header.as_str()).is_err() {
                    self.problem(format!("{key}.header"), "not a valid HTTP header name");
                }
                Signer::Hmac {
                    header: HmacHeader::new(
                        &header,
                        algorithm,
                        s.prefix.as_deref().unwrap_or(""),
                        encoding,
                    ),
                    secret,
                }
            }
            "port" => {
                // Port's webhook `security` block: signatureHeaderName, signatureAlgorithm, signaturePrefix.
                let Some(header) = s.header.clone() else {
                    self.problem(
                        format!("{key}.header"),
                        "required for scheme `port` (Port's signatureHeaderName)",
                    );
                    return None;
                };
                let prefix = s.prefix.clone().unwrap_or_default();
                match s.algorithm.as_deref().unwrap_or("sha256") {
                    "plain" => Signer::Plain {
                        header,
                        prefix,
                        secret,
                    },
                    a @ ("sha1" | "sha256") => {
                        let algorithm = if a == "sha1" {
                            Algorithm::Sha1
                        } else {
                            Algorithm::Sha256
                        };
                        Signer::Hmac {
                            header: HmacHeader::new(&header, algorithm, &prefix, Encoding::Hex),
                            secret,
                        }
                    }
                    other => {
                        self.problem(
                            format!("{key}.algorithm"),
                            format!("expected sha1, sha256 or plain, found `{other}`"),
                        );
                        return None;
                    }
                }
            }
            other => {
                self.problem(format!("{key}.scheme"), format!("unknown scheme `{other}` (expected github, standard-webhooks, spacelift, pulumi, hcp, port, hmac-sha256, hmac-sha512 or none)"));
                return None;
            }
        };
        Some(signer)
    }

    fn route(
        &mut self,
        i: usize,
        r: Option<raw::Route>,
        sources: &BTreeMap<String, Arc<Source>>,
        targets: &BTreeMap<String, Arc<Target>>,
    ) -> Option<Route> {
        let r = r?;
        let key = format!("routes[{i}]");
        if !sources.contains_key(&r.source) {
            self.problem(
                format!("{key}.source"),
                format!("unknown source `{}`", r.source),
            );
        }
        if r.targets.is_empty() {
            self.problem(
                format!("{key}.targets"),
                "a route needs at least one target",
            );
        }
        for t in &r.targets {
            if !targets.contains_key(t) {
                self.problem(format!("{key}.targets"), format!("unknown target `{t}`"));
            }
        }
        let filter = r
            .filter
            .as_deref()
            .and_then(|f| self.jq(&format!("{key}.filter"), f));
        let count = [r.jq.is_some(), r.map.is_some(), r.wasm.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if count > 1 {
            self.problem(
                key.clone(),
                "a route takes at most one of `jq`, `map`, `wasm`",
            );
        }
        let transform: Option<Arc<dyn Transform>> = if let Some(code) = &r.jq {
            self.jq(&format!("{key}.jq"), code)
                .map(|p| Arc::new(JqTransform(p)) as Arc<dyn Transform>)
        } else if let Some(map) = &r.map {
            match crate::transform::map::to_jq(map) {
                Ok(code) => self
                    .jq(&format!("{key}.map"), &code)
                    .map(|p| Arc::new(JqTransform(p)) as Arc<dyn Transform>),
                Err(why) => {
                    self.problem(format!("{key}.map"), why);
                    None
                }
            }
        } else {
            None
        };
        let wasm = r.wasm.and_then(|w| self.wasm(&format!("{key}.wasm"), w));
        if r.events
            .as_ref()
            .is_some_and(|e| e.is_empty() || e.iter().any(String::is_empty))
        {
            self.problem(
                format!("{key}.events"),
                "list event types, none of them empty",
            );
        }
        Some(Route {
            name: r.name,
            source: r.source,
            filter,
            events: r.events,
            transform,
            wasm,
            targets: r.targets,
        })
    }
}

#[cfg(test)]
mod tests;
