//! What the load is sent to besides the receiver itself: the real `hookgate serve` binary (this
//! build's, or another given with `--compare`), and an nginx relay when nginx is installed. Each
//! runs as its own process, so its CPU time can be read from /proc and set against what it moved.

use crate::utils::binary::Process;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SOURCE_SECRET: &str = "bench-secret";
const TARGET_SECRET: &str = "bench-target";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

/// How a gateway under test is configured.
pub struct GatewaySpec<'a> {
    pub binary: &'a Path,
    pub store: &'a str,
    pub sync: &'a str,
    pub target_concurrency: usize,
    pub transform: &'a str,
    pub plugin: Option<&'a Path>,
    /// Open the admin listener (and its console).
    pub admin: bool,
}

/// A gateway's group commits (`hookgate_store_commit_seconds`): how many, and how many were slow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commits {
    pub count: u64,
    pub over_25ms: u64,
    pub over_100ms: u64,
}

impl std::ops::Add for Commits {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            count: self.count + o.count,
            over_25ms: self.over_25ms + o.over_25ms,
            over_100ms: self.over_100ms + o.over_100ms,
        }
    }
}

/// A running `hookgate serve`, in a folder of its own.
pub struct Gateway {
    pub hook: String,
    pub process: Process,
    dir: Option<tempfile::TempDir>,
}

/// Folders of gateways that have stopped, removed only by [`remove_spent_folders`]: removing a
/// store of hundreds of MB frees its blocks, and on a filesystem mounted with `discard` the disk
/// then trims them for seconds, during which every fsync of the next scenario waits (open loops
/// measured 300 ms stalls from it, seen as the benchmark's own thread in `blkdev_issue_discard`).
static SPENT: std::sync::Mutex<Vec<tempfile::TempDir>> = std::sync::Mutex::new(Vec::new());

impl Drop for Gateway {
    fn drop(&mut self) {
        if let (Some(dir), Ok(mut spent)) = (self.dir.take(), SPENT.lock()) {
            spent.push(dir);
        }
    }
}

/// Removes the folders of every gateway stopped so far: call once the measuring is done.
pub fn remove_spent_folders() {
    if let Ok(mut spent) = SPENT.lock() {
        spent.clear();
    }
}

