//! Hostile producers and operators, the smaller items of issue 11, through the real binary: log
//! lines a path cannot forge, `try` contained and quiet about secrets, `/readyz` failing on a full
//! disk.

use crate::utils::binary::{BIN, Process, write_serve_config};
use crate::utils::client;
use std::time::Duration;

/// What the forged line would say, were the path printed as it came.
const FORGED: &str = "2026-12-02T00:00:00Z ERROR forged line";

#[tokio::test]
async fn a_newline_in_the_path_cannot_forge_a_line_of_the_text_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("gw.db").display());
    let config = write_serve_config(dir.path(), &db, "http://127.0.0.1:9/", "", "");
    let gw = Process::serve_text(&config);
    let url = format!(
        "{}/hooks/x%0A{}%0D%1B[31m",
        gw.url,
        FORGED.replace(' ', "%20")
    );
    let resp = client().post(&url).body("{}").send().await.expect("send");
    assert_eq!(resp.status().as_u16(), 404);
    // The rejection is logged at info; give the writer a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let logs = loop {
        let logs = gw.logs.lock().expect("logs").clone();
        if logs.iter().any(|l| l.contains("event rejected")) || std::time::Instant::now() > deadline
        {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let all = logs.join("\n");
    for line in &logs {
        assert!(!line.starts_with(FORGED), "forged line:\n{all}");
        assert!(!line.contains('\r') && !line.contains('\u{1b}'), "{line:?}");
    }
    assert!(
        all.contains(&format!("x\\n{FORGED}\\r\\u{{1b}}[31m")),
        "the rejection is logged with its name escaped:\n{all}"
    );
}

/// Secrets a target's config holds, none of which `try` may print.
const SECRETS: &[&str] = &[
    "hunter2-pass",
    "tok-in-query",
    "sig-in-query",
    "SlackSecretXYZ",
    "header-api-key",
    "Bearer bearer-secret",
];

fn try_config() -> String {
    r#"
[jq]
timeout_ms = 1500

[sources.s]
kind = "generic"

[targets.creds]
url = "https://ops:hunter2-pass@receiver.example/in?token=tok-in-query&sig=sig-in-query&page=2"
headers = { "X-Api-Key" = "header-api-key", "Authorization" = "Bearer bearer-secret" }
sign = { scheme = "github", secret = "sign-secret" }

[targets.slack]
url = "https://hooks.slack.com/services/T000/B000/SlackSecretXYZ"

[[routes]]
name = "forever"
source = "s"
jq = 'last(range(1e18))'
targets = ["creds"]

[[routes]]
name = "overflow"
source = "s"
jq = 'def f: 1+f; f'
targets = ["creds"]

[[routes]]
name = "fine"
source = "s"
jq = '{ok: .body.n}'
targets = ["creds", "slack"]
"#
    .to_string()
}

#[test]
fn try_contains_runaway_mappings_and_prints_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, try_config()).expect("write");
    let body = dir.path().join("body.json");
    std::fs::write(&body, r#"{"n":1}"#).expect("write");
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(BIN)
        .arg("try")
        .arg("--config")
        .arg(&config)
        .args(["--source", "s", "--body"])
        .arg(&body)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn try");
    // Unbounded, `last(range(1e18))` never ends: give up well before that.
    let limit = Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("try did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for want in [
        "route `forever`: failed: route evaluation exceeded",
        "jq.timeout_ms",
        "route `overflow`: failed: route evaluation crashed",
        "route `fine`: delivered",
        "POST https://ops:***@receiver.example/in?token=***&sig=***&page=2",
        "POST https://hooks.slack.com/services/T000/B000/***",
        "X-Api-Key: ***",
        "Authorization: ***",
        // The signature is a MAC of this body: what `try` is for.
        &format!(
            "X-Hub-Signature-256: {}",
            crate::utils::sha256_header("sign-secret", br#"{"ok":1}"#)
        ),
    ] {
        assert!(stdout.contains(want), "missing `{want}` in:\n{stdout}");
    }
    for secret in SECRETS {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "`{secret}` printed:\n{stdout}\n{stderr}"
        );
    }
}

/// A tmpfs mounted for one test, unmounted when dropped (the test failing included).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`). Tests run as root; a mount that fails fails
    /// the test, loudly, rather than skipping what it checks.
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {} (this test needs root and mount(8)): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a file still open (a gateway not yet reaped) must not keep the mount behind.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn get(url: &str) -> (u16, String) {
    let resp = client().get(url).send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Writes to `path` until the filesystem refuses: the disk is full.
fn fill(path: &std::path::Path) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 1 << 20];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

#[tokio::test]
async fn readyz_fails_while_the_sqlite_disk_is_full_and_healthz_stays_up() {
    // Before the gateway, so the gateway (dropped first) has let go of the mount by then.
    let disk = Tmpfs::mount("64m");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", disk.path().join("gw.db").display());
    let config = write_serve_config(dir.path(), &db, "http://127.0.0.1:9/", "", "");
    let gw = Process::serve(&config);

    let (status, text) = get(&format!("{}/readyz", gw.url)).await;
    assert_eq!(status, 200, "{text}");

    let filler = disk.path().join("filler");
    fill(&filler);
    let (status, text) = get(&format!("{}/readyz", gw.url)).await;
    assert_eq!(status, 503, "a full disk is not ready: {text}");
    assert!(
        text.contains("free on the database's filesystem"),
        "the reason: {text}"
    );
    let (status, _) = get(&format!("{}/healthz", gw.url)).await;
    assert_eq!(status, 200, "the process is alive all the same");

    std::fs::remove_file(&filler).expect("free the space");
    let (status, text) = get(&format!("{}/readyz", gw.url)).await;
    assert_eq!(status, 200, "ready again once there is room: {text}");
}
