//! The `hookgate` command line as clap reads it: the subcommands and their arguments. What each
//! one does is in [`super::run`].

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "hookgate", version, about = "A self-hosted webhook gateway")]
pub(super) struct Cli {
    /// Where compiled plugins are cached, by the sha256 of their `.wasm`. Its files are loaded as
    /// machine code, so only hookgate's user may write to it. `serve` defaults to
    /// `<plugins.dir>/.cache`; `check`, `try`, `plugin build` and `plugin test` compile without a
    /// cache unless this is set (so a build, its test and the gateway compile a plugin once).
    /// Empty: not set.
    #[arg(long, global = true, env = "HOOKGATE_PLUGIN_CACHE", value_name = "DIR")]
    pub(super) plugin_cache: Option<std::ffi::OsString>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, env = "HOOKGATE_CONFIG", default_value = "hookgate.toml")]
        config: PathBuf,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        log_format: String,
    },
    /// Validate a config file without serving: exit 0, or 1 with every problem listed.
    Check {
        #[arg(long, env = "HOOKGATE_CONFIG", default_value = "hookgate.toml")]
        config: PathBuf,
    },
    /// Create or upgrade the store's schema (as `serve` does at start), then exit.
    Migrate {
        #[arg(long, env = "HOOKGATE_CONFIG", default_value = "hookgate.toml")]
        config: PathBuf,
    },
    /// Dry-run one event through the pipeline: no network, no store.
    Try {
        #[arg(long, env = "HOOKGATE_CONFIG", default_value = "hookgate.toml")]
        config: PathBuf,
        #[arg(long)]
        source: String,
        /// File holding the request body.
        #[arg(long)]
        body: PathBuf,
        /// A request header, `Name: value`; repeatable.
        #[arg(long = "header", value_parser = super::parse_header)]
        headers: Vec<(String, String)>,
    },
    /// The delivery log of a running gateway (admin API).
    Deliveries {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Events of a running gateway (admin API).
    Events {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// WebAssembly plugins of a running gateway (admin API).
    Plugin {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// The event catalog: presets, their events, and each event's sample or JSON Schema.
    ///
    /// `hookgate catalog` lists the presets; `hookgate catalog tfe` a preset's events;
    /// `hookgate catalog tfe run:completed` prints a sample, `--schema` the schema.
    Catalog {
        preset: Option<String>,
        event: Option<String>,
        /// Print the event's JSON Schema instead of a sample.
        #[arg(long)]
        schema: bool,
        /// Which of the event's samples to print, from 1.
        #[arg(long, default_value_t = 1)]
        sample: usize,
    },
    /// Internal: the route-evaluator child process (see ARCHITECTURE.md).
    #[command(name = "__route-worker", hide = true)]
    RouteWorker,
    /// Print the headers a producer using SCHEME would send with the body.
    Sign {
        #[arg(long)]
        scheme: String,
        #[arg(long, env = "HOOKGATE_SIGN_SECRET")]
        secret: String,
        #[arg(long)]
        body: PathBuf,
        /// Header name (hmac-* schemes).
        #[arg(long)]
        header: Option<String>,
        /// Value prefix (hmac-* schemes), e.g. `sha256=`.
        #[arg(long)]
        prefix: Option<String>,
        /// `hex` or `base64` (hmac-* schemes).
        #[arg(long)]
        encoding: Option<String>,
        /// `sha1`, `sha256` or `plain` (port scheme, Port's signatureAlgorithm).
        #[arg(long)]
        algorithm: Option<String>,
        /// Also send Spacelift's legacy SHA-1 `X-Signature` (spacelift scheme).
        #[arg(long)]
        sha1: bool,
        /// Message id (standard-webhooks, pulumi; github makes its `X-GitHub-Delivery` GUID from it).
        #[arg(long)]
        id: Option<String>,
        /// Event type (pulumi's kind header, github's `X-GitHub-Event`).
        #[arg(long)]
        event_type: Option<String>,
    },
}

/// Where the admin API is.
#[derive(clap::Args)]
pub(super) struct AdminArgs {
    /// Admin API base URL.
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub(super) url: String,
    /// Admin bearer token.
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_ADMIN_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub(super) token: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub(super) json: bool,
}

/// The filters `deliveries ls` and a bulk `deliveries retry` share.
#[derive(clap::Args, Default)]
pub(super) struct DeliveryFilter {
    /// `pending`, `succeeded`, `failed` or `dead` (a bulk retry: `failed` or `dead`, default
    /// both, or `succeeded` to send those again).
    #[arg(long)]
    pub(super) status: Option<String>,
    #[arg(long)]
    pub(super) target: Option<String>,
    #[arg(long)]
    pub(super) route: Option<String>,
    /// Only deliveries of events from this source.
    #[arg(long)]
    pub(super) source: Option<String>,
    /// Only those created within this long, e.g. `1h`.
    #[arg(long)]
    pub(super) since: Option<String>,
}

impl DeliveryFilter {
    pub(super) fn is_empty(&self) -> bool {
        [
            &self.status,
            &self.target,
            &self.route,
            &self.source,
            &self.since,
        ]
        .iter()
        .all(|f| f.is_none())
    }

    pub(super) fn pairs(self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("status", self.status),
            ("target", self.target),
            ("route", self.route),
            ("source", self.source),
            ("since", self.since),
        ]
    }
}

#[derive(Subcommand)]
pub(super) enum DeliveriesCommand {
    /// List deliveries, newest first.
    Ls {
        #[command(flatten)]
        filter: DeliveryFilter,
    },
    /// One delivery with every attempt.
    Show { id: String },
    /// Queue one delivery for another attempt, or (no ID) every failed or dead one matching the
    /// filters: the count is shown first, and they are queued only with `--yes`.
    Retry {
        /// One delivery; leave out for a bulk retry by filters.
        id: Option<String>,
        #[command(flatten)]
        filter: DeliveryFilter,
        /// At most this many (the gateway's default 1000, at most 10000).
        #[arg(long)]
        limit: Option<usize>,
        /// Queue them; without it, a bulk retry only shows how many it would queue.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub(super) enum PluginCommand {
    /// Upload FILE (a wasm32-wasip2 component) as plugin NAME; routes using NAME switch to it.
    Push { name: String, file: PathBuf },
    /// List the active plugins.
    Ls,
    /// Run the stored events of the routes using plugin NAME through its active version and
    /// through FILE side by side, sending nothing, and print the events whose output differs.
    /// Exit code 0 when none differ, 1 when some do, 2 on trouble, as diff(1).
    Diff {
        name: String,
        file: PathBuf,
        /// Only events received this long ago or later (`30m`, `1h`, `7d`).
        #[arg(long)]
        since: Option<String>,
        /// At most this many events, newest first (the gateway's default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Write a plugin project NAME (a new folder): a build file, one transform, a test with a
    /// fixture, a README, and hookgate's SDK for the language (rust, python, js or ts).
    New {
        name: String,
        #[arg(long, value_enum, default_value_t = super::scaffold::Lang::Rust)]
        lang: super::scaffold::Lang,
        /// Where the project's folder goes.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build the plugin project in DIR into a component, `DIR/<name>.wasm`, with its language's
    /// toolchain (TypeScript: the project's tsc, then componentize-js), and check that the
    /// gateway would load it.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run FILE (a component) on one event, offline, under the gateway's limits; print the
    /// messages, what it logged, its time and its peak memory. Exit code 1 when it fails.
    Test {
        file: PathBuf,
        /// The event: a producer's JSON body (wrapped as the gateway would) or an envelope.
        #[arg(long)]
        event: PathBuf,
        /// The route's `wasm.config`, as JSON.
        #[arg(long, default_value = "{}")]
        config: String,
        /// The source's kind, which names the event's type (github reads `--header`s).
        #[arg(long, default_value = "generic")]
        preset: String,
        /// The source's name in the envelope (default: the preset's).
        #[arg(long)]
        source: Option<String>,
        /// A request header, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Time for the call, as `[plugins] timeout_ms`.
        #[arg(long, default_value_t = crate::config::DEFAULT_PLUGIN_TIMEOUT.as_millis() as u64)]
        timeout_ms: u64,
        /// Linear memory cap, as `[plugins] memory_mb`.
        #[arg(long, default_value_t = crate::config::DEFAULT_PLUGIN_MEMORY_MB)]
        memory_mb: u64,
    },
}

#[derive(Subcommand)]
pub(super) enum EventsCommand {
    /// Run an event through the current config again.
    Replay { id: String },
}
