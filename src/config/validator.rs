//! The validator every stage's settings go through: it collects problems (each with its key)
//! instead of stopping at the first, and holds the checks stages share — sections and tables,
//! addresses, secrets, HMAC algorithms and encodings, and jq programs (never compiled from text
//! that came from `${VAR}`). Ranges of durations and numbers are in [`super::bounds`].

use super::{env, raw, redact};
use crate::signature::{Algorithm, Encoding, Secret};
use crate::transform::jq::JqProgram;

pub(crate) struct Validator {
    pub(crate) problems: Vec<(String, String)>,
    /// Strings that took a `${VAR}`: refused in jq, and redacted from every problem.
    pub(crate) spliced: Vec<env::Spliced>,
}

impl Validator {
    pub(crate) fn problem(&mut self, key: impl Into<String>, why: impl Into<String>) {
        self.problems.push((key.into(), why.into()));
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
        if let Some(why) = redact::splice_in_code(key, &self.spliced) {
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

    pub(crate) fn secrets(&mut self, key: &str, s: Option<raw::OneOrMany>) -> Vec<Secret> {
        let list = s.map(raw::OneOrMany::into_vec).unwrap_or_default();
        if list.iter().any(String::is_empty) {
            self.problem(key, "secret is empty");
        }
        list.into_iter()
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect()
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
}

pub(super) fn toml_message(e: &toml::de::Error) -> String {
    e.to_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
