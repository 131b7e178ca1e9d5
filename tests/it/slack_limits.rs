//! Every Slack-bound mapping the examples ship, fed hostile payloads: each catalog sample of the
//! route's platform with every string made long (past each Slack limit) and hostile (`<!channel>`,
//! a user mention, `&`). What comes out must be a message Slack accepts and that notifies no one:
//! header ≤ 150 characters, section text ≤ 3,000, fields ≤ 2,000 and at most 10, at most 50
//! blocks, button URLs ≤ 3,000, and no `<!…>` or `<@…>` from the payload left unescaped.

use crate::utils::catalog_dir;
use hookgate::testing::{JqProgram, jq_to_json};
use serde_json::Value;
use std::path::PathBuf;

const HOSTILE: &str = " <!channel> & <@U0123ABC|boss> ";

/// (example, route, its platform's preset, its jq) for every route with a `slack` target.
fn slack_routes() -> Vec<(String, String, String, String)> {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&examples).expect("examples/").flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("hookgate.toml")) else {
            continue;
        };
        let config: toml::Value = toml::from_str(&text).expect("example parses");
        let kind_of = |source: &str| {
            config["sources"][source]["kind"]
                .as_str()
                .expect("a preset source")
                .to_string()
        };
        for route in config["routes"].as_array().into_iter().flatten() {
            let slack = route["targets"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t.as_str() == Some("slack")));
            if let (true, Some(jq)) = (slack, route.get("jq").and_then(|j| j.as_str())) {
                out.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    route["name"].as_str().unwrap_or("?").to_string(),
                    kind_of(route["source"].as_str().expect("source")),
                    jq.to_string(),
                ));
            }
        }
    }
    out
}

/// Every string longer and hostile; numbers, booleans and keys as they were.
fn poison(v: &mut Value) {
    match v {
        Value::String(s) => {
            s.push_str(HOSTILE);
            s.push_str(&"é".repeat(4000));
            s.push_str(HOSTILE);
        }
        Value::Array(items) => items.iter_mut().for_each(poison),
        Value::Object(map) => map.values_mut().for_each(poison),
        _ => {}
    }
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// What Slack would refuse in `message`, or payload text that would notify someone.
fn problems(message: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let text = message.to_string();
    for bad in ["<!channel", "<@U0123"] {
        if text.contains(bad) {
            found.push(format!("unescaped `{bad}`"));
        }
    }
    if chars(&message["text"]) > 40_000 {
        found.push("text over 40000".into());
    }
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    if blocks.len() > 50 {
        found.push(format!("{} blocks", blocks.len()));
    }
    for b in &blocks {
        let limit = |what: &str, v: &Value, max: usize, found: &mut Vec<String>| {
            if chars(v) > max {
                found.push(format!("{what} of {} characters", chars(v)));
            }
        };
        match b["type"].as_str() {
            Some("header") => limit("header", &b["text"]["text"], 150, &mut found),
            Some("section") => {
                limit("section text", &b["text"]["text"], 3000, &mut found);
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                if fields.len() > 10 {
                    found.push(format!("{} fields", fields.len()));
                }
                for f in &fields {
                    limit("field", &f["text"], 2000, &mut found);
                }
                limit("accessory url", &b["accessory"]["url"], 3000, &mut found);
            }
            Some("actions") => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    limit("button url", &e["url"], 3000, &mut found);
                }
            }
            _ => {}
        }
    }
    found
}

fn envelope(source: &str, body: Value) -> jaq_json::Val {
    let env = serde_json::json!({
        "id": "evt_1", "source": source, "event_type": "x", "received_at": 0,
        "headers": {}, "queryParams": {}, "body": body,
    });
    jaq_json::read::parse_single(env.to_string().as_bytes()).expect("envelope")
}

#[test]
fn slack_mappings_keep_to_slack_limits_and_escape_payload_text() {
    let routes = slack_routes();
    assert!(routes.len() >= 8, "{routes:?}");
    for (example, route, preset, jq) in routes {
        let program = JqProgram::compile(&jq).expect("the example's jq compiles");
        let samples = catalog_dir().join(&preset).join("samples");
        let mut messages = 0;
        for sample in std::fs::read_dir(&samples).expect("samples").flatten() {
            let name = sample.file_name().to_string_lossy().into_owned();
            if name == "headers.json" {
                continue;
            }
            let mut body: Value =
                serde_json::from_slice(&std::fs::read(sample.path()).expect("sample"))
                    .expect("JSON sample");
            poison(&mut body);
            // A mapping may fail or yield nothing on a platform's other events: that is its
            // route's `events` to keep out. What it does yield must be sendable.
            let Ok(outputs) = program.run(envelope(&preset, body)) else {
                continue;
            };
            for out in outputs {
                let bytes = jq_to_json(&out).expect("JSON out");
                let message: Value = serde_json::from_slice(&bytes).expect("a JSON message");
                let found = problems(&message);
                assert!(
                    found.is_empty(),
                    "{example} route {route} on {preset}/{name}: {found:?}"
                );
                messages += 1;
            }
        }
        assert!(
            messages > 0,
            "{example} route {route}: no sample of {preset} made a message, so nothing was checked"
        );
    }
}

#[test]
fn the_check_finds_what_slack_refuses() {
    let bad = serde_json::json!({
        "text": "hi <!channel>",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}},
                   {"type": "section", "text": {"type": "mrkdwn", "text": "x"},
                    "fields": vec![serde_json::json!({"type": "mrkdwn", "text": "f"}); 11]}],
    });
    assert_eq!(
        problems(&bad),
        [
            "unescaped `<!channel`",
            "header of 151 characters",
            "11 fields"
        ]
    );
}
