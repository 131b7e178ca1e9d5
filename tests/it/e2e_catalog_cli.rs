//! The event catalog through the binary: `check` names misspelled events and impossible paths
//! with suggestions; the CLI lists presets and events and prints samples and schemas.

use crate::utils::binary::BIN;
use crate::utils::sample;

fn hookgate(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("run hookgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_names_misspelled_events_and_impossible_paths_with_suggestions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        r#"
[sources.pulumi]
kind = "pulumi"

[sources.tfc]
kind = "tfe"

# Its own event types: the catalog does not judge them.
[sources.actions]
kind = "github"
secret = "s"
event_type = '.body.action'

[targets.t]
url = "http://127.0.0.1:9/"

[[routes]]
name = "failures"
source = "pulumi"
events = ["update_faild", "destroy_failed"]
jq = '{stack: .body.stackName, who: .body.user.nme}'
targets = ["t"]

[[routes]]
name = "opened"
source = "actions"
events = ["opened"]
filter = '.body.anything'
targets = ["t"]

[[routes]]
name = "errored"
source = "tfc"
events = ["run:errored"]
filter = '.body.notifications[0].run_stauts == "errored"'
map = { text = '"\(.body.workspace_name) failed"' }
targets = ["t"]
"#,
    )
    .expect("write");
    let (code, out, err) = hookgate(&["check", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "warnings do not fail a check: {out}{err}");
    for want in [
        "warning: routes[0].events: `update_faild` is not an event of the pulumi preset (did you mean `update_failed`",
        "warning: routes[0].jq: `.body.user.nme`",
        "(did you mean `name`?)",
        "warning: routes[2].filter: `.body.notifications[0].run_stauts`: the `run:errored` event (tfe catalog) has no `run_stauts` under `.body.notifications[]` (did you mean `run_status`",
        "3 warnings",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    assert!(
        !out.contains("workspace_name"),
        "a real path is not reported:\n{out}"
    );
}

#[test]
fn the_cli_lists_presets_and_events_and_prints_samples_and_schemas() {
    let (code, out, _) = hookgate(&["catalog"]);
    assert_eq!(code, 0);
    for preset in [
        "spacelift",
        "pulumi",
        "hcp",
        "tfe",
        "nullstone",
        "github",
        "gitlab",
        "standard-webhooks",
    ] {
        assert!(out.contains(preset), "{preset} missing:\n{out}");
    }
    let (code, out, _) = hookgate(&["catalog", "tfe"]);
    assert_eq!(code, 0);
    assert!(out.contains("assessment:drifted"), "{out}");
    let (code, out, _) = hookgate(&["catalog", "tfe", "run:completed"]);
    assert_eq!(code, 0);
    assert_eq!(out.as_bytes(), sample("tfe/run_completed.json"));
    let (code, out, _) = hookgate(&["catalog", "gitlab", "Pipeline Hook", "--schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).expect("schema is JSON");
    assert!(
        schema["properties"]["object_attributes"].is_object(),
        "{schema}"
    );
    let (code, _, err) = hookgate(&["catalog", "pulumi", "update_faild"]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean `update_failed`"), "{err}");
}
