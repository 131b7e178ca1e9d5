//! jq's text for a value: what a target receives from a jq route, and what `tojson` and
//! `tostring` give, written as jq 1.8 writes them (jaq's own writer differs: `5.0` for a whole
//! number from arithmetic, `NaN`, `Infinity`, non-string object keys, byte strings).
//!
//! - A number from arithmetic (a double) is printed the way jq prints it (`jvp_dtoa_fmt`): the
//!   shortest digits that read back the same, in plain notation unless its decimal point lies
//!   more than 15 places past its digits or four places before them (`1e+17`, `1e-05`), so whole
//!   numbers have no `.0`. `nan` is `null`, `±infinite` is `±1.7976931348623157e+308`.
//! - A number literal (from the input or the program) keeps its digits, in the canonical form jq
//!   gives it (decNumber's scientific string: `1.0`, `0.10`, `1E+2`, `0.01`, `1E-7`).
//! - Strings are escaped as jq escapes them (`\u007f` too); invalid UTF-8 becomes U+FFFD.
//! - An object key that is not a string is an error, as in jq: never invalid JSON on the wire.
//!
//! Pure functions; no I/O.

use jaq_json::{Num, Val};
use std::fmt::Write;

/// An object key jq would refuse (jaq lets programs build them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Cannot use {kind} ({value}) as object key")]
pub struct KeyError {
    kind: &'static str,
    value: String,
}

/// The value as `jq -c` prints it.
pub(crate) fn to_text(v: &Val) -> Result<String, KeyError> {
    let mut out = String::new();
    write_val(v, &mut out)?;
    Ok(out)
}

