//! The plugin workflow through the binary, as a new user meets it: `plugin new` writes a project
//! (Rust, Python, JavaScript or TypeScript) that builds outside this repository, `plugin build` makes the component, `plugin
//! test` runs it offline under the gateway's limits, and `plugin push` puts it in a running
//! gateway, whose route then delivers what the test printed. Hostile guests fail `plugin test`
//! with the gateway's own reasons; a missing toolchain is named with its install command.

use crate::utils::admin::{ADMIN, TOKEN, cli};
use crate::utils::binary::run as hookgate;
use crate::utils::wasm::{guest_bytes, toolchain_bin, toolchain_path};
use crate::utils::{Gateway, Receiver, post_json, sample, sample_headers};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    // `cargo test` passes in the new project, outside this repository's workspaces; the hostile
    // Rust guests without the SDK are `hostile_guests_fail_plugin_test_with_the_gateways_reasons`.
    let target = scaffold_target();
    a_new_plugin_in(
        "rust",
        &[("CARGO_TARGET_DIR", &target)],
        &["cargo", "test", "--quiet"],
        &|_| {},
        Some((
            "src/lib.rs",
            HOSTILE_RS,
            &[
                ("hog", "exceeded its 64 MiB memory limit"),
                ("churn", r#"{"churned_mib":500,"sum":"#),
            ],
        )),
    )
    .await;
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
    // A TypeScript project before `npm install`: no tsc of its own.
    let dir_arg = dir.display().to_string();
    let (code, _, err) = hookgate(
        &["plugin", "new", "t", "--lang", "ts", "--dir", &dir_arg],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = hookgate(
        &["plugin", "build", &dir.join("t").display().to_string()],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("TypeScript is not installed") && err.contains("npm install"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Rust guest on the SDK and its bump allocator (`plugins/sdk/src/arena.rs`): one that keeps
/// everything it allocates meets the memory cap; one that allocates and drops 500 MiB, a buffer
/// at a time, never holds more than one, since the top block is given back.
const HOSTILE_RS: &str = r#"
use hookgate_plugin_sdk::{Error, Event, Message, json, plugin};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub mode: String,
}

pub fn transform(_event: Event, config: Config) -> Result<Vec<Message>, Error> {
    match config.mode.as_str() {
        "hog" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
            }
        }
        "churn" => {
            let mut sum = 0u64;
            for i in 0..500usize {
                let buffer = vec![(i % 251) as u8 + 1; 1 << 20];
                sum += u64::from(std::hint::black_box(&buffer)[i]);
            }
            Ok(vec![Message::json(&json!({ "churned_mib": 500, "sum": sum }))])
        }
        _ => Err("unknown mode".into()),
    }
}

plugin!(transform);
"#;

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

/// The same for JavaScript: no `process`, and `fetch` (componentize-js keeps the function)
/// reaches no network: with `wasi:http` left out, calling it traps.
const HOSTILE_JS: &str = r#"
import { Message } from './hookgate_sdk/index.js';

export function transform(event, config) {
  const mode = config.mode;
  if (mode === 'loop') { for (;;) {} }
  if (mode === 'hog') { const hoard = []; for (;;) hoard.push(new Uint8Array(1 << 20).fill(1)); }
  if (mode === 'fetch') return [Message.json({ answer: String(fetch('http://127.0.0.1:9/')) })];
  if (mode === 'env') return [Message.json({ env: typeof process === 'undefined' ? {} : process.env })];
  if (mode === 'flood') return Array.from({ length: 1001 }, () => Message.json({}));
  return [Message.json({ x: undefined.missing })];
}
"#;

/// A guest replacing the project's transform (`file`, its text) and the modes of its config with
/// what each gives (a failure's reason, or output).
type Hostile<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// A new project in `lang`, readied by `prepare` (as its user's install step would): its own unit
/// test (`unit`), `plugin build`, `plugin test` (messages, log line, peak memory, and a refused
/// input's reason), push and delivery, each tool run with `env` (the toolchain); then `hostile`
/// under the gateway's limits.
async fn a_new_plugin_in(
    lang: &str,
    env: &[(&str, &str)],
    unit: &[&str],
    prepare: &dyn Fn(&Path),
    hostile: Option<Hostile<'_>>,
) {
    let name = format!("stack-{lang}");
    let dir = temp_dir(&format!("scaffold-{lang}"));
    let (code, out, err) = hookgate(
        &[
            "plugin",
            "new",
            &name,
            "--lang",
            lang,
            "--dir",
            &dir.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let project = dir.join(&name);
    prepare(&project);
    let test = Command::new(unit[0])
        .args(&unit[1..])
        .envs(env.iter().copied())
        .current_dir(&project)
        .output()
        .expect("the unit test runner");
    assert!(
        test.status.success(),
        "{lang}: the new project's own test: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    let project_arg = project.display().to_string();
    let (code, out, err) = hookgate(&["plugin", "build", &project_arg], env);
    assert_eq!(code, 0, "{lang}: {out}{err}");
    assert!(out.contains("the gateway loads it"), "{lang}: {out}");
    let wasm = project.join(format!("{name}.wasm")).display().to_string();
    let fixture = project
        .join("fixtures/spacelift_run_finished.json")
        .display()
        .to_string();
    let (code, out, err) = hookgate(
        &[
            "plugin",
            "test",
            &wasm,
            "--event",
            &fixture,
            "--preset",
            "spacelift",
            "--timeout-ms",
            "2000",
            "--config",
            r#"{"prefix": "[p] "}"#,
        ],
        &[],
    );
    assert_eq!(code, 0, "{lang}: {out}{err}");
    let text = r#"{"text":"[p] payments-prod: run_state_changed_event from spacelift"}"#;
    assert!(
        out.contains("1 message(s)") && out.contains(text),
        "{lang}: {out}"
    );
    assert!(out.contains("peak memory"), "{lang}: {out}");
    assert!(
        out.contains("run_state_changed_event for payments-prod"),
        "the plugin's log line ({lang}): {out}"
    );

    // Refused input: exit code 1 and the plugin's reason.
    let other = dir.join("other.json");
    std::fs::write(&other, r#"{"hello": "world"}"#).expect("write");
    let (code, out, _) = hookgate(
        &[
            "plugin",
            "test",
            &wasm,
            "--event",
            &other.display().to_string(),
            "--timeout-ms",
            "2000",
        ],
        &[],
    );
    assert_eq!(code, 1, "{lang}: {out}");
    assert!(out.contains("the payload names no stack"), "{lang}: {out}");

    // Pushed to a running gateway, it delivers the same.
    assert_eq!(pushed_and_delivered(&name, &wasm, "[p] ").await, text);

    // The same limits as a Rust guest's.
    let Some((file, hostile, cases)) = hostile else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    std::fs::write(project.join(file), hostile).expect("write the hostile guest");
    let (code, out, err) = hookgate(&["plugin", "build", &project_arg], env);
    assert_eq!(code, 0, "{lang}: {out}{err}");
    for (mode, reason) in cases {
        let (_, out, err) = hookgate(
            &[
                "plugin",
                "test",
                &wasm,
                "--event",
                &fixture,
                "--timeout-ms",
                "1000",
                "--memory-mb",
                "64",
                "--config",
                &format!(r#"{{"mode": "{mode}"}}"#),
            ],
            &[],
        );
        assert!(out.contains(reason), "{lang} {mode}: {out}{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_new_python_plugin_builds_tests_and_runs_in_the_gateway() {
    let path = toolchain_path("HOOKGATE_PLUGIN_PY_BIN");
    a_new_plugin_in(
        "python",
        &[("PATH", &path)],
        &["python3", "-m", "unittest", "-q"],
        &|_| {},
        Some((
            "app.py",
            HOSTILE_PY,
            &[
                ("loop", "exceeded its 1000 ms time limit"),
                ("hog", "exceeded its 64 MiB memory limit"),
                ("file", "FileNotFoundError"),
                ("env", r#"{"env":{}}"#),
                ("flood", "returned unusable output"),
                ("raise", "KeyError: 'missing'"),
            ],
        )),
    )
    .await;
}

#[tokio::test]
async fn a_new_js_plugin_builds_tests_and_runs_in_the_gateway() {
    let path = toolchain_path("HOOKGATE_PLUGIN_JS_BIN");
    a_new_plugin_in(
        "js",
        &[("PATH", &path)],
        &["node", "--test"],
        &|_| {},
        Some((
            "app.js",
            HOSTILE_JS,
            &[
                ("loop", "exceeded its 1000 ms time limit"),
                ("hog", "exceeded its 64 MiB memory limit"),
                ("fetch", "trapped"),
                ("env", r#"{"env":{}}"#),
                ("flood", "returned unusable output"),
                ("raise", "TypeError"),
            ],
        )),
    )
    .await;
}

#[tokio::test]
async fn a_new_ts_plugin_builds_tests_and_runs_in_the_gateway() {
    // The suite's toolchain stands in for the project's `npm install`: its node_modules (tsc,
    // @types/node and componentize-js, the versions a new project pins) linked into the project,
    // so `npm test` type-checks against them and `plugin build` finds the local tsc. The guest's
    // runtime is the JavaScript one, which the JS test holds to the gateway's limits.
    let bin = toolchain_bin("HOOKGATE_PLUGIN_JS_BIN");
    let node_modules = Path::new(&bin)
        .parent()
        .expect("HOOKGATE_PLUGIN_JS_BIN is node_modules/.bin")
        .to_path_buf();
    let path = toolchain_path("HOOKGATE_PLUGIN_JS_BIN");
    a_new_plugin_in(
        "ts",
        &[("PATH", &path)],
        &["npm", "test", "--silent"],
        &|project| {
            std::os::unix::fs::symlink(&node_modules, project.join("node_modules"))
                .expect("link node_modules");
        },
        None,
    )
    .await;
}
