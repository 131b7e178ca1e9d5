//! The `hookgate` command line: parse arguments, load config, hand over to the library.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hookgate::config::Config;
use hookgate::transform::wasm::registry::Registry;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hookgate", version, about = "A self-hosted webhook gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(long = "header", value_parser = hookgate::cli::parse_header)]
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
        /// Message id (standard-webhooks, pulumi).
        #[arg(long)]
        id: Option<String>,
        /// Event type (pulumi's kind header).
        #[arg(long)]
        event_type: Option<String>,
    },
}

/// Where the admin API is.
#[derive(clap::Args)]
struct AdminArgs {
    /// Admin API base URL.
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    url: String,
    /// Admin bearer token.
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_ADMIN_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    token: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// The filters `deliveries ls` and a bulk `deliveries retry` share.
#[derive(clap::Args, Default)]
struct DeliveryFilter {
    /// `pending`, `succeeded`, `failed` or `dead` (a bulk retry: `failed` or `dead`, default
    /// both, or `succeeded` to send those again).
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    target: Option<String>,
    #[arg(long)]
    route: Option<String>,
    /// Only deliveries of events from this source.
    #[arg(long)]
    source: Option<String>,
    /// Only those created within this long, e.g. `1h`.
    #[arg(long)]
    since: Option<String>,
}

impl DeliveryFilter {
    fn is_empty(&self) -> bool {
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

    fn pairs(self) -> Vec<(&'static str, Option<String>)> {
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
enum DeliveriesCommand {
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
enum PluginCommand {
    /// Upload FILE (a wasm32-wasip2 component) as plugin NAME; routes using NAME switch to it.
    Push { name: String, file: PathBuf },
    /// List the active plugins.
    Ls,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Run an event through the current config again.
    Replay { id: String },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, log_format } => {
            init_tracing(&log_format)?;
            let config = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            serve(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin { admin, command } => {
            let json = admin.json;
            let wasm = match &command {
                PluginCommand::Push { file, .. } => Some(
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
                ),
                PluginCommand::Ls => None,
            };
            let out = admin_call(admin, |client| async move {
                match (command, wasm) {
                    (PluginCommand::Push { name, .. }, Some(wasm)) => {
                        client.push_plugin(&name, wasm, json).await
                    }
                    _ => client.list_plugins(json).await,
                }
            })?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Deliveries { admin, command } => {
            let json = admin.json;
            let out = admin_call(admin, |client| async move {
                match command {
                    DeliveriesCommand::Ls { filter } => client.list(&filter.pairs(), json).await,
                    DeliveriesCommand::Show { id } => client.show(&id, json).await,
                    DeliveriesCommand::Retry {
                        id: Some(id),
                        filter,
                        limit: None,
                        yes: _,
                    } if filter.is_empty() => client.retry(&id).await,
                    DeliveriesCommand::Retry { id: Some(_), .. } => {
                        Err(anyhow::anyhow!("give a delivery ID or filters, not both"))
                    }
                    DeliveriesCommand::Retry {
                        id: None,
                        filter,
                        limit,
                        yes,
                    } => {
                        let mut filters = filter.pairs();
                        filters.push(("limit", limit.map(|n| n.to_string())));
                        client.retry_many(&filters, yes, json).await
                    }
                }
            })?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Events { admin, command } => {
            let EventsCommand::Replay { id } = command;
            print!(
                "{}",
                admin_call(admin, |client| async move { client.replay(&id).await })?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { config } => {
            let config = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            migrate(&config)?;
            println!("store migrated: {}", redact_url(&config.store.url));
            Ok(ExitCode::SUCCESS)
        }
        Command::RouteWorker => {
            hookgate::route::evaluator::child_main()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => match Config::load(&config) {
            Ok(c) => {
                // Every plugin a route names must load and export the `transformer` world;
                // one not uploaded yet is fine (its events wait for it) and noted.
                let (_, broken, missing) =
                    Registry::for_routes(c.plugins_dir(), c.plugins.limits(), c.plugin_names())?;
                for note in &missing {
                    println!("note: {note}");
                }
                if !broken.is_empty() {
                    for problem in &broken {
                        eprintln!("{}: {problem}", config.display());
                    }
                    return Ok(ExitCode::FAILURE);
                }
                println!(
                    "{}: ok ({} sources, {} targets, {} routes)",
                    config.display(),
                    c.sources.len(),
                    c.targets.len(),
                    c.routes.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Try {
            config,
            source,
            body,
            headers,
        } => {
            let config = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let body =
                std::fs::read(&body).with_context(|| format!("reading {}", body.display()))?;
            let (plugins, broken, missing) = Registry::for_routes(
                config.plugins_dir(),
                config.plugins.limits(),
                config.plugin_names(),
            )?;
            for note in broken.iter().chain(&missing) {
                eprintln!("note: {note}");
            }
            let config = std::sync::Arc::new(config);
            // The server's containment: mappings run in a `__route-worker` child of this binary.
            let exe = std::env::current_exe().context("locating the hookgate executable")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            // The pool lives inside the runtime, so its child is killed and reaped there.
            let tried = runtime.block_on(async {
                let mut evaluators = hookgate::route::evaluator::Pool::new(Some(exe), 1);
                let body = body.into();
                hookgate::cli::try_event(
                    &config,
                    &plugins,
                    &mut evaluators,
                    &source,
                    body,
                    &headers,
                )
                .await
            });
            match tried {
                Ok(out) => {
                    print!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Sign {
            scheme,
            secret,
            body,
            header,
            prefix,
            encoding,
            algorithm,
            sha1,
            id,
            event_type,
        } => {
            let body =
                std::fs::read(&body).with_context(|| format!("reading {}", body.display()))?;
            let opts = hookgate::cli::SignOptions {
                scheme,
                secret,
                header,
                prefix,
                encoding,
                algorithm,
                sha1,
                id,
                event_type,
            };
            print!(
                "{}",
                hookgate::cli::sign(&opts, &body).map_err(anyhow::Error::msg)?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs one admin API call on a small runtime of its own.
fn admin_call<F, Fut>(admin: AdminArgs, call: F) -> anyhow::Result<String>
where
    F: FnOnce(hookgate::cli::client::AdminClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let client = hookgate::cli::client::AdminClient {
        url: admin.url,
        token: admin.token,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(call(client))
}

/// Opens the store, which migrates it, and closes it again.
fn migrate(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        hookgate::store::open(&config.store.url, config.store.sync)
            .await
            .map(drop)
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
}

/// A store URL without its password, for printing.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        let admin_listener = match &config.admin {
            Some(admin) => Some(
                tokio::net::TcpListener::bind(&admin.listen)
                    .await
                    .with_context(|| format!("binding {}", admin.listen))?,
            ),
            None => None,
        };
        let options = hookgate::server::Options {
            admin_listener,
            evaluator_exe: Some(
                std::env::current_exe().context("locating the hookgate executable")?,
            ),
            reload_on_sighup: true,
            ingress: Default::default(),
        };
        hookgate::server::run(config, options, listener, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: draining in-flight work");
}

fn init_tracing(format: &str) -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal as _;
    // Colour codes only for a person at a terminal; log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        "text" => builder.init(),
        "json" => builder.json().init(),
        other => anyhow::bail!("--log-format must be `text` or `json`, not `{other}`"),
    }
    Ok(())
}
