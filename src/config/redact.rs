//! Keeps interpolated values out of config errors.
//!
//! `${VAR}` usually carries a secret, and config errors go to terminals, reload answers and
//! logs. Validators and serde quote the values they reject (`invalid type: string "sk_live_…"`,
//! `unknown target \`…\``), so after validation every problem is rewritten: wherever a value
//! that came from the environment appears, the string as the file wrote it (`${API_KEY}`) takes
//! its place, and the problem says which variables were involved.
//!
//! A value is replaced wherever it appears in a problem about its own key, about a key above it
//! (a serde error for a whole section), or about a key below it; quoted anywhere else too when it
//! is long enough to be recognised without mangling ordinary words.
//!
//! jq programs are refused `${VAR}` outright (by [`crate::validate::Validator::jq`], which is
//! told only which keys took a variable): there the value would not only be echoed by jaq's
//! errors but become code.

use super::env::Spliced;
use crate::validate::{REFUSED_IN_JQ, below};

/// Values this long are replaced in any problem, related key or not; shorter ones only in
/// problems about a related key, where they cannot be confused with the message's own words.
pub(crate) const ANYWHERE: usize = 8;

/// What a masked value shows as (the same as `hookgate try`'s masks).
const MASK: &str = "***";

/// Pieces of a value this long are cut from problems about a related key.
const FRAGMENT: usize = 6;

/// `text` with each of `values` at least [`ANYWHERE`] long shown as `***`, as it is and as JSON
/// writes it inside a string (a value with `"` or `\\` in a JSON body), longest first (so a
/// value containing another is masked whole).
pub(crate) fn values(text: &str, values: &[crate::signature::Secret]) -> String {
    let mut forms: Vec<String> = values
        .iter()
        .map(|v| v.expose())
        .filter(|v| v.len() >= ANYWHERE)
        .flat_map(|v| {
            // A string always serialises; an empty form is skipped below.
            let quoted = serde_json::to_string(v).unwrap_or_default();
            let escaped = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("");
            [v.to_string(), escaped.to_string()]
        })
        .filter(|form| !form.is_empty())
        .collect();
    forms.sort_by_key(|v| std::cmp::Reverse(v.len()));
    forms.dedup();
    let mut text = text.to_string();
    for form in forms {
        if text.contains(&form) {
            text = text.replace(&form, MASK);
        }
    }
    text
}

/// Rewrites `problems` so that no interpolated value in `spliced` shows.
pub(crate) fn problems(problems: &mut [(String, String)], spliced: &[Spliced]) {
    for (key, why) in problems.iter_mut() {
        let mut vars: Vec<&str> = Vec::new();
        // Whole values become placeholders first, so that the fragment pass below cannot chop
        // up the `${VAR}` text that replaces them.
        let mut placeholders: Vec<(String, String)> = Vec::new();
        for s in spliced {
            if s.value.is_empty() {
                continue;
            }
            let related = related(key, &s.key);
            let mut hit = false;
            let mut swap = |why: &mut String, from: &str, to: String| {
                let mark = format!("\u{1}{}\u{1}", placeholders.len());
                *why = why.replace(from, &mark);
                placeholders.push((mark, to));
            };
            for (value, written) in quotes(&s.value).into_iter().zip(quotes(&s.written)) {
                if why.contains(&value) {
                    swap(why, &value, written);
                    hit = true;
                }
            }
            let bare = if related { 4 } else { ANYWHERE };
            if s.value.chars().count() >= bare && why.contains(&s.value) {
                swap(why, &s.value, s.written.clone());
                hit = true;
            }
            // Parsers quote pieces too (humantime: `unknown time unit "…"`).
            if related && let Some(cut) = fragments(why, &s.value) {
                *why = cut;
                hit = true;
            }
            if hit || (related && s.key == *key) {
                vars.extend(s.vars.iter().map(String::as_str));
            }
        }
        for (mark, written) in &placeholders {
            *why = why.replace(mark.as_str(), written);
        }
        vars.dedup();
        if !vars.is_empty() && !why.contains(REFUSED_IN_JQ) {
            let names: Vec<String> = vars.iter().map(|v| format!("${{{v}}}")).collect();
            why.push_str(&format!(
                " (the value comes from {}, not shown)",
                names.join(", ")
            ));
        }
    }
}

