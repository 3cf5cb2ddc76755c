//! The `Username` value object.

use std::fmt;

/// A username: 3 to 32 characters of `a-z`, `0-9`, `_`, `.` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("must be {min} to {max} characters long", min = Username::MIN_LEN, max = Username::MAX_LEN)]
    Length,
    #[error("may contain only a-z, 0-9, '_', '.' and '-'")]
    Character,
}

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;
    /// The rule `parse` checks, as a regular expression (ECMA-262, for JSON Schema's
    /// `pattern`). A test holds the two to the same answers.
    pub const PATTERN: &str = "^[a-z0-9_.-]{3,32}$";

    /// # Errors
    /// When the name, taken as sent, has the wrong length or a character outside the
    /// set.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let name = raw;
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
        {
            return Err(UsernameError::Character);
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&name.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(name.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_of_three_and_thirty_two_characters_are_accepted() {
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert_eq!(Username::parse("a_b.c-9").unwrap().as_str(), "a_b.c-9");
    }

    #[test]
    fn usernames_of_two_or_thirty_three_characters_are_rejected() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
    }

    #[test]
    fn upper_case_spaces_and_symbols_are_rejected() {
        for raw in ["Alice", "al ice", " alice", "al@ce", "ålice"] {
            assert_eq!(Username::parse(raw), Err(UsernameError::Character), "{raw}");
        }
    }
}
