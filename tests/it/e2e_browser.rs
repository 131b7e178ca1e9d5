//! The web console in a real browser: `tests/browser/console.mjs` drives Debian's chromium
//! through sign-in, events, a retry, targets, a refused reload and sign-out, against the real
//! binary. `./scripts/test` installs chromium and playwright-core and points
//! `HOOKGATE_BROWSER_DIR` at them; `HOOKGATE_CONSOLE_SHOTS` (a folder) keeps a screenshot of
//! each page (the ones in docs/ were made so).

use crate::utils::admin::TOKEN;
use crate::utils::binary::Process;
use crate::utils::wasm::plugin_path;
use crate::utils::{Receiver, Reply};
use std::process::Command;

const SOURCE_SECRET: &str = "browser-source-secret-31c";
const SIGN_SECRET: &str = "browser-signing-secret-77a";
const URL_SECRET: &str = "hooks/T0/B0/browser-url-secret";

fn config(dir: &std::path::Path, receiver: &str, filter: &str, target: &str) -> String {
    format!(
        r##"[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
token = "{TOKEN}"

[store]
url = "sqlite://{}"

[plugins]
dir = "{plugins}"

[sources.plain]
kind = "generic"

[sources.gh]
kind = "github"
secret = "{SOURCE_SECRET}"

[targets.t]
url = "{receiver}/{URL_SECRET}"
sign = {{ scheme = "hmac-sha256", secret = "{SIGN_SECRET}", header = "X-Signature" }}
retry = {{ max_attempts = 1 }}

[[routes]]
name = "plain-to-t"
source = "plain"
filter = '{filter}'
targets = ["{target}"]

[[routes]]
name = "gh-to-slack"
source = "gh"
wasm = {{ plugin = "slack-notify", config = {{ channel = "#deploys" }} }}
targets = ["t"]
"##,
        dir.join("hookgate.db").display(),
        plugins = dir.join("plugins").display(),
    )
}

#[tokio::test]
async fn the_console_in_a_real_browser() {
    let Ok(browser_dir) = std::env::var("HOOKGATE_BROWSER_DIR") else {
        panic!(
            "HOOKGATE_BROWSER_DIR is not set: run ./scripts/test, which installs chromium and playwright-core"
        );
    };
    let receiver = Receiver::start().await;
    // The second event's delivery fails once; the retry from the console then succeeds.
    receiver.script([Reply::status(200), Reply::status(500)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hookgate.toml");
    std::fs::write(
        &file,
        config(dir.path(), &receiver.url, ".body.kind != \"skip\"", "t"),
    )
    .expect("config");
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        config(dir.path(), &receiver.url, ".body.kind !=", "nowhere"),
    )
    .expect("broken config");
    let not_wasm = dir.path().join("not.wasm");
    std::fs::write(&not_wasm, "this is not a component").expect("write");
    let plugin = tokio::task::spawn_blocking(|| plugin_path("slack-notify"))
        .await
        .expect("build plugins");
    let gateway = Process::serve(&file);
    let secrets = serde_json::json!([TOKEN, SOURCE_SECRET, SIGN_SECRET, URL_SECRET]).to_string();
    let mut cmd = Command::new("node");
    cmd.arg("console.mjs")
        .current_dir(&browser_dir)
        .env("CONSOLE_URL", gateway.admin_url.clone().expect("admin"))
        .env("HOOK_URL", format!("{}/hooks/plain", gateway.url))
        .env("TOKEN", TOKEN)
        .env("SECRETS", &secrets)
        .env("CONFIG_FILE", &file)
        .env("BROKEN", &broken)
        .env("PLUGIN", &plugin)
        .env("NOT_WASM", &not_wasm);
    if let Ok(shots) = std::env::var("HOOKGATE_CONSOLE_SHOTS") {
        cmd.env("SHOTS", shots);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser run failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok: "), "{stdout}");
    // Nor did the gateway log a secret while the browser used it.
    let logs = gateway.logs.lock().expect("logs").join("\n");
    for s in [TOKEN, SOURCE_SECRET, SIGN_SECRET, URL_SECRET] {
        assert!(!logs.contains(s), "the log holds `{s}`");
    }
    assert!(logs.contains("console: delivery queued again"), "{logs}");
}
