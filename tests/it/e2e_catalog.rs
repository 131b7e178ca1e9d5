//! The event catalog through the real gateway: every sample of every preset, sent with the headers
//! catalog/sign.py signed it with, is accepted by its preset and gets the catalog's event type, and
//! a changed byte (or a wrong token) is refused; `validate` counts, logs or refuses drift; the
//! admin API serves the catalog (the CLI's side is `e2e_catalog_cli`).

use crate::utils::admin::{ADMIN, TOKEN, admin};
use crate::utils::{Gateway, catalog_dir, post_json, sample, sample_headers};
use reqwest::Method;
use std::time::{Duration, Instant};

/// `(preset, sample_secret, [(event type, sample file)])`.
type Preset = (String, Option<String>, Vec<(String, String)>);

/// Every preset on disk.
fn presets() -> Vec<Preset> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(catalog_dir()).expect("catalog/") {
        let index = entry.expect("entry").path().join("catalog.json");
        let Ok(text) = std::fs::read(&index) else {
            continue;
        };
        let cat: serde_json::Value = serde_json::from_slice(&text).expect("catalog.json");
        let preset = cat["preset"].as_str().expect("preset").to_string();
        let secret = cat["sample_secret"].as_str().map(str::to_string);
        let mut samples = Vec::new();
        for e in cat["events"].as_array().expect("events") {
            for s in e["samples"].as_array().expect("samples") {
                let file = s.as_str().expect("path").trim_start_matches("samples/");
                samples.push((e["type"].as_str().expect("type").to_string(), file.into()));
            }
        }
        out.push((preset, secret, samples));
    }
    out.sort();
    out
}

/// A source per preset, named like it, with its sample secret; one route that takes nothing, so
/// that every event is routed (and typed) without deliveries.
fn config(presets: &[Preset]) -> String {
    let mut c = ADMIN.to_string();
    for (preset, secret, _) in presets {
        c.push_str(&format!("[sources.\"{preset}\"]\nkind = \"{preset}\"\n"));
        if let Some(s) = secret {
            c.push_str(&format!("secret = \"{s}\"\n"));
        }
        c.push_str(&format!(
            "[[routes]]\nname = \"{preset}\"\nsource = \"{preset}\"\nfilter = 'false'\ntargets = [\"t\"]\n"
        ));
    }
    c.push_str("[targets.t]\nurl = \"http://127.0.0.1:9/\"\n");
    c
}

/// The sample's headers; Standard Webhooks' signed again at the current time (the recorded
/// timestamp is outside the scheme's five-minute tolerance).
fn headers_now(
    preset: &str,
    secret: Option<&str>,
    name: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut headers = sample_headers(&format!("{preset}/{name}"));
    if preset == "standard-webhooks" {
        let key = hookgate::testing::standard_webhooks_key(secret.expect("secret"));
        let now = hookgate::testing::now_ms() / 1000;
        let id = headers
            .iter()
            .find(|(k, _)| k == "webhook-id")
            .map(|(_, v)| v.clone())
            .expect("webhook-id");
        let sig = hookgate::testing::standard_webhooks_signature(&key, &id, now, body);
        for (k, v) in headers.iter_mut() {
            match k.as_str() {
                "webhook-timestamp" => *v = now.to_string(),
                "webhook-signature" => v.clone_from(&sig),
                _ => {}
            }
        }
    }
    headers
}

async fn post(
    gw: &Gateway,
    source: &str,
    body: Vec<u8>,
    headers: &[(String, String)],
) -> (u16, serde_json::Value) {
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_json(&gw.hook(source), body, &refs).await
}

