//! `${VAR}` interpolation over every string of the parsed TOML, so a value can never break the
//! file's syntax and every missing variable is reported with the key that uses it.

/// Replaces `${VAR}` in every string of `value`; `$${` stays a literal `${`.
pub fn interpolate(
    value: &mut toml::Value,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<(String, String)>,
) {
    match value {
        toml::Value::String(s) => match expand(s, lookup) {
            Ok(expanded) => *s = expanded,
            Err(why) => problems.push((key.to_string(), why)),
        },
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let child = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                interpolate(v, &child, lookup, problems);
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate(v, &format!("{key}[{i}]"), lookup, problems);
            }
        }
        _ => {}
    }
}

fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
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
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
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
        let mut problems = vec![];
        interpolate(&mut v, "", &lookup, &mut problems);
        assert_eq!(v["a"].as_str(), Some("x/hy"));
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
