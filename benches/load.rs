//! Load benchmark: the gateway end to end against a direct-to-receiver baseline, in one process.
//!
//! ```sh
//! cargo bench --bench load
//! cargo bench --bench load -- --events 20000 --concurrency 64 [--rate R] [--duration 5]
//!                             [--evaluator process|thread] [--sync full|normal]
//!                             [--target-concurrency 64] [--transform jq|wasm|slack-jq]
//!                             [--store postgres://USER@HOST:PORT/DB] [--instances N]
//! ```
//!
//! `--store` runs the gateway on PostgreSQL (a fresh database per scenario, created on the server
//! the URL names) instead of a SQLite file; `--instances N` starts N gateways on that one store
//! and spreads the senders' events across them round-robin, as a load balancer would.
//!
//! Scenarios, each against a fresh recording receiver (and, for the gateway, a fresh database):
//!
//! 1. baseline closed loop: N events from C concurrent senders straight to the receiver.
//! 2. gateway closed loop: the same N events, HMAC-signed, to `POST /hooks/bench`; the gateway
//!    verifies, stores, routes (jq, or with `--transform wasm` the slack-notify plugin built from
//!    plugins/), signs and delivers them to the receiver.
//! 3. open loop at a fixed rate R (default: half the delivered rate of 2) for a fixed duration,
//!    against the receiver directly and through the gateway.
//!
//! Latency is measured from the moment a send starts to the receiver's arrival `Instant`, matched
//! by the `seq` field every body carries. Open-loop sends start at their scheduled time whatever
//! earlier sends are doing; how far each start fell behind its schedule is printed too, so a
//! generator that could not keep the rate is visible rather than hidden in the numbers.
//!
//! Everything runs on 127.0.0.1 in this process, on one tokio runtime (the route evaluator is a
//! child process by default, as `hookgate serve` runs it). Exits non-zero when any event is
//! refused or not delivered within 30 s of the last send.

use axum::body::Bytes;
use axum::http::StatusCode;
use hookgate::signature::{Algorithm, Encoding};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, oneshot};

