//! Load generation and what came of it: the events, closed- and open-loop senders, and the
//! statistics the report prints. Nothing here knows what it is sending to.

use crate::peers::SOURCE_SECRET;
use crate::utils::receiver::Recorded;
use axum::body::Bytes;
use axum::http::StatusCode;
use hookgate::testing::{Algorithm, Encoding};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Most requests an open-loop run keeps in flight; beyond it sends wait (and show as start lag).
pub const OPEN_LOOP_MAX_IN_FLIGHT: usize = 1024;

/// One producer request: a ~1 KB Spacelift-like run-state event and its signature header.
#[derive(Clone)]
pub struct Event {
    pub body: Bytes,
    pub signature: String,
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

pub fn make_events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|seq| {
            let body = event_body(seq);
            let mac =
                hookgate::testing::hmac(Algorithm::Sha256, SOURCE_SECRET.as_bytes(), &[&body]);
            let signature = format!("sha256={}", Encoding::Hex.encode(&mac));
            Event { body, signature }
        })
        .collect()
}

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

/// When each `seq` first arrived, and how many arrivals were repeats or unreadable.
pub struct Arrivals {
    pub at: Vec<Option<Instant>>,
    pub unique: usize,
    pub duplicates: usize,
    pub unreadable: usize,
}

pub fn arrivals(n: usize, seen: &[Recorded]) -> Arrivals {
    let mut a = Arrivals {
        at: vec![None; n],
        unique: 0,
        duplicates: 0,
        unreadable: 0,
    };
    for r in seen {
        let seq = serde_json::from_slice::<SeqOnly>(&r.body)
            .ok()
            .map(|s| s.seq)
            .or_else(|| seq_marker(&r.body));
        match seq.and_then(|s| a.at.get_mut(s)) {
            Some(slot @ None) => {
                *slot = Some(r.at);
                a.unique += 1;
            }
            Some(Some(_)) => a.duplicates += 1,
            None => a.unreadable += 1,
        }
    }
    a
}

/// What the senders saw: per seq, when its send started and how long the answer took, plus
/// refusals.
pub struct Sent {
    /// Latency origin per seq: when its send started.
    pub origin: Vec<Option<Instant>>,
    /// Request → response latency, for sends that got the expected status.
    pub answered: Vec<Duration>,
    pub first: Instant,
    pub last_answer: Instant,
    pub refused: usize,
    pub first_error: Option<String>,
    /// Open loop: per send, how far its start fell behind its schedule.
    pub start_lag: Vec<Duration>,
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
pub async fn closed_loop(
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
pub async fn open_loop(
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

#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub events: usize,
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn stats(mut latencies: Vec<Duration>, span: Duration) -> Stats {
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

/// Events sent in one window of a run, and how long they took to arrive.
pub struct Window {
    /// Start of the window, from the first send.
    pub from: Duration,
    /// Events whose send started in the window, per second.
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// The run cut into windows of `width` by send start (events not delivered are left out).
pub fn timeline(
    origin: &[Option<Instant>],
    arrived: &[Option<Instant>],
    first: Instant,
    width: Duration,
) -> Vec<Window> {
    let mut windows: Vec<Vec<Duration>> = Vec::new();
    for (o, a) in origin.iter().zip(arrived) {
        let (Some(o), Some(a)) = (o, a) else { continue };
        let i = (o.saturating_duration_since(first).as_secs_f64() / width.as_secs_f64()) as usize;
        if windows.len() <= i {
            windows.resize_with(i + 1, Vec::new);
        }
        windows[i].push(a.saturating_duration_since(*o));
    }
    windows
        .into_iter()
        .enumerate()
        .map(|(i, mut latencies)| {
            latencies.sort_unstable();
            Window {
                from: width * i as u32,
                per_sec: latencies.len() as f64 / width.as_secs_f64(),
                p50: percentile(&latencies, 0.50),
                p99: percentile(&latencies, 0.99),
            }
        })
        .collect()
}