fn write_val(v: &Val, out: &mut String) -> Result<(), KeyError> {
    match v {
        Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Num(n) => write_num(n, out),
        Val::TStr(b) | Val::BStr(b) => write_str(b, out),
        Val::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_val(item, out)?;
            }
            out.push(']');
        }
        Val::Obj(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    Val::TStr(b) | Val::BStr(b) => write_str(b, out),
                    other => return Err(key_error(other)),
                }
                out.push(':');
                write_val(v, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A value's jq type name, as jq's messages give it.
pub(crate) fn kind(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

fn key_error(k: &Val) -> KeyError {
    let kind = kind(k);
    let mut value = String::new();
    // A key inside the key can only be another bad key: shown as jaq prints it.
    if write_val(k, &mut value).is_err() {
        value = k.to_string();
    }
    KeyError { kind, value }
}

fn write_num(n: &Num, out: &mut String) {
    match n {
        Num::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Num::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        Num::Float(x) => write_double(*x, out),
        Num::Dec(lit) => write_literal(lit, out),
    }
}

/// A double as jq prints it (see the module docs).
pub(crate) fn write_double(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("null");
        return;
    }
    let x = if x.is_infinite() {
        f64::MAX.copysign(x)
    } else {
        x
    };
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` is the shortest round-trip form: `d.ddde±X`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let decpt = exp + 1;
    let n = digits.len() as i32;
    if x < 0.0 {
        out.push('-');
    }
    if decpt <= -4 || decpt > n + 15 {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(&digits);
    } else if decpt >= n {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
}

/// A number literal in jq's canonical form (decNumber's to-scientific-string); text that is not
/// a plain decimal literal is written as it is.
fn write_literal(lit: &str, out: &mut String) {
    let Some((negative, coefficient, exponent)) = parse_literal(lit) else {
        out.push_str(lit);
        return;
    };
    if negative {
        out.push('-');
    }
    let n = coefficient.len() as i64;
    let adjusted = exponent + n - 1;
    if exponent <= 0 && adjusted >= -6 {
        let point = n + exponent;
        if exponent == 0 {
            out.push_str(&coefficient);
        } else if point > 0 {
            out.push_str(&coefficient[..point as usize]);
            out.push('.');
            out.push_str(&coefficient[point as usize..]);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&coefficient);
        }
    } else {
        out.push_str(&coefficient[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&coefficient[1..]);
        }
        let _ = write!(
            out,
            "E{}{}",
            if adjusted < 0 { '-' } else { '+' },
            adjusted.abs()
        );
    }
}

/// `-?digits(.digits)?([eE][+-]?digits)?` as (negative, coefficient without leading zeros,
/// exponent of its last digit).
fn parse_literal(lit: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match lit.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, lit),
    };
    let (number, exp) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let joined = format!("{int}{frac}");
    let trimmed = joined.trim_start_matches('0');
    let coefficient = if trimmed.is_empty() { "0" } else { trimmed };
    Some((
        negative,
        coefficient.to_string(),
        exp.checked_sub(frac.len() as i64)?,
    ))
}

fn write_str(bytes: &[u8], out: &mut String) {
    out.push('"');
    let text = String::from_utf8_lossy(bytes);
    let mut rest: &str = &text;
    // Every character jq escapes is ASCII, so the runs between them are copied whole and every
    // cut falls on a character boundary.
    while let Some(at) = rest.bytes().position(escaped) {
        out.push_str(&rest[..at]);
        match rest.as_bytes()[at] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// Whether jq writes this byte of a string escaped: quotes, backslashes, control characters.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: f64) -> String {
        let mut s = String::new();
        write_double(x, &mut s);
        s
    }

    fn literal(l: &str) -> String {
        let mut s = String::new();
        write_literal(l, &mut s);
        s
    }

    #[test]
    fn doubles_print_as_jq_prints_them() {
        let cases = [
            (5.0, "5"),
            (10.0 / 3.0, "3.3333333333333335"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e17, "1e+17"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000"),
            (18446744073709552000.0, "18446744073709552000"),
            (123456789012345680.0, "123456789012345680"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (1e-7, "1e-07"),
            (1.5e300, "1.5e+300"),
            (1e301, "1e+301"),
            (-3.0, "-3"),
            (-0.0, "-0"),
            (0.125, "0.125"),
            (f64::NAN, "null"),
            (f64::INFINITY, "1.7976931348623157e+308"),
            (f64::NEG_INFINITY, "-1.7976931348623157e+308"),
        ];
        for (x, text) in cases {
            assert_eq!(double(x), text, "{x:?}");
        }
    }

    #[test]
    fn literals_keep_their_digits_in_jq_canonical_form() {
        let cases = [
            ("1.0", "1.0"),
            ("1.50", "1.50"),
            ("1e2", "1E+2"),
            ("1E2", "1E+2"),
            ("1E-2", "0.01"),
            ("0.10", "0.10"),
            ("1e1000", "1E+1000"),
            ("-1e1000", "-1E+1000"),
            ("1e-7", "1E-7"),
            ("1.5e300", "1.5E+300"),
            ("0.00001", "0.00001"),
            ("3.0", "3.0"),
            ("1.000000000000000000001", "1.000000000000000000001"),
            ("0.0", "0.0"),
        ];
        for (lit, text) in cases {
            assert_eq!(literal(lit), text, "{lit}");
        }
    }

    #[test]
    fn strings_and_keys() {
        let v = jaq_json::read::parse_single(br#"{"a":"x\u007f\u0001\"\\\n","b":[1,2.5]}"#)
            .expect("json");
        assert_eq!(
            to_text(&v).expect("text"),
            r#"{"a":"x\u007f\u0001\"\\\n","b":[1,2.5]}"#
        );
        let mut out = String::new();
        write_str("é\t\r\u{8}\u{c}\u{1f}ü€ end".as_bytes(), &mut out);
        assert_eq!(out, r#""é\t\r\b\f\u001fü€ end""#);
        out.clear();
        write_str(b"a\xffb\"", &mut out);
        assert_eq!(out, "\"a\u{fffd}b\\\"\"", "invalid UTF-8 becomes U+FFFD");
        let bad = jaq_json::read::parse_single(b"{1: 2}").expect("jaq reads it");
        assert_eq!(
            to_text(&bad).expect_err("not JSON").to_string(),
            "Cannot use number (1) as object key"
        );
    }
}
