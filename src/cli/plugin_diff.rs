//! `hookgate plugin diff NAME FILE.wasm`: prints the gateway's comparison of a candidate with
//! the active plugin (`POST /admin/v1/plugins/{name}/diff`) for a person: a summary line, then per
//! event and route the outcome of each version and a unified diff of what the targets would get,
//! JSON bodies pretty-printed so a changed field shows as one changed line.
//!
//! It only renders the API's answer; the gateway does the comparing, so the CLI and the API can
//! never disagree about what differs.

use serde_json::Value;
use similar::TextDiff;
use std::fmt::Write as _;

/// The summary and every difference; `true` when something differs. An answer without the
/// counts is an error, never "nothing differs".
pub(crate) fn render(diff: &Value) -> anyhow::Result<(String, bool)> {
    let mut out = String::new();
    let count = |field: &str| {
        diff[field]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("the gateway's answer has no `{field}`: {diff}"))
    };
    let (compared, changed) = (count("compared")?, count("changed")?);
    let active = match diff["active_sha256"].as_str() {
        Some(sha) => short(sha),
        None => "(not uploaded)".into(),
    };
    let _ = writeln!(
        out,
        "plugin `{}` on route(s) {}: {compared} stored event(s) compared, {changed} differ \
         (active {active} -> candidate {})",
        text(&diff["plugin"]),
        list(&diff["routes"]),
        short(diff["candidate_sha256"].as_str().unwrap_or_default()),
    );
    if let (Some(a), Some(c)) = (
        diff["active_mean_us"].as_u64(),
        diff["candidate_mean_us"].as_u64(),
    ) {
        let _ = writeln!(out, "mean call: active {a} µs, candidate {c} µs");
    }
    if diff["truncated"].as_bool() == Some(true) {
        let _ = writeln!(
            out,
            "stopped at the gateway's time limit: narrow it with --since or --limit"
        );
    }
    for d in diff["differences"].as_array().into_iter().flatten() {
        out.push('\n');
        difference(&mut out, d);
    }
    Ok((out, changed > 0))
}

fn difference(out: &mut String, d: &Value) {
    let _ = writeln!(
        out,
        "{} ({}, {}, {}) route `{}`",
        text(&d["event_id"]),
        text(&d["source"]),
        d["event_type"].as_str().unwrap_or("no type"),
        text(&d["received_at"]),
        text(&d["route"]),
    );
    let _ = writeln!(out, "  active:    {}", outcome(&d["active"]));
    let _ = writeln!(out, "  candidate: {}", outcome(&d["candidate"]));
    let (before, after) = (messages(&d["active"]), messages(&d["candidate"]));
    if before == after {
        return;
    }
    let lines = TextDiff::from_lines(&before, &after);
    let unified = lines
        .unified_diff()
        .context_radius(3)
        .header("active", "candidate")
        .to_string();
    for line in unified.lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn outcome(side: &Value) -> String {
    match side["detail"].as_str() {
        Some(detail) => format!("{} ({detail})", text(&side["outcome"])),
        None => text(&side["outcome"]),
    }
}

/// The messages of one side as text lines: target, headers, body (JSON pretty-printed).
fn messages(side: &Value) -> String {
    let mut out = String::new();
    for m in side["messages"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "-> {}", text(&m["target"]));
        for h in m["headers"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "{}: {}", text(&h[0]), text(&h[1]));
        }
        match m["body"].as_str() {
            None => out.push_str("(the event's body, unchanged)\n"),
            Some(body) => {
                let pretty = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok());
                out.push_str(pretty.as_deref().unwrap_or(body));
                out.push('\n');
            }
        }
    }
    out
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn list(v: &Value) -> String {
    let names: Vec<String> = v.as_array().into_iter().flatten().map(text).collect();
    names.join(", ")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_field_shows_as_one_changed_line() {
        let side = |text: &str| {
            serde_json::json!({
                "outcome": "delivered", "detail": "1 message(s)",
                "messages": [{"target": "slack", "headers": [],
                    "body": format!(r##"{{"channel":"#infra","text":"{text}"}}"##)}]
            })
        };
        let diff = serde_json::json!({
            "plugin": "notify", "routes": ["stacks"], "compared": 3, "changed": 1,
            "active_sha256": "aaaaaaaaaaaaaaaa", "candidate_sha256": "bbbbbbbbbbbbbbbb",
            "truncated": false, "active_mean_us": 120, "candidate_mean_us": 150,
            "differences": [{"event_id": "evt_1", "source": "spacelift", "event_type": "run",
                "received_at": "2026-12-03T00:00:00Z", "route": "stacks",
                "active": side("old"), "candidate": side("new")}]
        });
        let (out, differ) = render(&diff).expect("renders");
        assert!(differ);
        assert!(out.starts_with("plugin `notify` on route(s) stacks: 3 stored event(s) compared, 1 differ (active aaaaaaaaaaaa -> candidate bbbbbbbbbbbb)\n"), "{out}");
        assert!(
            out.contains("mean call: active 120 µs, candidate 150 µs"),
            "{out}"
        );
        assert!(out.contains("  -  \"text\": \"old\"\n"), "{out}");
        assert!(out.contains("  +  \"text\": \"new\"\n"), "{out}");
        assert!(out.contains("   \"channel\": \"#infra\",\n"), "{out}");
    }

    #[test]
    fn nothing_changed_says_so_and_is_not_a_difference() {
        let diff = serde_json::json!({"plugin": "p", "routes": ["r"], "compared": 2,
            "changed": 0, "active_sha256": null, "candidate_sha256": "c", "differences": []});
        let (out, differ) = render(&diff).expect("renders");
        assert!(!differ);
        assert!(render(&serde_json::json!({"error": "x"})).is_err());
        assert!(
            out.contains("2 stored event(s) compared, 0 differ (active (not uploaded)"),
            "{out}"
        );
    }
}
