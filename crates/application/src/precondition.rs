//! Preconditions on a change: the versions of the aggregate a client's change may apply
//! to, as its `If-Match` said. Every aggregate is versioned the same way, so one type
//! serves them all.

use crate::Error;

/// The versions a change may apply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No precondition: apply to whatever version is current (a concurrent write still
    /// makes the save fail rather than overwrite).
    Any,
    /// Apply only if the current version is one of these; an empty list matches nothing.
    OneOf(Vec<i64>),
}

impl Precondition {
    /// # Errors
    /// `PreconditionFailed` naming `current` when it is not a version this allows.
    pub fn check(&self, current: i64) -> Result<(), Error> {
        match self {
            Self::OneOf(versions) if !versions.contains(&current) => {
                Err(Error::PreconditionFailed {
                    current_version: current,
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_version_passes_without_a_precondition() {
        assert!(Precondition::Any.check(7).is_ok());
    }

    #[test]
    fn a_listed_version_passes_and_another_fails_naming_the_current_one() {
        let precondition = Precondition::OneOf(vec![2, 5]);
        assert!(precondition.check(5).is_ok());
        assert!(matches!(
            precondition.check(3),
            Err(Error::PreconditionFailed { current_version: 3 })
        ));
    }

    #[test]
    fn an_empty_list_matches_no_version() {
        assert!(Precondition::OneOf(Vec::new()).check(0).is_err());
    }
}
