//! jq's regular expressions: `_match_impl(re; flags; test)`, the native filter jq 1.8 builds
//! `test`, `match`, `capture`, `scan`, `splits`, `split/2`, `sub` and `gsub` on (their jq
//! definitions are in `jq_prelude.jq`), on the same engine as jq: Oniguruma with the Perl_NG
//! syntax over UTF-8. So look-around, backreferences, `\p{..}` classes and Unicode case folding
//! work as they do in jq, which jaq's own engine (regex-lite) cannot do.
//!
//! The match objects are jq's, key order included: `{offset, length, string, captures}`, each
//! capture `{offset, length, string, name}` (`name` null when unnamed; an unmatched group is
//! `{offset: -1, string: null, length: 0, name}`), offsets and lengths in code points. Pure; no I/O.

use jaq_core::ValT;
use jaq_json::Val;
use onig::{Regex, RegexOptions, Region, SearchOptions, Syntax};

type Error = jaq_core::Error<Val>;

/// `input | _match_impl(re; flags; test)`: an array of match objects, or (when `test` is true)
/// whether there is one.
pub(crate) fn match_impl(input: &Val, re: &Val, flags: &Val, test: bool) -> Result<Val, Error> {
    let text = match input {
        Val::TStr(b) => String::from_utf8_lossy(b),
        other => {
            return Err(type_error(
                other,
                "cannot be matched, as it is not a string",
            ));
        }
    };
    let pattern = match re {
        Val::TStr(b) => String::from_utf8_lossy(b),
        other => return Err(type_error(other, "is not a string")),
    };
    let (options, global) = options(flags)?;
    let regex = Regex::with_options(&pattern, options, Syntax::perl_ng())
        .map_err(|e| Error::str(format!("Regex failure: {}", e.description())))?;
    let names = group_names(&regex);
    let mut matches = Vec::new();
    let mut region = Region::new();
    let mut start = 0;
    loop {
        region.clear();
        let found = regex.search_with_options(
            &text,
            start,
            text.len(),
            SearchOptions::SEARCH_OPTION_NONE,
            Some(&mut region),
        );
        let (Some(_), Some((beg, end))) = (found, region.pos(0)) else {
            break;
        };
        if test {
            return Ok(Val::from(true));
        }
        matches.push(match_object(&text, &region, &names)?);
        // An empty match moves on by one character, so `"qux" | match("(?=u)"; "g")` matches once.
        start = if beg == end {
            end + text[end..].chars().next().map_or(1, char::len_utf8)
        } else {
            end
        };
        if !global || start > text.len() {
            break;
        }
    }
    if test {
        return Ok(Val::from(false));
    }
    Ok(matches.into_iter().collect())
}

/// jq's modifiers: `g` (global) and the engine's options.
fn options(flags: &Val) -> Result<(RegexOptions, bool), Error> {
    let mut options = RegexOptions::REGEX_OPTION_CAPTURE_GROUP;
    let mut global = false;
    let text = match flags {
        Val::Null => return Ok((options, global)),
        Val::TStr(b) => String::from_utf8_lossy(b),
        other => return Err(type_error(other, "is not a string")),
    };
    for c in text.chars() {
        match c {
            'g' => global = true,
            'i' => options |= RegexOptions::REGEX_OPTION_IGNORECASE,
            'x' => options |= RegexOptions::REGEX_OPTION_EXTEND,
            'm' => options |= RegexOptions::REGEX_OPTION_MULTILINE,
            's' => options |= RegexOptions::REGEX_OPTION_SINGLELINE,
            'p' => {
                options |=
                    RegexOptions::REGEX_OPTION_MULTILINE | RegexOptions::REGEX_OPTION_SINGLELINE
            }
            'l' => options |= RegexOptions::REGEX_OPTION_FIND_LONGEST,
            'n' => options |= RegexOptions::REGEX_OPTION_FIND_NOT_EMPTY,
            _ => return Err(Error::str(format!("{text} is not a valid modifier string"))),
        }
    }
    Ok((options, global))
}

/// Each group's name, by group number (index 0 is the whole match and has none).
fn group_names(regex: &Regex) -> Vec<Option<String>> {
    let mut names = vec![None; regex.captures_len() + 1];
    regex.foreach_name(|name, groups| {
        for g in groups {
            if let Some(slot) = names.get_mut(*g as usize) {
                *slot = Some(name.to_string());
            }
        }
        true
    });
    names
}

