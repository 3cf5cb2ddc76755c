//! Fields of a partial update, where leaving a field out and sending `null` mean
//! different things: absent leaves the field as it is, `null` clears it.

use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::error::FieldErrors;

/// One field of a PATCH body. Declare it `#[serde(default)]`, so that a missing field
/// is `Absent` rather than an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| value.map_or(Self::Null, Self::Value))
    }
}

impl<T> Patch<T> {
    /// For a field that may be changed but not cleared: `None` when absent; `null` and
    /// values `parse` refuses are noted in `errors`.
    pub(crate) fn parse_required<U, E: fmt::Display>(
        self,
        field: &str,
        errors: &mut FieldErrors,
        parse: impl FnOnce(T) -> Result<U, E>,
    ) -> Option<U> {
        match self {
            Self::Absent => None,
            Self::Null => errors.check(field, Err::<U, _>("must not be null")),
            Self::Value(value) => errors.check(field, parse(value)),
        }
    }

    /// For a field that may be cleared: `None` when absent, `Some(None)` for `null`;
    /// values `parse` refuses are noted in `errors`.
    // The shape `TaskEdit` takes for a field that may be left, cleared or set.
    #[allow(clippy::option_option)]
    pub(crate) fn parse_nullable<U, E: fmt::Display>(
        self,
        field: &str,
        errors: &mut FieldErrors,
        parse: impl FnOnce(T) -> Result<U, E>,
    ) -> Option<Option<U>> {
        match self {
            Self::Absent => None,
            Self::Null => Some(None),
            Self::Value(value) => errors.check(field, parse(value)).map(Some),
        }
    }
}

/// `#[serde(deserialize_with = "required_nullable")]` for a field that must be sent but
/// may be `null` (`Option` fields are otherwise optional to serde).
pub(crate) fn required_nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ApiError;

    #[derive(Debug, Deserialize)]
    struct Changes {
        #[serde(default)]
        due: Patch<u32>,
    }

    #[derive(Debug, Deserialize)]
    struct Assignment {
        #[serde(deserialize_with = "required_nullable")]
        to: Option<u32>,
    }

    fn due(body: serde_json::Value) -> Patch<u32> {
        serde_json::from_value::<Changes>(body).unwrap().due
    }

    fn fields(errors: FieldErrors) -> Vec<String> {
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    fn positive(n: u32) -> Result<u32, &'static str> {
        if n > 0 {
            Ok(n)
        } else {
            Err("must be positive")
        }
    }

    #[test]
    fn absent_null_and_a_value_are_told_apart() {
        assert_eq!(due(json!({})), Patch::Absent);
        assert_eq!(due(json!({"due": null})), Patch::Null);
        assert_eq!(due(json!({"due": 3})), Patch::Value(3));
        assert!(serde_json::from_value::<Changes>(json!({"due": "soon"})).is_err());
    }

    #[test]
    fn a_field_that_cannot_be_cleared_refuses_null() {
        let mut errors = FieldErrors::default();
        assert_eq!(
            Patch::Absent.parse_required("a", &mut errors, positive),
            None
        );
        assert_eq!(
            Patch::Value(2).parse_required("b", &mut errors, positive),
            Some(2)
        );
        assert_eq!(Patch::Null.parse_required("c", &mut errors, positive), None);
        assert_eq!(
            Patch::Value(0).parse_required("d", &mut errors, positive),
            None
        );
        assert_eq!(fields(errors), ["c", "d"]);
    }

    #[test]
    fn a_field_that_can_be_cleared_turns_null_into_none() {
        let mut errors = FieldErrors::default();
        assert_eq!(
            Patch::Absent.parse_nullable("a", &mut errors, positive),
            None
        );
        assert_eq!(
            Patch::Null.parse_nullable("b", &mut errors, positive),
            Some(None)
        );
        assert_eq!(
            Patch::Value(5).parse_nullable("c", &mut errors, positive),
            Some(Some(5))
        );
        assert_eq!(
            Patch::Value(0).parse_nullable("d", &mut errors, positive),
            None
        );
        assert_eq!(fields(errors), ["d"]);
    }

    #[test]
    fn a_required_nullable_field_must_be_sent_but_may_be_null() {
        let assign = |body| serde_json::from_value::<Assignment>(body).map(|a| a.to);
        assert_eq!(assign(json!({"to": 4})).unwrap(), Some(4));
        assert_eq!(assign(json!({"to": null})).unwrap(), None);
        let missing = assign(json!({})).unwrap_err();
        assert_eq!(missing.to_string(), "missing field `to`");
    }
}
