//! The web console over plain HTTP: sign-in and its cookie, the security headers, CSRF on every
//! state change, hostile payloads shown inert, no secret on any page, retry and reload from the
//! pages. (`tests/browser/` drives the same pages in a real browser.)

use crate::utils::admin::{ADMIN, TOKEN};
use crate::utils::console::{Console, client, csrf_of, sign_in_with};
use crate::utils::{Gateway, Receiver, Reply, post_json, sha256_header};
use std::time::Duration;

const SOURCE_SECRET: &str = "source-secret-4f9a1c77";
const SIGN_SECRET: &str = "target-signing-secret-8d2e";
const URL_SECRET: &str = "T0000/B0000/url-path-secret-x91";
const HEADER_SECRET: &str = "header-api-key-5be0";

fn config(receiver: &str) -> String {
    format!(
        r#"
{ADMIN}

[sources.gh]
kind = "github"
secret = "{SOURCE_SECRET}"

[sources.plain]
kind = "generic"

[targets.t]
url = "{receiver}/{URL_SECRET}"
headers = {{ "X-Api-Key" = "{HEADER_SECRET}" }}
sign = {{ scheme = "hmac-sha256", secret = "{SIGN_SECRET}", header = "X-Signature" }}
retry = {{ max_attempts = 1 }}

[[routes]]
name = "to-t"
source = "plain"
filter = '.body.kind != "skip"'
targets = ["t"]

[[routes]]
name = "gh-to-t"
source = "gh"
targets = ["t"]
"#
    )
}

fn secrets() -> [&'static str; 5] {
    [TOKEN, SOURCE_SECRET, SIGN_SECRET, URL_SECRET, HEADER_SECRET]
}

#[tokio::test]
async fn sign_in_gives_a_strict_cookie_and_sign_out_ends_it() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let base = gw.admin_url.clone().expect("admin");

    // Not signed in: every page leads to the sign-in form.
    let resp = client()
        .get(format!("{base}/events"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/login");
    let form = client()
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("get");
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(form.headers()["x-frame-options"], "DENY");
    assert!(
        form.text()
            .await
            .expect("body")
            .contains("type=\"password\"")
    );

    let wrong = sign_in_with(&base, "not-the-token").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.headers.get("set-cookie").is_none());
    assert!(wrong.body.contains("not the admin token"));

    let right = sign_in_with(&base, TOKEN).await;
    assert_eq!((right.status, right.location()), (303, "/"));
    let cookie = right.headers["set-cookie"].to_str().expect("cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains(TOKEN));

    let console = Console::sign_in(&base).await;
    let overview = console.get("/").await;
    assert!(overview.body.contains("Overview"));
    // The API beside it still wants its bearer token, not the cookie.
    let api = client()
        .get(format!("{base}/admin/v1/events"))
        .header("cookie", &console.cookie)
        .send()
        .await
        .expect("api");
    assert_eq!(api.status().as_u16(), 401);

    // Signing out needs the CSRF token too, and ends the session.
    assert_eq!(console.post_raw("/logout", &[], &[]).await.status, 403);
    let out = console.post("/logout", &[]).await;
    assert_eq!((out.status, out.location()), (303, "/login"));
    assert_eq!(console.get("/").await.status, 303);
}

#[tokio::test]
async fn every_state_change_needs_the_session_csrf_token() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(500));
    let gw = Gateway::start(&config(&receiver.url)).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    post_json(&gw.hook("plain"), r#"{"kind":"a"}"#, &[]).await;
    gw.wait_deliveries(Duration::from_secs(10), |d| d.iter().any(|x| x.2 == "dead"))
        .await;
    let ids = gw.delivery_ids().await;
    let path = format!("/deliveries/{}/retry", ids[0]);

    let forged = [("csrf", "forged")];
    assert_eq!(console.post_raw(&path, &[], &[]).await.status, 403);
    assert_eq!(console.post_raw(&path, &forged, &[]).await.status, 403);
    let good = [("csrf", console.csrf.as_str())];
    let cross = console
        .post_raw(&path, &good, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(cross.status, 403);
    for p in ["/config/reload", "/targets/t/disable", "/deliveries/retry"] {
        assert_eq!(console.post_raw(p, &forged, &[]).await.status, 403, "{p}");
    }
    // None of those changed anything.
    assert!(gw.deliveries().await.iter().all(|x| x.2 == "dead"));
    // Another session's token is not this one's.
    let other = Console::sign_in(&console.base).await;
    assert_ne!(other.csrf, console.csrf);
    let mixed = [("csrf", other.csrf.as_str())];
    assert_eq!(console.post_raw(&path, &mixed, &[]).await.status, 403);

    let done = console
        .post_raw(&path, &good, &[("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        done.location().ends_with("?notice=queued"),
        "{}",
        done.location()
    );
}

#[tokio::test]
async fn a_failed_delivery_is_retried_from_its_page_and_bulk_retry_confirms_the_count() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(503));
    let gw = Gateway::start(&config(&receiver.url)).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    for n in 0..3 {
        post_json(&gw.hook("plain"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.len() == 3 && d.iter().all(|x| x.2 == "dead")
    })
    .await;
    let ids = gw.delivery_ids().await;
    receiver.default_reply(Reply::status(200));
    let overview = console.get("/").await.body;
    assert!(
        overview.contains(r#"<span class="n">3</span> dead"#),
        "{overview}"
    );

    let page = console.get(&format!("/deliveries/{}", ids[0])).await;
    assert!(page.body.contains("HTTP 503"), "{}", page.body);
    let retried = console
        .post(&format!("/deliveries/{}/retry", ids[0]), &[])
        .await;
    assert_eq!(retried.status, 303);
    let shown = console.get(retried.location()).await;
    assert!(shown.body.contains("Queued"), "{}", shown.body);
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.iter().filter(|x| x.2 == "succeeded").count() == 1
    })
    .await;

    // Bulk: the count first, nothing queued yet.
    let ask = console
        .post("/deliveries/retry", &[("status", "dead")])
        .await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("2 deliveries match"), "{}", ask.body);
    assert!(ask.body.contains("Queue 2 deliveries"));
    assert_eq!(
        gw.deliveries()
            .await
            .iter()
            .filter(|x| x.2 == "dead")
            .count(),
        2
    );
    let csrf = csrf_of(&ask.body).expect("csrf");
    let go = console
        .post_raw(
            "/deliveries/retry",
            &[("status", "dead"), ("confirm", "2"), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(go.status, 303);
    assert!(go.location().contains("queued=2"), "{}", go.location());
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.iter().all(|x| x.2 == "succeeded")
    })
    .await;
    assert_eq!(receiver.seen().len(), 3 + 3);
}

