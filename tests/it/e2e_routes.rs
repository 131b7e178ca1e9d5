//! Routes: filter, jq, Port-style map, fan-out, filtered, failing mappings, passthrough.

use crate::utils::{Gateway, Receiver, fixture, post_json, sample, sha256_header};
use std::time::Duration;

const SETTLE: Duration = Duration::from_millis(300);

#[tokio::test]
async fn port_spacelift_mapping_produces_the_port_entity() {
    let receiver = Receiver::start().await;
    // The mapping of tests/fixtures/port_spacelift_webhook_config.json, pasted as a `map`.
    let port: serde_json::Value =
        serde_json::from_slice(&fixture("port_spacelift_webhook_config.json")).expect("json");
    let entity = &port["mappings"][0]["entity"];
    let props = entity["properties"].as_object().expect("properties");
    let props_toml: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v.as_str().expect("str"))))
        .collect();
    let config = format!(
        r#"
[sources.spacelift]
kind = "spacelift"
secret = "spacelift-fixture-secret"

[targets.port]
url = "{url}"

[[routes]]
name = "stack-to-port"
source = "spacelift"
filter = {filter}
map = {{ blueprint = '"space_lift_stack"', identifier = {id}, title = {title}, properties = {{ {props} }}, relations = {{}} }}
targets = ["port"]
"#,
        url = receiver.url,
        filter = toml_str(port["mappings"][0]["filter"].as_str().expect("filter")),
        id = toml_str(entity["identifier"].as_str().expect("id")),
        title = toml_str(entity["title"].as_str().expect("title")),
        props = props_toml.join(", "),
    );
    let gw = Gateway::start(&config).await;
    let body = sample("spacelift/run_finished.json");
    let sig = sha256_header("spacelift-fixture-secret", &body);
    let (status, _) = post_json(&gw.hook("spacelift"), body, &[("X-Signature-256", &sig)]).await;
    assert_eq!(status, 202);
    let seen = receiver.expect_exactly(1, SETTLE).await;
    let want: serde_json::Value =
        serde_json::from_slice(&fixture("port_spacelift_entity_result.json")).expect("json");
    assert_eq!(seen[0].json(), want);
    // Key order follows the mapping, as Port shows it.
    let text = String::from_utf8_lossy(&seen[0].body).to_string();
    assert!(
        text.starts_with(r#"{"blueprint":"space_lift_stack","identifier":"payments-prod""#),
        "{text}"
    );
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn two_route_config(url: &str, first: &str) -> String {
    format!(
        r#"
[sources.s]
kind = "generic"

[targets.a]
url = "{url}?t=a"

[targets.b]
url = "{url}?t=b"

[[routes]]
name = "first"
source = "s"
{first}
targets = ["a"]

[[routes]]
name = "second"
source = "s"
jq = '{{second: .body.n}}'
targets = ["b"]
"#
    )
}

#[tokio::test]
async fn filter_lets_through_only_what_yields_true() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&two_route_config(
        &receiver.url,
        r#"filter = '.body.n > 1'
jq = '{first: .body.n, type: .event_type, h: .headers["x-team"], q: .queryParams.env}'"#,
    ))
    .await;
    for n in [1, 2] {
        let url = format!("{}?env=prod", gw.hook("s"));
        let (status, _) = post_json(
            &url,
            format!(r#"{{"n":{n}}}"#),
            &[("X-Team", "platform"), ("Authorization", "Bearer hide-me")],
        )
        .await;
        assert_eq!(status, 202);
    }
    let seen = receiver.expect_exactly(3, SETTLE).await;
    let bodies: Vec<serde_json::Value> = seen.iter().map(|r| r.json()).collect();
    assert!(
        bodies
            .contains(&serde_json::json!({"first": 2, "type": null, "h": "platform", "q": "prod"})),
        "{bodies:?}"
    );
    assert_eq!(
        bodies.iter().filter(|b| b.get("second").is_some()).count(),
        2
    );
    gw.wait_routed().await;
    let statuses = gw.deliveries().await;
    assert_eq!(
        statuses.len(),
        3,
        "filtered events make no delivery: {statuses:?}"
    );
    let filtered = gw
        .db()
        .count("SELECT COUNT(*) FROM route_results WHERE outcome = 'filtered'")
        .await;
    assert_eq!(filtered, 1, "the filtered event is recorded as filtered");
}

