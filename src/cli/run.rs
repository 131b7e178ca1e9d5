//! What each subcommand does: load the config and hand over to the stages (`serve`, `check`,
//! `migrate`, `try`, `sign`), or call a running gateway's admin API. `src/main.rs` calls only
//! [`main`].

use super::args::{AdminArgs, Cli, Command, DeliveriesCommand, EventsCommand, PluginCommand};
use super::client::AdminClient;
use crate::config::Config;
use crate::transform::wasm::registry::Registry;
use anyhow::Context as _;
use clap::Parser as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The `hookgate` command line: parses the arguments, runs the subcommand, and prints an error
/// that ends it as `error: …` (exit code 1).
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // An empty `HOOKGATE_PLUGIN_CACHE` is no setting, as for an unset variable.
    let cache = cli
        .plugin_cache
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    match cli.command {
        Command::Serve { config, log_format } => {
            init_tracing(&log_format)?;
            let config = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            serve(config, cache)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin { admin, command } => plugin(admin, command, cache),
        Command::Deliveries { admin, command } => deliveries(admin, command),
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
            crate::route::evaluator::child_main()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => check(&config, cache),
        Command::Catalog {
            preset,
            event,
            schema,
            sample,
        } => super::catalog::run(preset.as_deref(), event.as_deref(), schema, sample),
        Command::Try {
            config,
            source,
            body,
            headers,
        } => try_event(&config, &source, &body, &headers, cache),
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
            let opts = super::SignOptions {
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
            print!("{}", super::sign(&opts, &body).map_err(anyhow::Error::msg)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `hookgate plugin push|ls|test|new|build|diff`.
fn plugin(
    admin: AdminArgs,
    command: PluginCommand,
    cache: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let json = admin.json;
    let wasm = match &command {
        PluginCommand::Push { file, .. } => {
            Some(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)
        }
        PluginCommand::Test {
            file,
            event,
            config,
            preset,
            source,
            headers,
            timeout_ms,
            memory_mb,
        } => {
            let (out, ok) = super::plugin_test::run(&super::plugin_test::TestArgs {
                file: file.clone(),
                event: event.clone(),
                config: config.clone(),
                preset: preset.clone(),
                source: source.clone(),
                headers: headers.clone(),
                timeout_ms: *timeout_ms,
                memory_mb: *memory_mb,
                json,
                cache,
            })?;
            print!("{out}");
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        PluginCommand::New { name, lang, dir } => {
            let made = super::scaffold::new(name, *lang, dir)?;
            println!(
                "wrote {}: build it with `hookgate plugin build {}`",
                made.display(),
                made.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        PluginCommand::Build { dir } => {
            let wasm = super::plugin_build::build(dir, cache)?;
            let size = std::fs::metadata(&wasm)
                .with_context(|| format!("reading {}", wasm.display()))?
                .len();
            println!(
                "built {} ({:.1} MiB); the gateway loads it",
                wasm.display(),
                size as f64 / f64::from(1 << 20)
            );
            return Ok(ExitCode::SUCCESS);
        }
        PluginCommand::Diff {
            name,
            file,
            since,
            limit,
        } => {
            // As diff(1): 0 the same, 1 some differ, 2 trouble.
            let (diff, out, differ) = match plugin_diff(admin, name, file, since, *limit) {
                Ok(done) => done,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            match json {
                true => println!("{diff:#}"),
                false => print!("{out}"),
            }
            return Ok(match differ {
                true => ExitCode::FAILURE,
                false => ExitCode::SUCCESS,
            });
        }
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

/// `plugin diff`: the gateway's answer, rendered, and whether something differs.
fn plugin_diff(
    admin: AdminArgs,
    name: &str,
    file: &std::path::Path,
    since: &Option<String>,
    limit: Option<usize>,
) -> anyhow::Result<(serde_json::Value, String, bool)> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (name, since) = (name.to_string(), since.clone());
    let diff = admin_call(admin, |client| async move {
        client.diff_plugin(&name, wasm, since, limit).await
    })?;
    let (out, differ) = super::plugin_diff::render(&diff)?;
    Ok((diff, out, differ))
}

/// `hookgate deliveries ls|show|retry`.
fn deliveries(admin: AdminArgs, command: DeliveriesCommand) -> anyhow::Result<ExitCode> {
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

/// `hookgate check`: the config loads, and every plugin a route names loads.
fn check(config: &Path, cache: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match Config::load(config) {
        Ok(c) => {
            // Every plugin a route names must load and export the `transformer` world;
            // one not uploaded yet is fine (its events wait for it) and noted.
            let (_, broken, missing) =
                Registry::for_routes(c.plugins_dir(), cache, c.plugins.limits(), c.plugin_names())?;
            for note in &missing {
                println!("note: {note}");
            }
            if !broken.is_empty() {
                for problem in &broken {
                    eprintln!("{}: {problem}", config.display());
                }
                return Ok(ExitCode::FAILURE);
            }
            for (key, why) in &c.warnings {
                println!("warning: {key}: {why}");
            }
            println!(
                "{}: ok ({} sources, {} targets, {} routes{})",
                config.display(),
                c.sources.len(),
                c.targets.len(),
                c.routes.len(),
                match c.warnings.len() {
                    0 => String::new(),
                    1 => ", 1 warning".into(),
                    n => format!(", {n} warnings"),
                }
            );
            let contained = in_children(&c);
            if !contained.is_empty() {
                println!(
                    "note: evaluated in contained evaluator children (jq's interpreter): {}",
                    contained.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// What of a config runs jq's interpreter (in evaluator children): every other filter, transform
/// and event-type rule is a predicate or projection, evaluated in the gateway.
fn in_children(c: &Config) -> Vec<String> {
    let sources = c
        .sources
        .values()
        .filter(|s| matches!(s.event_type, crate::route::envelope::EventTypeRule::Jq(_)))
        .map(|s| format!("source `{}` (event_type)", s.name));
    let routes = c
        .routes
        .iter()
        .filter_map(|r| Some(format!("route `{}` ({})", r.name, r.needs_child()?)));
    sources.chain(routes).collect()
}

/// `hookgate try`: one event through the pipeline, offline ([`super::try_event`]).
fn try_event(
    config: &Path,
    source: &str,
    body: &Path,
    headers: &[(String, String)],
    cache: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let body = std::fs::read(body).with_context(|| format!("reading {}", body.display()))?;
    let (plugins, broken, missing) = Registry::for_routes(
        config.plugins_dir(),
        cache,
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
        let mut evaluators = crate::route::evaluator::Pool::new(Some(exe), 1);
        let body = body.into();
        super::try_event(&config, &plugins, &mut evaluators, source, body, headers).await
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

/// Runs one admin API call on a small runtime of its own.
fn admin_call<F, Fut, T>(admin: AdminArgs, call: F) -> anyhow::Result<T>
where
    F: FnOnce(AdminClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let client = AdminClient {
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
        crate::store::open(&config.store.url, config.store.sync)
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

fn serve(config: Config, plugin_cache: Option<PathBuf>) -> anyhow::Result<()> {
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
        let options = crate::server::Options {
            admin_listener,
            evaluator_exe: Some(
                std::env::current_exe().context("locating the hookgate executable")?,
            ),
            reload_on_sighup: true,
            ingress: Default::default(),
            plugin_cache,
        };
        crate::server::run(config, options, listener, shutdown_signal()).await
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
