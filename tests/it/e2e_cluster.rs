//! Several gateway instances on one PostgreSQL: what one instance is told (a plugin upload or
//! delete, a config reload, a target switched off) reaches the others, and an instance killed
//! with SIGKILL under load loses nothing. These run on PostgreSQL on every pass.

use crate::utils::admin::{ADMIN, TOKEN, admin, upload_plugin};
use crate::utils::binary::Process;
use crate::utils::store::fresh_postgres_database;
use crate::utils::wasm::guest_bytes;
use crate::utils::{Gateway, Receiver, client, post_json};
use reqwest::Method;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Route `r` runs plugin `p` (the echo guest: the event's body back); route `m` maps to
/// `{v: version}`. Both to the receiver, told apart by a header.
fn config(receiver: &Receiver, version: u32) -> String {
    format!(
        r#"
{ADMIN}
[plugins]
dir = "plugins"

[sources.s]
kind = "generic"

[targets.plugin]
url = "{url}"
headers = {{ "X-Route" = "plugin" }}

[targets.mapped]
url = "{url}"
headers = {{ "X-Route" = "mapped" }}

[[routes]]
name = "r"
source = "s"
wasm = {{ plugin = "p", config = {{ quiet = true }} }}
targets = ["plugin"]

[[routes]]
name = "m"
source = "s"
jq = '{{v: {version}, n: .body.n}}'
targets = ["mapped"]
"#,
        url = receiver.url
    )
}

/// The sha256 of each plugin `gw` runs.
async fn plugins_of(gw: &Gateway) -> HashMap<String, String> {
    let (status, body) = admin(gw, Method::GET, "/admin/v1/plugins", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("sha256"))
        })
        .collect()
}