/// A route whose mapping fails makes a failed delivery that no retry can send (it has no body to
/// send); the overview counts it with the others, as the list its tile links to shows it.
#[tokio::test]
async fn the_overview_counts_every_failed_delivery_its_link_lists() {
    let receiver = Receiver::start().await;
    let text = config(&receiver.url).replace(
        "filter = '.body.kind != \"skip\"'",
        "jq = 'error(\"no mapping for \\(.body.n)\")'",
    );
    let gw = Gateway::start(&text).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    post_json(&gw.hook("plain"), r#"{"n":1}"#.to_string(), &[]).await;
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.len() == 1 && d[0].2 == "failed"
    })
    .await;
    let overview = console.get("/").await.body;
    assert!(
        overview.contains(r#"<span class="n">1</span> failed"#),
        "{overview}"
    );
    let listed = console.get("/deliveries?status=failed").await.body;
    assert!(listed.contains("no mapping for 1"), "{listed}");
}

#[tokio::test]
async fn hostile_payloads_are_shown_as_inert_clipped_text() {
    let receiver = Receiver::start().await;
    receiver.default_reply(
        Reply::status(500)
            .header("x-evil", "<img src=x onerror=alert(1)>")
            .body("<script>window.fromTarget=1</script>"),
    );
    let gw = Gateway::start(&config(&receiver.url)).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    let huge = "A".repeat(50_000);
    let body = format!(
        r#"{{"html":"</pre><script>window.pwned=1</script>","link":"javascript:alert(1)","huge":"{huge}"}}"#
    );
    let (status, answer) = post_json(&gw.hook("plain"), body, &[]).await;
    assert_eq!(status, 202);
    let id = answer["id"].as_str().expect("id").to_string();
    gw.wait_deliveries(Duration::from_secs(10), |d| d.iter().any(|x| x.2 == "dead"))
        .await;
    let ids = gw.delivery_ids().await;

    let event = console.get(&format!("/events/{id}")).await;
    assert_eq!(event.status, 200);
    assert!(
        !event.body.contains("<script>window"),
        "a script tag reached the page"
    );
    assert!(
        event
            .body
            .contains("&lt;/pre&gt;&lt;script&gt;window.pwned=1")
    );
    assert!(!event.body.contains("href=\"javascript:"));
    assert!(
        event.body.len() < 40_000,
        "the body is clipped: {}",
        event.body.len()
    );
    assert!(event.body.contains("more bytes"));
    let full = console.get(&format!("/events/{id}?full=true")).await;
    assert!(full.body.contains(&huge));

    let delivery = console.get(&format!("/deliveries/{}", ids[0])).await;
    assert!(!delivery.body.contains("<script>window.fromTarget"));
    assert!(!delivery.body.contains("<img src=x"));
    assert!(delivery.body.contains("&lt;script&gt;window.fromTarget=1"));
}

