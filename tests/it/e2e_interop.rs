//! Interop with code no one here wrote: Standard Webhooks' Python library and GitHub's
//! `@octokit/webhooks-methods` verify what hookgate signs, and sign what hookgate must accept.
//! `./scripts/test` installs both and points `HOOKGATE_INTEROP_PYTHON` / `HOOKGATE_INTEROP_DIR` at them.

use crate::utils::{Gateway, Receiver, post_json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GH_SECRET: &str = "It's a Secret to Everybody";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the suite with ./scripts/test, which installs the interop tools"
        )
    })
}

/// Runs a helper script with `stdin`, returning (success, stdout).
fn run(program: &str, args: &[&str], stdin: &[u8]) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(env("HOOKGATE_INTEROP_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn python(args: &[&str], stdin: &[u8]) -> (bool, String) {
    let mut all = vec!["standard_webhooks.py"];
    all.extend_from_slice(args);
    run(&env("HOOKGATE_INTEROP_PYTHON"), &all, stdin)
}

fn node(args: &[&str], stdin: &[u8]) -> (bool, String) {
    let mut all = vec!["octokit.mjs"];
    all.extend_from_slice(args);
    run("node", &all, stdin)
}

fn config(receiver: &str) -> String {
    format!(
        r#"
[sources.sw]
kind = "standard-webhooks"
secret = "{SW_SECRET}"

[sources.gh]
kind = "github"
secret = "{GH_SECRET}"

[targets.sw-out]
url = "{receiver}"
sign = {{ scheme = "standard-webhooks", secret = "{SW_SECRET}" }}

[targets.gh-out]
url = "{receiver}"
sign = {{ scheme = "github", secret = "{GH_SECRET}" }}

[[routes]]
name = "out"
source = "sw"
jq = '{{type: .body.type, data: .body.data}}'
targets = ["sw-out", "gh-out"]
"#
    )
}

#[tokio::test]
async fn standard_webhooks_library_and_octokit_accept_what_we_sign() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    // Inbound, signed by the Standard Webhooks library.
    let body = r#"{"type":"stack.updated","data":{"stack":"payments-prod"}}"#;
    let now = (hookgate::testing::now_ms() / 1000).to_string();
    let (ok, sig) = python(&["sign", SW_SECRET, "msg_interop_1", &now], body.as_bytes());
    assert!(ok, "python sign");
    let headers = [
        ("webhook-id", "msg_interop_1"),
        ("webhook-timestamp", now.as_str()),
        ("webhook-signature", sig.as_str()),
    ];
    let (status, json) = post_json(&gw.hook("sw"), body, &headers).await;
    assert_eq!(status, 202, "{json}");
    let seen = receiver.expect_exactly(2, Duration::from_millis(300)).await;
    // Outbound, checked by each library.
    let sw = seen
        .iter()
        .find(|r| !r.header("webhook-signature").is_empty())
        .expect("standard-webhooks delivery");
    let request = serde_json::json!({
        "body": String::from_utf8_lossy(&sw.body),
        "headers": {
            "webhook-id": sw.header("webhook-id"),
            "webhook-timestamp": sw.header("webhook-timestamp"),
            "webhook-signature": sw.header("webhook-signature"),
        },
    });
    let (ok, _) = python(&["verify", SW_SECRET], request.to_string().as_bytes());
    assert!(ok, "standardwebhooks rejected our signature: {request}");
    let mut tampered = request.clone();
    tampered["body"] = serde_json::Value::String(r#"{"type":"stack.deleted"}"#.into());
    assert!(
        !python(&["verify", SW_SECRET], tampered.to_string().as_bytes()).0,
        "tampering must be caught"
    );
    let gh = seen
        .iter()
        .find(|r| !r.header("x-hub-signature-256").is_empty())
        .expect("github delivery");
    assert!(
        node(
            &["verify", GH_SECRET, gh.header("x-hub-signature-256")],
            &gh.body
        )
        .0,
        "octokit rejected our signature"
    );
    assert!(
        !node(
            &["verify", "another secret", gh.header("x-hub-signature-256")],
            &gh.body
        )
        .0
    );
}

#[tokio::test]
async fn we_accept_what_the_libraries_sign_and_refuse_stale_or_tampered() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let body = r#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let (ok, sig) = node(&["sign", GH_SECRET], body.as_bytes());
    assert!(ok && sig.starts_with("sha256="), "{sig}");
    let (status, _) = post_json(
        &gw.hook("gh"),
        body,
        &[("x-hub-signature-256", sig.as_str())],
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = post_json(
        &gw.hook("gh"),
        body.replace("awesome", "awesome!"),
        &[("x-hub-signature-256", sig.as_str())],
    )
    .await;
    assert_eq!(status, 401);

    let sw_body = r#"{"type":"ping","data":{}}"#;
    let now = hookgate::testing::now_ms() / 1000;
    for (ts, sent, want) in [
        (now, sw_body, 202),
        (now - 600, sw_body, 401),
        (now, r#"{"type":"pong","data":{}}"#, 401),
    ] {
        let ts = ts.to_string();
        let (ok, sig) = python(
            &["sign", SW_SECRET, "msg_interop_2", &ts],
            sw_body.as_bytes(),
        );
        assert!(ok);
        let headers = [
            ("webhook-id", "msg_interop_2"),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", sig.as_str()),
        ];
        let (status, json) = post_json(&gw.hook("sw"), sent, &headers).await;
        assert_eq!(status, want, "ts {ts}, body {sent}: {json}");
    }
}