/// The event's type once the route loop has read it.
async fn event_type(gw: &Gateway, id: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, ev) = admin(
            gw,
            Method::GET,
            &format!("/admin/v1/events/{id}"),
            Some(TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{ev}");
        if ev["routed"] == true {
            return ev["event_type"].as_str().map(str::to_string);
        }
        assert!(Instant::now() < deadline, "event {id} never routed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_catalog_sample_verifies_with_its_preset_and_gets_its_event_type() {
    let presets = presets();
    assert!(presets.len() >= 8, "{presets:?}");
    let gw = Gateway::start(&config(&presets)).await;
    let mut sent = Vec::new();
    for (preset, secret, samples) in &presets {
        for (want, name) in samples {
            let body = sample(&format!("{preset}/{name}"));
            let headers = headers_now(preset, secret.as_deref(), name, &body);
            let (status, answer) = post(&gw, preset, body.clone(), &headers).await;
            assert_eq!(status, 202, "{preset}/{name}: {answer}");
            let id = answer["id"].as_str().expect("id").to_string();
            sent.push((preset.clone(), name.clone(), want.clone(), id));
            if secret.is_none() {
                continue; // Nullstone does not sign.
            }
            // A token scheme (GitLab) checks the token, a MAC scheme every byte of the body.
            let refused = if preset == "gitlab" {
                let wrong: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| match k.as_str() {
                        "X-Gitlab-Token" => (k.clone(), format!("{v}x")),
                        _ => (k.clone(), v.clone()),
                    })
                    .collect();
                post(&gw, preset, body, &wrong).await.0
            } else {
                let mut tampered = body;
                let i = tampered.len() / 2;
                tampered[i] ^= 0x01;
                post(&gw, preset, tampered, &headers).await.0
            };
            assert_eq!(refused, 401, "{preset}/{name} with a wrong signature");
        }
    }
    assert!(sent.len() >= 150, "{} samples", sent.len());
    for (preset, name, want, id) in &sent {
        assert_eq!(
            event_type(&gw, id).await.as_deref(),
            Some(want.as_str()),
            "{preset}/{name}"
        );
    }
}

#[tokio::test]
async fn validate_warn_counts_and_stores_and_reject_refuses_naming_the_path() {
    let config = format!(
        "{ADMIN}
[sources.warned]
kind = \"tfe\"
secret = \"tfe-sample-token\"
validate = \"warn\"

[sources.strict]
kind = \"tfe\"
secret = \"tfe-sample-token\"
validate = \"reject\"

[targets.t]
url = \"http://127.0.0.1:9/\"

[[routes]]
name = \"r\"
source = \"warned\"
filter = 'false'
targets = [\"t\"]
"
    );
    let gw = Gateway::start(&config).await;
    let real = sample("tfe/run_completed.json");
    let mut broken: serde_json::Value = serde_json::from_slice(&real).expect("json");
    broken["notifications"][0]["run_status"] = serde_json::json!("exploded-1234");
    let broken = serde_json::to_vec(&broken).expect("json");
    let sign = |body: &[u8]| {
        let mac = hookgate::testing::hmac(
            hookgate::testing::Algorithm::Sha512,
            b"tfe-sample-token",
            &[body],
        );
        vec![(
            "X-TFE-Notification-Signature".to_string(),
            hookgate::testing::Encoding::Hex.encode(&mac),
        )]
    };
    for source in ["warned", "strict"] {
        let (status, _) = post(&gw, source, real.clone(), &sign(&real)).await;
        assert_eq!(status, 202, "{source}: the real sample");
    }
    let (status, answer) = post(&gw, "warned", broken.clone(), &sign(&broken)).await;
    assert_eq!(status, 202, "warn stores: {answer}");
    let (status, answer) = post(&gw, "strict", broken.clone(), &sign(&broken)).await;
    assert_eq!(status, 400, "{answer}");
    let why = answer["error"].as_str().expect("error");
    assert!(
        why.contains("`run:completed`") && why.contains("/notifications/0/run_status"),
        "{why}"
    );
    assert!(!why.contains("exploded-1234"), "the value stays out: {why}");
    let metrics = gw.metrics().await;
    for line in [
        r#"hookgate_schema_mismatches_total{source="warned",event_type="run:completed"} 1"#,
        r#"hookgate_schema_mismatches_total{source="strict",event_type="run:completed"} 1"#,
        r#"hookgate_events_rejected_total{source="strict",reason="schema"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn the_admin_api_serves_the_catalog() {
    let gw = Gateway::start(&format!(
        "{ADMIN}[targets.t]\nurl = \"http://127.0.0.1:9/\"\n"
    ))
    .await;
    let (status, all) = admin(&gw, Method::GET, "/admin/v1/catalog", Some(TOKEN)).await;
    assert_eq!(status, 200, "{all}");
    let presets = all["presets"].as_array().expect("presets");
    let tfe = presets.iter().find(|p| p["preset"] == "tfe").expect("tfe");
    assert!(tfe["events"].as_array().expect("events").len() >= 12);
    let (status, one) = admin(
        &gw,
        Method::GET,
        "/admin/v1/catalog/tfe/events/run:completed",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["event"]["type"], "run:completed");
    assert!(one["schema"]["properties"].is_object(), "{one}");
    let first = one["samples"][0]["body"].as_str().expect("sample text");
    assert_eq!(first.as_bytes(), sample("tfe/run_completed.json"));
    let (status, missing) = admin(
        &gw,
        Method::GET,
        "/admin/v1/catalog/tfe/events/run:complted",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        missing["error"]
            .as_str()
            .expect("error")
            .contains("run:completed"),
        "{missing}"
    );
    let (status, _) = admin(&gw, Method::GET, "/admin/v1/catalog", None).await;
    assert_eq!(status, 401);
}

/// A gateway that signs as HCP Terraform and as GitLab is accepted by a gateway whose `tfe` and
/// `gitlab` sources verify as those platforms' receivers do, and the events keep their types.
#[tokio::test]
async fn deliveries_signed_as_tfe_and_gitlab_pass_those_presets() {
    let receiving = Gateway::start(&format!(
        "{ADMIN}
[sources.tfe]
kind = \"tfe\"
secret = \"tfe-relay-token\"

[sources.gitlab]
kind = \"gitlab\"
secret = \"gitlab-relay-token\"

[targets.t]
url = \"http://127.0.0.1:9/\"

[[routes]]
name = \"none\"
source = \"tfe\"
filter = 'false'
targets = [\"t\"]
"
    ))
    .await;
    let sending = Gateway::start(&format!(
        "
[sources.tfe]
kind = \"tfe\"
secret = \"tfe-sample-token\"

[sources.gitlab]
kind = \"gitlab\"
secret = \"gitlab-sample-token\"

[targets.as-tfe]
url = \"{}\"
sign = {{ scheme = \"tfe\", secret = \"tfe-relay-token\" }}

[targets.as-gitlab]
url = \"{}\"
sign = {{ scheme = \"gitlab\", secret = \"gitlab-relay-token\" }}

[[routes]]
name = \"tfe\"
source = \"tfe\"
targets = [\"as-tfe\"]

[[routes]]
name = \"gitlab\"
source = \"gitlab\"
targets = [\"as-gitlab\"]
",
        receiving.hook("tfe"),
        receiving.hook("gitlab")
    ))
    .await;
    for (source, name) in [("tfe", "run_completed.json"), ("gitlab", "pipeline.json")] {
        let path = format!("{source}/{name}");
        let (status, answer) = post(&sending, source, sample(&path), &sample_headers(&path)).await;
        assert_eq!(status, 202, "{path}: {answer}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, list) = admin(&receiving, Method::GET, "/admin/v1/events", Some(TOKEN)).await;
        assert_eq!(status, 200, "{list}");
        let mut types: Vec<String> = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter(|e| e["routed"] == true)
            .filter_map(|e| {
                Some(format!(
                    "{}: {}",
                    e["source"].as_str()?,
                    e["event_type"].as_str()?
                ))
            })
            .collect();
        types.sort();
        if types == ["gitlab: Pipeline Hook", "tfe: run:completed"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the receiving gateway has {types:?}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A reload takes a config the catalog warns about, and its answer carries the warnings.
#[tokio::test]
async fn a_reload_answers_with_the_catalogs_warnings() {
    let config = |events: &str| {
        format!(
            "{ADMIN}
[sources.gl]
kind = \"gitlab\"

[targets.t]
url = \"http://127.0.0.1:9/\"

[[routes]]
name = \"pipelines\"
source = \"gl\"
events = [{events}]
targets = [\"t\"]
"
        )
    };
    let gw = Gateway::start(&config("\"Pipeline Hook\"")).await;
    gw.rewrite_config(&config("\"Pipeline Hooks\""));
    let (status, answer) = admin(&gw, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{answer}");
    let warnings = answer["summary"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{answer}");
    let w = warnings[0].as_str().expect("text");
    assert!(
        w.starts_with("routes[0].events: `Pipeline Hooks` is not an event of the gitlab preset")
            && w.contains("did you mean `Pipeline Hook`"),
        "{w}"
    );
}

/// GitLab's token is a credential: never stored, even by a source configured without a secret.
#[tokio::test]
async fn a_gitlab_token_is_never_stored_even_unchecked() {
    let gw = Gateway::start(&format!(
        "{ADMIN}[sources.gl]\nkind = \"gitlab\"\n[targets.t]\nurl = \"http://127.0.0.1:9/\"\n"
    ))
    .await;
    let (status, answer) = post(
        &gw,
        "gl",
        sample("gitlab/pipeline.json"),
        &sample_headers("gitlab/pipeline.json"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("id");
    let (status, event) = admin(
        &gw,
        Method::GET,
        &format!("/admin/v1/events/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let text = event.to_string();
    assert!(text.contains("x-gitlab-event"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("x-gitlab-token"),
        "{text}"
    );
    assert!(!text.contains("gitlab-sample-token"), "{text}");
}
