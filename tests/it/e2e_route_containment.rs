//! Routing that one event cannot stop: a body nested past the parsers' limit, a runaway mapping
//! whose gateway is killed, an evaluator child that must not outlive the gateway (and starts with
//! it, when a route needs one), that is killed mid-batch, or that a busy machine keeps from the
//! CPU.

use crate::utils::binary::{self, Process};
use crate::utils::{Gateway, Receiver, post_json, store};
use std::time::{Duration, Instant};

const PASSTHROUGH: &str = r#"
[sources.s]
kind = "generic"

[targets.t]
url = "RECEIVER"

[[routes]]
name = "r"
source = "s"
targets = ["t"]
"#;

/// 10,000 nested arrays once overflowed a tokio worker's stack while routing (no jq involved),
/// killing the gateway on every restart. Refused at ingress or failed in routing with the reason,
/// such a body never stops the events behind it.
#[tokio::test]
async fn a_body_nested_past_the_limit_never_stops_routing() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&PASSTHROUGH.replace("RECEIVER", &receiver.url)).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, answer) = post_json(&gw.hook("s"), deep, &[]).await;
    assert!(status == 400 || status == 202, "{status} {answer}");
    let (status, _) = post_json(&gw.hook("s"), r#"{"after": true}"#, &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(seen[0].json(), serde_json::json!({"after": true}));
    gw.wait_routed().await;
    if status == 202 {
        let errors = gw
            .db()
            .texts("SELECT last_error FROM deliveries WHERE status = 'failed'")
            .await;
        assert!(
            errors
                .iter()
                .all(|e| e.contains("nests deeper than 128 levels")),
            "{errors:?}"
        );
    }
}

/// The evaluator child runs a mapping that never ends; the gateway is killed with -9. The child
/// must not spin on alone: it notices its parent is gone and exits within about a second.
#[tokio::test]
async fn the_evaluator_child_dies_with_the_gateway() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let route = "jq = 'last(range(1e18))'\n\n[jq]\ntimeout_ms = 600000\n";
    let gateway = serve_route(&dir, &receiver, route).await;
    let gateway_pid = gateway.child.id();
    let (status, _) = post_json(&format!("{}/hooks/s", gateway.url), "{}", &[]).await;
    assert_eq!(status, 202);
    let started = Instant::now();
    let child = loop {
        if let Some(pid) = route_worker_of(gateway_pid) {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no route worker started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    gateway.kill9();
    let killed = Instant::now();
    while alive(child) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "route worker {child} still runs {:?} after the gateway was killed",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The children start with the gateway, not at its first event: the first events after a start
/// do not wait for a child to start and compile the mappings (the load bench's first 100 ms at
/// 6,000 events/s: p99 6–7 ms against 21–140 ms when they started at the first batch).
#[tokio::test]
async fn evaluator_children_start_before_the_first_event() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = serve_route(&dir, &receiver, "jq = '{started: true}'\n").await;
    let started = Instant::now();
    while route_worker_of(gateway.child.id()).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no route worker started before any event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = post_json(&format!("{}/hooks/s", gateway.url), "{}", &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(seen[0].json(), serde_json::json!({"started": true}));
}

/// Filters that compare paths with literals, event types named by a path and projections are
/// evaluated in the gateway: a source routed only by them starts no evaluator child at all, and
/// still names, filters and maps its events as jq would.
#[tokio::test]
async fn predicates_and_projections_start_no_evaluator_child() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store::url_for(dir.path()).await;
    let config = dir.path().join("hookgate.toml");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"{store}\"\n\n\
         [sources.s]\nkind = \"generic\"\nevent_type = \".body.state\"\n\n\
         [targets.t]\nurl = \"{}\"\n\n\
         [[routes]]\nname = \"r\"\nsource = \"s\"\ntargets = [\"t\"]\nevents = [\"FINISHED\"]\n\
         filter = '.body.stack.id != \"sandbox\" and (.body.n == 1 or .body.n == 2)'\n\
         map = {{ identifier = \".body.stack.id\", properties = {{ n = \".body.n\" }} }}\n",
        receiver.url
    );
    std::fs::write(&config, toml).expect("write config");
    let gateway = Process::serve(&config);
    let bodies = [
        r#"{"state": "FINISHED", "stack": {"id": "prod"}, "n": 1}"#,
        r#"{"state": "QUEUED", "stack": {"id": "prod"}, "n": 1}"#,
        r#"{"state": "FINISHED", "stack": {"id": "sandbox"}, "n": 1}"#,
        r#"{"state": "FINISHED", "stack": {"id": "prod"}, "n": 3}"#,
        r#"{"state": "FINISHED", "stack": {"id": "edge"}, "n": 2.0}"#,
    ];
    for body in bodies {
        let (status, _) = post_json(&format!("{}/hooks/s", gateway.url), body, &[]).await;
        assert_eq!(status, 202);
    }
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got: Vec<serde_json::Value> = receiver.seen().iter().map(|r| r.json()).collect();
    got.sort_by_key(|v| v.to_string());
    assert_eq!(seen.len(), 2);
    assert_eq!(
        got,
        [
            serde_json::json!({"identifier": "edge", "properties": {"n": 2.0}}),
            serde_json::json!({"identifier": "prod", "properties": {"n": 1}}),
        ]
    );
    assert_eq!(route_workers_of(gateway.child.id()), Vec::<u32>::new());
}

