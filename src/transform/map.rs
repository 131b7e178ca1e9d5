//! Port-style mappings: a table whose every string leaf is a jq expression, compiled once into a
//! single jq program that builds the whole object.
//!
//! `{ identifier = ".body.stack.id", properties = { state = ".body.state" } }` becomes
//! `{"identifier": (.body.stack.id), "properties": {"state": (.body.state)}}`, so Port mappings
//! paste in unchanged and evaluate in one pass.

/// Builds the jq text of a mapping. Errors name the key of a leaf that cannot be used.
pub(crate) fn to_jq(map: &toml::Value) -> Result<String, String> {
    let mut out = String::new();
    write_value(map, "", &mut out)?;
    Ok(out)
}

fn write_value(v: &toml::Value, key: &str, out: &mut String) -> Result<(), String> {
    match v {
        toml::Value::String(expr) => {
            if expr.trim().is_empty() {
                return Err(format!("map key `{key}` has an empty jq expression"));
            }
            out.push('(');
            out.push_str(expr);
            // A newline before the closing parenthesis keeps a trailing `# comment` from eating it.
            out.push_str("\n)");
        }
        toml::Value::Table(table) => {
            out.push('{');
            for (i, (k, v)) in table.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&json_string(k));
                out.push_str(": ");
                let path = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                write_value(v, &path, out)?;
            }
            out.push('}');
        }
        toml::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, &format!("{key}[{i}]"), out)?;
            }
            out.push(']');
        }
        toml::Value::Integer(n) => out.push_str(&n.to_string()),
        toml::Value::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
        toml::Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        toml::Value::Datetime(d) => out.push_str(&json_string(&d.to_string())),
    }
    Ok(())
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_table_becomes_one_object_program() {
        let v: toml::Value = toml::from_str(
            r#"identifier = ".body.id | tostring"
               relations = {}
               properties = { state = ".body.state", n = 3 }"#,
        )
        .unwrap();
        let jq = to_jq(&v).unwrap();
        let p = crate::transform::jq::JqProgram::compile(&jq).unwrap();
        let input = jaq_json::read::parse_single(br#"{"body":{"id":7,"state":"OK"}}"#).unwrap();
        let out: Vec<String> = p
            .run(input)
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(out.len(), 1);
        let got: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(
            got,
            serde_json::json!({"identifier":"7","relations":{},"properties":{"state":"OK","n":3}})
        );
    }

    #[test]
    fn empty_expression_is_refused_with_its_key() {
        let v: toml::Value = toml::from_str(r#"properties = { state = " " }"#).unwrap();
        assert!(to_jq(&v).unwrap_err().contains("properties.state"));
    }
}
