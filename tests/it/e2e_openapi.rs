//! The admin API against its OpenAPI document: the gateway serves the checked-in
//! `docs/openapi.json`, and schemathesis (PyPI; `HOOKGATE_SCHEMATHESIS` names its executable,
//! which `./scripts/test` installs) sends a bounded number of generated requests to every
//! operation of a live gateway with data in it: no answer may be a 5xx, and every answer must
//! match the document (status code, content type, schema).

use crate::utils::admin::{ADMIN, TOKEN};
use crate::utils::{Gateway, Receiver, Reply, client, post_json};
use std::time::Duration;

const DOCUMENT: &str = include_str!("../../docs/openapi.json");

fn config(receiver: &str) -> String {
    format!(
        r#"
{ADMIN}
[sources.plain]
kind = "generic"

[targets.t]
url = "{receiver}/hook"
retry = {{ max_attempts = 1 }}

[[routes]]
name = "to-t"
source = "plain"
filter = '.body.kind != "skip"'
targets = ["t"]
"#
    )
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let resp = client()
        .get(format!(
            "{}/admin/v1/openapi.json",
            gw.admin_url.as_deref().expect("admin")
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 200, "served without a token");
    assert_eq!(resp.text().await.expect("body"), DOCUMENT);
}

#[tokio::test]
async fn every_operation_answers_as_the_document_says() {
    let Ok(schemathesis) = std::env::var("HOOKGATE_SCHEMATHESIS") else {
        panic!("HOOKGATE_SCHEMATHESIS is not set: run ./scripts/test, which installs schemathesis");
    };
    let receiver = Receiver::start().await;
    // Some deliveries succeed, some end dead, so lists, retries and attempts have data.
    receiver.script([Reply::status(200), Reply::status(500), Reply::status(200)]);
    let gw = Gateway::start(&config(&receiver.url)).await;
    for n in 0..3 {
        post_json(&gw.hook("plain"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.len() == 3 && d.iter().all(|x| x.2 != "pending")
    })
    .await;
    let base = gw.admin_url.clone().expect("admin");
    let args = [
        "run".to_string(),
        format!("{base}/admin/v1/openapi.json"),
        "--url".into(),
        base.clone(),
        "-H".into(),
        format!("Authorization: Bearer {TOKEN}"),
        "--checks".into(),
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance".into(),
        "--max-examples".into(),
        "25".into(),
        "--seed".into(),
        "20261202".into(),
        "--request-timeout".into(),
        "10".into(),
        "--workers".into(),
        "2".into(),
        "--phases".into(),
        "examples,coverage,fuzzing".into(),
        "--no-color".into(),
    ];
    // Schemathesis keeps a `.schemathesis/` cache of past failures in its working folder and
    // replays them: run in a fresh one, so each run is only its seed and leaves the checkout alone.
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(schemathesis)
            .args(&args)
            .current_dir(scratch.path())
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("join");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(!report.contains(TOKEN), "the report shows the token");
}
