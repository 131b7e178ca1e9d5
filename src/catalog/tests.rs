use super::*;
use crate::catalog::schema::{Verdict, check};

#[test]
fn every_preset_parses_and_every_file_it_names_exists_and_nothing_is_left_unnamed() {
    let presets = presets().expect("the embedded catalog parses");
    for p in presets {
        crate::catalog::schema::compile_all(p).expect("every schema compiles");
    }
    assert!(presets.len() >= 8, "{} presets", presets.len());
    let mut named = std::collections::BTreeSet::new();
    for p in presets {
        named.insert(format!("{}/catalog.json", p.preset));
        named.insert(format!("{}/samples/headers.json", p.preset));
        assert!(!p.events.is_empty(), "{}", p.preset);
        for e in &p.events {
            assert!(!e.docs.is_empty() && !e.summary.is_empty(), "{e:?}");
            assert!(
                !e.samples.is_empty(),
                "{}/{}: no sample",
                p.preset,
                e.event_type
            );
            for path in e.schema.iter().chain(&e.samples) {
                assert!(file(&p.preset, path).is_some(), "{}/{path}", p.preset);
                named.insert(format!("{}/{path}", p.preset));
            }
        }
    }
    let orphans: Vec<&str> = FILES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !named.contains(*p))
        .collect();
    assert!(orphans.is_empty(), "files no event names: {orphans:?}");
}

#[test]
fn every_schema_compiles_and_every_sample_matches_its_events_schema() {
    let mut checked = 0;
    for p in presets().expect("parses") {
        for e in &p.events {
            if let Some(path) = &e.schema {
                assert!(
                    matches!(schema_of(p, e), Ok(Some(_))),
                    "{}/{path}: {:?}",
                    p.preset,
                    schema_of(p, e)
                );
            }
            for s in &e.samples {
                let body: serde_json::Value =
                    serde_json::from_slice(file(&p.preset, s).expect("exists")).expect("JSON");
                let verdict = check(p, &e.event_type, &body);
                assert!(
                    matches!(verdict, Verdict::Matches | Verdict::NoSchema),
                    "{}/{s} as {}: {verdict:?}",
                    p.preset,
                    e.event_type
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 150, "{checked} samples");
}

#[test]
fn a_broken_sample_is_a_mismatch_naming_the_path_and_not_the_value() {
    let p = preset("spacelift").expect("spacelift");
    let mut body: serde_json::Value =
        serde_json::from_slice(file("spacelift", "samples/run_finished.json").expect("sample"))
            .expect("JSON");
    body["state"] = serde_json::json!("SECRET-LOOKING-VALUE");
    match check(p, "run_state_changed_event", &body) {
        Verdict::Mismatch(why) => {
            assert!(why.starts_with("/state: "), "{why}");
            assert!(!why.contains("SECRET-LOOKING-VALUE"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(check(p, "no_such_event", &body), Verdict::UnknownType);
}

#[test]
fn closest_names_suggest_what_was_meant() {
    let pulumi = preset("pulumi").expect("pulumi");
    assert_eq!(closest("update_faild", pulumi.names())[0], "update_failed");
    assert!(closest("zzzz", pulumi.names()).is_empty());
    assert_eq!(did_you_mean(&["a"]), " (did you mean `a`?)");
    assert_eq!(did_you_mean(&["a", "b"]), " (did you mean `a` or `b`?)");
}

fn lint(preset: &str, events: Option<&[&str]>, jq: &str) -> Vec<String> {
    let events: Option<Vec<String>> = events.map(|e| e.iter().map(|s| s.to_string()).collect());
    let text = crate::catalog::lint::RouteText {
        key: "routes[0]",
        events: events.as_deref(),
        code: vec![("routes[0].jq".into(), jq)],
    };
    crate::catalog::lint::route(preset_named(preset), &text)
        .into_iter()
        .map(|(k, why)| format!("{k}: {why}"))
        .collect()
}

fn preset_named(name: &str) -> &'static Preset {
    preset(name).expect("preset")
}

#[test]
fn the_lint_stays_quiet_on_valid_jq_and_open_presets() {
    // `.[]` of an object, over every event of a preset.
    assert_eq!(
        lint("pulumi", None, "[.body.resourceChanges[]] | add"),
        Vec::<String>::new()
    );
    // Standard Webhooks senders name their own types and fields.
    assert_eq!(
        lint("standard-webhooks", None, ".body.created_at"),
        Vec::<String>::new()
    );
    // A field being written.
    assert_eq!(
        lint(
            "github",
            Some(&["push"]),
            ".body.hookgate_seen = true | .body"
        ),
        Vec::<String>::new()
    );
}

#[test]
fn the_lint_names_one_event_once_however_many_aliases_name_it() {
    let found = lint(
        "pulumi",
        Some(&["update_failed", "destroy_failed"]),
        ".body.stackNme",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("the `stack_update` event (pulumi catalog) has no `stackNme` under `.body` (did you mean `stackName`"),
        "{found:?}"
    );
}
