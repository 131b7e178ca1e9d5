//! Load benchmark: the real `hookgate serve` end to end, beside baselines measured in the same
//! run on the same machine: the same events sent straight to the receiver, and (when nginx is
//! installed) through an nginx relay, the cheapest thing that forwards an event.
//!
//! ```sh
//! cargo bench --bench load
//! cargo bench --bench load -- --events 20000 --concurrency 64 [--rate R] [--duration 5]
//!     [--sync full|normal] [--target-concurrency 64] [--transform jq|wasm|slack-jq]
//!     [--plugin FILE.wasm]
//!     [--store postgres://USER@HOST:PORT/DB] [--instances N] [--compare PATH/TO/hookgate]
//!     [--console] [--rounds N]
//! ```
//!
//! The gateway runs as its own process (this build's binary, and with `--compare` another build's
//! too, each on the same events), so its CPU time, evaluator children included, is read from
//! /proc and reported as delivered events per CPU-second, and per event by part (the async
//! runtime, the SQLite writer thread, the evaluator children; on a local PostgreSQL, the server's
//! own CPU beside them). With `--store`, the closed loop also runs on SQLite, for the ratio of the
//! two stores. The load generator and the recording receiver (tests/it/utils, as the tests use
//! it) run in this process.
//!
//! Every event is a ~1.5 KB Spacelift-like JSON body, HMAC-signed; the gateway verifies it,
//! commits it, routes it (jq by default), signs the result (github scheme) and delivers it.
//! Latency runs from the start of a send to the receiver's arrival, matched by the body's `seq`.
//! Exits non-zero when any event is refused or not delivered within 30 s of the last send.
//!
//! `--console` also runs the gateway's closed loop with a browser (chromium, through
//! tests/browser/poll-overview.mjs) loading the console's overview once a second, on the same
//! machine, so the console's cost shows as the ratio of the two runs.

#[allow(dead_code, unused_imports)]
#[path = "../../tests/it/utils/mod.rs"]
mod utils;

mod load;
mod peers;
mod report;

use axum::http::StatusCode;
use clap::Parser;
use peers::{ConsoleWatcher, CpuParts, Gateway, GatewaySpec, Relay};
use report::{Outcome, outcome, print_timeline, print_warnings};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utils::Receiver;

/// How long after the last send every event must have reached the receiver.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Parser)]
#[command(about = "hookgate end to end against same-run baselines")]
struct Args {
    /// Events in the closed-loop run.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    events: usize,
    /// Concurrent senders in the closed-loop run.
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// Open-loop rate in events/s (default: half the gateway's closed-loop delivered rate).
    #[arg(long)]
    rate: Option<f64>,
    /// Open-loop duration in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// SQLite `store.sync`.
    #[arg(long, default_value = "full")]
    sync: String,
    /// The target's `concurrency`.
    #[arg(long, default_value_t = 64)]
    target_concurrency: usize,
    /// The route's transform.
    #[arg(long, value_enum, default_value_t = Transform::Jq)]
    transform: Transform,
    /// With `--transform wasm`: this component instead of plugins/'s slack-notify (the plugin
    /// benchmark builds the same message in Python and JavaScript: benches/plugins/*/*.wasm).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// A PostgreSQL server to run on (a fresh database per run); default SQLite. The closed loop
    /// then also runs this build on SQLite, so the two stores compare in one run.
    #[arg(long)]
    store: Option<String>,
    /// Gateway instances sharing the store (PostgreSQL), load spread round-robin.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Another build's `hookgate` binary, run on the same events after this build's.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Also print each scenario's course in windows of this many seconds (by send time): the
    /// rate at which those events were sent, and their latency to the receiver. Shows warm-up,
    /// stalls and a rate that drifts as the store grows, which the whole-run figures average away.
    #[arg(long)]
    timeline: Option<f64>,
    /// Also run the closed loop with a browser polling the console's overview every second.
    #[arg(long)]
    console: bool,
    /// Closed-loop rounds of this build beside the one it is compared with (`--compare`, else
    /// SQLite beside `--store`), each round after the first in the other order; each round's
    /// ratios and their median are printed. On a noisy machine the speed drifts between two
    /// runs by more than one change is worth, and alternating cancels the drift's direction.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// `cargo bench` passes this to harness-less benches.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Transform {
    /// `{seq, stack, state, delta}` in jq: a projection, evaluated in the gateway.
    Jq,
    /// The same mapping followed by `| .`, so that it is not a projection and runs in an
    /// evaluator child, as every jq mapping did before projections.
    JqChild,
    /// The slack-notify wasm plugin from plugins/.
    Wasm,
    /// slack-notify's message written in jq (benches/slack.jq): like for like with `wasm`.
    SlackJq,
}

