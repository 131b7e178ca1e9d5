//! `${VAR}` interpolation over every string of the parsed TOML, so a value can never break the
//! file's syntax and every missing variable is reported with the key that uses it.
//!
//! Every string that took a variable is recorded as a [`Spliced`]: validation refuses it where
//! it would become code (jq), and [`super::redact`] keeps its value out of every error message.

/// A string of the config that took at least one `${VAR}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spliced {
    /// Where, e.g. `targets.t.headers.Authorization` or `routes[0].targets[1]`.
    pub(crate) key: String,
    /// The variables it took, in order.
    pub(crate) vars: Vec<String>,
    /// Their values, in the same order (what [`crate::config::Config::mask`] hides).
    pub(crate) values: Vec<String>,
    /// The string as the file has it, `${VAR}` and all: what errors show instead of `value`.
    pub(crate) written: String,
    /// The string after interpolation, which may hold a secret.
    pub(crate) value: String,
}

/// Replaces `${VAR}` in every string of `value`; `$${` stays a literal `${`. Each string that
/// took a variable is pushed to `spliced`.
pub(crate) fn interpolate(
    value: &mut toml::Value,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<(String, String)>,
    spliced: &mut Vec<Spliced>,
) {
    match value {
        toml::Value::String(s) => match expand(s, lookup) {
            Ok((expanded, vars, values)) => {
                if !vars.is_empty() {
                    spliced.push(Spliced {
                        key: key.to_string(),
                        vars,
                        values,
                        written: s.clone(),
                        value: expanded.clone(),
                    });
                }
                *s = expanded;
            }
            Err(why) => problems.push((key.to_string(), why)),
        },
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let child = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                interpolate(v, &child, lookup, problems, spliced);
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate(v, &format!("{key}[{i}]"), lookup, problems, spliced);
            }
        }
        _ => {}
    }
}

/// The expanded string, the variables it took and their values.
type Expanded = (String, Vec<String>, Vec<String>);

fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Expanded, String> {
    let mut out = String::with_capacity(s.len());
    let (mut vars, mut values) = (Vec::new(), Vec::new());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| "unterminated `${` in value".to_string())?;
            let name = &after[..end];
            let value =
                lookup(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
            out.push_str(&value);
            vars.push(name.to_string());
            values.push(value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok((out, vars, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_reports_missing_with_key() {
        let mut v: toml::Value = toml::from_str(
            r#"a = "x${HOME_X}y"
               b = { c = ["${MISSING}"] }
               d = "$${KEEP} and $5""#,
        )
        .unwrap();
        let lookup = |n: &str| (n == "HOME_X").then(|| "/h".to_string());
        let (mut problems, mut spliced) = (vec![], vec![]);
        interpolate(&mut v, "", &lookup, &mut problems, &mut spliced);
        assert_eq!(v["a"].as_str(), Some("x/hy"));
        assert_eq!(
            spliced,
            vec![Spliced {
                key: "a".into(),
                vars: vec!["HOME_X".into()],
                values: vec!["/h".into()],
                written: "x${HOME_X}y".into(),
                value: "x/hy".into(),
            }]
        );
        assert_eq!(v["d"].as_str(), Some("${KEEP} and $5"));
        assert_eq!(
            problems,
            vec![(
                "b.c[0]".to_string(),
                "environment variable `MISSING` is not set".to_string()
            )]
        );
    }
}