#[tokio::test]
async fn no_page_shows_a_secret() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(500));
    let gw = Gateway::start(&config(&receiver.url)).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    let body = br#"{"action":"opened"}"#;
    let sig = sha256_header(SOURCE_SECRET, body);
    let (status, answer) = post_json(
        &gw.hook("gh"),
        body.to_vec(),
        &[("x-hub-signature-256", &sig), ("x-github-event", "issues")],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    gw.wait_deliveries(Duration::from_secs(10), |d| d.iter().any(|x| x.2 == "dead"))
        .await;
    let ids = gw.delivery_ids().await;
    let event = answer["id"].as_str().expect("id");
    let mut pages = vec![
        "/".to_string(),
        "/events".into(),
        format!("/events/{event}"),
        "/deliveries".into(),
        format!("/deliveries/{}", ids[0]),
        "/targets".into(),
        "/config".into(),
    ];
    let reload = console.post("/config/reload", &[]).await;
    assert_eq!(reload.status, 200);
    assert!(reload.body.contains("Reloaded"), "{}", reload.body);
    let enable_refused = {
        console.post("/targets/t/disable", &[]).await;
        console.post("/targets/t/enable", &[]).await
    };
    assert_eq!(enable_refused.status, 409);
    assert!(
        enable_refused.body.contains("ping failed (HTTP 500)"),
        "{}",
        enable_refused.body
    );
    pages.push("/deliveries?status=dead".into());
    let mut seen = vec![reload.body, enable_refused.body];
    for p in &pages {
        let page = console.get(p).await;
        assert!(page.status == 200, "{p}: {}", page.status);
        seen.push(page.body);
    }
    // Signed in, `/login` leads home; signed out it is the form.
    let login = client()
        .get(format!("{}/login", console.base))
        .send()
        .await
        .expect("login");
    seen.push(login.text().await.expect("login page"));
    pages.push("/login (signed out)".into());
    let labels = ["reload", "enable"].map(String::from);
    for (page, body) in labels.iter().chain(&pages).zip(&seen) {
        for secret in secrets() {
            assert!(!body.contains(secret), "{page} shows `{secret}`");
        }
    }
    let config = console.get("/config").await;
    assert!(
        config.body.contains(".body.kind != &quot;skip&quot;"),
        "the filter is shown"
    );
    // Both routes (a predicate, a pass-through) are evaluated in the gateway; the page says so.
    assert_eq!(config.body.matches("<td>in the gateway</td>").count(), 2);
}

#[tokio::test]
async fn a_broken_config_reload_lists_every_problem_and_changes_nothing() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url)).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    let broken = config(&receiver.url)
        .replace(
            "targets = [\"t\"]\n\n[[routes]]",
            "targets = [\"nowhere\"]\n\n[[routes]]",
        )
        .replace(".body.kind != \"skip\"", ".body.kind !=");
    gw.rewrite_config(&broken);
    let answer = console.post("/config/reload", &[]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("Reload refused"), "{}", answer.body);
    assert!(answer.body.contains("routes[0].filter"), "{}", answer.body);
    assert!(answer.body.contains("nowhere"), "{}", answer.body);
    for secret in secrets() {
        assert!(!answer.body.contains(secret));
    }
    // The running config is unchanged.
    let (status, _) = post_json(&gw.hook("plain"), r#"{"kind":"a"}"#, &[]).await;
    assert_eq!(status, 202);
    receiver.wait_for(1, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn plugins_are_uploaded_with_the_csrf_header_and_a_refusal_says_why() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let with_plugins = format!(
        "[plugins]\ndir = \"{}\"\n{}",
        dir.path().join("plugins").display(),
        config(&receiver.url)
    );
    let gw = Gateway::start(&with_plugins).await;
    let console = Console::sign_in(gw.admin_url.as_deref().expect("admin")).await;
    let wasm = crate::utils::wasm::plugin_bytes("slack-notify");
    let put = |csrf: Option<String>, body: Vec<u8>| {
        let mut req = client()
            .put(format!("{}/plugins/slack-notify", console.base))
            .header("cookie", &console.cookie)
            .body(body);
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let forged = put(Some("forged".into()), wasm.clone()).await.expect("put");
    assert_eq!(forged.status().as_u16(), 403);
    let bad = put(Some(console.csrf.clone()), b"not wasm".to_vec())
        .await
        .expect("put");
    assert_eq!(bad.status().as_u16(), 400);
    let why: serde_json::Value = bad.json().await.expect("json");
    assert!(
        why["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{why}"
    );
    let ok = put(Some(console.csrf.clone()), wasm).await.expect("put");
    assert_eq!(ok.status().as_u16(), 200);
    let page = console.get("/plugins").await;
    assert!(page.body.contains("slack-notify"), "{}", page.body);
    let gone = console.post("/plugins/slack-notify/delete", &[]).await;
    assert_eq!(gone.status, 303);
    assert!(
        !console
            .get("/plugins")
            .await
            .body
            .contains("<td>slack-notify</td>")
    );
}
