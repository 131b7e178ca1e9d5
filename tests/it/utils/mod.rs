//! Shared helpers: a real gateway on port 0, a recording receiver, fixtures, signing.

pub mod admin;
pub mod binary;
pub mod console;
pub mod metrics;
pub mod pg_database;
pub mod receiver;
pub mod store;
pub mod wasm;

pub use receiver::{Receiver, Reply};

use hookgate::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;

/// A gateway running in this process, with its own store (a SQLite file in its folder, or its
/// own PostgreSQL database: see [`store`]).
pub struct Gateway {
    pub url: String,
    /// The admin API, when the config has an `[admin]` section.
    pub admin_url: Option<String>,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    /// Its `store.url`.
    pub store_url: String,
    /// The `[server]` and `[store]` sections added to every config this gateway loads.
    tail: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Gateway {
    /// Starts a gateway on `config` (TOML without `[server]` or `[store]`; those are added).
    pub async fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(config, dir).await
    }

    pub async fn start_in(config: &str, dir: tempfile::TempDir) -> Self {
        Self::start_with_store(config, dir, "").await
    }

    /// Starts a gateway whose `[store]` section also holds `store_extra` (e.g. `retention = "1s"`).
    pub async fn start_with_store(config: &str, dir: tempfile::TempDir, store_extra: &str) -> Self {
        let store_url = store::url_for(dir.path()).await;
        Self::start_on(config, dir, "", store_extra, store_url, Default::default()).await
    }

    /// Starts a gateway whose `[server]` section also holds `server_extra` (e.g. `max_backlog = 5`).
    pub async fn start_with_server(config: &str, server_extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_url = store::url_for(dir.path()).await;
        Self::start_on(config, dir, server_extra, "", store_url, Default::default()).await
    }