impl Gateway {
    pub fn start(spec: &GatewaySpec, receiver_url: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = match spec.store {
            "" => format!("sqlite://{}", dir.path().join("bench.db").display()),
            url => url.to_string(),
        };
        let sync = match store.starts_with("sqlite:") {
            true => format!("sync = \"{}\"", spec.sync),
            false => String::new(),
        };
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins)?;
        if let Some(wasm) = spec.plugin {
            std::fs::copy(wasm, plugins.join("slack-notify.wasm"))?;
        }
        let admin = match spec.admin {
            true => format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n"),
            false => String::new(),
        };
        let text = format!(
            r#"[server]
listen = "127.0.0.1:0"
{admin}

[store]
url = "{store}"
{sync}

[sources.bench]
kind = "generic"
verify = {{ header = "X-Signature", algorithm = "sha256", prefix = "sha256=", secret = "{SOURCE_SECRET}" }}

[targets.receiver]
url = "{receiver_url}"
sign = {{ scheme = "github", secret = "{TARGET_SECRET}" }}
concurrency = {concurrency}

[plugins]
dir = "{plugins}"

[[routes]]
name = "bench"
source = "bench"
{transform}
targets = ["receiver"]
"#,
            plugins = plugins.display(),
            concurrency = spec.target_concurrency,
            transform = spec.transform,
        );
        let file = dir.path().join("bench.toml");
        std::fs::write(&file, text)?;
        let process = Process::serve_binary(spec.binary, &file, &[]);
        Ok(Self {
            hook: format!("{}/hooks/bench", process.url),
            process,
            dir: Some(dir),
        })
    }

    /// The store's group commits so far, from `/metrics`: `None` for a build without the metric.
    pub async fn commits(&self, client: &reqwest::Client) -> Option<Commits> {
        let url = format!("{}/metrics", self.process.url);
        let text = client.get(url).send().await.ok()?.text().await.ok()?;
        let sample = |series: &str| crate::utils::metrics::sample::<u64>(&text, series);
        let name = "hookgate_store_commit_seconds";
        let count = sample(&format!("{name}_count"))?;
        let at_most = |le: &str| sample(&format!("{name}_bucket{{le=\"{le}\"}}"));
        Some(Commits {
            count,
            over_25ms: count.saturating_sub(at_most("0.025")?),
            over_100ms: count.saturating_sub(at_most("0.1")?),
        })
    }

    /// CPU time of the gateway and of its evaluator children so far.
    pub fn cpu(&self) -> Duration {
        process_tree_cpu(self.process.child.id())
    }

    /// The same CPU time by part of the gateway, told apart by thread name: the async runtime
    /// (ingress, the route loop, delivery attempts), the SQLite writer thread, the evaluator
    /// children, and the rest.
    pub fn cpu_by_part(&self) -> CpuParts {
        let pid = self.process.child.id();
        let mut parts = CpuParts::default();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten();
        for task in tasks {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let comm = stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map_or("", |(comm, _)| comm);
            let part = match comm {
                "sqlite-writer" => Part::Writer,
                c if c.starts_with("tokio-r") => Part::Runtime,
                _ => Part::Other,
            };
            parts.0[part as usize] += stat_ticks(&stat, &[14, 15]);
        }
        // Children that ended and were reaped count in the gateway's own stat.
        let own = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        parts.0[Part::Children as usize] += stat_ticks(&own, &[16, 17]);
        for child in children_of(pid) {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            parts.0[Part::Children as usize] += stat_ticks(&stat, &[14, 15]);
        }
        parts
    }
}

/// Where a gateway's CPU time goes (clock ticks), indexed by [`Part`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuParts([u64; 4]);

#[derive(Debug, Clone, Copy)]
enum Part {
    Runtime,
    Writer,
    Children,
    Other,
}

impl CpuParts {
    pub const NAMES: [&'static str; 4] = [
        "async runtime (ingress, route loop, attempts)",
        "sqlite writer thread",
        "evaluator children",
        "other threads",
    ];

    /// What was spent between `before` and `self`, summed over gateways.
    pub fn since(gateways: &[(Self, Self)]) -> [Duration; 4] {
        let mut out = [Duration::ZERO; 4];
        for (before, after) in gateways {
            for (i, o) in out.iter_mut().enumerate() {
                let ticks = after.0[i].saturating_sub(before.0[i]);
                *o += Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64);
            }
        }
        out
    }
}

