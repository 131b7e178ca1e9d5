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
//!     [--console]
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

use axum::http::StatusCode;
use clap::Parser;
use load::{Arrivals, Sent, Stats};
use peers::{ConsoleWatcher, CpuParts, Gateway, GatewaySpec, Relay};
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
    /// `cargo bench` passes this to harness-less benches.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Transform {
    /// `{seq, stack, state, delta}` in jq.
    Jq,
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

/// One scenario's outcome.
struct Outcome {
    name: String,
    delivered: Stats,
    /// The answers the senders got (for a gateway: the 202s).
    answered: Stats,
    /// CPU time of what the load went through (gateway with children, or nginx).
    cpu: Option<Duration>,
    /// A gateway's CPU time by part ([`CpuParts::NAMES`]).
    parts: Option<[Duration; 4]>,
    /// The local PostgreSQL server's CPU time, for a gateway on PostgreSQL.
    postgres: Option<Duration>,
    /// The gateways' group commits, when their build reports them.
    commits: Option<peers::Commits>,
    problems: Vec<String>,
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
    report(args, &rows, rate);
    let problems: Vec<&String> = rows.iter().flat_map(|o| &o.problems).collect();
    for p in &problems {
        eprintln!("FAIL: {p}");
    }
    Ok(problems.is_empty())
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

fn print_timeline(name: &str, sent: &Sent, arrivals: &Arrivals, window: Duration) {
    eprintln!("{name}, by send time:");
    eprintln!("  from s    sent/s   p50 ms   p99 ms");
    for w in load::timeline(&sent.origin, &arrivals.at, sent.first, window) {
        eprintln!(
            "  {:>6.1} {:>9.0} {:>8} {:>8}",
            w.from.as_secs_f64(),
            w.per_sec,
            ms(w.p50),
            ms(w.p99)
        );
    }
}

/// The first warnings and errors the gateways logged: why a scenario saw duplicates or losses.
fn print_warnings(name: &str, gateways: &[Gateway]) {
    const SHOWN: usize = 20;
    for (i, g) in gateways.iter().enumerate() {
        let Ok(logs) = g.process.logs.lock() else {
            continue;
        };
        let mut warned = logs
            .iter()
            .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
            .peekable();
        if warned.peek().is_some() {
            eprintln!("{name}: instance {i} logged (first {SHOWN}):");
        }
        for line in warned.take(SHOWN) {
            eprintln!("  {line}");
        }
    }
}

fn transform(t: Transform) -> String {
    match t {
        Transform::Jq => "jq = '{seq: .body.seq, stack: .body.stack.id, state: .body.state, delta: .body.run.delta}'".into(),
        Transform::Wasm => "wasm = { plugin = \"slack-notify\", config = { platform = \"spacelift\", channel = \"#deploys\" } }".into(),
        Transform::SlackJq => format!("jq = '''{}'''", include_str!("../slack.jq")),
    }
}

fn outcome(name: &str, sent: Sent, arrivals: Arrivals, cpu: Option<Duration>) -> Outcome {
    let mut problems = Vec::new();
    let n = sent.origin.len();
    if sent.refused > 0 {
        problems.push(format!(
            "{name}: {} of {n} sends refused; first: {}",
            sent.refused,
            sent.first_error.as_deref().unwrap_or("?")
        ));
    }
    if arrivals.unique < n {
        // A refused send was never stored; an answered one must arrive (at least once).
        let answered_lost = sent
            .origin
            .iter()
            .zip(&arrivals.at)
            .filter(|(answered, arrived)| answered.is_some() && arrived.is_none())
            .count();
        problems.push(format!(
            "{name}: {} of {n} events not delivered within {DELIVERY_DEADLINE:?} of the last send, \
             {answered_lost} of them answered (the rest refused)",
            n - arrivals.unique
        ));
    }
    if arrivals.unreadable > 0 {
        problems.push(format!(
            "{name}: {} requests without a known `seq`",
            arrivals.unreadable
        ));
    }
    if arrivals.duplicates > 0 {
        // At-least-once delivery allows this; worth knowing, not a failure.
        eprintln!("note: {name}: {} duplicate deliveries", arrivals.duplicates);
    }
    let mut latencies = Vec::with_capacity(n);
    let mut last_arrival = sent.first;
    for (origin, arrival) in sent.origin.iter().zip(&arrivals.at) {
        if let (Some(o), Some(a)) = (origin, arrival) {
            latencies.push(a.saturating_duration_since(*o));
            last_arrival = last_arrival.max(*a);
        }
    }
    Outcome {
        name: name.to_string(),
        delivered: load::stats(latencies, last_arrival - sent.first),
        answered: load::stats(sent.answered, sent.last_answer - sent.first),
        cpu,
        parts: None,
        commits: None,
        postgres: None,
        problems,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn report(args: &Args, rows: &[Outcome], rate: f64) {
    println!(
        "\nhookgate load bench: {} events, {} senders; open loop {rate:.0}/s for {:.1} s; transform {:?}; store {}; {} instance(s); {} CPUs",
        args.events,
        args.concurrency,
        args.duration,
        args.transform,
        match &args.store {
            Some(_) => "postgres".to_string(),
            None => format!("sqlite (sync={})", args.sync),
        },
        args.instances,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "latency: send start to receiver arrival; `202 p99`: send start to the gateway's answer"
    );
    println!(
        "\n{:<34} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "scenario",
        "events",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "202 p99",
        "CPU s",
        "ev/CPU-s"
    );
    for o in rows {
        let d = &o.delivered;
        let (cpu, per_cpu) = match o.cpu {
            Some(c) if !c.is_zero() => (
                format!("{:.1}", c.as_secs_f64()),
                format!("{:.0}", d.events as f64 / c.as_secs_f64()),
            ),
            _ => ("-".into(), "-".into()),
        };
        let answered = match o.name.contains("gateway") || o.name.contains("compared") {
            true => ms(o.answered.p99),
            false => "-".into(),
        };
        println!(
            "{:<34} {:>7} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9}",
            o.name,
            d.events,
            d.per_sec,
            ms(d.p50),
            ms(d.p99),
            ms(d.max),
            answered,
            cpu,
            per_cpu
        );
    }
    println!("\nthe gateway's CPU per delivered event, by part (µs):");
    for o in rows {
        if let Some(parts) = o.parts.filter(|_| o.delivered.events > 0) {
            let per_event = |d: &Duration| d.as_secs_f64() * 1e6 / o.delivered.events as f64;
            let mut cells: Vec<String> = CpuParts::NAMES
                .iter()
                .zip(&parts)
                .map(|(name, d)| format!("{name} {:.0}", per_event(d)))
                .collect();
            if let Some(pg) = &o.postgres {
                cells.push(format!("(beside it: postgres server {:.0})", per_event(pg)));
            }
            println!("  {:<32} {}", o.name, cells.join(" · "));
        }
    }
    println!(
        "\nthe store's group commits (hookgate_store_commit_seconds; every 202 waits for one):"
    );
    for o in rows {
        if let Some(c) = &o.commits {
            println!(
                "  {:<32} {} commits ({:.1} delivered events per commit); over 25 ms: {}, over 100 ms: {}",
                o.name,
                c.count,
                o.delivered.events as f64 / c.count.max(1) as f64,
                c.over_25ms,
                c.over_100ms
            );
        }
    }
    let find = |p: &str| rows.iter().find(|o| o.name.starts_with(p));
    let closed = |p: &str| find(&format!("{p} closed"));
    println!();
    if let Some(gw) = closed("gateway") {
        for (label, other) in [
            ("gateway + console", closed("gateway + console")),
            ("gateway on sqlite", closed("gateway on sqlite")),
            ("baseline", closed("baseline")),
            ("nginx relay", closed("nginx relay")),
            ("compared build", closed("compared build")),
        ] {
            if let Some(o) = other {
                let per_cpu = |x: &Outcome| {
                    x.cpu
                        .map(|c| x.delivered.events as f64 / c.as_secs_f64().max(1e-9))
                };
                let cpu_ratio = match (per_cpu(gw), per_cpu(o)) {
                    (Some(a), Some(b)) => format!(", delivered per CPU-second {:.2}x", a / b),
                    _ => String::new(),
                };
                println!(
                    "gateway / {label}, closed loop: delivered/s {:.2}x{cpu_ratio}",
                    gw.delivered.per_sec / o.delivered.per_sec.max(1e-9)
                );
            }
        }
    }
}
