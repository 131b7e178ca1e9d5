//! String interpolation as jq writes it: `"\(10/2) KiB"` is `"5 KiB"` in jq and `"5.0 KiB"` in
//! jaq, whose interpolation turns values into text with its own writer and no definition can
//! change that. A format string (`@base64 "\(.x)"`) applies its format to each interpolated value
//! instead, so a plain interpolated string gets the prelude's `@text` (jq's `tostring`, see
//! `jq_text.rs`) written in front of it before jaq parses the program.
//!
//! Works on jaq's own tokens, so only real string literals are touched (not text in comments or
//! inside other strings). Pure; no I/O.

use jaq_core::load::lex::{Lexer, StrPart, Tok, Token};

/// The format put in front of plain interpolated strings.
const FORMAT: &str = "@text ";

/// `code` with `@text ` before every interpolated string that has no format, or `None` when
/// there is none (or the code does not lex: jaq then reports the error on the code as written).
pub(crate) fn with_jq_interpolation(code: &str) -> Option<String> {
    let tokens = Lexer::new(code).lex().ok()?;
    let mut at = Vec::new();
    collect(code, &tokens, &mut at);
    if at.is_empty() {
        return None;
    }
    at.sort_unstable();
    let mut out = String::with_capacity(code.len() + at.len() * FORMAT.len());
    let mut last = 0;
    for offset in at {
        out.push_str(code.get(last..offset)?);
        out.push_str(FORMAT);
        last = offset;
    }
    out.push_str(code.get(last..)?);
    Some(out)
}

/// Offsets (in `code`) of the interpolated strings among `tokens` that no format precedes.
fn collect(code: &str, tokens: &[Token<&str>], at: &mut Vec<usize>) {
    let mut after_format = false;
    for Token(text, tok) in tokens {
        match tok {
            Tok::Str(parts) => {
                let interpolated = parts.iter().any(|p| matches!(p, StrPart::Term(_)));
                if interpolated && !after_format {
                    at.push(offset(code, text));
                }
                for part in parts {
                    if let StrPart::Term(Token(_, Tok::Block(inner))) = part {
                        collect(code, inner, at);
                    }
                }
            }
            Tok::Block(inner) => collect(code, inner, at),
            _ => {}
        }
        after_format = matches!(tok, Tok::Fmt);
    }
}

fn offset(code: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(code.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use super::with_jq_interpolation as rewrite;

    #[test]
    fn plain_interpolated_strings_get_text_format() {
        assert_eq!(
            rewrite(r#""\(1) KiB""#).as_deref(),
            Some(r#"@text "\(1) KiB""#)
        );
        assert_eq!(
            rewrite(r#"{"\(.k)": "a \("b \(.c)")"}"#).as_deref(),
            Some(r#"{@text "\(.k)": @text "a \(@text "b \(.c)")"}"#)
        );
        assert_eq!(
            rewrite(r#"[.[] | "\(.)"] # "\(x)""#).as_deref(),
            Some(r#"[.[] | @text "\(.)"] # "\(x)""#)
        );
    }

    #[test]
    fn the_rest_is_left_alone() {
        assert_eq!(rewrite(r#""no interpolation" | @base64 "\(.)""#), None);
        assert_eq!(rewrite(r#"@json "x\(.)" + "y""#), None);
        assert_eq!(rewrite(r#""\(""#), None);
    }
}