/// Where a scenario sends its events.
enum Via<'a> {
    Direct,
    Relay,
    Gateway(&'a Path),
    /// A gateway on SQLite whatever `--store` says (beside one on PostgreSQL).
    OnSqlite(&'a Path),
    /// A gateway with a browser polling its console's overview.
    Watched(&'a Path),
}

#[derive(Clone, Copy)]
enum Mode {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = run(&args).await;
    peers::remove_spent_folders();
    peers::drop_spent_databases().await;
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every scenario and prints the table; `Ok(false)` when any event was refused or lost.
async fn run(args: &Args) -> anyhow::Result<bool> {
    hookgate::install_crypto();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(load::OPEN_LOOP_MAX_IN_FLIGHT))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let this = PathBuf::from(utils::binary::BIN);
    let closed = Mode::Closed {
        concurrency: args.concurrency,
    };
    let events = Arc::new(load::make_events(args.events));
    let c = args.concurrency;
    let has_nginx = Relay::start("http://127.0.0.1:1/")?.is_some();
    let mut rows = Vec::new();
    let closed_runs = [
        (Some(Via::Direct), "baseline"),
        (has_nginx.then_some(Via::Relay), "nginx relay"),
        (Some(Via::Gateway(&this)), "gateway"),
        (
            args.store.is_some().then_some(Via::OnSqlite(&this)),
            "gateway on sqlite",
        ),
        (
            args.console.then_some(Via::Watched(&this)),
            "gateway + console",
        ),
        (args.compare.as_deref().map(Via::Gateway), "compared build"),
    ];
    for (via, label) in closed_runs {
        if let Some(via) = via {
            let name = format!("{label} closed C={c}");
            rows.push(scenario(args, &client, &events, closed, via, &name).await?);
        }
    }
    for round in 2..=args.rounds {
        let Some((other, label)) = paired(args) else {
            break;
        };
        let mut pair = [(Via::Gateway(&this), "gateway"), (other, label)];
        if round % 2 == 0 {
            pair.reverse();
        }
        for (via, label) in pair {
            let name = format!("{label} closed C={c} #{round}");
            rows.push(scenario(args, &client, &events, closed, via, &name).await?);
        }
    }
    let gateway_rate = rows
        .iter()
        .find(|o| o.name.starts_with("gateway"))
        .map_or(1.0, |o| o.delivered.per_sec);
    let rate = args.rate.unwrap_or((gateway_rate / 2.0).max(1.0));
    let open_n = ((rate * args.duration).round() as usize).max(1);
    let open_events = Arc::new(load::make_events(open_n));
    let open = Mode::Open { rate };
    let open_runs = [
        (Some(Via::Direct), "baseline"),
        (Some(Via::Gateway(&this)), "gateway"),
        (args.compare.as_deref().map(Via::Gateway), "compared build"),
    ];
    for (via, label) in open_runs {
        if let Some(via) = via {
            let name = format!("{label} open {rate:.0}/s");
            rows.push(scenario(args, &client, &open_events, open, via, &name).await?);
        }
    }
    report::report(args, &rows, rate);
    let problems: Vec<&String> = rows.iter().flat_map(|o| &o.problems).collect();
    for p in &problems {
        eprintln!("FAIL: {p}");
    }
    Ok(problems.is_empty())
}

/// What this build's closed loop is paired with in `--rounds`: another build, else SQLite.
fn paired(args: &Args) -> Option<(Via<'_>, &'static str)> {
    match (&args.compare, &args.store) {
        (Some(build), _) => Some((Via::Gateway(build), "compared build")),
        (None, Some(_)) => Some((
            Via::OnSqlite(Path::new(utils::binary::BIN)),
            "gateway on sqlite",
        )),
        (None, None) => None,
    }
}

/// Runs one scenario against a fresh receiver (and a fresh gateway, store or relay).
async fn scenario(
    args: &Args,
    client: &reqwest::Client,
    events: &Arc<Vec<load::Event>>,
    mode: Mode,
    via: Via<'_>,
    name: &str,
) -> anyhow::Result<Outcome> {
    let n = events.len();
    let receiver = Receiver::start().await;
    let mut relay = None;
    let mut gateways = Vec::new();
    let mut watcher = None;
    let mut database = None;
    let (urls, signed, expect) = match via {
        Via::Direct => (vec![receiver.url.clone()], false, StatusCode::OK),
        Via::Relay => {
            let r = Relay::start(&receiver.url)?.ok_or_else(|| anyhow::anyhow!("no nginx"))?;
            let url = r.url.clone();
            relay = Some(r);
            (vec![url], false, StatusCode::OK)
        }
        Via::Gateway(binary) | Via::Watched(binary) | Via::OnSqlite(binary) => {
            let store = match (&args.store, &via) {
                (Some(server), Via::Gateway(_) | Via::Watched(_)) => {
                    let url = utils::store::fresh_postgres_database_on(server, "bench").await;
                    database = Some((server.clone(), url.clone()));
                    url
                }
                _ => String::new(),
            };
            let plugin = match args.transform {
                Transform::Wasm => Some(
                    args.plugin
                        .clone()
                        .unwrap_or_else(|| utils::wasm::plugin_path("slack-notify")),
                ),
                _ => None,
            };
            let spec = GatewaySpec {
                binary,
                store: &store,
                sync: &args.sync,
                target_concurrency: args.target_concurrency,
                transform: &transform(args.transform),
                plugin: plugin.as_deref(),
                admin: matches!(via, Via::Watched(_)),
            };
            // Instances share a PostgreSQL store; on SQLite one stands alone.
            let instances = match via {
                Via::OnSqlite(_) => 1,
                _ => args.instances.max(1),
            };
            for _ in 0..instances {
                gateways.push(Gateway::start(&spec, &receiver.url)?);
            }
            if let Some(admin) = gateways[0].process.admin_url.as_deref() {
                watcher = Some(ConsoleWatcher::start(admin)?);
            }
            (
                gateways.iter().map(|g| g.hook.clone()).collect(),
                true,
                StatusCode::ACCEPTED,
            )
        }
    };
    let cpu = || -> Option<Duration> {
        match (&relay, gateways.is_empty()) {
            (Some(r), _) => Some(r.cpu()),
            (None, false) => Some(gateways.iter().map(Gateway::cpu).sum()),
            (None, true) => None,
        }
    };
    eprintln!("running: {name} ({n} events)");
    let cpu_before = cpu();
    let parts_before: Vec<CpuParts> = gateways.iter().map(Gateway::cpu_by_part).collect();
    let on_postgres = args.store.is_some() && matches!(via, Via::Gateway(_) | Via::Watched(_));
    let postgres_before = on_postgres.then(peers::postgres_cpu);
    let sent = match mode {
        Mode::Closed { concurrency } => {
            load::closed_loop(client, &urls, events.clone(), concurrency, signed, expect).await
        }
        Mode::Open { rate } => {
            load::open_loop(client, &urls, events.clone(), rate, signed, expect).await
        }
    };
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    while load::arrivals(n, &receiver.seen()).unique < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu_used = cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let parts = (!gateways.is_empty()).then(|| {
        let spans: Vec<(CpuParts, CpuParts)> = parts_before
            .into_iter()
            .zip(gateways.iter().map(Gateway::cpu_by_part))
            .collect();
        CpuParts::since(&spans)
    });
    let mut commits = None;
    for g in &gateways {
        commits = match (commits, g.commits(client).await) {
            (Some(sum), Some(c)) => Some(sum + c),
            (None, c) => c,
            (sum, None) => sum,
        };
    }
    let arrived = load::arrivals(n, &receiver.seen());
    let arrived_duplicates = arrived.duplicates;
    drop(watcher);
    if let Some(window) = args.timeline {
        print_timeline(
            name,
            &sent,
            &arrived,
            Duration::from_secs_f64(window.max(0.01)),
        );
    }
    let mut outcome = outcome(name, sent, arrived, cpu_used);
    outcome.parts = parts;
    outcome.commits = commits;
    outcome.postgres = postgres_before.map(|before| peers::postgres_cpu().saturating_sub(before));
    if arrived_duplicates > 0 || !outcome.problems.is_empty() {
        print_warnings(name, &gateways);
    }
    drop(gateways);
    if let Some((server, url)) = database {
        // Failing to set it aside does not void the figures.
        if let Err(e) = peers::retire_database(&server, &url).await {
            eprintln!("warning: could not turn autovacuum off in {url}: {e:#}");
        }
    }
    Ok(outcome)
}

/// The load's mapping: `--transform jq`.
const MAPPING: &str =
    "{seq: .body.seq, stack: .body.stack.id, state: .body.state, delta: .body.run.delta}";

fn transform(t: Transform) -> String {
    match t {
        Transform::Jq => format!("jq = '{MAPPING}'"),
        Transform::JqChild => format!("jq = '{MAPPING} | .'"),
        Transform::Wasm => "wasm = { plugin = \"slack-notify\", config = { platform = \"spacelift\", channel = \"#deploys\" } }".into(),
        Transform::SlackJq => format!("jq = '''{}'''", include_str!("../slack.jq")),
    }
}
