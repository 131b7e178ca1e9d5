//! The plugin workflow through the binary, as a new user meets it: `plugin new` writes a Rust
//! project that builds outside this repository, `plugin build` makes the component, `plugin
//! test` runs it offline under the gateway's limits, and `plugin push` puts it in a running
//! gateway, whose route then delivers what the test printed. Hostile guests fail `plugin test`
//! with the gateway's own reasons; a missing toolchain is named with its install command.

use crate::utils::admin::{ADMIN, TOKEN, cli};
use crate::utils::binary::BIN;
use crate::utils::wasm::guest_bytes;
use crate::utils::{Gateway, Receiver, post_json, sample, sample_headers};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn hookgate(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hookgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Where scaffolded projects build: kept between runs, so only the first one compiles the SDK's
/// dependencies.
fn scaffold_target() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/plugin-scaffold")
        .display()
        .to_string()
}

/// Pushes `wasm` as plugin `name` to a gateway (with the CLI, as a user would) whose route runs it
/// with `prefix` on a Spacelift source; sends the signed Spacelift sample; returns what arrived.
async fn pushed_and_delivered(name: &str, wasm: &str, prefix: &str) -> String {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&format!(
        r#"
{ADMIN}
[plugins]
dir = "plugins"
timeout_ms = 2000

[sources.spacelift]
kind = "spacelift"
secret = "spacelift-fixture-secret"

[targets.t]
url = "{}"

[[routes]]
name = "notes"
source = "spacelift"
wasm = {{ plugin = "{name}", config = {{ prefix = "{prefix}" }} }}
targets = ["t"]
"#,
        receiver.url
    ))
    .await;
    let (code, out, err) = cli(&gw, TOKEN, &["plugin", "push", name, wasm]).await;
    assert_eq!(code, 0, "{out}{err}");
    let body = sample("spacelift/run_finished.json");
    let headers = sample_headers("spacelift/run_finished.json");
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        post_json(&gw.hook("spacelift"), body, &headers).await.0,
        202
    );
    let seen = receiver.wait_for(1, Duration::from_secs(20)).await;
    String::from_utf8_lossy(&seen[0].body).into_owned()
}

