//! A target switched off and on: by a 410 from the target itself, or by an operator through the
//! admin API; an enable must pass a ping first.

use crate::utils::admin::{ADMIN, TOKEN, admin};
use crate::utils::{Gateway, Receiver, Reply, post_json};
use std::time::Duration;

/// A 410 pauses its target: deliveries wait as pending (not dead), an enable must pass a ping,
/// and then everything that waited goes out. Operators can disable and enable too.
#[tokio::test]
async fn gone_target_is_paused_and_resumes_after_a_ping() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(410));
    let config = format!(
        r#"
{ADMIN}

[sources.s]
kind = "generic"

[targets.t]
url = "{}/secret-path-token"
sign = {{ scheme = "github", secret = "target-secret" }}

[[routes]]
name = "r"
source = "s"
targets = ["t"]
"#,
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let (_, targets) = admin(&gw, reqwest::Method::GET, "/admin/v1/targets", Some(TOKEN)).await;
    let wait_disabled = async {
        for _ in 0..100 {
            let (_, t) = admin(&gw, reqwest::Method::GET, "/admin/v1/targets", Some(TOKEN)).await;
            if t["data"][0]["disabled"] == true {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("target never disabled: {targets}");
    };
    let t = wait_disabled.await;
    assert_eq!(t["data"][0]["reason"], "target answered 410 Gone");
    assert!(
        !t.to_string().contains("secret-path-token"),
        "URLs are shown without path: {t}"
    );
    for n in 2..4 {
        post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.seen().len(),
        1,
        "nothing is sent to a disabled target"
    );
    let d = gw.deliveries().await;
    assert!(
        d.len() == 3 && d.iter().all(|x| x.2 == "pending"),
        "paused, not dead: {d:?}"
    );

    // The ping still gets 410: the target stays disabled.
    let (status, body) = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/v1/targets/t/enable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    receiver.default_reply(Reply::status(200));
    let (status, _) = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/v1/targets/t/enable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 3 && d.iter().all(|x| x.2 == "succeeded")
    })
    .await;
    let pings: Vec<_> = receiver
        .seen()
        .into_iter()
        .filter(|r| r.json()["type"] == "hookgate.ping")
        .collect();
    assert_eq!(pings.len(), 2);
    assert_eq!(
        pings[1].header("x-hub-signature-256"),
        crate::utils::sha256_header("target-secret", &pings[1].body)
    );

    // An operator's disable pauses new deliveries the same way.
    let (status, _) = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/v1/targets/t/disable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let before = receiver.seen().len();
    post_json(&gw.hook("s"), r#"{"n":9}"#, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), before);
    let (status, _) = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/v1/targets/nope/disable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
}
