//! A `port` target writes a `port` route's entities through Port's REST API: an access token
//! from the client id and secret, kept and fetched again on 401, upserts and deletes on Port's
//! paths, and Port's 429 with `Retry-After` honoured. The receiver answers as Port's API does.

use crate::utils::{Gateway, Receiver, Reply, fixture, post_json, sample, sample_headers};
use std::time::Duration;

const SECRET: &str = "port-client-secret-0f9e8d7c";

/// A gateway whose target `port` is Port's API at `api`, with one route made by `transform`.
fn config_with(api: &str, transform: &str) -> String {
    format!(
        r#"
[sources.s]
kind = "generic"

[targets.port]
url = "{api}"
port = {{ client_id = "cid", client_secret = "{SECRET}" }}
retry = {{ initial = "100ms", max = "2s" }}

[[routes]]
name = "services"
source = "s"
{transform}
targets = ["port"]
"#
    )
}

fn config(api: &str) -> String {
    config_with(
        api,
        r#"port = '''{"mappings": [
  {"blueprint": "svc", "filter": ".body.action != 'deleted'",
    "entity": {"identifier": ".body.id", "title": ".body.name",
               "properties": {"tier": ".body.tier"}, "relations": {"team": ".body.team"}}},
  {"blueprint": "svc", "operation": {"type": "delete", "deleteDependents": true},
    "filter": ".body.action == 'deleted'", "entity": {"identifier": ".body.id"}}
]}'''"#,
    )
}

fn token(t: &str) -> Reply {
    Reply::status(200).body(format!(
        r#"{{"ok":true,"accessToken":"{t}","expiresIn":3600,"tokenType":"Bearer"}}"#
    ))
}

#[tokio::test]
async fn a_port_target_upserts_and_deletes_through_ports_api() {
    let api = Receiver::start().await;
    let gw = Gateway::start(&config(&api.url)).await;
    api.script([token("tok-1")]);

    let body = r#"{"action":"created","id":"s1","name":"Payments","tier":1,"team":"core"}"#;
    assert_eq!(post_json(&gw.hook("s"), body, &[]).await.0, 202);
    let seen = api.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/in/v1/auth/access_token")
    );
    assert_eq!(
        seen[0].json(),
        serde_json::json!({"clientId": "cid", "clientSecret": SECRET})
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        (
            "POST",
            "/in/v1/blueprints/svc/entities?upsert=true&merge=true"
        )
    );
    assert_eq!(seen[1].header("authorization"), "Bearer tok-1");
    assert_eq!(
        seen[1].json(),
        serde_json::json!({"identifier": "s1", "title": "Payments",
            "properties": {"tier": 1}, "relations": {"team": "core"}})
    );

    // The token is kept; a delete is Port's DELETE with its dependents flag.
    api.clear();
    let body = r#"{"action":"deleted","id":"s1"}"#;
    assert_eq!(post_json(&gw.hook("s"), body, &[]).await.0, 202);
    let seen = api.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        (
            "DELETE",
            "/in/v1/blueprints/svc/entities/s1?delete_dependents=true"
        )
    );
    assert_eq!(seen[0].header("authorization"), "Bearer tok-1");

    // A 401 gets a new token and the call again, within the same attempt.
    api.clear();
    api.script([Reply::status(401), token("tok-2")]);
    let body = r#"{"action":"updated","id":"s2","name":"Ledger"}"#;
    assert_eq!(post_json(&gw.hook("s"), body, &[]).await.0, 202);
    let seen = api.wait_for(3, Duration::from_secs(10)).await;
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.header("authorization")))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "Bearer tok-1"),
            ("POST", ""),
            ("POST", "Bearer tok-2")
        ]
    );

    // Port's rate limit: 429 with Retry-After, then the call again.
    api.clear();
    api.script([Reply::status(429).header("retry-after", "1")]);
    let body = r#"{"action":"updated","id":"s3","name":"Fees"}"#;
    assert_eq!(post_json(&gw.hook("s"), body, &[]).await.0, 202);
    let seen = api.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        seen[1].at.duration_since(seen[0].at) >= Duration::from_millis(900),
        "Retry-After is honoured"
    );
    assert_eq!(seen[1].header("authorization"), "Bearer tok-2");
}

/// A message that is not a `port` route's entity fails its delivery with the reason, and the
/// client secret shows nowhere in the delivery log.
#[tokio::test]
async fn a_port_target_refuses_other_messages_and_keeps_its_secret() {
    let api = Receiver::start().await;
    let gw = Gateway::start(&config_with(&api.url, "jq = '{text: .body.name}'")).await;
    assert_eq!(
        post_json(&gw.hook("s"), r#"{"name":"x"}"#, &[]).await.0,
        202
    );
    let d = gw
        .wait_deliveries(Duration::from_secs(10), |d| {
            d.iter().any(|x| x.2 == "failed")
        })
        .await;
    assert_eq!(d.len(), 1, "{d:?}");
    let err = gw
        .db()
        .one("SELECT last_error FROM deliveries")
        .await
        .text();
    assert!(err.contains("not an entity message"), "{err}");
    assert!(api.seen().is_empty(), "nothing was sent to Port");
    let log = gw
        .db()
        .one("SELECT COUNT(*) FROM attempts WHERE error LIKE '%port-client-secret%'")
        .await
        .int();
    assert_eq!(log, 0);
}

/// The shipped example, as a user runs it: Port's own Spacelift configuration pasted unchanged,
/// the signed Spacelift sample in, Port's entity upserted through its API.
#[tokio::test]
async fn the_spacelift_to_port_example_writes_ports_entity_through_its_api() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/spacelift-to-port");
    let text = std::fs::read_to_string(dir.join("hookgate.toml")).expect("example");

    // Port's file, unchanged: what Port's guide shows (the fixture's `security` is our addition).
    let example: toml::Value = toml::from_str(&text).expect("toml");
    let pasted: serde_json::Value =
        serde_json::from_str(example["routes"][0]["port"].as_str().expect("port")).expect("json");
    let mut ports: serde_json::Value =
        serde_json::from_slice(&fixture("port_spacelift_webhook_config.json")).expect("json");
    ports.as_object_mut().expect("object").remove("security");
    assert_eq!(pasted, ports);

    let api = Receiver::start().await;
    // The gateway's own [server] and [store]; the example's sources, targets and routes.
    let from_sources = &text[text.find("[sources.spacelift]").expect("sources")..];
    let config = from_sources
        .replace("https://api.getport.io", &api.url)
        .replace("${SPACELIFT_SECRET}", "spacelift-fixture-secret")
        .replace("${PORT_CLIENT_ID}", "cid")
        .replace("${PORT_CLIENT_SECRET}", SECRET);
    let gw = Gateway::start(&config).await;
    api.script([token("tok-1")]);
    let headers = sample_headers("spacelift/run_finished.json");
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = sample("spacelift/run_finished.json");
    assert_eq!(
        post_json(&gw.hook("spacelift"), body, &headers).await.0,
        202
    );

    let seen = api.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(seen[0].path, "/in/v1/auth/access_token");
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        (
            "POST",
            "/in/v1/blueprints/space_lift_stack/entities?upsert=true&merge=true"
        )
    );
    let mut want: serde_json::Value =
        serde_json::from_slice(&fixture("port_spacelift_entity_result.json")).expect("json");
    let want = want.as_object_mut().expect("object");
    assert_eq!(want.remove("blueprint"), Some("space_lift_stack".into()));
    // Port's result shows `relations: {}` for a mapping that names none; its API is sent none.
    assert_eq!(want.remove("relations"), Some(serde_json::json!({})));
    assert_eq!(seen[1].json(), serde_json::Value::Object(want.clone()));
}
