//! A bound on how deeply a jq program nests, checked on its text before jaq sees it.
//!
//! jaq's lexer, parser and compiler recurse once per level of nesting, with no limit of their
//! own: `((((…true…))))` 800 deep overflowed the 2 MiB stack of a reload thread, and a stack
//! overflow aborts the whole process, not one request. So every program is scanned first, and
//! one that could nest deeper than [`MAX_NESTING`] is refused with an offset: where it gets
//! too deep, or where the innermost bracket of its deepest path opens.
//!
//! The scan over-approximates jaq's recursion: inside every bracket (`(`, `[`, `{`, and a
//! string's `\(` interpolation) each operator (`|`, `,`, `+`, `and`, `//`, …) and each keyword
//! that opens a nested term (`if`, `elif`, `try`, `catch`, `reduce`, `foreach`, `def`, `label`,
//! `as`) counts one more level, for everything in the bracket, before the operator or after it.
//! A chain of binary operators counts too, because jaq builds it into a tree that its compiler
//! walks recursively, and a bracket at the chain's start (`(…) and .a and .b`) is at its
//! bottom. Commas between the entries of an object are separators, not operators, so a large
//! Port-style map stays shallow. Counting more than jaq recurses only refuses odd programs
//! early; counting less would let one crash the gateway, so when in doubt the scan counts.

/// The deepest nesting a program may have, by the measure above.
pub(crate) const MAX_NESTING: usize = 512;

/// The longest program accepted, in bytes.
pub(crate) const MAX_PROGRAM_BYTES: usize = 256 * 1024;

/// Why a program is refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "the program nests more than {MAX_NESTING} levels deep at offset {offset} (brackets, \
         operators and keywords such as `if`, `try` and `reduce` each count); split it into \
         `def`s or simplify it"
    )]
    TooDeep { offset: usize },
    #[error("the program is {len} bytes long; at most {MAX_PROGRAM_BYTES} are allowed")]
    TooLong { len: usize },
}

/// Keywords after which jaq parses a nested term.
const NESTING_WORDS: &[&str] = &[
    "if", "elif", "try", "catch", "reduce", "foreach", "def", "label", "as", "and", "or",
];

/// Characters that make up jq's operators (`|=`, `//`, `!=`, `?//` …): a run of them counts once.
const OPERATOR_CHARS: &[u8] = b"|,+-*/%=<>!?";

/// An open bracket or string.
struct Frame {
    /// The opening byte: `(`, `[`, `{`, or `"` for a string.
    open: u8,
    /// Levels counted in it so far (never in a string's own text).
    count: usize,
    /// The deepest of the brackets closed inside it, by [`Frame::depth`].
    inner: usize,
    /// Where the innermost bracket of that deepest path opens (its own opening when none).
    inner_at: usize,
}

impl Frame {
    fn new(open: u8, at: usize) -> Self {
        Self {
            open,
            count: 0,
            inner: 0,
            inner_at: at,
        }
    }

    /// How deep the frame's deepest content nests, counting every level counted in it, also
    /// those after a nested bracket: jaq builds `(…) and .a and .b` as `((…) and .a) and .b`,
    /// so the bracket's content sits below every `and` of the chain.
    fn depth(&self) -> usize {
        1 + self.count + self.inner
    }

    /// Takes a closed `child` into this frame's deepest path.
    fn close(&mut self, child: &Frame) {
        if child.depth() > self.inner {
            self.inner = child.depth();
            self.inner_at = child.inner_at;
        }
    }

    fn in_string(&self) -> bool {
        self.open == b'"'
    }
}

/// Refuses a program that is too long or could nest deeper than [`MAX_NESTING`].
pub(crate) fn check(code: &str) -> Result<(), ShapeError> {
    if code.len() > MAX_PROGRAM_BYTES {
        return Err(ShapeError::TooLong { len: code.len() });
    }
    let bytes = code.as_bytes();
    // The whole program is one block, as if wrapped in parentheses.
    let mut stack = vec![Frame::new(b'(', 0)];
    // Σ over the stack of (1 + count): kept up to date instead of summed at every byte, so that
    // a program too deep on the way down is refused where it gets so.
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let in_string = stack.last().is_some_and(Frame::in_string);
        let mut deeper = 0;
        if in_string {
            match b {
                b'\\' if bytes.get(i + 1) == Some(&b'(') => {
                    stack.push(Frame::new(b'(', i));
                    deeper = 1;
                    i += 1;
                }
                // Any other escape: the next byte is part of it (`\"` does not end the string).
                b'\\' => i += 1,
                b'"' => depth -= close(&mut stack),
                _ => {}
            }
            i += 1;
        } else {
            match b {
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'"' | b'(' | b'[' | b'{' => {
                    stack.push(Frame::new(b, i));
                    deeper = 1;
                    i += 1;
                }
                b')' | b']' | b'}' => {
                    depth -= close(&mut stack);
                    i += 1;
                }
                _ if OPERATOR_CHARS.contains(&b) => {
                    let start = i;
                    while i < bytes.len() && OPERATOR_CHARS.contains(&bytes[i]) {
                        i += 1;
                    }
                    let separator =
                        &bytes[start..i] == b"," && stack.last().is_some_and(|f| f.open == b'{');
                    if !separator {
                        deeper = bump(&mut stack);
                    }
                }
                _ if b.is_ascii_alphabetic() || b == b'_' => {
                    let start = i;
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
                    {
                        i += 1;
                    }
                    // A `$name` or `.name` is never a keyword, but counting it would only be
                    // cautious; the byte before tells them apart cheaply.
                    let plain = start == 0 || !matches!(bytes[start - 1], b'$' | b'.');
                    if plain && NESTING_WORDS.contains(&&code[start..i]) {
                        deeper = bump(&mut stack);
                    }
                }
                _ => i += 1,
            }
        }
        depth += deeper;
        if depth > MAX_NESTING {
            return Err(ShapeError::TooDeep {
                offset: i.min(code.len()),
            });
        }
    }
    // Levels counted after a bracket closed are known only now: the whole program's depth.
    // Brackets left open are jaq's to report; they close here.
    while stack.len() > 1 {
        close(&mut stack);
    }
    match stack.last() {
        Some(root) if root.depth() > MAX_NESTING => Err(ShapeError::TooDeep {
            offset: root.inner_at,
        }),
        _ => Ok(()),
    }
}

