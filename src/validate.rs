//! The validator every section of the config goes through, the stages' own included: it collects
//! problems, each with its key path (`targets.t.timeout`, `routes[0].filter`), instead of stopping
//! at the first, and holds the checks sections share — deserialising sections and tables,
//! addresses, HMAC algorithms and encodings, ranges of durations and numbers, and jq programs
//! (never compiled from text that came from `${VAR}`).
//!
//! A leaf: it knows key paths and values, never which section means what, so the stages validate
//! their own settings with it (`ingress::config`, `route::config`, `deliver::config`) and
//! `config` assembles the results. It must never import `config` or a stage. Problems may quote
//! the values they reject; `config` rewrites them afterwards so that none shows a value from the
//! environment. Here only which keys took a `${VAR}` is known ([`Interpolated`]), which is all
//! refusing them in jq takes.

use crate::signature::{Algorithm, Encoding};
use crate::transform::jq::JqProgram;
use std::time::Duration;

/// Every problem found so far, and what is needed to judge the rest.
#[derive(Default)]
pub(crate) struct Validator {
    /// `(key, why)`, in the order found; an empty key is about the whole file.
    pub(crate) problems: Vec<(String, String)>,
    /// The keys whose strings took a `${VAR}`: refused where they would become jq code.
    pub(crate) interpolated: Vec<Interpolated>,
    /// `(key, why)` of what loads but looks wrong (an event no preset has): reported, not refused.
    pub(crate) warnings: Vec<(String, String)>,
}

/// A key of the config whose string took at least one `${VAR}`; the value itself stays with
/// `config`, which keeps it out of every problem.
#[derive(Debug, Clone)]
pub(crate) struct Interpolated {
    /// Where, e.g. `routes[0].filter` or `routes[1].map.a.b`.
    pub(crate) key: String,
    /// The variables it took, in order.
    pub(crate) vars: Vec<String>,
}

/// How the problem for a jq program that took a `${VAR}` reads; `config`'s redaction looks for
/// it, because this problem names the variables itself.
pub(crate) const REFUSED_IN_JQ: &str = "may not be used in a jq program";

impl Validator {
    pub(crate) fn problem(&mut self, key: impl Into<String>, why: impl Into<String>) {
        self.problems.push((key.into(), why.into()));
    }

    pub(crate) fn warning(&mut self, key: impl Into<String>, why: impl Into<String>) {
        self.warnings.push((key.into(), why.into()));
    }