#[tokio::test]
async fn several_outputs_make_several_deliveries_and_none_is_filtered() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&two_route_config(
        &receiver.url,
        r#"jq = '.body.items[] | {item: .}'"#,
    ))
    .await;
    post_json(&gw.hook("s"), r#"{"n":0,"items":["x","y","z"]}"#, &[]).await;
    post_json(&gw.hook("s"), r#"{"n":0,"items":[]}"#, &[]).await;
    let seen = receiver.expect_exactly(5, SETTLE).await;
    let items: Vec<serde_json::Value> = seen
        .iter()
        .filter_map(|r| r.json().get("item").cloned())
        .collect();
    assert_eq!(items.len(), 3, "{items:?}");
    // Each output is its own delivery with its own id.
    let ids: std::collections::HashSet<&str> = seen
        .iter()
        .map(|r| r.header("x-hookgate-delivery"))
        .collect();
    assert_eq!(ids.len(), 5);
}

#[tokio::test]
async fn a_failing_mapping_fails_its_route_and_others_go_on() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&two_route_config(
        &receiver.url,
        r#"jq = '.body.n + "text"'"#,
    ))
    .await;
    let (status, _) = post_json(&gw.hook("s"), r#"{"n":5}"#, &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.expect_exactly(1, SETTLE).await;
    assert_eq!(seen[0].json(), serde_json::json!({"second": 5}));
    let d = gw
        .wait_deliveries(Duration::from_secs(5), |d| {
            d.iter().any(|x| x.2 == "succeeded")
        })
        .await;
    assert!(
        d.contains(&("first".into(), "a".into(), "failed".into())),
        "{d:?}"
    );
    let err = gw
        .db()
        .one("SELECT last_error FROM deliveries WHERE route = 'first'")
        .await
        .text();
    assert!(err.contains("cannot"), "the jq message is kept: {err}");
}

