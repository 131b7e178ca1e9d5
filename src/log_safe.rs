//! Producer text in log lines. The text log prints `%` fields as they are, so a newline in a
//! source name taken from the path (`/hooks/x%0A2026-… ERROR …`) would start a forged line, and
//! an escape sequence could rewrite a terminal. [`Escaped`] is the one wrapper every logging site
//! that carries producer data uses: it escapes control and other invisible characters like
//! [`str::escape_debug`] does, but keeps ordinary (printable) unicode as it is, so names and
//! messages stay readable.

use std::fmt::{self, Display, Write};

/// Displays its value with control and invisible characters escaped (`\n`, `\u{202e}`…) and
/// backslashes doubled, so the escaped form can never be mistaken for the original.
pub(crate) struct Escaped<T>(pub(crate) T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Escapes while the value formats itself: no intermediate String for the common case.
        write!(EscapingWriter(f), "{}", self.0)
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let mut chars = rest[at..].chars();
            let Some(c) = chars.next() else { break };
            write!(self.0, "{}", c.escape_debug())?;
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

/// Characters that could end, forge or hide part of a log line: C0/C1 controls (newlines, ESC),
/// line and paragraph separators, bidi overrides and isolates, zero-width characters, the BOM,
/// the soft hyphen; and the backslash, which escapes are written with.
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn controls_and_invisibles_are_escaped_and_unicode_kept() {
        let forged = "x\n2026-12-02T00:00:00Z ERROR forged line";
        assert_eq!(
            Escaped(forged).to_string(),
            "x\\n2026-12-02T00:00:00Z ERROR forged line"
        );
        assert_eq!(
            Escaped("a\r\tb\u{1b}[31m").to_string(),
            "a\\r\\tb\\u{1b}[31m"
        );
        assert_eq!(
            Escaped("\u{202e}evil\u{2028}\u{200b}\u{85}").to_string(),
            "\\u{202e}evil\\u{2028}\\u{200b}\\u{85}"
        );
        assert_eq!(
            Escaped("a\\nb").to_string(),
            "a\\\\nb",
            "escapes stay unambiguous"
        );
        assert_eq!(Escaped("café 日本 🎉 ok").to_string(), "café 日本 🎉 ok");
        // Through another Display, e.g. an error quoting a name.
        assert_eq!(
            Escaped(format_args!("unknown source `{}`", "a\nb")).to_string(),
            "unknown source `a\\nb`"
        );
    }
}