/// Polls `check` every 50 ms until it holds, or fails with `what` after 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn plugin_uploads_reloads_and_target_switches_reach_every_instance() {
    let receiver = Receiver::start().await;
    let store = fresh_postgres_database("cluster").await;
    let a = Gateway::start_sharing(&config(&receiver, 1), &store).await;
    let b = Gateway::start_sharing(&config(&receiver, 1), &store).await;

    // An event reaches b before any instance has the plugin: its plugin route waits.
    post_json(&b.hook("s"), r#"{"n":1}"#, &[]).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    // Uploaded to a only; b installs the same bytes itself, and the waiting route is delivered.
    let (status, body) = upload_plugin(&a, "p", guest_bytes("echo")).await;
    assert_eq!(status, 200, "{body}");
    let sha = body["sha256"].as_str().expect("sha256").to_string();
    eventually("b runs the plugin uploaded to a", || async {
        plugins_of(&b).await.get("p") == Some(&sha)
    })
    .await;
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    let from_plugin: Vec<_> = seen
        .iter()
        .filter(|r| r.header("x-route") == "plugin")
        .collect();
    assert_eq!(from_plugin.len(), 1, "the waiting route ran once");
    assert_eq!(from_plugin[0].json()["n"], 1);
    // b runs it itself for its next event.
    receiver.clear();
    post_json(&b.hook("s"), r#"{"n":2}"#, &[]).await;
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        seen.iter()
            .any(|r| r.header("x-route") == "plugin" && r.json()["n"] == 2)
    );

    // An instance started later gets the plugin at start.
    let c = Gateway::start_sharing(&config(&receiver, 1), &store).await;
    assert_eq!(plugins_of(&c).await.get("p"), Some(&sha));
    let (_, body) = admin(&c, Method::GET, "/admin/v1/instances", Some(TOKEN)).await;
    let live = body["data"].as_array().expect("data");
    assert_eq!(live.len(), 3, "a, b and c beat: {body}");
    assert_eq!(live.iter().filter(|i| i["this"] == true).count(), 1);
    assert_eq!(live[2]["this"], true, "oldest first; c is the newest");

    // A reload asked of a reaches b and c: each re-reads its own (here: updated) file.
    for gw in [&a, &b, &c] {
        gw.rewrite_config(&config(&receiver, 2));
    }
    let (status, body) = admin(&a, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    for gw in [&b, &c] {
        eventually("the other instances reload", || async {
            receiver.clear();
            post_json(&gw.hook("s"), r#"{"n":3}"#, &[]).await;
            let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
            seen.iter()
                .any(|r| r.header("x-route") == "mapped" && r.json()["v"] == 2)
        })
        .await;
    }

    // A target switched off on a is off on b.
    let (status, _) = admin(
        &a,
        Method::POST,
        "/admin/v1/targets/mapped/disable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    eventually("b sees the target disabled", || async {
        let (_, body) = admin(&b, Method::GET, "/admin/v1/targets", Some(TOKEN)).await;
        body["data"].as_array().is_some_and(|ts| {
            ts.iter()
                .any(|t| t["name"] == "mapped" && t["disabled"] == true)
        })
    })
    .await;

    // A delete on a (once no route uses the plugin) unloads it everywhere.
    let without_plugin = config(&receiver, 2).replace(
        "wasm = { plugin = \"p\", config = { quiet = true } }",
        "jq = '.body'",
    );
    for gw in [&a, &b, &c] {
        gw.rewrite_config(&without_plugin);
    }
    let (status, body) = admin(&a, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin(&a, Method::DELETE, "/admin/v1/plugins/p", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    for gw in [&b, &c] {
        eventually("the other instances unload the deleted plugin", || async {
            plugins_of(gw).await.is_empty()
        })
        .await;
    }
    // ... and it stays deleted for an instance that starts afterwards with the file still in its
    // folder (it was away when the delete happened).
    let d_dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(d_dir.path().join("plugins")).expect("mkdir");
    std::fs::write(d_dir.path().join("plugins/p.wasm"), guest_bytes("echo")).expect("write");
    let d = Gateway::start_sharing_in(&without_plugin, d_dir, &store).await;
    eventually(
        "a late instance drops a plugin deleted while it was away",
        || async { plugins_of(&d).await.is_empty() },
    )
    .await;
    assert!(plugins_of(&a).await.is_empty(), "nothing shared it again");
}

const EVENTS: usize = 5_000;

/// Three `hookgate serve` processes on one database; producers spread 2,000 events across them
/// (moving to the next instance when one does not answer, as a load balancer does), and one
/// instance is killed with SIGKILL half-way. Every acknowledged event is delivered; duplicates
/// (at least once) are counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_nothing_acknowledged_is_lost() {
    let receiver = Receiver::start().await;
    // A slightly slow receiver keeps deliveries in flight (leased) at the moment of the kill.
    receiver.default_reply(crate::utils::Reply::status(200).delay(Duration::from_millis(2)));
    let store = fresh_postgres_database("kill").await;
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut instances: Vec<Option<Process>> = Vec::new();
    for dir in &dirs {
        let file = crate::utils::binary::write_serve_config(
            dir.path(),
            &store,
            &receiver.url,
            "concurrency = 8\nretry = { max_attempts = 50, initial = \"50ms\", max = \"500ms\" }",
            "jq = '{n: .body.n}'",
        );
        instances.push(Some(Process::serve(&file)));
    }
    let urls: Vec<String> = instances
        .iter()
        .flatten()
        .map(|p| format!("{}/hooks/s", p.url))
        .collect();

    let started = Instant::now();
    let acked = Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let failovers = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, urls, acked, sent, failovers) = (
            client(),
            urls.clone(),
            acked.clone(),
            sent.clone(),
            failovers.clone(),
        );
        senders.spawn(async move {
            for n in (worker..EVENTS).step_by(16) {
                for attempt in 0..urls.len() {
                    let url = &urls[(n + attempt) % urls.len()];
                    let Ok(resp) = client
                        .post(url)
                        .body(format!(r#"{{"n":{n}}}"#))
                        .send()
                        .await
                    else {
                        failovers.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if resp.status().as_u16() != 202 {
                        failovers.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let json: serde_json::Value = resp.json().await.unwrap_or_default();
                    if let Some(id) = json["id"].as_str() {
                        acked.lock().expect("lock").insert(id.to_string(), n);
                    }
                    break;
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while sent.load(Ordering::SeqCst) < EVENTS / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let delivered_at_kill = receiver.seen().len();
    if let Some(victim) = instances[0].take() {
        victim.kill9();
    }
    let killed_at = Instant::now();
    while senders.join_next().await.is_some() {}
    let acked = acked.lock().expect("lock").clone();
    assert_eq!(
        acked.len(),
        EVENTS,
        "the producers got every event acknowledged somewhere"
    );

    // The survivors take over the dead instance's leases once its heartbeat is stale.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen: HashSet<String> = receiver
            .seen()
            .iter()
            .map(|r| r.header("x-hookgate-event").to_string())
            .collect();
        let missing: Vec<_> = acked.keys().filter(|id| !seen.contains(*id)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events never delivered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_delivered = started.elapsed();
    let took_over = killed_at.elapsed();
    // Events the dead instance stored without acknowledging are owed too: wait for the store to
    // have nothing left to route or deliver.
    let db = crate::utils::store::Db::new(&store);
    let owed = format!(
        "SELECT ({}) + (SELECT COUNT(*) FROM deliveries WHERE status <> 'succeeded')",
        db.unrouted_sql()
    );
    while db.count(&owed).await > 0 {
        assert!(Instant::now() < deadline, "work left in the store");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let seen = receiver.seen();
    let mut per_delivery: HashMap<&str, usize> = HashMap::new();
    // Events an instance committed but died before acknowledging: the producer sent them again
    // elsewhere, so they arrive twice under two event ids (at least once, as promised).
    let mut unacknowledged = HashSet::new();
    let acked_ns: HashSet<usize> = acked.values().copied().collect();
    for r in &seen {
        *per_delivery
            .entry(r.header("x-hookgate-delivery"))
            .or_default() += 1;
        let n = r.json()["n"].as_u64().expect("n") as usize;
        match acked.get(r.header("x-hookgate-event")) {
            Some(want) => assert_eq!(n, *want, "each delivery carries its own event's mapping"),
            None => {
                assert!(acked_ns.contains(&n), "event {n} came from nowhere");
                unacknowledged.insert(r.header("x-hookgate-event"));
            }
        }
    }
    let duplicates: usize = per_delivery.values().map(|n| n - 1).sum();
    let pending = db
        .count("SELECT COUNT(*) FROM deliveries WHERE status <> 'succeeded'")
        .await;
    eprintln!(
        "3 instances, 1 killed at {delivered_at_kill} deliveries: {} events acknowledged, {} \
         distinct deliveries ({} of events stored but never acknowledged: the producer sent \
         them again), {duplicates} duplicate arrivals (at least once), {} producer failovers; \
         all delivered {:.1} s after the start, {:.1} s after the kill",
        acked.len(),
        per_delivery.len(),
        unacknowledged.len(),
        failovers.load(Ordering::Relaxed),
        all_delivered.as_secs_f64(),
        took_over.as_secs_f64(),
    );
    assert_eq!(
        per_delivery.len(),
        EVENTS + unacknowledged.len(),
        "one delivery per stored event, no more"
    );
    assert_eq!(pending, 0, "every delivery recorded succeeded");
}

/// `hookgate migrate` creates the schema before any instance starts (and is a no-op after), prints
/// the store without its password, and names the problem when the database cannot be reached.
#[tokio::test]
async fn migrate_creates_the_schema_once_and_explains_failures() {
    let store = fresh_postgres_database("migrate_cli").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hookgate.toml");
    let with_password = store.replacen("postgres@", "postgres:s3cret-pw@", 1);
    let write = |url: &str| {
        std::fs::write(
            &file,
            format!("[store]\nurl = \"{url}\"\n\n[sources.s]\nkind = \"generic\"\n"),
        )
        .expect("write config")
    };
    let migrate = |file: std::path::PathBuf| async move {
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(crate::utils::binary::BIN)
                .args(["migrate", "--config"])
                .arg(file)
                .output()
                .expect("run hookgate")
        })
        .await
        .expect("join");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    // The test server trusts every connection, so a password is accepted and ignored.
    write(&with_password);
    for _ in 0..2 {
        let (code, stdout, stderr) = migrate(file.clone()).await;
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("store migrated"), "{stdout}");
        assert!(
            !stdout.contains("s3cret-pw") && !stderr.contains("s3cret-pw"),
            "the password is never printed: {stdout}{stderr}"
        );
    }
    let db = crate::utils::store::Db::new(&store);
    // One row per file in migrations/postgres/.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("migrations folder")
        .count() as i64;
    assert_eq!(
        db.count("SELECT COUNT(*) FROM schema_migrations").await,
        files
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM deliveries").await, 0);

    // Nothing listens on port 1.
    write("postgres://hookgate:s3cret-pw@127.0.0.1:1/hookgate");
    let (code, stdout, stderr) = migrate(file.clone()).await;
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("store unavailable") || stderr.contains("connect"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}

/// The gateway end to end on a PostgreSQL it reaches over verified TLS.
#[tokio::test]
async fn a_gateway_runs_on_postgres_over_tls() {
    let receiver = Receiver::start().await;
    let store = fresh_postgres_database("tls_gw").await;
    let ca = crate::utils::store::postgres_ca();
    let url = format!("{store}?sslmode=verify-full&sslrootcert={ca}");
    let gw = Gateway::start_sharing(&config(&receiver, 1), &url).await;
    post_json(&gw.hook("s"), r#"{"n":7}"#, &[]).await;
    let seen = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(seen[0].json(), serde_json::json!({"v": 1, "n": 7}));
}