    /// Deserialises one section, recording (not returning) its error.
    pub(crate) fn section<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: toml::Value,
    ) -> Option<T> {
        match value.try_into::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, toml_message(&e));
                None
            }
        }
    }

    pub(crate) fn socket_addr(&mut self, key: &str, value: &str) {
        if value.parse::<std::net::SocketAddr>().is_err() {
            self.problem(
                key,
                format!("`{value}` is not an address like 127.0.0.1:8080"),
            );
        }
    }

    pub(crate) fn table_of<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: Option<toml::Value>,
    ) -> Vec<(String, T)> {
        match value {
            None => Vec::new(),
            Some(toml::Value::Table(t)) => t
                .into_iter()
                .filter_map(|(name, v)| {
                    let k = format!("{key}.{name}");
                    self.section::<T>(&k, v).map(|parsed| (name, parsed))
                })
                .collect(),
            Some(_) => {
                self.problem(key, "must be a table");
                Vec::new()
            }
        }
    }

    pub(crate) fn jq(&mut self, key: &str, code: &str) -> Option<JqProgram> {
        if let Some(why) = self.interpolated_code(key) {
            self.problem(key, why);
            return None;
        }
        match JqProgram::compile(code) {
            Ok(p) => Some(p),
            Err(why) => {
                self.problem(key, format!("jq does not compile: {why}"));
                None
            }
        }
    }

    /// The problem with jq code at `key` or below it when a `${VAR}` went into it: for a value
    /// whose jq leaves are inside one string (Port's configuration as JSON text).
    pub(crate) fn interpolated_jq(&self, key: &str) -> Option<String> {
        self.interpolated_code(key)
    }

    /// The problem for a jq program at `key` that took a `${VAR}` (itself or, for a map, a leaf).
    fn interpolated_code(&self, key: &str) -> Option<String> {
        let vars: Vec<String> = self
            .interpolated
            .iter()
            .filter(|s| s.key == key || below(&s.key, key))
            .flat_map(|s| s.vars.iter().map(|v| format!("${{{v}}}")))
            .collect();
        (!vars.is_empty()).then(|| {
            format!(
                "{} {REFUSED_IN_JQ}: its text would be spliced into the code, so \
                 whoever sets it could change what the program does (one quote in the value can make \
                 a filter always pass). Write the value into the program itself; secrets belong in \
                 `secret`, `sign` and `headers`, which need no jq",
                vars.join(", ")
            )
        })
    }

    pub(crate) fn algorithm(&mut self, key: &str, s: &str) -> Option<Algorithm> {
        let a = Algorithm::parse(s);
        if a.is_none() {
            self.problem(key, format!("expected sha1, sha256 or sha512, found `{s}`"));
        }
        a
    }

    pub(crate) fn encoding(&mut self, key: &str, s: &str) -> Option<Encoding> {
        let e = Encoding::parse(s);
        if e.is_none() {
            self.problem(key, format!("expected hex or base64, found `{s}`"));
        }
        e
    }

    /// A duration like "10s" at `key`, greater than zero and at most `max`; `default` when unset
    /// (or, with the problem recorded, when invalid). The value is not quoted back: it may come
    /// from the environment.
    pub(crate) fn duration(
        &mut self,
        key: &str,
        s: Option<&str>,
        default: Duration,
        max: Duration,
    ) -> Duration {
        match s.map(humantime::parse_duration) {
            None => default,
            Some(Ok(d)) if d.is_zero() => {
                self.problem(key, "must be greater than 0");
                default
            }
            Some(Ok(d)) if d > max => {
                self.problem(key, format!("must be at most {}", show(max)));
                default
            }
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.problem(key, format!("not a duration like \"10s\" or \"5m\": {e}"));
                default
            }
        }
    }

    /// Milliseconds at `key`, from 1 to `max`; `default` when unset or out of range.
    pub(crate) fn millis(
        &mut self,
        key: &str,
        ms: Option<u64>,
        default: Duration,
        max: Duration,
    ) -> Duration {
        match ms {
            None => default,
            Some(0) => {
                self.problem(key, "must be at least 1");
                default
            }
            Some(ms) if Duration::from_millis(ms) > max => {
                self.problem(key, format!("must be at most {} ms", max.as_millis()));
                default
            }
            Some(ms) => Duration::from_millis(ms),
        }
    }

    /// A number at `key` from `min` to `max`; clamped into range, with the problem recorded.
    pub(crate) fn within<T>(&mut self, key: &str, value: T, min: T, max: T) -> T
    where
        T: PartialOrd + Copy + std::fmt::Display,
    {
        if value < min {
            self.problem(key, format!("must be at least {min}"));
            min
        } else if value > max {
            self.problem(key, format!("must be at most {max}"));
            max
        } else {
            value
        }
    }
}

/// Whether `key` lies inside `parent` (`routes[0].map.a` inside `routes[0].map`).
pub(crate) fn below(key: &str, parent: &str) -> bool {
    key.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// A TOML error on one line: problems are listed one per line.
pub(crate) fn toml_message(e: &toml::de::Error) -> String {
    e.to_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A bound as an operator writes it: `1h`, `10years 1month…` reads worse than `3660d`.
fn show(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(24 * 3600) {
        format!("{}d", s / (24 * 3600))
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{}ms", d.as_millis())
    }
}
