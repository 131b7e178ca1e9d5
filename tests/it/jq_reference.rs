//! hookgate's jq against real jq: every case of `tests/jq/corpus.toml` runs through the jq a
//! mapping runs (`JqProgram` compiled, then run as a route's transform, natively when it is a
//! projection; each output serialised as a target receives it) and
//! through jq 1.8.2 (`tests/jq/reference.py`, libjq from PyPI's `jq` package, which
//! `./scripts/test` installs and points `HOOKGATE_JQ_PYTHON` at).
//!
//! A case agrees when both print the same outputs, byte for byte, and both either end or fail.
//! Error messages are not compared when the error is uncaught (hookgate words its own, with the
//! route's name, in the delivery log); a message a program catches (`catch .`) is an output and
//! is compared. Every case that disagrees must be listed in `tests/jq/differences.toml` with its
//! reason, and every listed case must still disagree: the list is exactly what differs.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn jq_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jq")
}

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    program: String,
    input: String,
}

#[derive(Deserialize)]
struct Differences {
    #[serde(default)]
    difference: Vec<Difference>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Difference {
    case: String,
    reason: String,
}

/// One run's result: the outputs as compact JSON text, and whether (and at which stage) it failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Outcome {
    outputs: Vec<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    stage: Option<String>,
}

impl Outcome {
    /// What a user can tell apart: the values delivered, and whether the run failed.
    fn agrees_with(&self, other: &Outcome) -> bool {
        self.error.is_some() == other.error.is_some()
            && (self.error.is_some() || self.outputs == other.outputs)
    }
}

fn reference() -> BTreeMap<String, Outcome> {
    let python = std::env::var("HOOKGATE_JQ_PYTHON").unwrap_or_else(|_| {
        panic!(
            "HOOKGATE_JQ_PYTHON is not set: run the suite with ./scripts/test, which installs \
             tests/jq/requirements.txt (or point it at a Python with that installed)"
        )
    });
    let out = Command::new(&python)
        .arg(jq_dir().join("reference.py"))
        .output()
        .unwrap_or_else(|e| panic!("running {python} tests/jq/reference.py: {e}"));
    assert!(
        out.status.success(),
        "tests/jq/reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[derive(Deserialize)]
    struct Line {
        name: String,
        #[serde(flatten)]
        outcome: Outcome,
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let line: Line = serde_json::from_str(l).expect("reference.py prints JSON lines");
            (line.name, line.outcome)
        })
        .collect()
}

/// The case through hookgate's jq, as a route runs it.
fn hookgate(case: &Case) -> Outcome {
    use hookgate::testing::{JqProgram, route_bodies};
    let failed = |stage: &str, e: String| Outcome {
        outputs: Vec::new(),
        error: Some(e),
        stage: Some(stage.into()),
    };
    let program = match JqProgram::compile(&case.program) {
        Ok(p) => p,
        Err(e) => return failed("compile", e.to_string()),
    };
    let input = match jaq_json::read::parse_single(case.input.trim().as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("case {}: the input is not JSON: {e}", case.name),
    };
    // The `predicate_*` cases are filters, evaluated natively (each must be a predicate).
    if case.name.starts_with("predicate_") {
        let output = hookgate::testing::predicate_output(&program, &input)
            .unwrap_or_else(|| panic!("{} is not evaluated as a predicate", case.name));
        return match output {
            Ok(text) => Outcome {
                outputs: vec![String::from_utf8_lossy(&text).into_owned()],
                error: None,
                stage: None,
            },
            Err(e) => failed("run", e),
        };
    }
    let texts = route_bodies(program, &input).map(|bodies| {
        bodies
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>()
    });
    match texts {
        Ok(outputs) => Outcome {
            outputs,
            error: None,
            stage: None,
        },
        Err(e) => failed("run", e.to_string()),
    }
}

#[test]
fn hookgate_jq_prints_what_jq_prints_except_the_listed_differences() {
    let corpus: Corpus = toml::from_str(
        &std::fs::read_to_string(jq_dir().join("corpus.toml")).expect("tests/jq/corpus.toml"),
    )
    .expect("corpus.toml parses");
    let listed: Differences = toml::from_str(
        &std::fs::read_to_string(jq_dir().join("differences.toml"))
            .expect("tests/jq/differences.toml"),
    )
    .expect("differences.toml parses");
    let names: BTreeSet<&str> = corpus.case.iter().map(|c| c.name.as_str()).collect();
    let mut reasons = BTreeMap::new();
    for d in &listed.difference {
        assert!(
            names.contains(d.case.as_str()),
            "differences.toml lists `{}`, which is not a case",
            d.case
        );
        assert!(!d.reason.trim().is_empty(), "`{}` has no reason", d.case);
        assert!(
            reasons.insert(d.case.as_str(), &d.reason).is_none(),
            "`{}` is listed twice",
            d.case
        );
    }

    // The `projection_*` cases are there for the native path: each must take it.
    for case in corpus
        .case
        .iter()
        .filter(|c| c.name.starts_with("projection_"))
    {
        let program = hookgate::testing::JqProgram::compile(&case.program).expect("compiles");
        assert!(
            hookgate::testing::is_projection(&program),
            "{} is not evaluated as a projection",
            case.name
        );
    }

    let reference = reference();
    assert_eq!(
        reference.len(),
        corpus.case.len(),
        "reference.py printed a line per case"
    );
    let mut unlisted = Vec::new();
    let mut stale = Vec::new();
    let mut agreeing = 0;
    for case in &corpus.case {
        let theirs = &reference[&case.name];
        let ours = hookgate(case);
        let agrees = ours.agrees_with(theirs);
        match (agrees, reasons.contains_key(case.name.as_str())) {
            (true, false) => agreeing += 1,
            (true, true) => stale.push(case.name.clone()),
            (false, true) => {}
            (false, false) => unlisted.push(format!(
                "{}: {}\n    jq:       {:?}\n    hookgate: {:?}",
                case.name, case.program, theirs, ours
            )),
        }
    }
    eprintln!(
        "jq corpus: {} cases, {agreeing} agree with jq 1.8.2, {} listed differences",
        corpus.case.len(),
        reasons.len()
    );
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "{} cases differ from jq and are not in tests/jq/differences.toml:\n{}\n\n\
         {} listed cases agree now (remove them from the list): {:?}",
        unlisted.len(),
        unlisted.join("\n"),
        stale.len(),
        stale
    );
}
