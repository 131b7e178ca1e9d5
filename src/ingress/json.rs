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
//! 3. strict RFC 8259 syntax (serde_json), as ingress has always required;
//! 4. jaq's own parser, the one routing runs, so whatever it refuses (a lone surrogate escape such
//!    as `"\ud800"`) is refused here, while the producer can still be told.

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
    // Safe to recurse now: the scan above bounded the depth.
    jaq_json::read::parse_single(body).map_err(|e| JsonError::Syntax(e.to_string()))?;
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
    }
}
