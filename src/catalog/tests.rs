use super::*;
use crate::catalog::schema::{Verdict, check};

#[test]
fn every_preset_parses_and_every_file_it_names_exists_and_nothing_is_left_unnamed() {
    let presets = presets().expect("the embedded catalog parses");
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
                assert!(schema_of(p, e).is_some(), "{}/{path} is not JSON", p.preset);
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
