//! The `Email` value object.

use std::fmt;

/// An email address, lower-cased. Holding one means it passed `parse`.
///
/// The check is deliberately pragmatic, and it is the one [`Email::PATTERN`] states: an
/// address as the HTML standard's `type=email` input accepts it (1 to 64 of the local
/// part's characters, `@`, labels of letters, digits and inner hyphens), with at least
/// one dot in the domain and at most 254 characters. Only sending a message proves an
/// address works.
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
    /// The rule `parse` checks besides the length, as a regular expression (ECMA-262,
    /// for JSON Schema's `pattern`). A test holds the two to the same answers.
    pub const PATTERN: &str = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@\
        [A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\
        (?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

    /// # Errors
    /// When the address is empty, longer than 254 characters, or malformed. It is taken
    /// as sent: surrounding white space is malformed.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if raw.is_empty() {
            return Err(EmailError::Empty);
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = raw.split_once('@').ok_or(EmailError::Invalid)?;
        if !Self::is_valid_local(local) || !Self::is_valid_domain(domain) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    fn is_valid_local(local: &str) -> bool {
        (1..=Self::MAX_LOCAL_LEN).contains(&local.len())
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
    fn an_email_is_lower_cased_and_taken_as_sent() {
        let email = Email::parse("Ada.Lovelace@Example.COM").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
        assert_eq!(Email::parse(" ada@example.com"), Err(EmailError::Invalid));
    }

    #[test]
    fn common_valid_addresses_are_accepted() {
        for raw in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y-z@my-host.io",
            // The HTML standard's rule, not RFC 5322's: dots anywhere in the local part.
            ".a..b.@c.com",
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
            "a@-b.com",
            "a@b..com",
            "a@b.com.",
        ] {
            assert_eq!(Email::parse(raw), Err(EmailError::Invalid), "{raw}");
        }
    }

    #[test]
    fn an_empty_email_is_rejected_as_empty() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
    }

    #[test]
    fn an_email_over_254_characters_is_rejected() {
        let raw = format!("a@{}.com", "b".repeat(250));
        assert_eq!(Email::parse(&raw), Err(EmailError::TooLong));
    }
}
