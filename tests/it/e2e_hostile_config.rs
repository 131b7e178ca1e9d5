//! Hostile or careless configs (issue 11): whatever a config file holds, `check` refuses it with
//! the key, a reload through the admin API answers 422, and the running gateway keeps serving.

use crate::utils::admin::{ADMIN, TOKEN, admin, cli};
use crate::utils::binary::run;
use crate::utils::{Gateway, Receiver, post_json};
use std::time::Duration;

/// Writes `text` to a file and runs `hookgate check` on it.
fn check(text: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hookgate.toml");
    std::fs::write(&file, text).expect("write config");
    run(&["check", "--config", file.to_str().expect("path")], env)
}

/// A source `s`, a target `t` at `url` with `target_extra`, and route `r` with `route_extra`.
fn config(url: &str, target_extra: &str, route_extra: &str) -> String {
    format!(
        "[sources.s]\nkind = \"generic\"\n\n[targets.t]\nurl = \"{url}\"\n{target_extra}\n\n\
         [[routes]]\nname = \"r\"\nsource = \"s\"\ntargets = [\"t\"]\n{route_extra}\n"
    )
}

fn nested(depth: usize) -> String {
    format!("{}true{}", "(".repeat(depth), ")".repeat(depth))
}

/// 32 levels of `(… and .a and .a …)`: shallow where each bracket opens, but jaq builds every
/// bracket below the chain after it (about 12,800 levels in all; `check` aborted on a stack
/// overflow).
fn chained() -> String {
    let mut code = ".a".to_string();
    for _ in 0..32 {
        code = format!("({code}{})", " and .a".repeat(400));
    }
    code
}

