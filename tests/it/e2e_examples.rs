//! Every config in examples/ passes `hookgate check`, and `hookgate try` on its fixture prints what
//! examples/<name>/expected/<fixture>.txt holds (ids and timestamps normalised).
//! `HOOKGATE_BLESS=1` rewrites the expected files after a deliberate change.

use crate::utils::binary::BIN;
use crate::utils::{sample_headers, sample_path};
use std::path::PathBuf;
use std::process::Command;

/// Values for the `${VAR}`s the examples use: the fixtures' test secrets and local URLs.
const ENV: &[(&str, &str)] = &[
    ("SPACELIFT_SECRET", "spacelift-fixture-secret"),
    ("PULUMI_WEBHOOK_SECRET", "pulumi-fixture-secret"),
    ("HCP_WEBHOOK_TOKEN", "hcp-fixture-token"),
    ("TFE_NOTIFICATION_TOKEN", "tfe-sample-token"),
    ("GITLAB_WEBHOOK_TOKEN", "gitlab-sample-token"),
    ("CI_WEBHOOK_TOKEN", "ci-relay-token"),
    ("CI_RELAY_URL", "http://127.0.0.1:9/ci"),
    ("NULLSTONE_TOKEN", "ns-token"),
    ("GITHUB_WEBHOOK_SECRET", "It's a Secret to Everybody"),
    ("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/slack"),
    ("PORT_CLIENT_ID", "port-client-id"),
    ("PORT_CLIENT_SECRET", "port-client-secret"),
    ("RECEIVER_URL", "http://127.0.0.1:9/receiver"),
    ("RECEIVER_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
];

/// (example, source, fixture, extra headers)
const CASES: &[(&str, &str, &str, &[&str])] = &[
    (
        "spacelift-to-port",
        "spacelift",
        "spacelift/run_finished.json",
        &[],
    ),
    (
        "pulumi-to-slack",
        "pulumi",
        "pulumi/stack_update_failed_destroy.json",
        &[],
    ),
    ("pulumi-to-slack", "pulumi", "pulumi/ping.json", &[]),
    (
        "hcp-packer-to-slack",
        "hcp",
        "hcp/packer_version_completed.json",
        &[],
    ),
    ("hcp-packer-to-slack", "hcp", "hcp/verification.json", &[]),
    (
        "nullstone-to-slack",
        "nullstone",
        "nullstone/deploy_failed.json",
        &["X-Hookgate-Token: ns-token"],
    ),
    (
        "spacelift-notification-policy",
        "spacelift",
        "spacelift/run_finished.json",
        &[],
    ),
    (
        "spacelift-notification-policy",
        "spacelift",
        "spacelift/internal_error.json",
        &[],
    ),
    (
        "hcp-terraform-to-slack",
        "terraform",
        "tfe/run_errored.json",
        &[],
    ),
    (
        "hcp-terraform-to-slack",
        "terraform",
        "tfe/assessment_drifted.json",
        &[],
    ),
    (
        "hcp-terraform-to-slack",
        "terraform",
        "tfe/verification.json",
        &[],
    ),
    (
        "gitlab-pipelines-to-slack",
        "gitlab",
        "gitlab/pipeline.json",
        &[],
    ),
    (
        "gitlab-pipelines-to-slack",
        "gitlab",
        "gitlab/merge_request.json",
        &[],
    ),
    // A body shipped with the example, signed with `hookgate sign`.
    (
        "github-to-standard-webhooks",
        "github",
        "examples/github-to-standard-webhooks/sample-push.json",
        &[
            "X-GitHub-Event: push",
            "X-Hub-Signature-256: sha256=7e63b9b1129ec78ee753a29451ba4eb59ca625c4ebe09195394ecc4ceb008be2",
        ],
    ),
];

fn example_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn hookgate(args: &[String]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in ENV {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hookgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Replaces what changes from run to run: ids and signature timestamps.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let line = if trimmed.starts_with("webhook-timestamp:") {
            format!("{indent}webhook-timestamp: <ts>")
        } else if trimmed.starts_with("webhook-signature:") {
            format!("{indent}webhook-signature: <sig>")
        } else if let Some(name) = ["X-Gitlab-Event-UUID:", "Idempotency-Key:"]
            .into_iter()
            .find(|h| trimmed.starts_with(h))
        {
            // GUIDs made from the delivery id, which changes from run to run.
            format!("{indent}{name} <guid of the delivery id>")
        } else {
            mask_ids(line)
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn mask_ids(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(pos) = ["evt_", "dlv_"].iter().filter_map(|p| rest.find(p)).min() {
        out.push_str(&rest[..pos + 4]);
        out.push_str("<id>");
        let after = &rest[pos + 4..];
        let len = after
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .count();
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// A catalog sample's headers as `--header` values; none for a body an example ships.
fn fixture_headers(name: &str) -> Vec<String> {
    if name.starts_with("examples/") {
        return Vec::new();
    }
    sample_headers(name)
        .into_iter()
        .filter(|(k, _)| k.as_str() != "Content-Type")
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

#[test]
fn every_example_checks_and_tries_as_expected() {
    let examples: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples"))
            .expect("examples/")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("hookgate.toml").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    assert!(examples.len() >= 6, "{examples:?}");
    for name in &examples {
        let config = example_dir(name)
            .join("hookgate.toml")
            .display()
            .to_string();
        let (code, out, err) = hookgate(&["check".into(), "--config".into(), config]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        // The catalog knows every event and path the examples use: no false warning.
        assert!(!out.contains("warning"), "{name}: {out}");
    }
    let bless = std::env::var("HOOKGATE_BLESS").is_ok();
    for (example, source, fixture, extra) in CASES {
        let config = example_dir(example)
            .join("hookgate.toml")
            .display()
            .to_string();
        let mut args = vec![
            "try".into(),
            "--config".into(),
            config,
            "--source".into(),
            source.to_string(),
        ];
        let body = match fixture.strip_prefix("examples/") {
            Some(own) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(own),
            None => sample_path(fixture),
        };
        args.extend(["--body".into(), body.display().to_string()]);
        for h in fixture_headers(fixture)
            .into_iter()
            .chain(extra.iter().map(|s| s.to_string()))
        {
            args.extend(["--header".into(), h]);
        }
        let (code, out, err) = hookgate(&args);
        assert_eq!(code, 0, "{example} {fixture}: {err}");
        let got = normalise(&out);
        // `<preset>/<file>` → `<preset>_<file>.txt`; an example's own body by its file name.
        let file = fixture
            .strip_prefix("examples/")
            .and_then(|own| own.rsplit('/').next())
            .unwrap_or(fixture)
            .replace('/', "_")
            .replace(".json", ".txt");
        let expected_path = example_dir(example).join("expected").join(file);
        if bless {
            std::fs::create_dir_all(expected_path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&expected_path, &got).expect("write expected");
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (HOOKGATE_BLESS=1 writes it)",
                expected_path.display()
            )
        });
        assert_eq!(
            got, want,
            "{example} {fixture}: `hookgate try` output changed"
        );
    }
}

#[test]
fn normalise_masks_ids_and_timestamps() {
    let text = "event evt_01M840Q6ZPXHRRSQQDZJ8ZHVWT x\n     webhook-timestamp: 17\n  X-Hookgate-Delivery: dlv_01ABC\n";
    assert_eq!(
        normalise(text),
        "event evt_<id> x\n     webhook-timestamp: <ts>\n  X-Hookgate-Delivery: dlv_<id>\n"
    );
}
