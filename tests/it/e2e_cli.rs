//! The CLI helpers through the real binary: check, try and sign.

use crate::utils::binary::BIN;
use crate::utils::{sample_headers, sample_path};
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run hookgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CONFIG: &str = r#"
[sources.spacelift]
kind = "spacelift"
secret = "spacelift-fixture-secret"

[targets.port]
url = "http://127.0.0.1:9000/ingest"
sign = { scheme = "github", secret = "port-secret" }

[[routes]]
name = "finished"
source = "spacelift"
filter = '.body.state == "FINISHED"'
jq = '{id: .body.stack.id, state: .body.state}'
targets = ["port"]
"#;

#[test]
fn check_accepts_the_examples_and_lists_every_problem() {
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.toml");
    let (code, out, err) = run(&["check", "--config", quickstart]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains("evaluator children"),
        "all predicates and projections: {out}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // Says what runs jq's interpreter, in evaluator children.
    let contained = dir.path().join("contained.toml");
    let config = CONFIG.replace(
        ".body.state == \"FINISHED\"",
        ".body.state | startswith(\"FIN\")",
    ) + "\n[sources.named]\nkind = \"generic\"\nevent_type = '.body.kind | ascii_downcase'\n";
    std::fs::write(&contained, config).expect("write");
    let (code, out, err) = run(&["check", "--config", contained.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("note: evaluated in contained evaluator children (jq's interpreter): source `named` (event_type), route `finished` (filter)"),
        "{out}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        CONFIG
            .replace("jq = '{id", "jq = '{{id")
            .replace("[\"port\"]", "[\"port\", \"nowhere\"]")
            + "\n[bogus]\n",
    )
    .expect("write");
    let (code, _, err) = run(&["check", "--config", bad.to_str().expect("path")]);
    assert_eq!(code, 1);
    for want in [
        "routes[0].jq",
        "unknown target `nowhere`",
        "bogus: unknown section",
        "3 problems",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

#[test]
fn try_shows_the_filter_verdict_headers_and_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, CONFIG).expect("write");
    let headers = sample_headers("spacelift/run_finished.json");
    let sig = headers
        .iter()
        .find(|(k, _)| k == "X-Signature-256")
        .map(|(_, v)| v.as_str())
        .expect("sig");
    let body = sample_path("spacelift/run_finished.json");
    let header = format!("X-Signature-256: {sig}");
    let (code, out, err) = run(&[
        "try",
        "--config",
        config.to_str().expect("p"),
        "--source",
        "spacelift",
        "--body",
        body.to_str().expect("p"),
        "--header",
        &header,
    ]);
    assert_eq!(code, 0, "{err}");
    let expected_body = r#"{"id":"payments-prod","state":"FINISHED"}"#;
    let expected_sig = crate::utils::sha256_header("port-secret", expected_body.as_bytes());
    for want in [
        "event type: run_state_changed_event",
        "route `finished`: delivered",
        "-> target `port`: POST http://127.0.0.1:9000/ingest",
        &format!("X-Hub-Signature-256: {expected_sig}"),
        "X-Hookgate-Attempt: 1",
        expected_body,
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    // Without the signature, try says what ingress would answer.
    let (code, _, err) = run(&[
        "try",
        "--config",
        config.to_str().expect("p"),
        "--source",
        "spacelift",
        "--body",
        body.to_str().expect("p"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("missing signature header"), "{err}");
    // An unconfirmed run is filtered.
    let unconfirmed = sample_path("spacelift/run_unconfirmed.json");
    let headers = sample_headers("spacelift/run_unconfirmed.json");
    let sig = headers
        .iter()
        .find(|(k, _)| k == "X-Signature-256")
        .map(|(_, v)| v.as_str())
        .expect("sig");
    let header = format!("X-Signature-256: {sig}");
    let (code, out, _) = run(&[
        "try",
        "--config",
        config.to_str().expect("p"),
        "--source",
        "spacelift",
        "--body",
        unconfirmed.to_str().expect("p"),
        "--header",
        &header,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("route `finished`: filtered"), "{out}");
}

#[test]
fn sign_prints_what_a_producer_sends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body");
    std::fs::write(&body, "Hello, World!").expect("write");
    let (code, out, err) = run(&[
        "sign",
        "--scheme",
        "github",
        "--secret",
        "It's a Secret to Everybody",
        "--body",
        body.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{err}");
    // As GitHub sends it: the signature, then what receivers written for GitHub also require.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    assert_eq!(lines[1], "X-GitHub-Event: unknown");
    assert!(lines[2].starts_with("X-GitHub-Delivery: "), "{out}");
    assert!(
        lines[3].starts_with("User-Agent: GitHub-Hookshot/"),
        "{out}"
    );
    let (code, _, err) = run(&[
        "sign",
        "--scheme",
        "nope",
        "--secret",
        "x",
        "--body",
        body.to_str().expect("p"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown scheme"), "{err}");
}

/// The binary's allocator runs with the options `src/main.rs` gives it: jemalloc reads them from
/// a symbol whose name depends on how the crate prefixes jemalloc's, so a rename would drop them
/// without a word. jemalloc prints its options at exit when the environment asks.
#[test]
fn the_allocator_never_uses_transparent_huge_pages() {
    let out = Command::new(BIN)
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("run hookgate");
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stats}");
    assert!(stats.contains(r#"opt.thp: "never""#), "{stats}");
}