/// Closes the innermost frame into its parent; returns the levels it had added to the running
/// depth. An unmatched closer is jaq's to report: the outermost block stays.
fn close(stack: &mut Vec<Frame>) -> usize {
    if stack.len() < 2 {
        return 0;
    }
    let Some(child) = stack.pop() else {
        return 0;
    };
    if let Some(parent) = stack.last_mut() {
        parent.close(&child);
    }
    1 + child.count
}

/// One more level inside the innermost block; returns how much deeper that is.
fn bump(stack: &mut [Frame]) -> usize {
    match stack.last_mut() {
        Some(f) if !f.in_string() => {
            f.count += 1;
            1
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn ordinary_programs_pass() {
        for code in [
            ".body.state == \"FINISHED\" and (.body.stack.id | startswith(\"prod\"))",
            "{id: .body.id, tags: [.body.tags[] | ascii_downcase]}",
            "if .a then 1 elif .b then 2 else 3 end",
            "reduce .[] as $x (0; . + $x)",
            "\"((((((( \\(.a) [[[[\" # (((((( in a comment",
            "def f: . + 1; f | f",
        ] {
            assert_eq!(check(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn deep_brackets_are_refused_with_the_offset() {
        for (open, close) in [("(", ")"), ("[", "]"), ("{a:", "}")] {
            let code = nested(open, "true", close, 800);
            assert!(
                matches!(check(&code), Err(ShapeError::TooDeep { .. })),
                "{open}"
            );
        }
        let code = nested("(", "true", ")", 600);
        assert_eq!(check(&code), Err(ShapeError::TooDeep { offset: 512 }));
        assert_eq!(check(&nested("(", "true", ")", 200)), Ok(()));
    }

    #[test]
    fn keywords_operators_and_interpolation_count() {
        for code in [
            "try ".repeat(600) + "1",
            "- ".repeat(600) + "1",
            "if true then ".repeat(600) + "1" + &" end".repeat(600),
            "reduce ".repeat(600) + ".",
            ". as $x | ".repeat(600) + ".",
            "1".to_string() + &" + 1".repeat(600),
            ". | ".repeat(600) + ".",
            nested("\"\\(", "1", ")\"", 400),
            "def f: ".repeat(600) + ".",
        ] {
            assert!(
                matches!(check(&code), Err(ShapeError::TooDeep { .. })),
                "not refused: {}…",
                &code[..40]
            );
        }
    }

    /// `((…) and .a and .a …)`: jaq nests the bracket below every link of the chain after it,
    /// so those links count for its depth too. 32 such levels of 400 links passed the scan and
    /// overflowed the compiler's 32 MiB stack; 100 links, which jaq still compiled, are refused
    /// now as well.
    #[test]
    fn levels_after_a_nested_bracket_count_for_it() {
        let mut code = ".a".to_string();
        for _ in 0..32 {
            code = format!("({code}{})", " and .a".repeat(100));
        }
        assert_eq!(check(&code), Err(ShapeError::TooDeep { offset: 31 }));
        let chained = |links: usize| format!("(({}){})", "1", " + 1".repeat(links));
        assert_eq!(check(&chained(MAX_NESTING - 3)), Ok(()));
        assert!(matches!(
            check(&chained(MAX_NESTING - 2)),
            Err(ShapeError::TooDeep { offset: 1 })
        ));
        // The same links before the bracket were counted already.
        assert_eq!(
            check(&format!("{}(1)", "1 + ".repeat(MAX_NESTING - 2))),
            Ok(())
        );
    }

    #[test]
    fn object_entries_and_sequential_brackets_stay_shallow() {
        let entries: Vec<String> = (0..5000).map(|i| format!("\"k{i}\": (.a{i})")).collect();
        let map = format!("{{{}}}", entries.join(", "));
        assert_eq!(check(&map), Ok(()));
        assert_eq!(check(&"(.a) ".repeat(5000)), Ok(()));
    }

    #[test]
    fn long_programs_are_refused() {
        let code = " ".repeat(MAX_PROGRAM_BYTES + 1);
        assert!(matches!(check(&code), Err(ShapeError::TooLong { .. })));
    }
}
