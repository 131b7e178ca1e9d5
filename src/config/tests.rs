use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", &|name| {
        (name == "SECRET").then(|| "s3cret".to_string())
    })
}

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"

[sources.gh]
kind = "github"
secret = "${SECRET}"

[targets.port]
url = "http://127.0.0.1:9/ingest"
timeout = "2s"
retry = { max_attempts = 3, initial = "100ms", max = "1s" }
sign = { scheme = "github", secret = "${SECRET}" }

[[routes]]
name = "r1"
source = "gh"
filter = '.body.ok == true'
map = { identifier = ".body.id", properties = { a = ".body.a" } }
targets = ["port"]
"#;

#[test]
fn a_good_config_validates() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.targets["port"].retry.max_attempts, 3);
    assert_eq!(c.targets["port"].timeout, Duration::from_secs(2));
    assert!(c.sources["gh"].verifier.is_some());
}

#[test]
fn every_problem_is_listed_with_its_key() {
    let bad = r#"
[server]
listne = "x"

[sources.gh]
kind = "github"
secret = "${NOPE}"

[targets.port]
url = "http://127.0.0.1:9/"
timeout = "soon"

[[routes]]
name = "r1"
source = "gh"
jq = '.body | {'
targets = ["port", "slack"]
"#;
    let err = parse(bad).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
    for want in [
        "server",
        "sources.gh.secret",
        "targets.port.timeout",
        "routes[0].jq",
        "routes[0].targets",
    ] {
        assert!(keys.contains(&want), "missing {want} in {err}");
    }
    let text = err.to_string();
    assert!(text.contains("unknown field `listne`"), "{text}");
    assert!(text.contains("`NOPE` is not set"), "{text}");
    assert!(text.contains("unknown target `slack`"), "{text}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let c = parse(GOOD).unwrap();
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn store_urls_select_a_backend_and_sqlite_only_settings_are_refused_on_postgres() {
    let with_store = |store: &str| format!("{GOOD}\n[store]\n{store}\n");
    let pg = parse(&with_store(r#"url = "postgres://gw@db.internal/hookgate""#)).unwrap();
    assert_eq!(pg.store.url, "postgres://gw@db.internal/hookgate");
    parse(&with_store(
        r#"url = "postgresql://gw@db/h?sslmode=verify-full""#,
    ))
    .unwrap();
    let err = parse(&with_store(
        "url = \"postgres://gw@db/h\"\nsync = \"normal\"",
    ))
    .unwrap_err();
    assert!(err.to_string().contains("SQLite only"), "{err}");
    let err = parse(&with_store(r#"url = "mysql://gw@db/h""#)).unwrap_err();
    assert_eq!(err.problems[0].0, "store.url", "{err}");
}
