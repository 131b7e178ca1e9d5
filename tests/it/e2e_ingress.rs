//! Ingress: every status code of `POST /hooks/{source}`, and signatures good, bad, missing, rotated.

use crate::utils::{Gateway, Receiver, client, post_json, sample, sample_headers, sha256_header};
use std::time::Duration;

fn config(target: &str) -> String {
    format!(
        r#"
[sources.open]
kind = "generic"

[sources.gh]
kind = "github"
secret = ["new-secret", "It's a Secret to Everybody"]

[sources.custom]
kind = "generic"
verify = {{ header = "X-Sig", algorithm = "sha512", encoding = "base64", secret = "custom-secret" }}

[sources.sw]
kind = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[sources.spacelift]
kind = "spacelift"
secret = "spacelift-fixture-secret"

[sources.raw]
kind = "generic"
format = "raw"

[targets.t]
url = "{target}"

[[routes]]
name = "all"
source = "open"
targets = ["t"]
"#
    )
}

#[tokio::test]
async fn status_codes_of_ingress() {
    let gw = Gateway::start(&config("http://127.0.0.1:9/")).await;
    type Case = (
        &'static str,
        Vec<u8>,
        Vec<(&'static str, &'static str)>,
        u16,
    );
    let cases: Vec<Case> = vec![
        ("open", br#"{"a":1}"#.to_vec(), vec![], 202),
        ("nope", br#"{"a":1}"#.to_vec(), vec![], 404),
        ("open", b"{not json".to_vec(), vec![], 400),
        ("open", b"".to_vec(), vec![], 400),
        ("raw", b"not json at all".to_vec(), vec![], 202),
        ("gh", br#"{"a":1}"#.to_vec(), vec![], 401),
        (
            "gh",
            br#"{"a":1}"#.to_vec(),
            vec![("x-hub-signature-256", "sha256=00")],
            401,
        ),
        (
            "gh",
            br#"{"a":1}"#.to_vec(),
            vec![("x-hub-signature-256", "not-even-hex")],
            401,
        ),
    ];
    for (source, body, headers, want) in cases {
        let (status, json) = post_json(&gw.hook(source), body.clone(), &headers).await;
        assert_eq!(
            status,
            want,
            "{source} {:?} -> {json}",
            String::from_utf8_lossy(&body)
        );
        if want == 202 {
            assert!(
                json["id"].as_str().is_some_and(|id| id.starts_with("evt_")),
                "{json}"
            );
        } else {
            assert!(
                json["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{json}"
            );
        }
    }
}

/// An event's plain `POST /hooks/{name}` skips axum's router; every other shape of path and
/// method still goes through it, and the two agree.
#[tokio::test]
async fn paths_the_router_answers_agree_with_the_direct_one() {
    let gw = Gateway::start(&config("http://127.0.0.1:9/")).await;
    let hooks = gw.hook("open");
    let base = hooks.trim_end_matches("/open");
    // Percent-encoded, the name goes through the router, which decodes it.
    let (status, json) = post_json(&format!("{base}/op%65n"), r#"{"a":1}"#, &[]).await;
    assert_eq!(status, 202, "{json}");
    assert!(
        json["id"].as_str().is_some_and(|id| id.starts_with("evt_")),
        "{json}"
    );
    let (status, json) = post_json(&format!("{base}/n%6Fpe"), r#"{"a":1}"#, &[]).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("unknown source `nope`"))
    );
    let (status, direct) = post_json(&format!("{base}/nope"), r#"{"a":1}"#, &[]).await;
    assert_eq!((status, &direct), (404, &json));
    for (method, url, want) in [
        (reqwest::Method::GET, hooks.clone(), 405),
        (reqwest::Method::PUT, hooks.clone(), 405),
        (reqwest::Method::POST, format!("{hooks}/more"), 404),
        (reqwest::Method::POST, format!("{base}/"), 404),
    ] {
        let resp = client()
            .request(method.clone(), &url)
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), want, "{method} {url}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_streamed() {
    let gw = Gateway::start(&config("http://127.0.0.1:9/")).await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70_000));
    let (status, json) = post_json(&gw.hook("open"), big.clone(), &[]).await;
    assert_eq!(status, 413, "{json}");
    // Streamed without a Content-Length: refused once the limit is crossed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(4096)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = client()
        .post(gw.hook("open"))
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 413);
    let (status, _) = post_json(&gw.hook("open"), r#"{"small":true}"#, &[]).await;
    assert_eq!(status, 202, "the gateway stays up after refusing");
}

#[tokio::test]
async fn github_signatures_good_bad_and_rotated() {
    let gw = Gateway::start(&config("http://127.0.0.1:9/")).await;
    // GitHub's published vector, signed with the second (older) secret of the rotation list.
    let body = "Hello, World!";
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let resp = client()
        .post(gw.hook("gh"))
        .header("x-hub-signature-256", good)
        .body(r#""Hello, World!""#)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401, "signature covers other bytes");
    let _ = body;
    let json_body = br#"{"zen":"Design for failure."}"#;
    for secret in ["new-secret", "It's a Secret to Everybody"] {
        let sig = sha256_header(secret, json_body);
        let (status, _) = post_json(
            &gw.hook("gh"),
            json_body.to_vec(),
            &[("x-hub-signature-256", &sig)],
        )
        .await;
        assert_eq!(status, 202, "secret {secret}");
    }
    let sig = sha256_header("old-revoked", json_body);
    let (status, _) = post_json(
        &gw.hook("gh"),
        json_body.to_vec(),
        &[("x-hub-signature-256", &sig)],
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn spacelift_samples_verify_and_one_changed_byte_fails() {
    let gw = Gateway::start(&config("http://127.0.0.1:9/")).await;
    for name in [
        "spacelift/run_finished.json",
        "spacelift/run_unconfirmed.json",
        "spacelift/internal_error.json",
    ] {
        let body = sample(name);
        let headers = sample_headers(name);
        let sig = headers
            .iter()
            .find(|(k, _)| k == "X-Signature-256")
            .map(|(_, v)| v.as_str())
            .expect("signature");
        let (status, json) = post_json(
            &gw.hook("spacelift"),
            body.clone(),
            &[("X-Signature-256", sig)],
        )
        .await;
        assert_eq!(status, 202, "{name}: {json}");
        let mut tampered = body.clone();
        let i = tampered.len() / 2;
        tampered[i] ^= 1;
        let (status, _) =
            post_json(&gw.hook("spacelift"), tampered, &[("X-Signature-256", sig)]).await;
        assert_eq!(status, 401, "{name} tampered");
    }
}

#[tokio::test]
async fn generic_hmac_with_sha512_base64() {
    use hookgate::testing::{Algorithm, Encoding, hmac};
    let gw = Gateway::start(&config("http://127.0.0.1:9/")).await;
    let body = br#"{"k":"v"}"#;
    let sig = Encoding::Base64.encode(&hmac(Algorithm::Sha512, b"custom-secret", &[body]));
    let (status, _) = post_json(&gw.hook("custom"), body.to_vec(), &[("X-Sig", &sig)]).await;
    assert_eq!(status, 202);
    let wrong = Encoding::Base64.encode(&hmac(Algorithm::Sha256, b"custom-secret", &[body]));
    let (status, _) = post_json(&gw.hook("custom"), body.to_vec(), &[("X-Sig", &wrong)]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn standard_webhooks_fresh_stale_and_tampered() {
    use hookgate::testing::{standard_webhooks_key, standard_webhooks_signature};
    let gw = Gateway::start(&config("http://127.0.0.1:9/")).await;
    let key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let body = br#"{"type":"invoice.paid","data":{}}"#;
    let now = hookgate::testing::now_ms() / 1000;
    for (ts, body_sent, want) in [
        (now, &body[..], 202),
        (now - 240, &body[..], 202),
        (now - 400, &body[..], 401),
        (now + 400, &body[..], 401),
        (now, &br#"{"type":"invoice.paid","data":{"x":1}}"#[..], 401),
    ] {
        let sig = standard_webhooks_signature(&key, "msg_1", ts, body);
        let ts = ts.to_string();
        let headers = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", sig.as_str()),
        ];
        let (status, json) = post_json(&gw.hook("sw"), body_sent.to_vec(), &headers).await;
        assert_eq!(status, want, "ts {ts}: {json}");
    }
}

#[tokio::test]
async fn store_unavailable_answers_503_and_the_retry_is_kept() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    // Another process holding the write lock is what a full or failing disk looks like to the
    // writer: it cannot begin a transaction.
    let blocker = crate::utils::store::WriteBlocker::hold(&gw.store_url).await;
    let (status, json) = post_json(&gw.hook("open"), r#"{"n":1}"#, &[]).await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"], "store unavailable, retry later");
    blocker.release().await;
    let (status, _) = post_json(&gw.hook("open"), r#"{"n":1}"#, &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(seen[0].json()["n"], 1);
    let health = client()
        .get(format!("{}/readyz", gw.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(health.status().as_u16(), 200);
}