/// How long after the last send every event must have reached the receiver.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);
/// Most requests an open-loop run keeps in flight; beyond it sends wait (and show as start lag).
const OPEN_LOOP_MAX_IN_FLIGHT: usize = 1024;
const SOURCE_SECRET: &str = "bench-secret";
const TARGET_SECRET: &str = "bench-target";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Clone)]
struct Args {
    events: usize,
    concurrency: usize,
    rate: Option<f64>,
    duration: Duration,
    /// Route evaluation in a child process (`hookgate __route-worker`, as `hookgate serve` runs
    /// it) or on a thread (library default).
    evaluator: EvaluatorKind,
    sync: String,
    /// `concurrency` of the gateway's target.
    target_concurrency: usize,
    /// The route's transform: a small jq mapping, or the slack-notify wasm plugin.
    transform: TransformKind,
    /// A PostgreSQL server to run on (`None`: SQLite).
    store: Option<String>,
    /// Gateways sharing the store.
    instances: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransformKind {
    Jq,
    Wasm,
    /// slack-notify's message written in jq (benches/slack.jq): like for like with `Wasm`.
    SlackJq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EvaluatorKind {
    Process,
    Thread,
}

const USAGE: &str = "usage: cargo bench --bench load -- [--events N] [--concurrency C] \
[--rate EVENTS_PER_SEC] [--duration SECS] [--evaluator process|thread] [--sync full|normal] \
[--target-concurrency N] [--transform jq|wasm|slack-jq] [--store postgres://...] [--instances N]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        events: 20_000,
        concurrency: 64,
        rate: None,
        duration: Duration::from_secs(5),
        evaluator: EvaluatorKind::Process,
        sync: "full".into(),
        target_concurrency: 64,
        transform: TransformKind::Jq,
        store: None,
        instances: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` appends `--bench` to the arguments of harness-less benches.
        if flag == "--bench" {
            continue;
        }
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let bad = |v: &str| format!("{flag}: bad value `{v}`\n{USAGE}");
        match flag.as_str() {
            "--events" | "-n" => {
                let v = value()?;
                args.events = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(&v))?;
            }
            "--concurrency" | "-c" => {
                let v = value()?;
                args.concurrency = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(&v))?;
            }
            "--rate" | "-r" => {
                let v = value()?;
                args.rate = Some(
                    v.parse()
                        .ok()
                        .filter(|r: &f64| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| bad(&v))?,
                );
            }
            "--duration" | "-d" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 600.0)
                    .ok_or_else(|| bad(&v))?;
                args.duration = Duration::from_secs_f64(secs);
            }
            "--transform" => {
                let v = value()?;
                args.transform = match v.as_str() {
                    "jq" => TransformKind::Jq,
                    "wasm" => TransformKind::Wasm,
                    "slack-jq" => TransformKind::SlackJq,
                    _ => return Err(bad(&v)),
                };
            }
            "--evaluator" => {
                let v = value()?;
                args.evaluator = match v.as_str() {
                    "process" => EvaluatorKind::Process,
                    "thread" => EvaluatorKind::Thread,
                    _ => return Err(bad(&v)),
                };
            }
            "--sync" => {
                let v = value()?;
                if v != "full" && v != "normal" {
                    return Err(bad(&v));
                }
                args.sync = v;
            }
            "--target-concurrency" => {
                let v = value()?;
                args.target_concurrency =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(&v))?;
            }
            "--store" => {
                let v = value()?;
                if !v.starts_with("postgres://") && !v.starts_with("postgresql://") {
                    return Err(bad(&v));
                }
                args.store = Some(v);
            }
            "--instances" => {
                let v = value()?;
                args.instances = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(&v))?;
            }
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// Payloads

/// One producer request: a ~1 KB Spacelift-like run-state event and its signature header.
#[derive(Clone)]
struct Event {
    body: Bytes,
    signature: String,
}

const STATES: &[&str] = &[
    "QUEUED",
    "PREPARING",
    "PLANNING",
    "UNCONFIRMED",
    "APPLYING",
    "FINISHED",
];
const STACKS: &[&str] = &[
    "payments-prod",
    "payments-staging",
    "checkout-prod",
    "identity-prod",
    "data-platform",
    "edge-network",
    "observability",
    "billing-prod",
];

fn event_body(seq: usize) -> Bytes {
    let stack = STACKS[seq % STACKS.len()];
    let state = STATES[seq % STATES.len()];
    let run_id = format!("01HF{seq:022}");
    let hash = format!(
        "{:040x}",
        (seq as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)
    );
    let ts = 1_700_000_000_i64 + seq as i64;
    let body = serde_json::json!({
        "seq": seq,
        "account": "acme-corp",
        "event_type": "run_state_changed_event",
        "state": state,
        "stateVersion": seq % 7 + 1,
        "timestamp": ts,
        "note": "Run state changed by the Spacelift scheduler",
        "run": {
            "id": run_id,
            "type": "TRACKED",
            "branch": "main",
            "createdAt": ts - 42,
            "triggeredBy": "vcs/push",
            "driftDetection": false,
            "url": format!("https://acme-corp.app.spacelift.io/stack/{stack}/run/{run_id}"),
            "delta": {
                "added": seq % 5,
                "changed": seq % 3,
                "deleted": seq % 2,
                "resources": 120 + seq % 17,
            },
            "commit": {
                "authorLogin": "jdoe",
                "authorName": "Jane Doe",
                "hash": hash,
                // `seq=N` lets the receiver match a plugin's Slack message, which has no `seq` field.
                "message": format!("Bump module versions and tighten IAM policies (seq={seq})"),
                "timestamp": ts - 300,
                "url": format!("https://github.com/acme-corp/infra/commit/{hash}"),
            },
        },
        "stack": {
            "id": stack,
            "name": stack,
            "description": "Terraform for the service, its queues, databases and IAM",
            "labels": ["team:platform", "env:prod", "tier:1", "feature:add_plan_pr_comment"],
            "repository": "acme-corp/infra",
            "branch": "main",
            "namespace": "acme-corp",
            "projectRoot": format!("stacks/{stack}"),
            "vcs": "GITHUB",
            "url": format!("https://acme-corp.app.spacelift.io/stack/{stack}"),
        },
    });
    Bytes::from(serde_json::to_vec(&body).expect("serialise event"))
}

fn make_events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|seq| {
            let body = event_body(seq);
            let mac =
                hookgate::signature::hmac(Algorithm::Sha256, SOURCE_SECRET.as_bytes(), &[&body]);
            let signature = format!("sha256={}", Encoding::Hex.encode(&mac));
            Event { body, signature }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The recording receiver

#[derive(serde::Deserialize)]
struct SeqOnly {
    seq: usize,
}

/// `seq=N` inside a body that carries no `seq` field (a plugin's output).
fn seq_marker(body: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("seq=")? + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

struct Record {
    arrivals: Vec<Option<Instant>>,
    unique: usize,
    duplicates: usize,
    unreadable: usize,
}

/// An axum server on 127.0.0.1:0 that answers 200 to `POST /` and records when each `seq` arrived.
struct Receiver {
    url: String,
    record: Arc<Mutex<Record>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    async fn start(expected: usize) -> Self {
        let record = Arc::new(Mutex::new(Record {
            arrivals: vec![None; expected],
            unique: 0,
            duplicates: 0,
            unreadable: 0,
        }));
        let shared = record.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: Bytes| {
                let at = Instant::now();
                let record = shared.clone();
                async move {
                    let seq = serde_json::from_slice::<SeqOnly>(&body)
                        .ok()
                        .map(|s| s.seq)
                        .or_else(|| seq_marker(&body));
                    let mut guard = record.lock().expect("record lock");
                    let r = &mut *guard;
                    match seq.and_then(|s| r.arrivals.get_mut(s)) {
                        Some(slot @ None) => {
                            *slot = Some(at);
                            r.unique += 1;
                        }
                        Some(Some(_)) => r.duplicates += 1,
                        None => r.unreadable += 1,
                    }
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/", listener.local_addr().expect("receiver addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            url,
            record,
            stop: Some(stop),
        }
    }

    fn unique(&self) -> usize {
        self.record.lock().expect("record lock").unique
    }

    /// Waits until `n` distinct events arrived or `deadline` passes; returns the arrivals.
    async fn wait_all(&self, n: usize, deadline: Instant) -> Arrivals {
        while self.unique() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let r = self.record.lock().expect("record lock");
        Arrivals {
            at: r.arrivals.clone(),
            unique: r.unique,
            duplicates: r.duplicates,
            unreadable: r.unreadable,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Arrivals {
    at: Vec<Option<Instant>>,
    unique: usize,
    duplicates: usize,
    unreadable: usize,
}

// ---------------------------------------------------------------------------------------------
// The gateway under test

struct Gateway {
    hook: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts a gateway on `store` (empty: a SQLite file of its own).
    async fn start(receiver_url: &str, args: &Args, store: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = match store {
            "" => format!("sqlite://{}", dir.path().join("bench.db").display()),
            url => url.to_string(),
        };
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"

[store]
url = "{store}"
sync = "{sync}"

[sources.bench]
kind = "generic"
verify = {{ header = "X-Signature", algorithm = "sha256", prefix = "sha256=", secret = "{SOURCE_SECRET}" }}

[targets.receiver]
url = "{receiver_url}"
sign = {{ scheme = "github", secret = "{TARGET_SECRET}" }}
concurrency = {target_concurrency}

[plugins]
dir = "{plugins}"

[[routes]]
name = "bench"
source = "bench"
{transform}
targets = ["receiver"]
"#,
            plugins = dir.path().join("plugins").display(),
            transform = match args.transform {
                TransformKind::Jq => "jq = '{seq: .body.seq, stack: .body.stack.id, state: .body.state, delta: .body.run.delta}'".to_string(),
                TransformKind::Wasm => "wasm = { plugin = \"slack-notify\", config = { platform = \"spacelift\", channel = \"#deploys\" } }".to_string(),
                TransformKind::SlackJq => format!("jq = '''{}'''", include_str!("slack.jq")),
            },
            sync = args.sync,
            target_concurrency = args.target_concurrency,
        );
        std::fs::write(dir.path().join("bench.toml"), &text)?;
        if args.transform == TransformKind::Wasm {
            std::fs::create_dir_all(dir.path().join("plugins"))?;
            std::fs::copy(
                slack_notify_wasm()?,
                dir.path().join("plugins/slack-notify.wasm"),
            )?;
        }
        let config = hookgate::config::Config::parse(&text, "bench.toml", &|_| None)?;
        let options = hookgate::server::Options {
            evaluator_exe: match args.evaluator {
                EvaluatorKind::Process => Some(env!("CARGO_BIN_EXE_hookgate").into()),
                EvaluatorKind::Thread => None,
            },
            admin_listener: None,
            reload_on_sighup: false,
            ingress: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hookgate::server::run(
            config,
            options,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        let gw = Self {
            hook: format!("{base}/hooks/bench"),
            stop: Some(stop),
            task,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let ready = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = client.get(format!("{base}/readyz")).send().await;
            if resp.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            anyhow::ensure!(Instant::now() < ready, "gateway never became ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(gw)
    }

    /// Stops the gateway and waits for it to drain (bounded by its own shutdown grace).
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let grace = hookgate::server::SHUTDOWN_GRACE + Duration::from_secs(5);
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(joined) => joined?,
            Err(_) => {
                self.task.abort();
                anyhow::bail!("gateway did not stop within {grace:?}")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Load generation

/// What the senders saw: per seq, when its send started and how long the answer took, plus
/// refusals.
struct Sent {
    /// Latency origin per seq: when its send started.
    origin: Vec<Option<Instant>>,
    /// Request → response latency, for sends that got the expected status.
    answered: Vec<Duration>,
    first: Instant,
    last_answer: Instant,
    refused: usize,
    first_error: Option<String>,
    /// Open loop: per send, how far its start fell behind its schedule.
    start_lag: Vec<Duration>,
}

async fn send_one(
    client: &reqwest::Client,
    url: &str,
    event: &Event,
    signed: bool,
    expect: StatusCode,
) -> Result<(), String> {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(event.body.clone());
    if signed {
        req = req.header("X-Signature", &event.signature);
    }
    match req.send().await {
        Ok(resp) if resp.status() == expect => {
            // Read the (small) body so the connection goes back to the pool.
            let _ = resp.bytes().await;
            Ok(())
        }
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            Err(format!("status {status}: {text}"))
        }
        Err(e) => Err(format!("request failed: {e}")),
    }
}

/// C senders each take the next seq until all N are sent.
async fn closed_loop(
    client: &reqwest::Client,
    urls: &[String],
    events: Arc<Vec<Event>>,
    concurrency: usize,
    signed: bool,
    expect: StatusCode,
) -> Sent {
    let next = Arc::new(AtomicUsize::new(0));
    let first = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, urls, events, next) =
            (client.clone(), urls.to_vec(), events.clone(), next.clone());
        senders.spawn(async move {
            let mut mine = Vec::new();
            let mut errors = Vec::new();
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let Some(event) = events.get(seq) else { break };
                let url = &urls[seq % urls.len()];
                let start = Instant::now();
                let result = send_one(&client, url, event, signed, expect).await;
                let done = Instant::now();
                match result {
                    Ok(()) => mine.push((seq, start, done)),
                    Err(e) => errors.push(e),
                }
            }
            (mine, errors)
        });
    }
    let mut sent = Sent {
        origin: vec![None; events.len()],
        answered: Vec::with_capacity(events.len()),
        first,
        last_answer: first,
        refused: 0,
        first_error: None,
        start_lag: Vec::new(),
    };
    while let Some(joined) = senders.join_next().await {
        let (mine, errors) = joined.expect("sender task");
        for (seq, start, done) in mine {
            sent.origin[seq] = Some(start);
            sent.answered.push(done - start);
            sent.last_answer = sent.last_answer.max(done);
        }
        sent.refused += errors.len();
        if sent.first_error.is_none() {
            sent.first_error = errors.into_iter().next();
        }
    }
    sent
}

/// Sends `events` at `rate` per second, each on its own task at its scheduled time, whatever
/// the earlier ones are doing (up to [`OPEN_LOOP_MAX_IN_FLIGHT`]). Each send's lag behind its
/// schedule is recorded, so a generator that could not keep the rate shows in the output.
async fn open_loop(
    client: &reqwest::Client,
    urls: &[String],
    events: Arc<Vec<Event>>,
    rate: f64,
    signed: bool,
    expect: StatusCode,
) -> Sent {
    let n = events.len();
    let slots = Arc::new(Semaphore::new(OPEN_LOOP_MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let first = Instant::now() + Duration::from_millis(5);
    for seq in 0..n {
        let at = first + Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (client, url, events) = (
            client.clone(),
            urls[seq % urls.len()].clone(),
            events.clone(),
        );
        tasks.spawn(async move {
            let start = Instant::now();
            let result = send_one(&client, &url, &events[seq], signed, expect).await;
            drop(permit);
            (seq, at, start, Instant::now(), result)
        });
    }
    let mut sent = Sent {
        origin: vec![None; n],
        answered: Vec::with_capacity(n),
        first,
        last_answer: first,
        refused: 0,
        first_error: None,
        start_lag: Vec::with_capacity(n),
    };
    while let Some(joined) = tasks.join_next().await {
        let (seq, at, start, done, result) = joined.expect("sender task");
        sent.start_lag.push(start.saturating_duration_since(at));
        match result {
            Ok(()) => {
                sent.origin[seq] = Some(start);
                sent.answered.push(done - start);
                sent.last_answer = sent.last_answer.max(done);
            }
            Err(e) => {
                sent.refused += 1;
                sent.first_error.get_or_insert(e);
            }
        }
    }
    sent
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug, Clone, Copy)]
struct Stats {
    events: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn stats(mut latencies: Vec<Duration>, span: Duration) -> Stats {
    latencies.sort_unstable();
    let events = latencies.len();
    Stats {
        events,
        per_sec: events as f64 / span.as_secs_f64().max(1e-9),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
    }
}

/// One scenario's outcome: end to end, and (for the gateway) ingress.
struct Outcome {
    end_to_end: Stats,
    answered: Stats,
    problems: Vec<String>,
    /// Open loop: how far sends fell behind their schedule (`events/s` is the sends per second).
    start_lag: Stats,
}

fn outcome(name: &str, sent: Sent, arrivals: Arrivals) -> Outcome {
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
        problems.push(format!(
            "{name}: {} of {n} events not delivered within {DELIVERY_DEADLINE:?} of the last send",
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
    let end_to_end = stats(latencies, last_arrival - sent.first);
    let answered = stats(sent.answered, sent.last_answer - sent.first);
    let start_lag = stats(sent.start_lag, last_arrival - sent.first);
    Outcome {
        end_to_end,
        answered,
        problems,
        start_lag,
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

/// Runs one scenario against a fresh receiver: straight to it, or through a fresh gateway.
async fn scenario(
    name: &str,
    client: &reqwest::Client,
    events: Arc<Vec<Event>>,
    mode: Mode,
    gateway: Option<&Args>,
) -> anyhow::Result<Outcome> {
    let n = events.len();
    let receiver = Receiver::start(n).await;
    let mut gws = Vec::new();
    if let Some(args) = gateway {
        let store = match &args.store {
            Some(server) => fresh_postgres_database(server).await?,
            None => String::new(), // each gateway makes its own SQLite file
        };
        for _ in 0..args.instances {
            gws.push(Gateway::start(&receiver.url, args, &store).await?);
        }
    }
    let (urls, signed, expect) = if gws.is_empty() {
        (vec![receiver.url.clone()], false, StatusCode::OK)
    } else {
        let hooks = gws.iter().map(|g| g.hook.clone()).collect();
        (hooks, true, StatusCode::ACCEPTED)
    };
    eprintln!("running: {name} ({n} events)");
    let sent = match mode {
        Mode::Closed { concurrency } => {
            closed_loop(client, &urls, events, concurrency, signed, expect).await
        }
        Mode::Open { rate } => open_loop(client, &urls, events, rate, signed, expect).await,
    };
    let arrivals = receiver
        .wait_all(n, Instant::now() + DELIVERY_DEADLINE)
        .await;
    let result = outcome(name, sent, arrivals);
    for gw in gws {
        gw.stop().await?;
    }
    drop(receiver);
    Ok(result)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

fn row(name: &str, s: &Stats) {
    println!(
        "{name:<40} {:>7} {:>10.0} {:>9} {:>9} {:>9}",
        s.events,
        s.per_sec,
        ms(s.p50),
        ms(s.p99),
        ms(s.max)
    );
}

fn ratio_row(name: &str, gw: &Stats, base: &Stats) {
    println!(
        "{name:<40} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "",
        ratio(gw.per_sec, base.per_sec),
        ratio(gw.p50.as_secs_f64(), base.p50.as_secs_f64()),
        ratio(gw.p99.as_secs_f64(), base.p99.as_secs_f64()),
        ratio(gw.max.as_secs_f64(), base.max.as_secs_f64()),
    );
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(&args).await {
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
    hookgate::server::install_crypto();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(OPEN_LOOP_MAX_IN_FLIGHT))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;

    let events = Arc::new(make_events(args.events));
    let avg_body = events.iter().map(|e| e.body.len()).sum::<usize>() / events.len().max(1);
    let closed = Mode::Closed {
        concurrency: args.concurrency,
    };
    let c = args.concurrency;

    let base_closed = scenario(
        "baseline closed loop",
        &client,
        events.clone(),
        closed,
        None,
    )
    .await?;
    let gw_closed = scenario(
        "gateway closed loop",
        &client,
        events.clone(),
        closed,
        Some(args),
    )
    .await?;

    let rate = args
        .rate
        .unwrap_or((gw_closed.end_to_end.per_sec / 2.0).max(1.0));
    let open_n = ((rate * args.duration.as_secs_f64()).round() as usize).max(1);
    let open_events = Arc::new(make_events(open_n));
    let open = Mode::Open { rate };
    let base_open = scenario(
        "baseline open loop",
        &client,
        open_events.clone(),
        open,
        None,
    )
    .await?;
    let gw_open = scenario("gateway open loop", &client, open_events, open, Some(args)).await?;

    println!();
    println!(
        "hookgate load bench: {} events of ~{avg_body} B, {c} concurrent senders; open loop {rate:.0} ev/s for {:.1} s; \
evaluator={:?}, store={}, {} instance(s), target concurrency {}; {} CPUs",
        args.events,
        args.duration.as_secs_f64(),
        args.evaluator,
        match &args.store {
            Some(_) => "postgres".to_string(),
            None => format!("sqlite (sync={})", args.sync),
        },
        args.instances,
        args.target_concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!("latency: from send start to receiver arrival (ingress: to the 202)");
    println!();
    println!(
        "{:<40} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "scenario", "events", "events/s", "p50 ms", "p99 ms", "max ms"
    );
    println!("{}", "-".repeat(40 + 8 + 11 + 10 * 3));
    row(
        &format!("baseline closed C={c}: delivered"),
        &base_closed.end_to_end,
    );
    row(
        &format!("gateway  closed C={c}: delivered"),
        &gw_closed.end_to_end,
    );
    row(
        &format!("gateway  closed C={c}: ingress 202"),
        &gw_closed.answered,
    );
    row(
        &format!("baseline open {rate:.0}/s: delivered"),
        &base_open.end_to_end,
    );
    row(
        &format!("gateway  open {rate:.0}/s: delivered"),
        &gw_open.end_to_end,
    );
    row(
        &format!("gateway  open {rate:.0}/s: ingress 202"),
        &gw_open.answered,
    );
    println!("{}", "-".repeat(40 + 8 + 11 + 10 * 3));
    ratio_row(
        "ratio gateway/baseline, closed",
        &gw_closed.end_to_end,
        &base_closed.end_to_end,
    );
    ratio_row(
        "ratio gateway/baseline, open",
        &gw_open.end_to_end,
        &base_open.end_to_end,
    );
    println!();
    for (name, o) in [("baseline", &base_open), ("gateway ", &gw_open)] {
        println!(
            "open-loop sender lag behind schedule ({name}): p50 {} ms, p99 {} ms, max {} ms",
            ms(o.start_lag.p50),
            ms(o.start_lag.p99),
            ms(o.start_lag.max)
        );
    }

    let problems: Vec<String> = [base_closed, gw_closed, base_open, gw_open]
        .into_iter()
        .flat_map(|o| o.problems)
        .collect();
    for p in &problems {
        eprintln!("FAIL: {p}");
    }
    Ok(problems.is_empty())
}

/// A fresh, empty database on the PostgreSQL server `server` names; returns its URL.
async fn fresh_postgres_database(server: &str) -> anyhow::Result<String> {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let db = format!("bench_{}", ulid::Ulid::new()).to_lowercase();
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let mut url = url::Url::parse(server)?;
    url.set_path(&format!("/{db}"));
    Ok(url.to_string())
}

/// plugins/'s slack-notify component (built by `./scripts/test` or
/// `cargo build --release --target wasm32-wasip2` in plugins/).
fn slack_notify_wasm() -> anyhow::Result<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugins/target/wasm32-wasip2/release/slack_notify.wasm");
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run `cargo build --release --target wasm32-wasip2` in plugins/",
        path.display()
    );
    Ok(path)
}
