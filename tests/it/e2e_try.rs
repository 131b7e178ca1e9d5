//! `POST /admin/v1/try`: a dry run against a running gateway. A candidate route is validated as
//! a config load would be and comes back as TOML; the answer shows each target's signed request
//! without a configured secret; a runaway mapping fails under the real limits; and nothing is
//! stored or sent.

use crate::utils::admin::{ADMIN, TOKEN};
use crate::utils::{Gateway, Receiver, client, post_json};
use serde_json::{Value, json};
use std::time::Duration;

const SOURCE_SECRET: &str = "try-source-secret-71c0";
const SIGN_SECRET: &str = "try-sign-secret-3e9d";
const HEADER_SECRET: &str = "try-header-key-a55f";
const PLAIN_SECRET: &str = "try-plain-secret-90be";
const PORT_CLIENT_SECRET: &str = "try-port-client-secret-c4d1";

fn config(receiver: &str) -> String {
    format!(
        r#"
{ADMIN}
[jq]
timeout_ms = 500

[sources.gh]
kind = "github"
secret = "{SOURCE_SECRET}"

[targets.t]
url = "{receiver}/hooks/T000/B000/path-secret"
headers = {{ "X-Api-Key" = "{HEADER_SECRET}" }}
sign = {{ scheme = "hmac-sha256", secret = "{SIGN_SECRET}", header = "X-Signature" }}

[targets.port]
url = "{receiver}/port"
sign = {{ scheme = "port", algorithm = "plain", secret = "{PLAIN_SECRET}", header = "X-Port-Secret" }}

[targets.port-api]
url = "{receiver}/api"
port = {{ client_id = "try-client", client_secret = "{PORT_CLIENT_SECRET}" }}

[targets.gh-out]
url = "{receiver}/gh"
headers = {{ "User-Agent" = "mine/1" }}
sign = {{ scheme = "github", secret = "{SIGN_SECRET}" }}

[[routes]]
name = "configured"
source = "gh"
filter = '.body.action == "opened"'
targets = ["t"]
"#
    )
}