/// 800 parentheses passed `check` and then aborted the gateway on reload; 3,500 aborted `check`;
/// so did [`chained`], which the nesting check once passed.
#[test]
fn check_and_try_refuse_deeply_nested_jq_with_its_key() {
    for program in [nested(800), nested(3_500), chained()] {
        let text = config(
            "http://127.0.0.1:9/",
            "",
            &format!("filter = '{program}'\nmap = {{ a = '{program}' }}"),
        );
        let (code, out, err) = check(&text, &[]);
        assert_eq!(code, 1, "{out}{err}");
        for want in [
            "routes[0].filter",
            "routes[0].map",
            "nests more than 512 levels",
        ] {
            assert!(err.contains(want), "missing `{want}` in:\n{err}");
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hookgate.toml");
    let body = dir.path().join("body.json");
    std::fs::write(&body, "{}").expect("write body");
    let event_type = format!("event_type = '{}'\n", nested(3_500));
    let text = config("http://127.0.0.1:9/", "", "").replace(
        "kind = \"generic\"\n",
        &format!("kind = \"generic\"\n{event_type}"),
    );
    std::fs::write(&file, text).expect("write config");
    let (code, _, err) = run(
        &[
            "try",
            "--config",
            file.to_str().expect("path"),
            "--source",
            "s",
            "--body",
            body.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("sources.s.event_type") && err.contains("nests more than"),
        "{err}"
    );
}

#[tokio::test]
async fn reload_of_deeply_nested_jq_answers_422_and_the_gateway_keeps_serving() {
    let receiver = Receiver::start().await;
    let good = format!("{ADMIN}\n{}", config(&receiver.url, "", ""));
    let gw = Gateway::start(&good).await;
    gw.rewrite_config(&format!(
        "{ADMIN}\n{}",
        config(&receiver.url, "", &format!("filter = '{}'", nested(800)))
    ));
    let (status, body) = admin(&gw, reqwest::Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("routes[0].filter") && error.contains("nests more than"),
        "{error}"
    );
    let (status, _) = post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    assert_eq!(status, 202);
    receiver.wait_for(1, Duration::from_secs(5)).await;
}

/// `timeout = "18446744073709551615s"` passed `check` and then panicked the delivery worker;
/// `retention = "1000000000y"` pruned everything; sixteen spaces made an admin token.
#[test]
fn check_refuses_overflowing_durations_numbers_and_blank_tokens() {
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{}\"\n\n[store]\nretention = \"1000000000y\"\n\n{}",
        " ".repeat(16),
        config(
            "http://127.0.0.1:9/",
            "timeout = \"18446744073709551615s\"\n\
             retry = { max_attempts = 4000000000, initial = \"1000000000y\", max = \"1000000000y\" }\n\
             breaker = { failures = 4000000000, cool_down = \"1000000000y\" }\n\
             rate_limit = \"1e-300/s\"\nconcurrency = 9223372036854775807",
            "",
        )
    );
    let (code, out, err) = check(&text, &[]);
    assert_eq!(code, 1, "{out}{err}");
    for want in [
        "admin.token: is blank",
        "store.retention: must be at most",
        "targets.t.timeout: must be at most 1h",
        "targets.t.retry.max_attempts: must be at most",
        "targets.t.retry.initial: must be at most",
        "targets.t.retry.max: must be at most",
        "targets.t.breaker.failures: must be at most",
        "targets.t.breaker.cool_down: must be at most",
        "targets.t.rate_limit: must allow at least one attempt an hour",
        "targets.t.concurrency: must be at most",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

/// `POST /admin/v1/deliveries/retry?limit=1&target=rx` queued all 10,000 deliveries, succeeded
/// ones included. Now it queues at most `limit`, succeeded ones only when asked by status, and
/// a dry run tells the count without changing anything.
#[tokio::test]
async fn bulk_retry_respects_limit_skips_succeeded_and_dry_runs() {
    let receiver = Receiver::start().await;
    receiver.default_reply(crate::utils::Reply::status(422));
    let text = format!("{ADMIN}\n{}", config(&receiver.url, "", ""))
        .replace("targets.t]", "targets.rx]")
        .replace("[\"t\"]", "[\"rx\"]");
    let gw = Gateway::start(&text).await;
    for n in 0..10 {
        post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.len() == 10 && d.iter().all(|x| x.2 == "failed")
    })
    .await;
    let retry = |query: &'static str| {
        let gw = &gw;
        async move {
            let path = format!("/admin/v1/deliveries/retry?{query}");
            admin(gw, reqwest::Method::POST, &path, Some(TOKEN)).await
        }
    };
    let statuses = || async {
        let d = gw.deliveries().await;
        let count = |s: &str| d.iter().filter(|x| x.2 == s).count();
        (count("failed"), count("succeeded"), count("pending"))
    };

    // A dry run counts and changes nothing.
    let (status, body) = retry("target=rx&dry_run=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["would_queue"].as_u64(), body["matching"].as_u64()),
        (Some(10), Some(10)),
        "{body}"
    );
    let (_, body) = retry("target=rx&limit=1&dry_run=true").await;
    assert_eq!(
        (body["would_queue"].as_u64(), body["matching"].as_u64()),
        (Some(1), Some(10)),
        "{body}"
    );
    assert_eq!(statuses().await, (10, 0, 0));
    assert_eq!(receiver.seen().len(), 10);

    // limit=1 queues exactly one.
    receiver.default_reply(crate::utils::Reply::status(200));
    let (status, body) = retry("limit=1&target=rx").await;
    assert_eq!((status, body["queued"].as_u64()), (202, Some(1)), "{body}");
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.iter().filter(|x| x.2 == "succeeded").count() == 1
    })
    .await;
    assert_eq!(statuses().await, (9, 1, 0));

    // No status: failed and dead ones only; the succeeded one is not sent again.
    let (_, body) = retry("dry_run=true").await;
    assert_eq!(body["would_queue"].as_u64(), Some(9), "{body}");
    let (status, body) = retry("limit=3").await;
    assert_eq!((status, body["queued"].as_u64()), (202, Some(3)), "{body}");
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.iter().filter(|x| x.2 == "succeeded").count() == 4
    })
    .await;
    receiver
        .expect_exactly(14, Duration::from_millis(300))
        .await;
    assert_eq!(statuses().await, (6, 4, 0));

    // Succeeded deliveries only when named; bad limits and `pending` are refused.
    let (_, body) = retry("status=succeeded&dry_run=true").await;
    assert_eq!(body["would_queue"].as_u64(), Some(4), "{body}");
    for bad in ["limit=0", "limit=10001", "status=pending"] {
        let (status, body) = retry(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(statuses().await, (6, 4, 0));

    // The CLI shows the count first and queues only with --yes.
    let (code, out, err) = cli(&gw, TOKEN, &["deliveries", "retry", "--target", "rx"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("6 deliveries would be queued (6 match, limit 1000)")
            && out.contains("nothing queued"),
        "{out}"
    );
    assert_eq!(statuses().await, (6, 4, 0));
    let args = [
        "deliveries",
        "retry",
        "--target",
        "rx",
        "--limit",
        "2",
        "--yes",
    ];
    let (code, out, err) = cli(&gw, TOKEN, &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2 deliveries would be queued (6 match, limit 2)") && out.contains("queued 2"),
        "{out}"
    );
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.iter().filter(|x| x.2 == "succeeded").count() == 6
    })
    .await;
}