/// A gateway process on a store of its own in `dir`, its one route `r` from source `s` to the
/// receiver running `route` (the route's TOML after its targets: a transform, sections after it).
async fn serve_route(dir: &tempfile::TempDir, receiver: &Receiver, route: &str) -> Process {
    let store = store::url_for(dir.path()).await;
    let config = binary::write_serve_config(dir.path(), &store, &receiver.url, "", route);
    Process::serve(&config)
}

/// The pid of a `__route-worker` whose parent is `parent`, from /proc.
fn route_worker_of(parent: u32) -> Option<u32> {
    route_workers_of(parent).first().copied()
}

/// The pids of the `__route-worker`s whose parent is `parent` (one per core), from /proc.
fn route_workers_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // Field 4 of stat, after the parenthesised command name, is the parent's pid.
            let ppid: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let is_worker = cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == b"__route-worker");
            (is_worker && ppid == parent).then_some(pid)
        })
        .collect()
}

/// Whether `pid` still runs (a zombie, reaped by nobody yet, counts as ended).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Evaluator children are killed with -9 from outside, several times, while 2,000 events are
/// routed: an event whose child died under it is evaluated again in a fresh child, so every
/// acknowledged event is delivered and none is failed for a crash that was not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluator_children_killed_mid_batch_lose_and_fail_nothing() {
    const EVENTS: usize = 2_000;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store_url = store::url_for(dir.path()).await;
    let config = binary::write_serve_config(
        dir.path(),
        &store_url,
        &receiver.url,
        "",
        // Not a projection (those run in the gateway): the children must be there to be killed.
        "jq = '{n: .body.n, parity: (.body.n % 2)}'",
    );
    let gateway = Process::serve(&config);
    let gateway_pid = gateway.child.id();
    let client = crate::utils::client();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, url) = (client.clone(), format!("{}/hooks/s", gateway.url));
        senders.spawn(async move {
            let mut acked = Vec::new();
            for n in (worker..EVENTS).step_by(16) {
                let resp = client
                    .post(&url)
                    .body(format!(r#"{{"n":{n}}}"#))
                    .send()
                    .await
                    .expect("send");
                if resp.status().as_u16() == 202 {
                    acked.push(n);
                }
            }
            acked
        });
    }
    let mut kills = 0;
    while kills < 5 && !senders.is_empty() {
        if let Some(pid) = route_worker_of(gateway_pid) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            kills += 1;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        if senders.len() < 16 {
            break;
        }
    }
    let mut acked = Vec::new();
    while let Some(joined) = senders.join_next().await {
        acked.extend(joined.expect("sender"));
    }
    assert!(kills >= 1, "no route worker was killed");
    assert_eq!(acked.len(), EVENTS, "every event is acknowledged");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (unique, duplicates) = loop {
        let seen = receiver.seen();
        let mut ns: Vec<i64> = seen.iter().filter_map(|r| r.json()["n"].as_i64()).collect();
        let total = ns.len();
        ns.sort_unstable();
        ns.dedup();
        if ns.len() == EVENTS || Instant::now() > deadline {
            break (ns.len(), total - ns.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("{kills} route workers killed; {duplicates} duplicate deliveries");
    assert_eq!(unique, EVENTS, "every acknowledged event is delivered");
    let failed = crate::utils::store::Db::new(&store_url)
        .count("SELECT COUNT(*) FROM deliveries WHERE status <> 'succeeded'")
        .await;
    assert_eq!(
        failed, 0,
        "no delivery failed for a crash that was not its own"
    );
}

/// A machine too busy to run the evaluator: its children get a tenth of the time (all stopped
/// for 180 ms in every 200, fresh ones too), so a mapping of ~0.1 s of CPU takes about a second.
/// The deadline (0.4 s) bounds the CPU a mapping spends on an event, not the time it waited for a
/// core: the events wait and are delivered, none failed for time its mapping never ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starved_evaluator_fails_no_event_for_time_it_did_not_run() {
    const EVENTS: i64 = 3;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let route = "jq = '(reduce range(0; 100000) as $i (0; . + $i)) as $sum | {n: .body.n}'\n\n\
                 [jq]\ntimeout_ms = 400\n";
    let gateway = serve_route(&dir, &receiver, route).await;
    let gateway_pid = gateway.child.id();
    let hook = format!("{}/hooks/s", gateway.url);
    assert_eq!(post_json(&hook, r#"{"n": 0}"#, &[]).await.0, 202);
    receiver.wait_for(1, Duration::from_secs(20)).await;

    let signal = |sig: &str, pid: u32| {
        let _ = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status();
    };
    let starver = tokio::task::spawn_blocking(move || {
        let until = Instant::now() + Duration::from_secs(EVENTS as u64 + 1);
        let mut stopped = 0;
        while Instant::now() < until {
            let workers = route_workers_of(gateway_pid);
            for worker in &workers {
                signal("-STOP", *worker);
            }
            stopped += usize::from(!workers.is_empty());
            std::thread::sleep(Duration::from_millis(180));
            for worker in &workers {
                signal("-CONT", *worker);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stopped
    });
    for n in 1..=EVENTS {
        assert_eq!(
            post_json(&hook, format!(r#"{{"n": {n}}}"#), &[]).await.0,
            202
        );
    }
    let stopped = starver.await.expect("starver");
    assert!(
        stopped >= 10,
        "the route worker was stopped {stopped} times"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.seen().len() < 1 + EVENTS as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = store::Db::new(store::url_for(dir.path()).await)
        .texts("SELECT detail FROM route_results WHERE outcome = 'failed'")
        .await;
    assert_eq!(failed, Vec::<String>::new(), "routes failed");
    let mut ns: Vec<i64> = receiver
        .seen()
        .iter()
        .filter_map(|r| r.json()["n"].as_i64())
        .collect();
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(
        ns,
        (0..=EVENTS).collect::<Vec<_>>(),
        "every event delivered"
    );
}

/// 240 acknowledged events of ~1 MB pile up behind a stalled route and are routed in one batch:
/// batches once went to the evaluator as one frame, which passed its cap, and the first event of
/// each batch was failed for good ("route evaluation crashed: frame too large"). Requests are now
/// bounded by bytes: every event is delivered and none fails for its neighbours' size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_large_events_is_routed_without_failing_any() {
    const EVENTS: usize = 240;
    let receiver = Receiver::start().await;
    let config = format!(
        r#"
[sources.s]
kind = "generic"

[targets.t]
url = "{}"

[[routes]]
name = "r"
source = "s"
jq = 'if .body.slow then last(range(1e18)) else {{n: .body.n, size: (.body.pad | length)}} end'
targets = ["t"]

[jq]
timeout_ms = 8000
"#,
        receiver.url
    );
    let gw = Gateway::start_with_server(&config, "max_body_bytes = 1200000").await;
    // The slow event holds the route loop (past its deadline, then again alone) while the large
    // ones are stored behind it, so they are read in one batch.
    let (status, _) = post_json(&gw.hook("s"), r#"{"slow": true}"#, &[]).await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pad = "x".repeat(1_000_000);
    let client = crate::utils::client();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (client, url, pad) = (client.clone(), gw.hook("s"), pad.clone());
        senders.spawn(async move {
            for n in (worker..EVENTS).step_by(4) {
                let body = format!(r#"{{"n":{n},"pad":"{pad}"}}"#);
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status().as_u16(), 202);
            }
        });
    }
    while let Some(joined) = senders.join_next().await {
        joined.expect("sender");
    }
    let seen = receiver.wait_for(EVENTS, Duration::from_secs(90)).await;
    let mut ns: Vec<i64> = seen.iter().filter_map(|r| r.json()["n"].as_i64()).collect();
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns.len(), EVENTS);
    gw.wait_routed().await;
    let failed = gw
        .db()
        .texts("SELECT last_error FROM deliveries WHERE status = 'failed'")
        .await;
    // Only the slow event's route fails, for its own deadline.
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("deadline"), "{failed:?}");
}