    /// Starts a gateway whose public listener runs under `limits` (short timeouts, a small
    /// connection cap) instead of the defaults.
    pub async fn start_with_limits(config: &str, limits: hookgate::IngressLimits) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_url = store::url_for(dir.path()).await;
        Self::start_on(config, dir, "", "", store_url, limits).await
    }

    /// Starts another instance on the store `store_url` (another gateway's), in its own folder:
    /// its own config file, plugins folder and listeners, as on another machine.
    pub async fn start_sharing(config: &str, store_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_sharing_in(config, dir, store_url).await
    }

    pub async fn start_sharing_in(config: &str, dir: tempfile::TempDir, store_url: &str) -> Self {
        Self::start_on(
            config,
            dir,
            "",
            "",
            store_url.to_string(),
            Default::default(),
        )
        .await
    }

    /// Starts a gateway on SQLite whichever backend the suite runs on, for the one test that must:
    /// under a paused tokio clock every network timeout (a PostgreSQL connect, a pool wait) fires
    /// as soon as the runtime idles, so only an in-process store can run there.
    pub async fn start_on_sqlite(config: &str, dir: tempfile::TempDir, store_extra: &str) -> Self {
        if store::backend() != store::Backend::Sqlite {
            eprintln!("note: this test runs on SQLite on every pass (paused clock)");
        }
        let store_url = format!("sqlite://{}", db_path(dir.path()).display());
        Self::start_on(config, dir, "", store_extra, store_url, Default::default()).await
    }

    async fn start_on(
        config: &str,
        dir: tempfile::TempDir,
        server_extra: &str,
        store_extra: &str,
        store_url: String,
        limits: hookgate::IngressLimits,
    ) -> Self {
        // Small bodies unless the test sets its own limit.
        let body_limit = match server_extra.contains("max_body_bytes") {
            true => "",
            false => "max_body_bytes = 65536\n",
        };
        let tail = format!(
            "\n[server]\nlisten = \"127.0.0.1:0\"\n{body_limit}{server_extra}\n\n[store]\nurl = \"{store_url}\"\n{store_extra}\n"
        );
        let file = dir.path().join("hookgate.toml");
        std::fs::write(&file, format!("{config}{tail}")).expect("write config");
        let config = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let admin_listener = match config.admin_listen() {
            Some(_) => Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind admin"),
            ),
            None => None,
        };
        let admin_url = admin_listener
            .as_ref()
            .map(|l| format!("http://{}", l.local_addr().expect("admin addr")));
        let options = hookgate::ServerOptions {
            admin_listener,
            evaluator_exe: Some(binary::BIN.into()),
            reload_on_sighup: false,
            ingress: limits,
            // As the binary reads it: scripts/test points every gateway of a run at one cache,
            // so a plugin is compiled once per run, not once per test.
            plugin_cache: std::env::var_os("HOOKGATE_PLUGIN_CACHE")
                .filter(|dir| !dir.is_empty())
                .map(Into::into),
        };
        let task = tokio::spawn(hookgate::run(config, options, listener, async move {
            let _ = stopped.await;
        }));
        let path = dir.path().to_path_buf();
        let gw = Self {
            url,
            admin_url,
            dir: Some(dir),
            path,
            store_url,
            tail,
            stop: Some(stop),
            task: Some(task),
        };
        gw.wait_ready().await;
        gw
    }

    /// Waits until `/readyz` answers 200: the store is open and migrated.
    async fn wait_ready(&self) {
        let client = client();
        // Wall time: under a paused tokio clock the sleeps below take no time at all.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let resp = client.get(format!("{}/readyz", self.url)).send().await;
            if resp.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("gateway at {} never became ready", self.url);
    }

    /// Rewrites the config file (with the same `[server]` and `[store]`), for reload tests.
    pub fn rewrite_config(&self, config: &str) {
        std::fs::write(self.config_file(), format!("{config}{}", self.tail)).expect("write config");
    }

    pub fn config_file(&self) -> PathBuf {
        self.path.join("hookgate.toml")
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        metrics_at(&self.url).await
    }

    /// The folder holding the gateway's database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn hook(&self, source: &str) -> String {
        format!("{}/hooks/{source}", self.url)
    }

    /// The gateway's store, to check what it recorded.
    pub fn db(&self) -> store::Db {
        store::Db::new(&self.store_url)
    }

    /// Statuses of every delivery, oldest first, as `(route, target, status)`.
    pub async fn deliveries(&self) -> Vec<(String, String, String)> {
        self.db()
            .rows("SELECT route, target, status FROM deliveries ORDER BY seq")
            .await
            .iter()
            .map(|r| (r[0].text(), r[1].text(), r[2].text()))
            .collect()
    }

    /// The deliveries' ids, oldest first (the order of [`Gateway::deliveries`]).
    pub async fn delivery_ids(&self) -> Vec<String> {
        self.db()
            .rows("SELECT id FROM deliveries ORDER BY seq")
            .await
            .iter()
            .map(|r| r[0].text())
            .collect()
    }

    /// Waits until the store holds every event routed, or panics after 10 s. A routing whose
    /// deliveries were handed over unrecorded lands after their first attempts, so a receiver may
    /// see a delivery a moment before the log shows its event routed.
    pub async fn wait_routed(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let db = self.db();
        loop {
            let unrouted = db.unrouted().await;
            if unrouted == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{unrouted} events never routed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `pred` holds for the delivery statuses, or panics after `timeout`.
    pub async fn wait_deliveries(
        &self,
        timeout: Duration,
        pred: impl Fn(&[(String, String, String)]) -> bool,
    ) -> Vec<(String, String, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let d = self.deliveries().await;
            if pred(&d) {
                return d;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("deliveries never reached the expected state: {d:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Shuts down and waits for the drain.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        self.dir.take().expect("dir is taken only here")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("hookgate.db")
}

/// A fixture from tests/fixtures, byte for byte.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The event catalog (catalog/): each preset's events, schemas and signed samples.
pub fn catalog_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("catalog")
}

/// Where the catalog sample `<preset>/<file>` lives.
pub fn sample_path(name: &str) -> PathBuf {
    let (preset, file) = name
        .split_once('/')
        .unwrap_or_else(|| panic!("a sample is named <preset>/<file>, not {name}"));
    catalog_dir().join(preset).join("samples").join(file)
}

/// The catalog sample `<preset>/<file>`, byte for byte (its signatures cover these bytes).
pub fn sample(name: &str) -> Vec<u8> {
    let path = sample_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The headers `catalog/sign.py` recorded for the sample `<preset>/<file>`: what its platform
/// sends with it, signature included.
pub fn sample_headers(name: &str) -> Vec<(String, String)> {
    let (preset, file) = name.split_once('/').unwrap_or((name, name));
    let path = catalog_dir().join(preset).join("samples/headers.json");
    let all: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
    .expect("headers.json");
    all[file]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no entry for {file}", path.display()))
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// `sha256=<hex>` of `body`, as GitHub and Spacelift sign.
pub fn sha256_header(secret: &str, body: &[u8]) -> String {
    let mac = hookgate::testing::hmac(
        hookgate::testing::Algorithm::Sha256,
        secret.as_bytes(),
        &[body],
    );
    format!("sha256={}", hookgate::testing::Encoding::Hex.encode(&mac))
}

pub fn client() -> reqwest::Client {
    hookgate::install_crypto();
    reqwest::Client::new()
}

pub async fn post_json(
    url: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// `GET {url}/metrics` as text: an in-process [`Gateway`]'s or a [`binary::Process`]'s.
pub async fn metrics_at(url: &str) -> String {
    client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}