/// A mapping that never ends, recurses without end, or eats memory fails only its own route on the
/// event it runs on, with the cause: the event's other route delivers, the next event is routed as
/// usual and the gateway stays up.
#[tokio::test]
async fn runaway_mappings_are_contained_to_their_route() {
    let cases = [
        ("last(range(1e18))", 300, "exceeded the 300ms deadline"),
        ("def f: 1 + f; f", 5000, "crashed"),
        ("[range(1e10)] | length", 20000, "crashed"),
    ];
    for (bad, timeout_ms, why) in cases {
        let receiver = Receiver::start().await;
        let jq = format!("jq = 'if .body.n == 1 then {bad} else {{ok: .body.n}} end'");
        let config = two_route_config(&receiver.url, &jq)
            + &format!("\n[jq]\ntimeout_ms = {timeout_ms}\nmemory_mb = 64\n");
        let gw = Gateway::start(&config).await;
        post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
        post_json(&gw.hook("s"), r#"{"n":2}"#, &[]).await;
        // Event 1: only the runaway route fails, the innocent one delivers; event 2: both deliver.
        let seen = receiver.wait_for(3, Duration::from_secs(30)).await;
        let mut bodies: Vec<String> = seen.iter().map(|r| r.json().to_string()).collect();
        bodies.sort();
        assert_eq!(
            bodies,
            [r#"{"ok":2}"#, r#"{"second":1}"#, r#"{"second":2}"#],
            "{bad}"
        );
        only_the_first_route_failed(&gw, why, bad).await;
    }
}

/// Once routing settles: exactly one delivery failed, of route `first`, with `why` in its error.
async fn only_the_first_route_failed(gw: &Gateway, why: &str, case: &str) {
    gw.wait_routed().await;
    let failed = gw
        .db()
        .rows("SELECT route, last_error FROM deliveries WHERE status = 'failed'")
        .await;
    assert_eq!(failed.len(), 1, "{case}: {failed:?}");
    assert_eq!(failed[0][0].text(), "first", "{case}");
    assert!(failed[0][1].text().contains(why), "{case}: {failed:?}");
}

/// The evaluator child writes a request's answers together. An answer made before a later event
/// of the same request runs away still arrives (the gateway asks for what the child holds), so
/// only the runaway is blamed: one evaluation failed, counted in `/metrics`, not two.
#[tokio::test]
async fn an_answer_made_before_a_runaway_neighbour_is_not_held_back() {
    let receiver = Receiver::start().await;
    // n = 0 keeps the child busy (well under the deadline) while 1 and 2 queue up behind it, so
    // those two are evaluated in one request: 1 at once, then 2 without end.
    let jq = "jq = 'if .body.n == 0 then (reduce range(0; 400000) as $i (0; . + $i) | {ok: 0}) \
              elif .body.n == 2 then last(range(1e18)) else {ok: .body.n} end'";
    let config = two_route_config(&receiver.url, jq) + "\n[jq]\ntimeout_ms = 2000\n";
    let gw = Gateway::start(&config).await;
    let hook = gw.hook("s");
    post_json(&hook, r#"{"n":0}"#, &[]).await;
    tokio::join!(
        post_json(&hook, r#"{"n":1}"#, &[]),
        post_json(&hook, r#"{"n":2}"#, &[]),
    );
    // Event 2's first route fails for its own runaway; everything else is delivered.
    receiver.wait_for(5, Duration::from_secs(60)).await;
    only_the_first_route_failed(&gw, "deadline", "event 2's runaway").await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("hookgate_route_evaluations_failed_total{cause=\"overran\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_transform_the_body_passes_byte_for_byte() {
    let receiver = Receiver::start().await;
    let config = format!(
        r#"
[sources.s]
kind = "generic"

[targets.t]
url = "{}"
headers = {{ "X-Team" = "platform" }}

[[routes]]
name = "pass"
source = "s"
targets = ["t"]
"#,
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    let body = "{ \"spaced\" :  [1, 2.50, \"\\u00e9\"] ,\"z\":null }\n";
    post_json(&gw.hook("s"), body, &[]).await;
    let seen = receiver.expect_exactly(1, SETTLE).await;
    assert_eq!(&seen[0].body[..], body.as_bytes());
    assert_eq!(seen[0].header("x-team"), "platform");
    assert_eq!(seen[0].header("content-type"), "application/json");
}

/// Port's own webhook configuration, pasted as Port exports it (its Spacelift stack mapping), makes
/// the entity Port's guide shows from Spacelift's run-state webhook; a second mapping of the same
/// file, with `itemsToParse`, makes one entity per item, and one whose filter fails makes none.
#[tokio::test]
async fn ports_configuration_pasted_as_port_exports_it() {
    let receiver = Receiver::start().await;
    let mut port: serde_json::Value =
        serde_json::from_slice(&fixture("port_spacelift_webhook_config.json")).expect("json");
    // Port checks the sender with `security`; here the source does, so it is left as exported.
    let mappings = port["mappings"].as_array_mut().expect("mappings");
    mappings.push(serde_json::json!({
        "blueprint": "space_lift_label", "itemsToParse": ".body.stack.labels",
        "entity": {"identifier": ".item", "title": "'Label'", "relations": {"stack": ".body.stack.id"}}
    }));
    mappings.push(serde_json::json!({
        "blueprint": "never", "filter": ".body.state == 'DELETED'", "entity": {"identifier": ".body.stack.id"}
    }));
    let config = format!(
        r#"
[sources.s]
kind = "generic"

[targets.port]
url = "{}"

[[routes]]
name = "spacelift-to-port"
source = "s"
port = '''{}'''
targets = ["port"]
"#,
        receiver.url, port
    );
    let gw = Gateway::start(&config).await;
    let (status, _) = post_json(&gw.hook("s"), sample("spacelift/run_finished.json"), &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.expect_exactly(3, SETTLE).await;
    let mut want: serde_json::Value =
        serde_json::from_slice(&fixture("port_spacelift_entity_result.json")).expect("json");
    let blueprint = want["blueprint"].take();
    let entity = want.as_object_mut().expect("object");
    entity.remove("blueprint");
    entity.remove("relations");
    let bodies: Vec<serde_json::Value> = seen.iter().map(|r| r.json()).collect();
    let stack = bodies
        .iter()
        .find(|b| b["blueprint"] == blueprint)
        .expect("the stack entity");
    assert_eq!(stack["operation"], "create");
    assert_eq!(stack["entity"], want);
    let labels: Vec<&serde_json::Value> = bodies
        .iter()
        .filter(|b| b["blueprint"] == "space_lift_label")
        .map(|b| &b["entity"]["identifier"])
        .collect();
    assert_eq!(labels, ["team:payments", "env:prod"]);
}