#[tokio::test]
async fn a_new_rust_plugin_builds_tests_and_runs_in_the_gateway() {
    let dir = temp_dir("scaffold");
    let parent = dir.display().to_string();
    let (code, out, err) = hookgate(
        &[
            "plugin",
            "new",
            "stack-note",
            "--lang",
            "rust",
            "--dir",
            &parent,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let project = dir.join("stack-note");
    let target = scaffold_target();
    let env = [("CARGO_TARGET_DIR", target.as_str())];

    // Its own test passes with a plain `cargo test`, outside this repository's workspaces.
    let test = tokio::task::spawn_blocking({
        let project = project.clone();
        let target = target.clone();
        move || {
            Command::new("cargo")
                .args(["test", "--quiet"])
                .current_dir(&project)
                .env("CARGO_TARGET_DIR", target)
                .output()
                .expect("cargo test")
        }
    })
    .await
    .expect("join");
    assert!(
        test.status.success(),
        "cargo test in the new project: {}",
        String::from_utf8_lossy(&test.stderr)
    );

    let (code, out, err) = hookgate(&["plugin", "build", &project.display().to_string()], &env);
    assert_eq!(code, 0, "{out}{err}");
    let wasm = project.join("stack-note.wasm");
    assert!(
        wasm.is_file() && out.contains("the gateway loads it"),
        "{out}"
    );

    let fixture = project.join("fixtures/spacelift_run_finished.json");
    let wasm_arg = wasm.display().to_string();
    let fixture_arg = fixture.display().to_string();
    let (code, out, err) = hookgate(
        &[
            "plugin",
            "test",
            &wasm_arg,
            "--event",
            &fixture_arg,
            "--preset",
            "spacelift",
            "--config",
            r#"{"prefix": "[infra] "}"#,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let text = r#"{"text":"[infra] payments-prod: run_state_changed_event from spacelift"}"#;
    assert!(out.contains("1 message(s)") && out.contains(text), "{out}");
    assert!(out.contains("peak memory"), "{out}");
    assert!(
        out.contains("run_state_changed_event for payments-prod"),
        "the plugin's log line: {out}"
    );

    // Refused input: exit code 1 and the plugin's reason.
    let other = dir.join("other.json");
    std::fs::write(&other, r#"{"hello": "world"}"#).expect("write");
    let (code, out, _) = hookgate(
        &[
            "plugin",
            "test",
            &wasm_arg,
            "--event",
            &other.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the payload names no stack"), "{out}");

    // The same component, pushed to a running gateway, delivers what `plugin test` printed.
    assert_eq!(
        pushed_and_delivered("stack-note", &wasm_arg, "[infra] ").await,
        text
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_guests_fail_plugin_test_with_the_gateways_reasons() {
    let dir = temp_dir("hostile");
    let event = dir.join("event.json");
    std::fs::write(&event, "{}").expect("write");
    let event = event.display().to_string();
    for (guest, reason) in [
        ("spin", "exceeded its 200 ms time limit"),
        ("hog", "exceeded its 16 MiB memory limit"),
        ("trap", "trapped"),
    ] {
        let wasm = dir.join(format!("{guest}.wasm"));
        std::fs::write(&wasm, guest_bytes(guest)).expect("write");
        let (code, out, err) = hookgate(
            &[
                "plugin",
                "test",
                &wasm.display().to_string(),
                "--event",
                &event,
                "--timeout-ms",
                "200",
                "--memory-mb",
                "16",
            ],
            &[],
        );
        assert_eq!(code, 1, "{guest}: {out}{err}");
        assert!(out.contains(reason), "{guest}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_toolchain_is_named_with_its_install_command() {
    let dir = temp_dir("no-toolchain");
    let (code, _, err) = hookgate(
        &["plugin", "new", "p", "--dir", &dir.display().to_string()],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    // No cargo on PATH.
    let (code, _, err) = hookgate(
        &["plugin", "build", &dir.join("p").display().to_string()],
        &[("PATH", &dir.display().to_string())],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("https://rustup.rs") && err.contains("rustup target add wasm32-wasip2"),
        "{err}"
    );
    let (code, _, err) = hookgate(&["plugin", "build", &dir.display().to_string()], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not a plugin project"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The directory holding `componentize-py` (the pinned one `scripts/test` installs).
fn python_toolchain_path() -> String {
    let bin = std::env::var("HOOKGATE_PLUGIN_PY_BIN").unwrap_or_else(|_| {
        panic!(
            "HOOKGATE_PLUGIN_PY_BIN is not set: run the suite with ./scripts/test, which installs \
             tests/plugins/requirements.txt (or point it at a folder holding componentize-py)"
        )
    });
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

/// A guest misbehaving as its config says, to hold a Python plugin to the same limits as Rust's.
const HOSTILE_PY: &str = r#"
import os
from hookgate_sdk import Event, Message

def transform(event: Event, config: dict) -> list[Message]:
    mode = config.get("mode")
    if mode == "loop":
        while True:
            pass
    if mode == "hog":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if mode == "file":
        return [Message.json({"read": open("/etc/hostname").read()})]
    if mode == "env":
        return [Message.json({"env": dict(os.environ)})]
    if mode == "flood":
        return [Message.raw("x" * (17 << 20))]
    return [Message.json({"x": {}["missing"]})]
"#;

#[tokio::test]
async fn a_new_python_plugin_builds_tests_and_runs_in_the_gateway() {
    let path = python_toolchain_path();
    let dir = temp_dir("scaffold-py");
    let (code, out, err) = hookgate(
        &[
            "plugin",
            "new",
            "stack-py",
            "--lang",
            "python",
            "--dir",
            &dir.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let project = dir.join("stack-py");
    let unittest = Command::new("python3")
        .args(["-m", "unittest", "-q"])
        .current_dir(&project)
        .output()
        .expect("python3");
    assert!(
        unittest.status.success(),
        "python -m unittest in the new project: {}",
        String::from_utf8_lossy(&unittest.stderr)
    );
    let project_arg = project.display().to_string();
    let (code, out, err) = hookgate(&["plugin", "build", &project_arg], &[("PATH", &path)]);
    assert_eq!(code, 0, "{out}{err}");
    let wasm = project.join("stack-py.wasm").display().to_string();
    let fixture = project.join("fixtures/spacelift_run_finished.json");
    let (code, out, err) = hookgate(
        &[
            "plugin",
            "test",
            &wasm,
            "--event",
            &fixture.display().to_string(),
            "--preset",
            "spacelift",
            "--timeout-ms",
            "2000",
            "--config",
            r#"{"prefix": "[py] "}"#,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let text = r#"{"text":"[py] payments-prod: run_state_changed_event from spacelift"}"#;
    assert!(out.contains(text), "{out}");
    assert!(
        out.contains("run_state_changed_event for payments-prod"),
        "{out}"
    );

    // Pushed to a running gateway, it delivers the same.
    assert_eq!(pushed_and_delivered("stack-py", &wasm, "[py] ").await, text);

    // The same limits as a Rust guest's.
    std::fs::write(project.join("app.py"), HOSTILE_PY).expect("write app.py");
    let (code, out, err) = hookgate(&["plugin", "build", &project_arg], &[("PATH", &path)]);
    assert_eq!(code, 0, "{out}{err}");
    for (mode, reason) in [
        ("loop", "exceeded its 1000 ms time limit"),
        ("hog", "exceeded its 64 MiB memory limit"),
        ("file", "FileNotFoundError"),
        ("env", r#"{"env":{}}"#),
        ("flood", "returned unusable output"),
        ("raise", "KeyError: 'missing'"),
    ] {
        let (_, out, err) = hookgate(
            &[
                "plugin",
                "test",
                &wasm,
                "--event",
                &fixture.display().to_string(),
                "--timeout-ms",
                "1000",
                "--memory-mb",
                "64",
                "--config",
                &format!(r#"{{"mode": "{mode}"}}"#),
            ],
            &[],
        );
        assert!(out.contains(reason), "{mode}: {out}{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
