//! Producer presets: each platform's fixtures, signed as the platform signs them, get their event
//! types; handshakes (pings, HCP's verification) are answered and not routed; `events` filters.

use crate::utils::{Gateway, Receiver, post_json, sample, sample_headers};
use std::time::Duration;

const SETTLE: Duration = Duration::from_millis(400);

async fn post_sample(gw: &Gateway, source: &str, name: &str) -> u16 {
    let headers = sample_headers(name);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_json(&gw.hook(source), sample(name), &refs).await.0
}

fn config(receiver: &str) -> String {
    format!(
        r#"
[sources.pulumi]
kind = "pulumi"
secret = "pulumi-fixture-secret"

[sources.hcp]
kind = "hcp"
secret = "hcp-fixture-token"

[sources.spacelift]
kind = "spacelift"
secret = "spacelift-fixture-secret"

[targets.t]
url = "{receiver}"

[[routes]]
name = "pulumi-failures"
source = "pulumi"
events = ["update_failed", "destroy_failed", "preview_failed"]
jq = '{{route: "failures", type: .event_type, stack: .body.stackName}}'
targets = ["t"]

[[routes]]
name = "pulumi-all"
source = "pulumi"
jq = '{{route: "all", type: .event_type}}'
targets = ["t"]

[[routes]]
name = "hcp-all"
source = "hcp"
jq = '{{route: "hcp", type: .event_type}}'
targets = ["t"]

[[routes]]
name = "spacelift-errors"
source = "spacelift"
events = ["internal_error"]
jq = '{{route: "errors", type: .event_type, error: .body.error}}'
targets = ["t"]
"#
    )
}

#[tokio::test]
async fn pulumi_kinds_filter_names_and_ping() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let files = [
        "pulumi/ping.json",
        "pulumi/stack_created.json",
        "pulumi/stack_update.json",
        "pulumi/stack_update_failed_destroy.json",
        "pulumi/stack_preview.json",
        "pulumi/deployment.json",
    ];
    for f in files {
        assert_eq!(post_sample(&gw, "pulumi", f).await, 202, "{f}");
    }
    // Five non-ping events reach `all`; the destroy failure and the failed preview reach `failures`.
    let seen = receiver.expect_exactly(7, SETTLE).await;
    let mut got: Vec<(String, String)> = seen
        .iter()
        .map(|r| {
            let j = r.json();
            (
                j["route"].as_str().unwrap_or("").to_string(),
                j["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("all", "deployment"),
        ("all", "stack"),
        ("all", "stack_preview"),
        ("all", "stack_update"),
        ("all", "stack_update"),
        ("failures", "stack_preview"),
        ("failures", "stack_update"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
    let db = gw.db();
    let ping_detail = db
        .one(&format!(
            "SELECT r.detail FROM route_results r WHERE r.event_id IN ({}) \
             AND r.route = 'pulumi-all'",
            db.event_ids_of_type("ping")
        ))
        .await
        .text();
    assert!(ping_detail.contains("handshake"), "{ping_detail}");
}

#[tokio::test]
async fn hcp_verification_is_answered_and_not_routed() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    assert_eq!(post_sample(&gw, "hcp", "hcp/verification.json").await, 202);
    assert_eq!(
        post_sample(&gw, "hcp", "hcp/packer_version_created.json").await,
        202
    );
    let seen = receiver.expect_exactly(1, SETTLE).await;
    assert_eq!(seen[0].json()["type"], "hashicorp.packer.version.create");
}

#[tokio::test]
async fn spacelift_error_events_are_internal_error() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    assert_eq!(
        post_sample(&gw, "spacelift", "spacelift/run_finished.json").await,
        202
    );
    assert_eq!(
        post_sample(&gw, "spacelift", "spacelift/internal_error.json").await,
        202
    );
    let seen = receiver.expect_exactly(1, SETTLE).await;
    assert_eq!(seen[0].json()["type"], "internal_error");
    assert_eq!(
        seen[0].json()["error"],
        "policy triggered for Stack that doesn't exist"
    );
}

#[tokio::test]
async fn nullstone_token_in_header_or_query_and_never_stored() {
    let receiver = Receiver::start().await;
    let config = format!(
        r#"
[sources.nullstone]
kind = "nullstone"
secret = ["ns-token-new", "ns-token-old"]

[targets.t]
url = "{}"

[[routes]]
name = "deploys"
source = "nullstone"
jq = '{{type: .event_type, q: .queryParams}}'
targets = ["t"]
"#,
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    let body = sample("nullstone/deployed.json");
    let (status, _) = post_json(&gw.hook("nullstone"), body.clone(), &[]).await;
    assert_eq!(
        status, 401,
        "a source with a token refuses requests without it"
    );
    let (status, _) = post_json(
        &gw.hook("nullstone"),
        body.clone(),
        &[("X-Hookgate-Token", "wrong")],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post_json(
        &gw.hook("nullstone"),
        body.clone(),
        &[("X-Hookgate-Token", "ns-token-old")],
    )
    .await;
    assert_eq!(status, 202);
    let url = format!("{}?env=prod&token=ns-token-new", gw.hook("nullstone"));
    let (status, _) = post_json(&url, body, &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.expect_exactly(2, SETTLE).await;
    for r in &seen {
        assert_eq!(r.json()["type"], "app-deployed");
    }
    let queries: Vec<serde_json::Value> = seen.iter().map(|r| r.json()["q"].clone()).collect();
    assert!(
        queries.contains(&serde_json::json!({"env": "prod"})),
        "token dropped: {queries:?}"
    );
}

#[tokio::test]
async fn port_security_signing_as_port_checks_it() {
    let receiver = Receiver::start().await;
    let config = format!(
        r#"
[sources.s]
kind = "generic"

[targets.port-sha]
url = "{url}"
sign = {{ scheme = "port", secret = "port-secret", header = "x-signature-256", algorithm = "sha256", prefix = "sha256=" }}

[targets.port-plain]
url = "{url}"
sign = {{ scheme = "port", secret = "port-secret", header = "x-port-secret", algorithm = "plain" }}

[[routes]]
name = "r"
source = "s"
targets = ["port-sha", "port-plain"]
"#,
        url = receiver.url
    );
    let gw = Gateway::start(&config).await;
    post_json(&gw.hook("s"), r#"{"stack":"payments-prod"}"#, &[]).await;
    let seen = receiver.expect_exactly(2, SETTLE).await;
    let sha = seen
        .iter()
        .find(|r| !r.header("x-signature-256").is_empty())
        .expect("sha256 delivery");
    assert_eq!(
        sha.header("x-signature-256"),
        crate::utils::sha256_header("port-secret", &sha.body)
    );
    let plain = seen
        .iter()
        .find(|r| !r.header("x-port-secret").is_empty())
        .expect("plain delivery");
    assert_eq!(plain.header("x-port-secret"), "port-secret");
}