/// nginx as a stateless relay in front of the receiver: the cheapest thing that forwards an event.
pub struct Relay {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Starts nginx on a free port, relaying to `receiver_url`; `None` when nginx is not installed.
    pub fn start(receiver_url: &str) -> anyhow::Result<Option<Self>> {
        let Some(nginx) = which("nginx") else {
            return Ok(None);
        };
        let upstream = url::Url::parse(receiver_url)?;
        let upstream = format!(
            "{}:{}",
            upstream.host_str().unwrap_or("127.0.0.1"),
            upstream.port().unwrap_or(80)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let d = dir.path().display();
        // As root, nginx's workers run as `nobody`, which could not write the temp folders here.
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             upstream receiver {{ server {upstream}; keepalive 256; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    client_body_buffer_size 64k;\n\
             location / {{ proxy_pass http://receiver; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf)?;
        let child = Command::new(nginx)
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let relay = Self {
            url: format!(
                "http://127.0.0.1:{port}{}",
                url::Url::parse(receiver_url)?.path()
            ),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(relay))
    }

    /// CPU time of nginx's master and workers so far.
    pub fn cpu(&self) -> Duration {
        process_tree_cpu(self.child.id())
    }
}

/// A browser keeping the console's overview open: chromium, driven by
/// tests/browser/poll-overview.mjs, loads it once a second until dropped.
pub struct ConsoleWatcher {
    child: Child,
}

impl ConsoleWatcher {
    /// Signs in to `admin_url` and starts polling; returns once the first load is done.
    pub fn start(admin_url: &str) -> anyhow::Result<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        anyhow::ensure!(
            dir.join("node_modules/playwright-core").is_dir(),
            "--console needs playwright-core: (cd tests/browser && npm ci), and Debian's chromium"
        );
        let mut child = Command::new("node")
            .arg("poll-overview.mjs")
            .current_dir(&dir)
            .env("CONSOLE_URL", admin_url)
            .env("TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        match lines.next() {
            Some(Ok(l)) if l == "polling" => {}
            other => anyhow::bail!("the console watcher did not start: {other:?}"),
        }
        // The summary line comes at the end; echo it to stderr beside the run's progress.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("console watcher: {line}");
            }
        });
        Ok(Self { child })
    }
}

impl Drop for ConsoleWatcher {
    fn drop(&mut self) {
        // SIGTERM: it closes the browser and prints how many loads it made.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Databases of finished scenarios, dropped only by [`drop_spent_databases`], for the reason
/// [`SPENT`] gives: dropping one deletes its files, whose trimming stalls the next scenario's disk.
static SPENT_DATABASES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Sets aside the scenario's database `url` on `server` until [`drop_spent_databases`], with
/// autovacuum off for its tables, which would otherwise work through them during the next
/// scenarios (on the same cores, and counted in the server's CPU).
pub async fn retire_database(server: &str, url: &str) -> anyhow::Result<()> {
    if let Ok(mut spent) = SPENT_DATABASES.lock() {
        spent.push((server.to_string(), url.to_string()));
    }
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "DO $$ DECLARE t record; BEGIN \
               FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                        WHERE c.relkind = 'r' AND n.nspname = 'public' LOOP \
                 EXECUTE format('ALTER TABLE public.%I SET (autovacuum_enabled = false, \
                                 toast.autovacuum_enabled = false)', t.relname); \
               END LOOP; END $$",
        )
        .await?;
    Ok(())
}

/// Drops the databases of every finished scenario: call once the measuring is done.
pub async fn drop_spent_databases() {
    let spent = SPENT_DATABASES
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    for (server, url) in spent {
        if let Err(e) = drop_database(&server, &url).await {
            eprintln!("warning: could not drop the scenario's database {url}: {e:#}");
        }
    }
}

/// Drops the database `url` names on the PostgreSQL server `server` names, ending any connection
/// still open to it.
async fn drop_database(server: &str, url: &str) -> anyhow::Result<()> {
    let name = url::Url::parse(url)?
        .path()
        .trim_start_matches('/')
        .to_string();
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}

/// CPU time of every process named `postgres` on this machine so far: the server a PostgreSQL
/// store runs on, when it is local (backends that exit meanwhile are missed).
pub fn postgres_cpu() -> Duration {
    let ticks: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .map(|stat| stat_ticks(&stat, &[14, 15]))
        .sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// The sum of the numbered fields of a `/proc/…/stat` line (utime is field 14).
fn stat_ticks(stat: &str, fields: &[usize]) -> u64 {
    // Fields after the parenthesised command name, which may itself hold spaces.
    let rest: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    fields
        .iter()
        .filter_map(|f| rest.get(f - 3).and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

/// User plus system time of `pid`, its reaped children and its live children, from /proc.
pub fn process_tree_cpu(pid: u32) -> Duration {
    let read = |p: u32| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
    let mut total = stat_ticks(&read(pid), &[14, 15, 16, 17]);
    for child in children_of(pid) {
        total += stat_ticks(&read(child), &[14, 15]);
    }
    Duration::from_secs_f64(total as f64 / clock_ticks() as f64)
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(parent)
        })
        .collect()
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}