async fn try_it(gw: &Gateway, body: Value) -> (u16, Value, String) {
    let resp = client()
        .post(format!(
            "{}/admin/v1/try",
            gw.admin_url.as_deref().expect("admin")
        ))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("try");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

#[tokio::test]
async fn a_candidate_route_shows_the_signed_request_and_its_toml() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let (status, answer, text) = try_it(
        &gw,
        json!({
            "source": "gh",
            "body": r#"{"action":"closed","issue":{"title":"Disk full"}}"#,
            "headers": [["X-GitHub-Event", "issues"]],
            "route": {"filter": ".body.action == \"closed\"", "jq": "{text: .body.issue.title}", "targets": ["t", "port", "gh-out"]},
        }),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(answer["event_type"], "issues");
    // No signature was sent: reported, not refused (the playground pastes unsigned bodies).
    assert!(
        answer["refused"]
            .as_str()
            .is_some_and(|r| r.contains("signature")),
        "{answer}"
    );
    let route = &answer["routes"][0];
    assert_eq!(
        (route["route"].as_str(), route["outcome"].as_str()),
        (Some("playground"), Some("delivered"))
    );
    let request = &route["requests"][0];
    assert_eq!(request["body"], r#"{"text":"Disk full"}"#);
    let header = |name: &str| {
        request["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .map(|h| h[1].as_str().unwrap_or_default().to_string())
    };
    assert!(
        header("x-signature").is_some_and(|s| s.len() >= 64),
        "{request}"
    );
    assert_eq!(header("x-api-key").as_deref(), Some("***"));
    // Port's `plain` scheme sends the secret itself: masked too.
    let port = &route["requests"][1];
    assert_eq!(port["target"], "port", "{route}");
    let plain = port["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h[0] == "X-Port-Secret")
        .map(|h| h[1].clone());
    assert_eq!(plain, Some(Value::from("***")), "{port}");
    // The github scheme's headers replace the configured User-Agent instead of doubling it.
    let gh = &route["requests"][2];
    let named = |name: &str| -> Vec<String> {
        gh["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .map(|h| h[1].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let agents = named("user-agent");
    assert!(
        agents.len() == 1 && agents[0].starts_with("GitHub-Hookshot/"),
        "{gh}"
    );
    assert_eq!(named("x-github-event"), ["issues"], "{gh}");
    let toml = answer["toml"].as_str().expect("toml");
    assert!(
        toml.starts_with("[[routes]]") && toml.contains("jq = "),
        "{toml}"
    );
    for secret in [
        TOKEN,
        SOURCE_SECRET,
        SIGN_SECRET,
        HEADER_SECRET,
        "path-secret",
    ] {
        assert!(!text.contains(secret), "the answer shows `{secret}`");
    }

    // The configured route, for the same event: filtered, with verification asked for it refuses.
    let (_, configured, _) = try_it(
        &gw,
        json!({"source": "gh", "body": r#"{"action":"closed"}"#, "headers": [["x-github-event", "issues"]]}),
    )
    .await;
    assert_eq!(
        configured["routes"][0]["outcome"], "filtered",
        "{configured}"
    );
    assert_eq!(configured["toml"], Value::Null);
    let (status, refused, _) =
        try_it(&gw, json!({"source": "gh", "body": "{}", "verify": true})).await;
    assert_eq!(status, 422, "{refused}");

    // Nothing was stored, nothing sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(gw.deliveries().await.is_empty());
    assert!(receiver.seen().is_empty());
}

/// A Port API target shows Port's own call (method, Port's path, the access token masked), fetches
/// no token and sends nothing; a message that is not an entity says why it would fail.
#[tokio::test]
async fn a_port_api_target_shows_ports_call() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let port = r#"{"mappings": [{"blueprint": "svc", "operation": {"type": "delete", "deleteDependents": true},
        "filter": ".body.action == 'deleted'", "entity": {"identifier": ".body.id"}},
        {"blueprint": "svc", "filter": ".body.action != 'deleted'",
        "entity": {"identifier": ".body.id", "title": ".body.name"}}]}"#;
    let mut calls = Vec::new();
    for action in ["created", "deleted"] {
        let body = format!(r#"{{"action":"{action}","id":"s 1","name":"Payments"}}"#);
        let (status, answer, text) = try_it(
            &gw,
            json!({"source": "gh", "body": body, "route": {"port": port, "targets": ["port-api"]}}),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert!(!text.contains(PORT_CLIENT_SECRET), "{text}");
        let request = answer["routes"][0]["requests"][0].clone();
        assert_eq!(
            request["headers"][0],
            json!(["Authorization", "Bearer ***"]),
            "{request}"
        );
        calls.push((
            request["method"].as_str().unwrap_or_default().to_string(),
            request["url"].as_str().unwrap_or_default().to_string(),
            request["body"].as_str().unwrap_or_default().to_string(),
        ));
    }
    assert_eq!(
        calls,
        [
            (
                "POST".to_string(),
                "http://127.0.0.1/…/v1/blueprints/svc/entities?upsert=true&merge=true".to_string(),
                r#"{"identifier":"s 1","title":"Payments"}"#.to_string()
            ),
            (
                "DELETE".to_string(),
                "http://127.0.0.1/…/v1/blueprints/svc/entities/s%201?delete_dependents=true"
                    .to_string(),
                String::new()
            )
        ]
    );

    // A jq route's message is no entity: the answer says the Port target would refuse it.
    let (_, answer, _) = try_it(
        &gw,
        json!({"source": "gh", "body": "{}", "route": {"jq": "{text: 1}", "targets": ["port-api"]}}),
    )
    .await;
    let problem = answer["routes"][0]["requests"][0]["problem"].as_str();
    assert!(
        problem.is_some_and(|p| p.contains("no blueprint")),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.seen().is_empty());
}

#[tokio::test]
async fn a_broken_route_lists_its_problems_and_a_runaway_one_fails_in_time() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let (status, answer, _) = try_it(
        &gw,
        json!({"source": "gh", "body": "{}", "route": {"jq": ".body |", "targets": ["nowhere"]}}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    let keys: Vec<&str> = answer["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert!(
        keys.contains(&"route.jq") && keys.contains(&"route.targets"),
        "{answer}"
    );

    let started = std::time::Instant::now();
    let (status, answer, _) = try_it(
        &gw,
        json!({"source": "gh", "body": "{}", "route": {"jq": "last(range(1e18))", "targets": ["t"]}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["routes"][0]["outcome"], "failed", "{answer}");
    assert!(
        answer["routes"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("deadline")),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Unknown source, missing body, unknown stored event: clear 4xx answers.
    let (status, _, text) = try_it(&gw, json!({"source": "nope", "body": "{}"})).await;
    assert_eq!(status, 422, "{text}");
    let (status, _, text) = try_it(&gw, json!({"source": "gh"})).await;
    assert_eq!(status, 400, "{text}");
    let (status, _, _) = try_it(&gw, json!({"event_id": "evt_missing"})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_stored_event_is_tried_by_its_id() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let body = br#"{"action":"opened","issue":{"title":"x"}}"#;
    let sig = crate::utils::sha256_header(SOURCE_SECRET, body);
    let (status, stored) = post_json(
        &gw.hook("gh"),
        body.to_vec(),
        &[("x-hub-signature-256", &sig), ("x-github-event", "issues")],
    )
    .await;
    assert_eq!(status, 202);
    gw.wait_deliveries(Duration::from_secs(10), |d| d.len() == 1)
        .await;
    let (status, answer, text) = try_it(
        &gw,
        json!({"event_id": stored["id"], "route": {"jq": ".body.issue", "targets": ["t"]}}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    // The stored headers came along: the signature checks out and the type is known.
    assert_eq!(answer["refused"], Value::Null, "{answer}");
    assert_eq!(answer["event_type"], "issues");
    assert_eq!(
        answer["routes"][0]["requests"][0]["body"],
        r#"{"title":"x"}"#
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gw.deliveries().await.len(),
        1,
        "the dry run added no delivery"
    );
}

#[tokio::test]
async fn the_console_playground_shows_the_result_and_the_jq_error() {
    use crate::utils::console::Console;
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    let empty = console.get("/playground").await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("name=\"code\""), "{}", empty.body);

    let form = |code: &'static str| {
        [
            ("source", "gh"),
            ("headers", "X-GitHub-Event: issues"),
            (
                "body",
                r#"{"action":"opened","issue":{"title":"<b>Disk</b>"}}"#,
            ),
            ("kind", "jq"),
            ("filter", ".body.action == \"opened\""),
            ("code", code),
            ("targets", "t"),
        ]
    };
    let ok = console
        .post("/playground", &form("{text: .body.issue.title}"))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("class=\"delivered\""), "{}", ok.body);
    assert!(
        ok.body.contains("&lt;b&gt;Disk&lt;/b&gt;"),
        "the output is shown inert"
    );
    assert!(ok.body.contains("[[routes]]"), "the TOML is shown");
    for secret in [
        TOKEN,
        SOURCE_SECRET,
        SIGN_SECRET,
        HEADER_SECRET,
        "path-secret",
    ] {
        assert!(!ok.body.contains(secret), "the playground shows `{secret}`");
    }

    let broken = console
        .post("/playground", &form("{text: .body.issue.title"))
        .await;
    assert_eq!(broken.status, 200);
    assert!(broken.body.contains("route.jq"), "{}", broken.body);
    // The form keeps what the user typed.
    assert!(
        broken.body.contains("{text: .body.issue.title</textarea>"),
        "{}",
        broken.body
    );

    // Without the CSRF token, nothing runs.
    let forged = console.post_raw("/playground", &form("."), &[]).await;
    assert_eq!(forged.status, 403);
    assert!(gw.deliveries().await.is_empty());
    assert!(receiver.seen().is_empty());
}
