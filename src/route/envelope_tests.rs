//! Unit tests of the envelope: what a mapping sees of an event.

use super::*;

#[test]
fn nesting_is_measured_outside_strings_only() {
    let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
    assert!(nests_deeper_than(deep.as_bytes(), 128));
    let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
    assert!(!nests_deeper_than(ok.as_bytes(), 128));
    let quoted = format!(r#"{{"a": "{}\\", "b": "\"[[["}}"#, "[".repeat(500));
    assert!(!nests_deeper_than(quoted.as_bytes(), 2));
    assert!(nests_deeper_than(br#"{"a":{"b":[1]}}"#, 2));
    assert!(!nests_deeper_than(
        br#"["[[", "\\", "\"[", "unterminated [[["#,
        1
    ));
    assert!(nests_deeper_than(br#"["a\\", ["b\"", [1]]]"#, 2));
    assert!(!nests_deeper_than(br#"["a\\", ["b\"", [1]]]"#, 3));
    assert!(
        !nests_deeper_than(br#"[["a\"#, 3),
        "a body ending in an escape"
    );
}

#[test]
fn a_body_nested_past_the_limit_is_a_body_error_not_a_stack_overflow() {
    let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let event = StoredEvent {
        id: "evt_1".into(),
        source: "s".into(),
        received_at: 0,
        headers: Vec::new(),
        query: Vec::new(),
        body: body.into(),
        replays: 0,
    };
    let err = Envelope::build(&event, BodyFormat::Json, &EventTypeRule::None).unwrap_err();
    assert!(
        err.to_string().contains("nests deeper than 128 levels"),
        "{err}"
    );
}

fn event(headers: &[(&str, &str)], body: &str) -> StoredEvent {
    StoredEvent {
        id: "evt_1".into(),
        source: "s".into(),
        received_at: 0,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        query: Vec::new(),
        body: bytes::Bytes::from(body.to_string()),
        replays: 0,
    }
}

#[test]
fn preset_event_types_and_pulumi_filter_names() {
    let cases: Vec<(EventTypeRule, StoredEvent, Option<&str>, Vec<&str>)> = vec![
        (
            EventTypeRule::Spacelift,
            event(&[], r#"{"event_type":"run_state_changed_event"}"#),
            Some("run_state_changed_event"),
            vec![],
        ),
        (
            EventTypeRule::Spacelift,
            event(&[], r#"{"title":"x","error":"boom"}"#),
            Some("internal_error"),
            vec![],
        ),
        (
            EventTypeRule::Tfe,
            event(
                &[],
                r#"{"payload_version":1,"notifications":[{"trigger":"run:errored"}]}"#,
            ),
            Some("run:errored"),
            vec![],
        ),
        (
            EventTypeRule::Tfe,
            event(
                &[],
                r#"{"payload_version":"2","trigger":"assessment:drifted","details":{}}"#,
            ),
            Some("assessment:drifted"),
            vec![],
        ),
        (
            EventTypeRule::Hcp,
            event(
                &[],
                r#"{"event_source":"hashicorp.packer.version","event_action":"create"}"#,
            ),
            Some("hashicorp.packer.version.create"),
            vec![],
        ),
        (
            EventTypeRule::BodyFields(vec!["eventAction".into(), "event".into()]),
            event(&[], r#"{"event":"first-deployed"}"#),
            Some("first-deployed"),
            vec![],
        ),
        (
            EventTypeRule::Pulumi,
            event(
                &[("pulumi-webhook-kind", "stack_update")],
                r#"{"kind":"destroy","result":"failed"}"#,
            ),
            Some("stack_update"),
            vec!["destroy_failed"],
        ),
        (
            EventTypeRule::Pulumi,
            event(
                &[("pulumi-webhook-kind", "stack")],
                r#"{"action":"created"}"#,
            ),
            Some("stack"),
            vec!["stack_created"],
        ),
        (
            EventTypeRule::Pulumi,
            event(
                &[("pulumi-webhook-kind", "deployment")],
                r#"{"status":"running"}"#,
            ),
            Some("deployment"),
            vec!["deployment_started"],
        ),
        (
            EventTypeRule::Pulumi,
            event(
                &[("pulumi-webhook-kind", "drift_detection")],
                r#"{"driftDetected":true,"status":"succeeded"}"#,
            ),
            Some("drift_detection"),
            vec!["drift_detected", "drift_detection_succeeded"],
        ),
    ];
    for (rule, ev, want_type, want_aliases) in cases {
        let env = Envelope::build(&ev, BodyFormat::Json, &rule).expect("envelope");
        assert_eq!(env.event_type(), want_type, "{rule:?}");
        assert_eq!(env.aliases, want_aliases, "{rule:?}");
        for a in want_aliases {
            assert!(env.is_named(a));
        }
    }
}

/// Every Pulumi filter name the envelope derives from a catalog sample is one the catalog
/// lists for that event, so `hookgate check` never warns about a name that can match.
#[test]
fn pulumi_aliases_of_every_catalog_sample_are_in_the_catalog() {
    let pulumi = crate::catalog::preset("pulumi").expect("pulumi");
    let mut derived = 0;
    for e in &pulumi.events {
        for path in &e.samples {
            let body = crate::catalog::file("pulumi", path).expect("sample");
            let body = std::str::from_utf8(body).expect("utf-8");
            let stored = event(&[("pulumi-webhook-kind", &e.event_type)], body);
            let env =
                Envelope::build(&stored, BodyFormat::Json, &EventTypeRule::Pulumi).expect("builds");
            for alias in &env.aliases {
                assert!(
                    e.aliases.contains(alias),
                    "{path}: `{alias}` not in the catalog"
                );
                derived += 1;
            }
        }
    }
    assert!(derived >= 10, "{derived}");
}

/// A pruned envelope gives every projection, event-type rule and alias exactly what the whole
/// envelope gives, errors included, over bodies that are and are not objects along the paths.
#[test]
fn a_pruned_envelope_reads_as_the_whole_one_does() {
    use crate::route::needs::Tree;
    use crate::transform::Transform as _;
    use crate::transform::projection::Projection;
    let code = "{seq: .body.seq, id: .body.stack.id, labels: .body.stack.labels, \
                kind: .headers[\"x-kind\"], state: .body.state, deep: .body.a.b.c, all: .body.all, \
                cookie: .queryParams.cookie, auth: .headers.authorization}";
    let program = JqProgram::compile(code).expect("compiles");
    let projection = Projection::recognise(&program).expect("a projection");
    let bodies = [
        r#"{"seq": 1.50, "state": "FINISHED", "event_type": "RUN", "stack": {"id": "p", "labels": ["a", {"b": null}]}, "all": {"x": [1]}, "other": [1, 2, {"z": "é"}]}"#,
        r#"{"seq": 1, "seq": 2, "stack": {"id": "first", "id": "last"}, "a": {"b": {"c": "\u00e9\ud83d\ude00"}}}"#,
        r#"{"st\u0061te": "escaped key", "stack": {"id": 1}}"#,
        r#"{"stack": 3}"#,
        r#"{"stack": "text"}"#,
        r#"{"stack": [1, 2]}"#,
        r#"{"a": {"b": 1}}"#,
        r#"[1, 2]"#,
        r#"17"#,
        r#"null"#,
        r#"{"error": "boom", "action": "created", "kind": "update", "result": "failed", "status": "running", "driftDetected": true, "trigger": "run:errored", "event_source": "s", "event_action": "a"}"#,
        r#"{"notifications": [{"trigger": "run:completed"}]}"#,
        r#"{"not json"#,
        r#"{"a": 1} trailing"#,
    ];
    let rules = [
        EventTypeRule::None,
        EventTypeRule::Spacelift,
        EventTypeRule::Hcp,
        EventTypeRule::Tfe,
        EventTypeRule::Pulumi,
        EventTypeRule::BodyFields(vec!["state".into(), "error".into()]),
        native(".body.state"),
        native(".body.stack.id == \"p\" or .body.a"),
    ];
    for rule in &rules {
        let mut needs = Tree::default();
        for path in projection.reads().expect("paths") {
            needs.add(path);
        }
        // The fields each rule reads, as `route::needs::of_source` adds them.
        let from_rule = crate::route::needs::of_source("none", rule, std::iter::empty());
        for (key, below) in &from_rule.children {
            for (field, _) in &below.children {
                needs.add(&[key.as_str(), field.as_str()]);
            }
        }
        for body in bodies {
            let event = StoredEvent {
                id: "evt_1".into(),
                source: "s".into(),
                received_at: 0,
                headers: vec![
                    ("x-kind".into(), "k".into()),
                    ("authorization".into(), "Bearer hidden".into()),
                    ("pulumi-webhook-kind".into(), "stack_update".into()),
                ],
                query: vec![("cookie".into(), "a query parameter".into())],
                body: bytes::Bytes::from(body.to_string()),
                replays: 0,
            };
            let whole = Envelope::build(&event, BodyFormat::Json, rule);
            let pruned = Envelope::build_pruned(&event, BodyFormat::Json, rule, &needs);
            match (whole, pruned) {
                (Ok(w), Ok(p)) => {
                    let show = |e: &Envelope| {
                        let out = projection.apply(e.val()).map_err(|e| e.to_string());
                        let bodies = out.map(|ms| {
                            ms.iter()
                                .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                                .collect::<Vec<_>>()
                        });
                        (bodies, e.event_type.clone(), e.aliases.clone())
                    };
                    assert_eq!(show(&p), show(&w), "{rule:?} on {body}");
                }
                (Err(w), Err(p)) => assert_eq!(p.to_string(), w.to_string(), "{body}"),
                (w, p) => panic!("{rule:?} on {body}: whole {w:?}, pruned {p:?}"),
            }
        }
    }
}

/// `event_type = code` as a source's config makes it, asserted native.
fn native(code: &str) -> EventTypeRule {
    let rule = EventTypeRule::of_program(JqProgram::compile(code).expect("compiles"));
    assert!(matches!(rule, EventTypeRule::Native(_)), "{code}");
    rule
}

#[test]
fn a_native_event_type_rule_names_events_as_jq_does() {
    let bodies = [
        r#"{"state": "FINISHED", "n": 1.50, "stack": {"id": "p"}}"#,
        r#"{"state": null, "n": [1, "x"], "stack": {"id": 7}}"#,
        r#"{"state": {"a": true}, "n": 1e400, "stack": "text"}"#,
        r#"{"stack": {"id": "p"}}"#,
        r#"null"#,
    ];
    for code in [
        ".body.state",
        ".body.n",
        ".body.stack.id",
        ".body.stack.id == \"p\"",
        ".",
    ] {
        let program = JqProgram::compile(code).expect("compiles");
        let (native, jq) = (native(code), EventTypeRule::Jq(program));
        for body in bodies {
            let e = event(&[], body);
            let named = |rule: &EventTypeRule| {
                let envelope = Envelope::build(&e, BodyFormat::Json, rule).expect("builds");
                envelope.event_type.clone()
            };
            assert_eq!(named(&native), named(&jq), "{code} on {body}");
        }
    }
}
