//! The password policy and the opaque stored hash.

use std::fmt;

/// A plaintext password that meets the policy (8 to 128 characters). It never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {min} characters", min = Password::MIN_CHARS)]
    TooShort,
    #[error("must be at most {max} characters", max = Password::MAX_CHARS)]
    TooLong,
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    /// Passwords are not trimmed: every character the user typed counts.
    ///
    /// # Errors
    /// When the password is shorter than 8 or longer than 128 characters.
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password hash in PHC string format, as produced by the hashing adapter.
/// The domain treats it as opaque; it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    #[must_use]
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_of_8_and_128_characters_are_accepted() {
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"ü".repeat(128)).is_ok());
    }

    #[test]
    fn passwords_of_7_or_129_characters_are_rejected() {
        assert_eq!(Password::parse("1234567"), Err(PasswordError::TooShort));
        assert_eq!(
            Password::parse(&"x".repeat(129)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn passwords_and_hashes_never_print() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = PasswordHash::new("$argon2id$secret".to_owned());
        assert!(!format!("{password:?}").contains("horse"));
        assert!(!format!("{hash:?}").contains("secret"));
    }
}
