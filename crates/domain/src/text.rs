//! Text value objects any aggregate may use for a field that is plain text: a
//! [`ShortText`] for a line (a name, a number, a title) and a [`LongText`] for prose.
//! The limits are in characters as sent, not bytes; the text kept is trimmed.

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
}

/// Every character `char::is_whitespace` (Unicode's `White_Space`), and so `trim`, takes
/// for white space: the ranges of a regular expression's class (ECMA-262, as JSON
/// Schema's `pattern` reads it).
macro_rules! white_space {
    () => {
        "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    };
}
pub(crate) use white_space;

/// What a text that may not be blank must hold, as a regular expression (for JSON
/// Schema's `pattern`, which is not anchored): a character that is not white space. A
/// test holds it to `trim`.
pub const NOT_BLANK: &str = concat!("[^", white_space!(), "]");

/// `raw` trimmed, when it is at most `max` characters as sent, and not blank unless
/// allowed.
pub(crate) fn bounded(raw: &str, max: usize, allow_empty: bool) -> Result<String, TextError> {
    if raw.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    let text = raw.trim();
    if text.is_empty() && !allow_empty {
        return Err(TextError::Empty);
    }
    Ok(text.to_owned())
}

/// One line: 1 to 200 characters, not all white space; kept trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortText(String);

impl ShortText {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// When the text is blank or longer than 200 characters.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS, false).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Prose: up to 10,000 characters; may be empty; kept trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LongText(String);

impl LongText {
    pub const MAX_CHARS: usize = 10_000;

    /// # Errors
    /// When the text is longer than 10,000 characters.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS, true).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_is_trimmed_and_neither_empty_nor_over_200_characters() {
        assert_eq!(ShortText::parse("  Ship it ").unwrap().as_str(), "Ship it");
        assert_eq!(ShortText::parse("   "), Err(TextError::Empty));
        assert!(ShortText::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            ShortText::parse(&"é".repeat(201)),
            Err(TextError::TooLong { max: 200 })
        );
    }

    #[test]
    fn a_long_text_may_be_empty_and_holds_up_to_10_000_characters() {
        assert_eq!(LongText::parse("  ").unwrap().as_str(), "");
        assert!(LongText::parse(&"x".repeat(10_000)).is_ok());
        assert_eq!(
            LongText::parse(&"x".repeat(10_001)),
            Err(TextError::TooLong { max: 10_000 })
        );
    }
}
