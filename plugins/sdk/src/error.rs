//! [`Error`]: what a plugin's `transform` may fail with, so that `?` works on whatever it calls.

use std::fmt;

/// Why a plugin refused an event: the delivery fails with [`Error::message`] as its reason.
///
/// `?` turns anything that displays into one: a `serde_json` error, a parse error, `&str` and
/// `String` (`event.body.get("stack").ok_or("no stack")?`). That blanket conversion is why it does
/// not implement `Display` itself (as `anyhow::Error` does not implement `std::error::Error`):
/// read its text with [`Error::message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this text.
    pub fn msg(text: impl fmt::Display) -> Self {
        Self(text.to_string())
    }

    /// The text the delivery fails with.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl<E: fmt::Display> From<E> for Error {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// What a `transform` may fail with: [`Error`] or `String`. Its text is the delivery's reason.
#[doc(hidden)]
pub trait Reason {
    /// The text.
    fn reason(self) -> String;
}

impl Reason for Error {
    fn reason(self) -> String {
        self.0
    }
}

impl Reason for String {
    fn reason(self) -> String {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<u32, Error> {
        let n: u32 = text.parse()?;
        let _: serde_json::Value = serde_json::from_str("{}")?;
        if n == 0 {
            return Err("zero".into());
        }
        Ok(n)
    }

    #[test]
    fn question_mark_takes_std_errors_and_text() {
        assert_eq!(parse("7"), Ok(7));
        assert_eq!(
            parse("x").map_err(|e| e.message().to_string()),
            Err("invalid digit found in string".into())
        );
        assert_eq!(parse("0"), Err(Error::msg("zero")));
    }
}