/// What `${API_KEY}` holds in the tests below: it must never show.
const SECRET: &str = "sk_live_abcSECRETLEAK0042";

/// `${API_KEY}` in every kind of wrong place: spliced into jq (filter, map leaf, event type),
/// where a number, a duration, a rate, a kind, a store setting or a target name belongs.
const LEAKY: &str = r#"
[sources.s]
kind = "generic"
event_type = '.body."${API_KEY}"'

[sources.k]
kind = "${API_KEY}"

[targets.t]
url = "http://127.0.0.1:9/"
timeout = "${API_KEY}"
rate_limit = "${API_KEY}"

[targets.u]
url = "http://127.0.0.1:9/"
concurrency = "${API_KEY}"

[[routes]]
name = "r"
source = "s"
filter = '.body.key == "${API_KEY}"'
targets = ["t", "${API_KEY}"]

[[routes]]
name = "m"
source = "s"
map = { id = '.body."${API_KEY}"' }
targets = ["t"]
"#;

fn assert_no_secret(text: &str) {
    for piece in [SECRET, "SECRETLEAK", "abcSECRET", "LEAK0042"] {
        assert!(!text.contains(piece), "`{piece}` leaked in:\n{text}");
    }
}

#[test]
fn check_never_prints_an_interpolated_value_and_names_the_key() {
    let text = format!(
        "[server]\nmax_body_bytes = \"${{API_KEY}}\"\n\n[store]\nsync = \"${{API_KEY}}\"\n\
         retention = \"${{API_KEY}}\"\n{LEAKY}"
    );
    let (code, out, err) = check(&text, &[("API_KEY", SECRET)]);
    assert_eq!(code, 1, "{out}{err}");
    assert_no_secret(&format!("{out}{err}"));
    for key in [
        "server:",
        "store.sync:",
        "store.retention:",
        "sources.s.event_type:",
        "sources.k.kind:",
        "targets.t.timeout:",
        "targets.t.rate_limit:",
        "targets.u:",
        "routes[0].filter:",
        "routes[0].targets:",
        "routes[1].map:",
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no problem at `{key}` in:\n{err}"));
        assert!(line.contains("${API_KEY}"), "{line}");
    }
    assert!(
        err.contains("${API_KEY} may not be used in a jq program"),
        "{err}"
    );
}

/// Through the real binary: the reload answer and the log say where, never what.
#[tokio::test]
async fn reload_answers_and_logs_never_show_an_interpolated_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"sqlite://{}\"\n\n{ADMIN}\n",
        dir.path().join("hookgate.db").display()
    );
    let file = dir.path().join("hookgate.toml");
    std::fs::write(
        &file,
        format!("{head}\n{}", config("http://127.0.0.1:9/", "", "")),
    )
    .expect("write config");
    let serving = file.clone();
    let gw = tokio::task::spawn_blocking(move || {
        crate::utils::binary::Process::serve_with_env(&serving, &[("API_KEY", SECRET)])
    })
    .await
    .expect("start");
    let admin_url = gw.admin_url.clone().expect("admin listener");

    std::fs::write(&file, format!("{head}\n{LEAKY}")).expect("rewrite config");
    let resp = crate::utils::client()
        .post(format!("{admin_url}/admin/v1/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("reload");
    assert_eq!(resp.status().as_u16(), 422);
    let body = resp.text().await.expect("body");
    assert_no_secret(&body);
    for key in ["routes[0].filter", "targets.t.timeout", "routes[0].targets"] {
        assert!(body.contains(key), "missing {key} in {body}");
    }
    let (status, _) = post_json(&format!("{}/hooks/s", gw.url), "{}", &[]).await;
    assert_eq!(status, 202, "still serving");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = gw.logs.lock().expect("logs").join("\n");
    assert!(logs.contains("config reload refused"), "{logs}");
    assert_no_secret(&logs);
}
