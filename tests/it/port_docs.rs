//! Every webhook mapping example of Port's documentation, as a `port` route runs it.
//!
//! `tests/port/docs/inventory.toml` lists the examples (found by searching the whole of
//! port-labs/port-docs); `tests/port/docs/*.toml` holds a case for each: the example restated
//! (same mapping shape, operations and jq constructs; our own names, payload and values, since
//! Port's documentation licence forbids copying it), a request, and the messages Port's semantics
//! give for it. Each case runs through hookgate's `port` transform and must give exactly those
//! messages and warnings; and through `tests/port/reference.py`, Port's semantics written a
//! second time on real jq (libjq 1.8.2, from the venv `HOOKGATE_JQ_PYTHON` points at), which must
//! give the same.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/port/docs")
}

#[derive(Deserialize)]
struct Inventory {
    example: Vec<Example>,
}

#[derive(Deserialize)]
struct Example {
    name: String,
}

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    page: String,
    shows: String,
    config: String,
    body: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    /// Keys hookgate warns about (e.g. a leaf that does not compile: null, as in Port).
    #[serde(default)]
    warnings: Vec<String>,
    /// The configuration is refused at load, with this in the reason.
    problem: Option<String>,
    /// The route fails on this request, with this in the reason.
    error: Option<String>,
    /// The messages, as JSON.
    expect: Option<String>,
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .expect("tests/port/docs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "inventory.toml"))
        .collect();
    files.sort();
    files
}

fn cases() -> Vec<Case> {
    corpus_files()
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).expect("corpus file");
            let corpus: Corpus =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            corpus.case
        })
        .collect()
}

fn request(case: &Case) -> String {
    format!(
        r#"{{"body":{},"headers":{},"queryParams":{}}}"#,
        case.body.trim(),
        serde_json::to_string(&case.headers).expect("headers"),
        serde_json::to_string(&case.query).expect("query"),
    )
}

fn parsed(texts: &[String]) -> Vec<serde_json::Value> {
    texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect()
}

#[test]
fn every_example_of_ports_docs_has_a_case() {
    let inventory: Inventory = toml::from_str(
        &std::fs::read_to_string(docs_dir().join("inventory.toml")).expect("inventory"),
    )
    .expect("inventory.toml");
    let listed: BTreeSet<String> = inventory.example.into_iter().map(|e| e.name).collect();
    let cases = cases();
    let mut seen = BTreeSet::new();
    for c in &cases {
        assert!(seen.insert(c.name.clone()), "case {} twice", c.name);
        assert!(
            c.page.starts_with("https://docs.port.io/") && !c.shows.is_empty(),
            "{}: page and shows",
            c.name
        );
    }
    let missing: Vec<_> = listed.difference(&seen).collect();
    let unknown: Vec<_> = seen.difference(&listed).collect();
    assert!(missing.is_empty(), "examples without a case: {missing:?}");
    assert!(
        unknown.is_empty(),
        "cases of no listed example: {unknown:?}"
    );
}

#[test]
fn each_case_gives_the_messages_ports_semantics_give() {
    let mut failures = Vec::new();
    for c in cases() {
        let got = hookgate::testing::port_messages(&c.config, &request(&c));
        match (&c.problem, &c.error, got) {
            (Some(p), _, Err(why)) if why.contains(p.as_str()) => {}
            (None, Some(e), Err(why)) if why.contains(e.as_str()) => {}
            (None, None, Ok((messages, warnings))) => {
                let want: Vec<serde_json::Value> =
                    serde_json::from_str(c.expect.as_deref().unwrap_or("[]"))
                        .unwrap_or_else(|e| panic!("{}: expect: {e}", c.name));
                if parsed(&messages) != want {
                    failures.push(format!("{}: got {messages:?}", c.name));
                }
                let want_warnings: Vec<String> =
                    c.warnings.iter().map(|w| format!("port.{w}")).collect();
                if warnings != want_warnings {
                    failures.push(format!("{}: warnings {warnings:?}", c.name));
                }
            }
            (_, _, got) => failures.push(format!("{}: {got:?}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn real_jq_under_ports_semantics_agrees() {
    let python = std::env::var("HOOKGATE_JQ_PYTHON").unwrap_or_else(|_| {
        panic!(
            "HOOKGATE_JQ_PYTHON is not set: run the suite with ./scripts/test, which installs \
             tests/jq/requirements.txt (or point it at a Python with that installed)"
        )
    });
    let out = Command::new(&python)
        .arg(docs_dir().join("../reference.py"))
        .args(corpus_files())
        .output()
        .unwrap_or_else(|e| panic!("running {python} tests/port/reference.py: {e}"));
    assert!(
        out.status.success(),
        "tests/port/reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[derive(Deserialize)]
    struct Line {
        name: String,
        messages: Option<Vec<String>>,
        error: Option<String>,
    }
    let reference: BTreeMap<String, Line> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let line: Line = serde_json::from_str(l).expect("reference.py prints JSON lines");
            (line.name.clone(), line)
        })
        .collect();
    let mut failures = Vec::new();
    for c in cases().into_iter().filter(|c| c.problem.is_none()) {
        let Some(want) = reference.get(&c.name) else {
            failures.push(format!("{}: not in the reference's output", c.name));
            continue;
        };
        match (
            hookgate::testing::port_messages(&c.config, &request(&c)),
            want,
        ) {
            (
                Ok((got, _)),
                Line {
                    messages: Some(m), ..
                },
            ) if parsed(&got) == parsed(m) => {}
            (Err(_), Line { error: Some(_), .. }) => {}
            (got, want) => failures.push(format!(
                "{}: hookgate {got:?}, real jq {:?} {:?}",
                c.name, want.messages, want.error
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
