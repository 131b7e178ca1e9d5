//! Interop with code no one here wrote: Standard Webhooks' Python library, Svix's Python and
//! JavaScript libraries and GitHub's `@octokit/webhooks-methods` verify what hookgate signs, and
//! sign what hookgate must accept; `@octokit/webhooks`' Node middleware, a receiver written for
//! GitHub, accepts what a github-signed target sends. `./scripts/test` installs them (pinned in
//! tests/interop) and points `HOOKGATE_INTEROP_PYTHON` / `HOOKGATE_INTEROP_DIR` at them.

use crate::utils::{Gateway, Receiver, post_json};
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
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

/// Svix's libraries: `lang` is "python" or "node".
fn svix(lang: &str, args: &[&str], stdin: &[u8]) -> (bool, String) {
    let (program, script) = match lang {
        "python" => (env("HOOKGATE_INTEROP_PYTHON"), "svix_lib.py"),
        _ => ("node".to_string(), "svix.mjs"),
    };
    let mut all = vec![script];
    all.extend_from_slice(args);
    run(&program, &all, stdin)
}

/// `@octokit/webhooks`' middleware on a Node HTTP server (tests/interop/octokit_receiver.mjs):
/// its URL and every line it printed after `listening` (one JSON object per request).
struct OctokitReceiver {
    url: String,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    child: Child,
}

impl OctokitReceiver {
    fn start(secret: &str) -> Self {
        let mut child = Command::new("node")
            .args(["octokit_receiver.mjs", secret])
            .current_dir(env("HOOKGATE_INTEROP_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node octokit_receiver.mjs");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = out.next().expect("a line").expect("utf-8");
        let port = first.strip_prefix("listening ").expect("listening PORT");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in out.map_while(Result::ok) {
                let value = serde_json::from_str(&line).expect("a JSON line");
                kept.lock().expect("lines").push(value);
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/github"),
            lines,
            child,
        }
    }

    async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let lines = self.lines.lock().expect("lines").clone();
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("octokit got {:?}", self.lines.lock().expect("lines"));
    }
}

impl Drop for OctokitReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// The Svix-named headers that Svix (and Clerk, Resend, … built on it) send by default, signed by
/// Svix's Python and JavaScript libraries, are accepted, also with a source secret written without
/// `whsec_` (the same base64 key, as the libraries read it); what hookgate signs both libraries
/// verify; and octokit's middleware accepts a github-signed delivery, with the event type and a
/// delivery GUID that a retry keeps.
#[tokio::test]
async fn svix_senders_and_receivers_and_octokits_middleware_interoperate() {
    let receiver = Receiver::start().await;
    let octokit = OctokitReceiver::start(GH_SECRET);
    let raw_secret = SW_SECRET.trim_start_matches("whsec_");
    let text = format!(
        r#"
{admin}
[sources.svix]
kind = "standard-webhooks"
secret = "{SW_SECRET}"

[sources.svix-raw]
kind = "standard-webhooks"
secret = "{raw_secret}"

[targets.sw-out]
url = "{receiver}"
sign = {{ scheme = "standard-webhooks", secret = "{raw_secret}" }}

[targets.octokit]
url = "{octokit}"
sign = {{ scheme = "github", secret = "{GH_SECRET}" }}

[[routes]]
name = "out"
source = "svix"
targets = ["sw-out", "octokit"]
"#,
        admin = crate::utils::admin::ADMIN,
        receiver = receiver.url,
        octokit = octokit.url,
    );
    let gw = Gateway::start(&text).await;
    let now = (hookgate::testing::now_ms() / 1000).to_string();
    for (lang, source, secret) in [
        ("python", "svix", SW_SECRET),
        ("node", "svix-raw", raw_secret),
    ] {
        let body = format!(r#"{{"type":"user.created","data":{{"by":"{lang}"}}}}"#);
        let id = format!("msg_{lang}");
        let (ok, sig) = svix(lang, &["sign", secret, &id, &now], body.as_bytes());
        assert!(ok && sig.starts_with("v1,"), "{lang} sign: {sig}");
        let headers = [
            ("svix-id", id.as_str()),
            ("svix-timestamp", now.as_str()),
            ("svix-signature", sig.as_str()),
        ];
        let (status, json) = post_json(&gw.hook(source), body.clone(), &headers).await;
        assert_eq!(status, 202, "{lang} → {source}: {json}");
        let tampered = body.replace("user.created", "user.deleted");
        let (status, _) = post_json(&gw.hook(source), tampered, &headers).await;
        assert_eq!(status, 401, "{lang} tampered");
    }
    let (status, json) = post_json(&gw.hook("svix"), "{}", &[]).await;
    assert_eq!(status, 401);
    let why = json.to_string();
    assert!(
        why.contains("webhook-id") && why.contains("svix-id"),
        "{why}"
    );

    // One event went through the route: to the Standard Webhooks receiver and to octokit.
    let seen = receiver.expect_exactly(1, Duration::from_millis(300)).await;
    let request = serde_json::json!({
        "body": String::from_utf8_lossy(&seen[0].body),
        "headers": {
            "webhook-id": seen[0].header("webhook-id"),
            "webhook-timestamp": seen[0].header("webhook-timestamp"),
            "webhook-signature": seen[0].header("webhook-signature"),
        },
    });
    for lang in ["python", "node"] {
        for secret in [SW_SECRET, raw_secret] {
            let (ok, _) = svix(lang, &["verify", secret], request.to_string().as_bytes());
            assert!(
                ok,
                "svix ({lang}, {secret}) rejected our signature: {request}"
            );
        }
    }
    let got = octokit.wait_for(1).await;
    assert_eq!(got[0]["name"], "user.created", "{got:?}");
    assert_eq!(got[0]["payload"]["data"]["by"], "python");
    let guid = got[0]["id"]
        .as_str()
        .expect("the delivery GUID")
        .to_string();
    assert_eq!(guid.len(), 36, "{guid}");
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.len() == 2 && d.iter().all(|x| x.2 == "succeeded")
    })
    .await;

    // A retry is the same delivery: octokit sees the same GUID.
    let ids = gw.delivery_ids().await;
    let client = reqwest::Client::new();
    for id in &ids {
        let r = client
            .post(format!(
                "{}/admin/v1/deliveries/{id}/retry",
                gw.admin_url.as_deref().expect("admin")
            ))
            .bearer_auth(crate::utils::admin::TOKEN)
            .send()
            .await
            .expect("retry");
        assert!(r.status().is_success(), "{}", r.status());
    }
    let got = octokit.wait_for(2).await;
    assert_eq!(got[1]["id"], guid.as_str(), "{got:?}");
}
