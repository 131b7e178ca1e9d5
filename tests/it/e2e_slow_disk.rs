//! A slow disk: the gateway's writes held back by the kernel (cgroup v1's blkio throttle, a few
//! writes a second), so that every commit waits on a slow fsync. Ingress answers every request,
//! later and in bigger group commits; every event it acknowledged is delivered, once per delivery
//! id; `/metrics` shows the commits' time. Like the full-disk test (which needs `mount`), it
//! needs root, and fails loudly rather than skip what it checks.

use crate::utils::binary::{Process, write_serve_config};
use crate::utils::metrics::sample;
use crate::utils::{Receiver, client};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cgroup v1 blkio hierarchy.
const BLKIO: &str = "/sys/fs/cgroup/blkio";

/// A process's writes to one block device limited to `iops` a second, lifted when dropped.
struct Throttle {
    group: PathBuf,
    pid: u32,
}

impl Throttle {
    /// Moves `pid` (all its threads) into a cgroup of its own that limits its writes to the
    /// device holding `on` to `iops` a second.
    fn apply(pid: u32, on: &Path, iops: u32) -> Self {
        let dev = std::fs::metadata(on)
            .expect("stat the store's folder")
            .dev();
        let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
        let group = Path::new(BLKIO).join(format!("hookgate-slow-disk-{pid}"));
        std::fs::create_dir_all(&group).unwrap_or_else(|e| {
            panic!(
                "cannot create {} (this test needs root and cgroup v1's blkio controller): {e}",
                group.display()
            )
        });
        let limit = format!("{major}:{minor} {iops}");
        std::fs::write(group.join("blkio.throttle.write_iops_device"), &limit).unwrap_or_else(
            |e| {
                panic!(
                    "cannot limit writes to {limit} (the store's folder {} must be on a block device): {e}",
                    on.display()
                )
            },
        );
        std::fs::write(group.join("cgroup.procs"), pid.to_string()).expect("move the gateway");
        Self { group, pid }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        // Back to the root group if still alive, so the group can go.
        let _ = std::fs::write(Path::new(BLKIO).join("cgroup.procs"), self.pid.to_string());
        for _ in 0..50 {
            if std::fs::remove_dir(&self.group).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Commits so far and how many took longer than 50 ms.
async fn commits(gw: &Process) -> (u64, u64) {
    let text = gw.metrics().await;
    let count: u64 = sample(&text, "hookgate_store_commit_seconds_count").expect("commit count");
    let fast: u64 =
        sample(&text, r#"hookgate_store_commit_seconds_bucket{le="0.05"}"#).expect("commit bucket");
    (count, count - fast)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_slows_ingress_down_and_loses_nothing() {
    const EVENTS: usize = 300;
    const SENDERS: usize = 30;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("gw.db").display());
    let config = write_serve_config(dir.path(), &store, &receiver.url, "", "");
    let gw = Process::serve(&config);
    let (before, _) = commits(&gw).await;
    let throttle = Throttle::apply(gw.child.id(), dir.path(), 10);

    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..SENDERS {
        let url = format!("{}/hooks/s", gw.url);
        senders.spawn(async move {
            let mut answers = Vec::new();
            for n in (worker..EVENTS).step_by(SENDERS) {
                let resp = client()
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"n": {n}}}"#))
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("event {n} got no answer: {e}"));
                let status = resp.status().as_u16();
                let id = resp
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(String::from));
                answers.push((n, status, id));
            }
            answers
        });
    }
    let mut acked = HashSet::new();
    while let Some(answers) = senders.join_next().await {
        for (n, status, id) in answers.expect("sender") {
            assert_eq!(status, 202, "event {n}");
            acked.insert(id.expect("an event id"));
        }
    }
    let took = started.elapsed();
    let (after, slow) = commits(&gw).await;
    let during = after - before;
    // The throttle took: without it these commits take about a millisecond each.
    assert!(
        slow * 4 >= during,
        "{slow} of {during} commits took over 50 ms: the disk was not slow"
    );
    // Slow commits gather the requests that wait meanwhile (each commit also carries routings and
    // attempts, so fewer events than that).
    assert!(
        during * 3 <= EVENTS as u64 * 2,
        "{during} commits for {EVENTS} events: the slow disk did not gather them"
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let per_event = loop {
        let mut per_event: HashMap<String, HashSet<String>> = HashMap::new();
        for r in receiver.seen() {
            per_event
                .entry(r.header("x-hookgate-event").to_string())
                .or_default()
                .insert(r.header("x-hookgate-delivery").to_string());
        }
        if acked.iter().all(|id| per_event.contains_key(id)) {
            break per_event;
        }
        let missing = acked
            .iter()
            .filter(|id| !per_event.contains_key(*id))
            .count();
        assert!(
            Instant::now() < deadline,
            "{missing} of {EVENTS} acknowledged events not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let renamed = per_event.values().filter(|ids| ids.len() > 1).count();
    assert_eq!(
        renamed, 0,
        "events delivered under more than one delivery id"
    );
    eprintln!(
        "slow disk: {EVENTS} events acknowledged in {took:?}, {during} commits ({slow} over 50 ms)"
    );
    drop(throttle);
}
