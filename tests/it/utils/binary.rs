//! The real `hookgate` binary, for tests where a process must be killed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_hookgate");

/// Runs the binary with `args` (and `env` added to its environment) to the end: its exit code,
/// stdout and stderr.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run hookgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `hookgate serve` child process.
pub struct Process {
    pub child: Child,
    pub url: String,
    /// The admin API, when the config has an `[admin]` section.
    pub admin_url: Option<String>,
    /// Every line the process has logged so far (JSON unless started with [`Process::serve_text`]).
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `hookgate serve --config path` (which must listen on port 0) and waits for its address.
    pub fn serve(config: &Path) -> Self {
        Self::serve_binary(Path::new(BIN), config, &[])
    }

    /// [`Process::serve`] with `env` added to the process's environment (for `${VAR}`).
    pub fn serve_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::serve_binary(Path::new(BIN), config, env)
    }

    /// Starts `bin serve --config path` with `env`: this build's binary or another (the load
    /// benchmark compares builds in one run).
    pub fn serve_binary(bin: &Path, config: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(bin, config, env, "json")
    }

    /// [`Process::serve`] with the default text log format: `logs` holds its lines as printed.
    pub fn serve_text(config: &Path) -> Self {
        Self::spawn(Path::new(BIN), config, &[], "text")
    }

    fn spawn(bin: &Path, config: &Path, env: &[(&str, &str)], log_format: &str) -> Self {
        let mut child = Command::new(bin)
            .args(["serve", "--log-format", log_format, "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hookgate");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = logs.clone();
        // Keeps draining stderr for the child's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut admin = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().expect("logs").push(line.clone());
                let Some((message, addr)) = announcement(&line) else {
                    continue;
                };
                // The admin listener is announced before ingress.
                if message == "admin listening" {
                    admin = Some(format!("http://{addr}"));
                }
                if message == "ingress listening" {
                    let _ = tx.send((addr, admin.clone()));
                }
            }
        });
        let (addr, admin_url) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("hookgate did not start listening");
        Self {
            child,
            url: format!("http://{addr}"),
            admin_url,
            logs,
        }
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        super::metrics_at(&self.url).await
    }

    /// `kill -9`: no shutdown, no drain, no flush.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A listener's announcement in a JSON or text log line: its message and `addr`.
fn announcement(line: &str) -> Option<(String, String)> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        let message = v["fields"]["message"].as_str()?.to_string();
        return Some((message, v["fields"]["addr"].as_str()?.to_string()));
    }
    // Text: `<time>  INFO hookgate::server: ingress listening addr=127.0.0.1:1234 …`.
    let message = ["admin listening", "ingress listening"]
        .into_iter()
        .find(|m| line.contains(m))?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))?;
    Some((message.to_string(), addr.to_string()))
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `<dir>/hookgate.toml` for `hookgate serve`: ingress on port 0, store `store`, a generic
/// source `s`, target `t` at `target_url` (plus the TOML lines `target_extra`), and route `r` from
/// `s` to `t` (plus the lines `route_extra`, e.g. a `jq` mapping). Returns the file's path.
pub fn write_serve_config(
    dir: &Path,
    store: &str,
    target_url: &str,
    target_extra: &str,
    route_extra: &str,
) -> std::path::PathBuf {
    let file = dir.join("hookgate.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"{store}\"\n\n\
         [sources.s]\nkind = \"generic\"\n\n\
         [targets.t]\nurl = \"{target_url}\"\n{target_extra}\n\n\
         [[routes]]\nname = \"r\"\nsource = \"s\"\ntargets = [\"t\"]\n{route_extra}\n"
    );
    std::fs::write(&file, text).expect("write config");
    file
}