/// `why` with every run of [`FRAGMENT`] or more characters that also occurs in `value` cut to
/// `…`; `None` when there is none.
fn fragments(why: &str, value: &str) -> Option<String> {
    let chars: Vec<char> = why.chars().collect();
    let mut out = String::with_capacity(why.len());
    let mut cut = false;
    let mut i = 0;
    while i < chars.len() {
        let mut end = i;
        while end < chars.len() {
            let piece: String = chars[i..=end].iter().collect();
            if !value.contains(&piece) {
                break;
            }
            end += 1;
        }
        if end - i >= FRAGMENT {
            out.push('…');
            cut = true;
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    cut.then_some(out)
}

/// Whether problems at `a` may quote the value at `b`: the same key, or one above the other.
fn related(a: &str, b: &str) -> bool {
    a.is_empty() || a == b || below(a, b) || below(b, a)
}

/// The ways a message quotes a value: serde's `"…"`, our `` `…` `` and `'…'`.
fn quotes(value: &str) -> [String; 3] {
    [
        format!("\"{value}\""),
        format!("`{value}`"),
        format!("'{value}'"),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    const SECRET: &str = "sk_live_abcSECRETLEAK";
    const SHORT: &str = "x1";

    #[test]
    fn a_loaded_config_masks_its_interpolated_values_where_they_are_shown() {
        let text = "[sources.s]\nkind = \"generic\"\n[targets.t]\nurl = \"http://x.test\"\n\
                    headers = { \"X-Key\" = \"${API_KEY}\", \"X-Short\" = \"${SHORT}\" }\n\
                    [[routes]]\nname = \"r\"\nsource = \"s\"\ntargets = [\"t\"]\n";
        let lookup = |name: &str| match name {
            "API_KEY" => Some(SECRET.to_string()),
            "SHORT" => Some(SHORT.to_string()),
            _ => None,
        };
        let text = text.replace("${API_KEY}", "Bearer ${API_KEY}");
        let config = Config::parse(&text, "t.toml", &lookup).expect("loads");
        let shown = config.mask(&format!(
            r#"{{"key":"{SECRET}","again":"{SECRET}x","n":"{SHORT}"}}"#
        ));
        assert_eq!(shown, r#"{"key":"***","again":"***x","n":"x1"}"#);
        let body = bytes::Bytes::from(format!("k={SECRET}"));
        assert_eq!(config.mask_bytes(&body), "k=***");
        let quoting = Config::parse(&text, "t.toml", &|name: &str| {
            Some(format!(r#"{name}-"quoted"\path"#))
        })
        .expect("loads");
        let json = serde_json::json!({ "k": r#"API_KEY-"quoted"\path"# }).to_string();
        assert_eq!(quoting.mask(&json), r#"{"k":"***"}"#);
        let binary = bytes::Bytes::from_static(&[0xff, 0xfe]);
        assert_eq!(config.mask_bytes(&binary), binary);
    }

    fn parse(text: &str) -> ConfigError {
        let lookup = |name: &str| match name {
            "API_KEY" => Some(SECRET.to_string()),
            "SHORT" => Some(SHORT.to_string()),
            "EXPECTED" => Some("\" or true or \"".to_string()),
            _ => None,
        };
        Config::parse(text, "test.toml", &lookup).expect_err("refused")
    }

    fn base(target: &str, route: &str) -> String {
        format!(
            "[sources.s]\nkind = \"generic\"\n\n[targets.t]\nurl = \"http://127.0.0.1:9/\"\n{target}\n\n\
             [[routes]]\nname = \"r\"\nsource = \"s\"\ntargets = [\"t\"]\n{route}\n"
        )
    }

    #[test]
    fn type_errors_and_echoed_values_name_the_variable_not_the_value() {
        let text = base(
            "timeout = \"${API_KEY}\"\nconcurrency = \"${API_KEY}\"\nrate_limit = \"${API_KEY}\"",
            "",
        ) + "\n[server]\nmax_body_bytes = \"${API_KEY}\"\n\
             [admin]\nlisten = \"${SHORT}\"\ntoken = \"0123456789abcdef\"\n\
             [store]\nsync = \"${API_KEY}\"\n";
        let err = parse(&text).to_string();
        assert!(!err.contains("SECRETLEAK"), "{err}");
        assert!(!err.contains("`x1`"), "{err}");
        for want in [
            "server: invalid type: string \"${API_KEY}\"",
            "targets.t: invalid type: string \"${API_KEY}\"",
            "store.sync: expected `full` or `normal`, found `${API_KEY}`",
            "admin.listen: `${SHORT}` is not an address",
            "(the value comes from ${API_KEY}, not shown)",
        ] {
            assert!(err.contains(want), "missing `{want}` in:\n{err}");
        }
    }

    #[test]
    fn values_are_hidden_even_when_the_message_does_not_quote_them() {
        let text = base("", "") + "\n[store]\nretention = \"${API_KEY}\"\n";
        let err = parse(&text).to_string();
        assert!(!err.contains("SECRETLEAK"), "{err}");
        assert!(
            err.contains("store.retention: not a duration")
                && err.contains("(the value comes from ${API_KEY}, not shown)"),
            "{err}"
        );
    }

    #[test]
    fn jq_programs_refuse_interpolation_with_a_hint() {
        let text = base(
            "",
            "filter = '.body.x == \"${EXPECTED}\"'\njq = '${API_KEY}'\n\n\
             [[routes]]\nname = \"m\"\nsource = \"s\"\ntargets = [\"t\"]\n\
             map = { a = { b = '.${API_KEY}' } }",
        )
        .replace(
            "kind = \"generic\"",
            "kind = \"generic\"\nevent_type = '.body.${API_KEY}'",
        );
        let err = parse(&text);
        let text = err.to_string();
        assert!(
            !text.contains("SECRETLEAK") && !text.contains("or true or"),
            "{text}"
        );
        for key in [
            "routes[0].filter",
            "routes[0].jq",
            "routes[1].map",
            "sources.s.event_type",
        ] {
            let (_, why) = err
                .problems
                .iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("no problem at {key}: {text}"));
            assert!(why.contains("may not be used in a jq program"), "{why}");
        }
    }

    #[test]
    fn relations_between_keys() {
        assert!(super::related("routes[0].targets", "routes[0].targets[1]"));
        assert!(super::related("server", "server.listen"));
        assert!(super::related("", "server.listen"));
        assert!(!super::related("routes[1]", "routes[10].filter"));
        assert!(!super::related("targets.a", "targets.ab.url"));
    }
}
