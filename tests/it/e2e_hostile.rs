//! Hostile producers (issue 11): no one request may stop the gateway, be acknowledged and then
//! lost, or leave a credential behind. Bodies and tokens here; slow and idle connections in
//! [`connections`].

mod connections;

use crate::utils::admin::{ADMIN, TOKEN};
use crate::utils::{Gateway, Receiver, client, post_json};
use std::time::Duration;

const SETTLE: Duration = Duration::from_millis(400);

/// One open JSON source whose route only passes bodies through (no jq runs: routing parses the
/// body in the gateway process).
fn passthrough(target: &str) -> String {
    format!(
        r#"
[sources.open]
kind = "generic"

[targets.t]
url = "{target}"

[[routes]]
name = "all"
source = "open"
targets = ["t"]
"#
    )
}

/// Posts raw bytes as JSON; the status and the body as text.
async fn post_bytes(url: &str, body: Vec<u8>) -> (u16, String) {
    let resp = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn events_stored(gw: &Gateway) -> i64 {
    gw.db().count("SELECT COUNT(*) FROM events").await
}

fn nested(depth: usize) -> Vec<u8> {
    let mut body = vec![b'['; depth];
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

#[tokio::test]
async fn deep_nesting_is_refused_at_ingress_and_the_gateway_keeps_running() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&passthrough(&receiver.url)).await;

    let (status, text) = post_bytes(&gw.hook("open"), nested(10_000)).await;
    assert_eq!(status, 400, "{text}");
    let error: serde_json::Value = serde_json::from_str(&text).expect("json error");
    assert_eq!(error["error"], "body nests deeper than 128 levels");
    let (status, _) = post_bytes(&gw.hook("open"), nested(129)).await;
    assert_eq!(status, 400, "one level past the limit");
    assert_eq!(events_stored(&gw).await, 0, "nothing stored");

    // The limit itself is fine, and the gateway still routes and delivers.
    let (status, text) = post_bytes(&gw.hook("open"), nested(128)).await;
    assert_eq!(status, 202, "{text}");
    let (status, _) = post_json(&gw.hook("open"), r#"{"after":true}"#, &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.expect_exactly(2, SETTLE).await;
    assert_eq!(seen[0].body.as_ref(), nested(128).as_slice());
    assert_eq!(seen[1].json()["after"], true);
}

#[tokio::test]
async fn json_routing_cannot_read_is_refused_and_valid_unicode_arrives_byte_for_byte() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&passthrough(&receiver.url)).await;

    let lone_surrogate = br#"{"a":"\ud800"}"#.to_vec();
    let (status, text) = post_bytes(&gw.hook("open"), lone_surrogate).await;
    assert_eq!(status, 400, "a lone surrogate escape: {text}");
    assert!(text.contains("body is not valid JSON"), "{text}");
    let invalid_utf8 = b"{\"a\":\"caf\xe9\"}".to_vec();
    let (status, text) = post_bytes(&gw.hook("open"), invalid_utf8).await;
    assert_eq!(status, 400, "invalid UTF-8 in a string: {text}");
    assert!(
        text.contains("body is not valid JSON: invalid UTF-8 at byte offset 9"),
        "{text}"
    );
    assert_eq!(events_stored(&gw).await, 0, "nothing stored");

    let pair = br#"{"emoji":"\ud83d\ude00"}"#.to_vec();
    let accented = "{\"name\":\"é\",\"raw\":\"😀\"}".as_bytes().to_vec();
    for body in [&pair, &accented] {
        let (status, text) = post_bytes(&gw.hook("open"), body.clone()).await;
        assert_eq!(status, 202, "{text}");
    }
    let seen = receiver.expect_exactly(2, SETTLE).await;
    let mut got: Vec<&[u8]> = seen.iter().map(|r| r.body.as_ref()).collect();
    got.sort();
    let mut want = vec![pair.as_slice(), accented.as_slice()];
    want.sort();
    assert_eq!(got, want, "delivered byte for byte");
}

#[tokio::test]
async fn a_shared_token_in_a_header_is_never_stored_shown_or_forwarded() {
    const SECRET: &str = "ns-secret-token-5d1e9c";
    let receiver = Receiver::start().await;
    let config = format!(
        r#"{ADMIN}
[sources.nullstone]
kind = "nullstone"
secret = "{SECRET}"

[targets.t]
url = "{}"

[[routes]]
name = "headers"
source = "nullstone"
jq = '{{headers: .headers}}'
targets = ["t"]
"#,
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    let (status, answer) = post_json(
        &gw.hook("nullstone"),
        r#"{"event":"app-deployed"}"#,
        &[("X-Hookgate-Token", SECRET), ("X-Trace", "trace-1")],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("event id");

    let seen = receiver.expect_exactly(1, SETTLE).await;
    let forwarded = &seen[0];
    assert_eq!(
        forwarded.json()["headers"]["x-trace"],
        "trace-1",
        "mappings still see the other headers"
    );
    assert!(
        !contains(&forwarded.body, SECRET),
        "forwarded body: {:?}",
        forwarded.body
    );
    for (name, value) in &forwarded.headers {
        assert!(
            !contains(value.as_bytes(), SECRET),
            "forwarded header {name}"
        );
    }

    let url = format!(
        "{}/admin/v1/events/{id}",
        gw.admin_url.as_deref().expect("admin")
    );
    let resp = client()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin");
    assert_eq!(resp.status().as_u16(), 200);
    let view = resp.bytes().await.expect("admin body");
    assert!(
        contains(&view, "trace-1"),
        "the view shows headers: {view:?}"
    );
    assert!(!contains(&view, SECRET), "admin event view: {view:?}");

    let stored = gw
        .db()
        .texts("SELECT CAST(headers AS TEXT) FROM events")
        .await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(SECRET), "stored headers: {stored:?}");
    assert!(
        !stored[0].to_ascii_lowercase().contains("x-hookgate-token"),
        "{stored:?}"
    );
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