fn match_object(text: &str, region: &Region, names: &[Option<String>]) -> Result<Val, Error> {
    let (beg, end) = region.pos(0).unwrap_or_default();
    let mut captures = Vec::new();
    for i in 1..region.len() {
        let name = names
            .get(i)
            .cloned()
            .flatten()
            .map_or(Val::Null, Val::utf8_str);
        let capture = match region.pos(i) {
            None => object([
                ("offset", Val::from(-1isize)),
                ("string", Val::Null),
                ("length", Val::from(0isize)),
                ("name", name),
            ])?,
            Some((b, e)) if b == e => object([
                ("offset", chars(&text[..b])),
                ("string", Val::utf8_str(String::new())),
                ("length", Val::from(0isize)),
                ("name", name),
            ])?,
            Some((b, e)) => object([
                ("offset", chars(&text[..b])),
                ("length", chars(&text[b..e])),
                ("string", Val::utf8_str(text[b..e].to_string())),
                ("name", name),
            ])?,
        };
        captures.push(capture);
    }
    object([
        ("offset", chars(&text[..beg])),
        ("length", chars(&text[beg..end])),
        ("string", Val::utf8_str(text[beg..end].to_string())),
        ("captures", captures.into_iter().collect()),
    ])
}

fn chars(s: &str) -> Val {
    Val::from(s.chars().count() as isize)
}

fn object<const N: usize>(fields: [(&str, Val); N]) -> Result<Val, Error> {
    Val::from_map(
        fields
            .into_iter()
            .map(|(k, v)| (Val::utf8_str(k.to_string()), v)),
    )
}

/// jq's type error: `<type> (<value, cut at 29 bytes>) <why>`.
fn type_error(v: &Val, why: &str) -> Error {
    let kind = super::jq_text::kind(v);
    let mut text = super::jq_text::to_text(v).unwrap_or_else(|_| v.to_string());
    if text.len() > 29 {
        let mut cut = 26;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    Error::str(format!("{kind} ({text}) {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Val {
        Val::utf8_str(x.to_string())
    }

    fn text(v: Result<Val, Error>) -> String {
        super::super::jq_text::to_text(&v.expect("ok")).expect("text")
    }

    #[test]
    fn matches_as_jq_writes_them() {
        assert_eq!(
            text(match_impl(
                &s("été x"),
                &s("(?<w>\\w+)( )?"),
                &Val::Null,
                false
            )),
            r#"[{"offset":0,"length":4,"string":"été ","captures":[{"offset":0,"length":3,"string":"été","name":"w"},{"offset":3,"length":1,"string":" ","name":null}]}]"#
        );
        assert_eq!(
            text(match_impl(&s("y"), &s("(x)?y"), &Val::Null, false)),
            r#"[{"offset":0,"length":1,"string":"y","captures":[{"offset":-1,"string":null,"length":0,"name":null}]}]"#
        );
        assert_eq!(
            text(match_impl(&s("qux"), &s("(?=u)"), &s("g"), false)),
            r#"[{"offset":1,"length":0,"string":"","captures":[]}]"#
        );
    }

    #[test]
    fn what_jaq_could_not() {
        let t = |input: &str, re: &str, flags: &str| {
            text(match_impl(&s(input), &s(re), &s(flags), true))
        };
        assert_eq!(t("CAFÉ", "café", "i"), "true");
        assert_eq!(t("abab", "(ab)\\1", ""), "true");
        assert_eq!(t("a1", "(?<=a)1", ""), "true");
        assert_eq!(t("Ü", "^\\p{Lu}$", ""), "true");
    }

    #[test]
    fn errors_are_jq_errors() {
        let e = |r: Result<Val, Error>| match r.expect_err("error").into_val() {
            Val::TStr(b) => String::from_utf8_lossy(&b).into_owned(),
            other => other.to_string(),
        };
        assert!(e(match_impl(&s("a"), &s("("), &Val::Null, true)).starts_with("Regex failure: "));
        assert_eq!(
            e(match_impl(&Val::from(1isize), &s("a"), &Val::Null, true)),
            "number (1) cannot be matched, as it is not a string"
        );
        assert_eq!(
            e(match_impl(&s("a"), &s("a"), &s("gq"), true)),
            "gq is not a valid modifier string"
        );
    }
}
