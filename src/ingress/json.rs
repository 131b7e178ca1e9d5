//! The JSON check at ingress: a body is acknowledged only if routing will be able to read it.
//!
//! Routing reads bodies with jaq's parser (`jaq_json::read::parse_single`, in
//! [`crate::route::envelope`]), which is recursive and lenient (it keeps invalid UTF-8 as is and
//! takes `NaN`, comments and non-string keys). An event whose body it cannot read, or that
//! overflows a stack on the way, would be acknowledged and then never delivered. So a JSON body
//! must pass, in this order:
//!
//! 1. a nesting limit ([`MAX_JSON_DEPTH`]), counted by an iterative scan over the bytes, so no
//!    recursive parser (here or in routing) ever sees a deeper document;
//! 2. UTF-8 over the whole body (RFC 8259 §8.1; jaq would let invalid bytes through to targets);
//! 3. strict RFC 8259 syntax (serde_json, into `IgnoredAny`: nothing is built);
//! 4. every `\u` escape of a surrogate paired, as jaq's parser requires (`"\ud800"` alone is
//!    valid RFC 8259 but not text routing can read), so it is refused here, while the producer can
//!    still be told.
//!
//! Step 4 is a scan, not jaq's parser: on strict JSON a lone surrogate is the only thing jaq
//! refuses, and running the parser to find it cost a tenth of the gateway's CPU under load (it
//! builds the whole value). The fuzz target `ingress` holds the two to that: whatever this check
//! accepts, routing must read.

/// How deep arrays and objects may nest in a JSON body: routing's own bound (real webhook payloads
/// nest fewer than 20 levels; 128 is serde_json's recursion limit, far below a 2 MiB stack).
pub(crate) const MAX_JSON_DEPTH: usize = crate::route::envelope::MAX_DEPTH;

/// Why a body is not JSON that routing can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("body nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("body is not valid JSON: invalid UTF-8 at byte offset {0}")]
    Utf8(usize),
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
}

/// Checks that `body` is JSON that routing will read as it was sent (see the module docs).
pub fn check(body: &[u8]) -> Result<(), JsonError> {
    check_depth(body, MAX_JSON_DEPTH)?;
    std::str::from_utf8(body).map_err(|e| JsonError::Utf8(e.valid_up_to()))?;
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map_err(|e| JsonError::Syntax(e.to_string()))?;
    check_surrogates(body)
}

/// Refuses a `\u` escape of a surrogate that is not half of a pair (a high one followed at once by
/// a low one). Relies on the body being valid JSON: a backslash then only starts an escape inside
/// a string, and `\u` always has four hex digits.
fn check_surrogates(body: &[u8]) -> Result<(), JsonError> {
    let unit = |at: usize| -> Option<u16> {
        let hex = body.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let lone = |at: usize| {
        JsonError::Syntax(format!(
            "lone surrogate escape `\\u{}` at byte offset {at} (not text)",
            String::from_utf8_lossy(body.get(at + 2..at + 6).unwrap_or_default())
        ))
    };
    let mut i = 0;
    while let Some(off) = body.get(i..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        let at = i + off;
        if body.get(at + 1) != Some(&b'u') {
            i = at + 2;
            continue;
        }
        i = at + 6;
        match unit(at + 2) {
            Some(0xD800..=0xDBFF) => {
                let paired = body.get(at + 6..at + 8) == Some(&b"\\u"[..])
                    && matches!(unit(at + 8), Some(0xDC00..=0xDFFF));
                if !paired {
                    return Err(lone(at));
                }
                i = at + 12;
            }
            Some(0xDC00..=0xDFFF) => return Err(lone(at)),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses `body` if its arrays and objects nest deeper than `max` (one pass, no recursion; the
/// scan routing uses, see [`crate::route::envelope::nests_deeper_than`]).
pub(crate) fn check_depth(body: &[u8], max: usize) -> Result<(), JsonError> {
    match crate::route::envelope::nests_deeper_than(body, max) {
        true => Err(JsonError::TooDeep(max)),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> Vec<u8> {
        let mut v = vec![b'['; n];
        v.extend(std::iter::repeat_n(b']', n));
        v
    }

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert_eq!(check(&nested(MAX_JSON_DEPTH)), Ok(()));
        assert_eq!(
            check(&nested(MAX_JSON_DEPTH + 1)),
            Err(JsonError::TooDeep(MAX_JSON_DEPTH))
        );
        assert_eq!(
            check(&nested(10_000)),
            Err(JsonError::TooDeep(MAX_JSON_DEPTH))
        );
        let mut objects = "{\"a\":".repeat(200);
        objects.push('1');
        objects.push_str(&"}".repeat(200));
        assert_eq!(
            check(objects.as_bytes()),
            Err(JsonError::TooDeep(MAX_JSON_DEPTH))
        );
        // Brackets in strings, after escaped quotes too, are text.
        let text = format!(r#"{{"a":"\"{}","b":[1]}}"#, "[".repeat(500));
        assert_eq!(check(text.as_bytes()), Ok(()));
        // Siblings do not add up.
        let wide = format!("[{}1]", "[],".repeat(1000));
        assert_eq!(check(wide.as_bytes()), Ok(()));
    }

    #[test]
    fn what_routing_cannot_read_is_refused() {
        assert!(matches!(
            check(br#"{"a":"\ud800"}"#),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            check(br#"{"a":"\udc00"}"#),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            check(br#"{"a":"\ud800\u0041"}"#),
            Err(JsonError::Syntax(_))
        ));
        assert_eq!(check(b"{\"a\":\"x\xff\"}"), Err(JsonError::Utf8(7)));
        assert!(matches!(check(b"{\"a\": NaN}"), Err(JsonError::Syntax(_))));
        assert!(matches!(check(b"[1] # c"), Err(JsonError::Syntax(_))));
        assert!(matches!(check(b"{1: 2}"), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn valid_unicode_is_accepted() {
        assert_eq!(check(br#"{"a":"\ud83d\ude00"}"#), Ok(()));
        assert_eq!(check("{\"a\":\"é😀\"}".as_bytes()), Ok(()));
        assert_eq!(check(br#"{"a":"\u00e9\u0000"}"#), Ok(()));
        assert_eq!(check(b"123456789012345678901234567890"), Ok(()));
        // An escaped backslash before `u` is not an escape of `u`.
        assert_eq!(check(br#"{"a":"\\ud800"}"#), Ok(()));
        assert_eq!(check(br#"["\udbff\udfff","\ud800\udc00x"]"#), Ok(()));
    }

    #[test]
    fn the_scan_refuses_exactly_what_jaq_refuses() {
        let cases: &[&[u8]] = &[
            br#""\ud800""#,
            br#""\ud800\n""#,
            br#""\udbff\ue000""#,
            br#""\udfff""#,
            br#"["\ud83d\ude00", "\\udc00"]"#,
            br#""\\\udc00""#,
            br#"{"\ud800": 1}"#,
            br#""x\u0041\ud83d""#,
            br#""\ud83d\ude00\ud83d\ude00""#,
        ];
        for body in cases {
            let ours = check(body).is_ok();
            let jaq = jaq_json::read::parse_single(body).is_ok();
            assert_eq!(ours, jaq, "{}", String::from_utf8_lossy(body));
        }
    }
}
