//! The `Email` value object.

use std::fmt;

/// An email address, trimmed and lower-cased. Holding one means it passed `parse`.
///
/// The check is deliberately pragmatic (one `@`, a dotted domain of letters, digits and
/// hyphens, sane lengths): only sending a message proves an address works.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters", max = Email::MAX_LEN)]
    TooLong,
    #[error("is not a valid email address")]
    Invalid,
}

impl Email {
    pub const MAX_LEN: usize = 254;
    const MAX_LOCAL_LEN: usize = 64;

    /// # Errors
    /// When the address is empty, longer than 254 characters, or malformed.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.len() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = email.split_once('@').ok_or(EmailError::Invalid)?;
        if !Self::is_valid_local(local) || !Self::is_valid_domain(domain) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(email))
    }

    fn is_valid_local(local: &str) -> bool {
        !local.is_empty()
            && local.len() <= Self::MAX_LOCAL_LEN
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
    }

    fn is_valid_domain(domain: &str) -> bool {
        let labels: Vec<&str> = domain.split('.').collect();
        labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn common_valid_addresses_are_accepted() {
        for raw in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y-z@my-host.io",
        ] {
            assert!(Email::parse(raw).is_ok(), "{raw} should be accepted");
        }
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for raw in [
            "plainaddress",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            ".a@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b..com",
            "a@b.com.",
        ] {
            assert_eq!(Email::parse(raw), Err(EmailError::Invalid), "{raw}");
        }
    }

    #[test]
    fn an_empty_email_is_rejected_as_empty() {
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
    }

    #[test]
    fn an_email_over_254_characters_is_rejected() {
        let raw = format!("a@{}.com", "b".repeat(250));
        assert_eq!(Email::parse(&raw), Err(EmailError::TooLong));
    }
}
