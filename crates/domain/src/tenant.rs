//! The tenant: the unit of isolation. Every user, and later every task, belongs to
//! exactly one tenant and is never visible from another.

use chrono::{DateTime, Utc};

use crate::id::id_type;

id_type!(
    /// Identifies a tenant.
    TenantId
);

/// A tenant's display name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters", max = TenantName::MAX_CHARS)]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl TenantName {
    pub const MAX_CHARS: usize = 100;
    /// The rule `parse` checks besides the length, as a regular expression (ECMA-262,
    /// for JSON Schema's `pattern`): no control character (Unicode's `Cc`), and one at
    /// least that is not white space. A test holds the two to the same answers.
    pub const PATTERN: &str = concat!(
        "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x1f\\x7f-\\x9f",
        crate::text::white_space!(),
        "][^\\x00-\\x1f\\x7f-\\x9f]*$"
    );

    /// # Errors
    /// When the name is blank, longer than 100 characters as sent, or holds a control
    /// character. It is kept trimmed.
    pub fn parse(raw: &str) -> Result<Self, TenantNameError> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(TenantNameError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(TenantNameError::ControlCharacter);
        }
        let name = raw.trim();
        if name.is_empty() {
            return Err(TenantNameError::Empty);
        }
        Ok(Self(name.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant. Its first user, an admin, is created with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    id: TenantId,
    name: TenantName,
    created_at: DateTime<Utc>,
}

impl Tenant {
    #[must_use]
    pub fn create(id: TenantId, name: TenantName, now: DateTime<Utc>) -> Self {
        Self {
            id,
            name,
            created_at: now,
        }
    }

    /// Rebuilds a tenant from stored state; only persistence adapters call this.
    #[must_use]
    pub fn reconstitute(id: TenantId, name: TenantName, created_at: DateTime<Utc>) -> Self {
        Self {
            id,
            name,
            created_at,
        }
    }

    #[must_use]
    pub fn id(&self) -> TenantId {
        self.id
    }

    #[must_use]
    pub fn name(&self) -> &TenantName {
        &self.name
    }

    #[must_use]
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_name_is_trimmed() {
        assert_eq!(TenantName::parse("  Acme  ").unwrap().as_str(), "Acme");
    }

    #[test]
    fn a_blank_tenant_name_is_rejected() {
        assert_eq!(TenantName::parse("   "), Err(TenantNameError::Empty));
    }

    #[test]
    fn a_tenant_name_of_101_characters_is_rejected_and_100_accepted() {
        assert_eq!(
            TenantName::parse(&"é".repeat(101)),
            Err(TenantNameError::TooLong)
        );
        assert!(TenantName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn a_tenant_name_with_a_control_character_is_rejected() {
        assert_eq!(
            TenantName::parse("Ac\u{7}me"),
            Err(TenantNameError::ControlCharacter)
        );
    }
}
