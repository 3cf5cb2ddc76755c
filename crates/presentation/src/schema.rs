//! The schemas of the values the API reads, built from the constants and patterns the
//! domain's parsers check, so the document states what the server enforces and cannot
//! drift from it. A field names one with `#[schema(schema_with = schema::…)]`.
//!
//! Text limits count characters as sent; text that may not be blank says so with
//! `NOT_BLANK`, the domain's pattern for "holds a character `trim` keeps".

use domain::text::NOT_BLANK;
use domain::{Email, LongText, Password, ShortText, TenantName, Username};
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type,
};

/// A string of at most `max` characters.
fn string(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max))
}

/// The same, also `null`.
fn or_null(schema: ObjectBuilder) -> Object {
    schema
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

fn email_builder() -> ObjectBuilder {
    string(Email::MAX_LEN)
        .min_length(Some(1))
        .pattern(Some(Email::PATTERN))
        .description(Some(
            "An email address as the HTML standard's `type=email` input takes it, with a \
             dot in its domain; stored lower-cased. Unique across the whole service.",
        ))
        .examples(["ada@example.com"])
}

#[must_use]
pub fn email() -> Object {
    email_builder().build()
}

#[must_use]
pub fn email_or_null() -> Object {
    or_null(email_builder())
}

fn username_builder() -> ObjectBuilder {
    string(Username::MAX_LEN)
        .min_length(Some(Username::MIN_LEN))
        .pattern(Some(Username::PATTERN))
        .description(Some("3 to 32 of `a-z`, `0-9`, `_`, `.` and `-`."))
        .examples(["ada"])
}

#[must_use]
pub fn username() -> Object {
    username_builder().build()
}

#[must_use]
pub fn username_or_null() -> Object {
    or_null(username_builder())
}

/// A new password: the policy's length, any characters.
#[must_use]
pub fn new_password() -> Object {
    string(Password::MAX_CHARS)
        .min_length(Some(Password::MIN_CHARS))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .description(Some("8 to 128 characters, any."))
        .build()
}

/// A password given as proof (sign-in, the current password): only its length is
/// checked before it is compared, so nobody can make the server hash megabytes.
fn given_password_builder() -> ObjectBuilder {
    string(Password::MAX_CHARS)
        .min_length(Some(1))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
}

#[must_use]
pub fn given_password() -> Object {
    given_password_builder().build()
}

#[must_use]
pub fn given_password_or_null() -> Object {
    or_null(given_password_builder())
}

#[must_use]
pub fn tenant_name() -> Object {
    string(TenantName::MAX_CHARS)
        .min_length(Some(1))
        .pattern(Some(TenantName::PATTERN))
        .description(Some(
            "Up to 100 characters, no control characters, not blank; stored trimmed.",
        ))
        .examples(["Acme"])
        .build()
}

fn short_text_builder() -> ObjectBuilder {
    string(ShortText::MAX_CHARS)
        .min_length(Some(1))
        .pattern(Some(NOT_BLANK))
        .description(Some("Up to 200 characters, not blank; stored trimmed."))
}

/// A line of text: `domain::ShortText`, and the task title and checklist text, which
/// are the same rule.
#[must_use]
pub fn short_text() -> Object {
    short_text_builder().build()
}

#[must_use]
pub fn short_text_or_null() -> Object {
    or_null(short_text_builder())
}

fn long_text_builder() -> ObjectBuilder {
    string(LongText::MAX_CHARS).description(Some("Up to 10,000 characters; stored trimmed."))
}

/// Prose: `domain::LongText`, and the task description, which is the same rule.
#[must_use]
pub fn long_text() -> Object {
    long_text_builder().build()
}

#[must_use]
pub fn long_text_or_null() -> Object {
    or_null(long_text_builder())
}

/// The texts of a new task's checklist.
#[must_use]
pub fn checklist_texts() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .items(short_text())
        .max_items(Some(domain::Task::MAX_CHECKLIST_ITEMS))
        .description(Some("The texts of the checklist's items; at most 50."))
        .build()
}

#[cfg(test)]
mod tests {
    use domain::{ChecklistText, TaskDescription, TaskTitle};

    use super::*;

    /// The task's texts are the shared rules under other names: were one to change its
    /// limit, its schema here would have to change with it.
    #[test]
    fn the_tasks_texts_are_the_rules_their_schemas_name() {
        assert_eq!(TaskTitle::MAX_CHARS, ShortText::MAX_CHARS);
        assert_eq!(ChecklistText::MAX_CHARS, ShortText::MAX_CHARS);
        assert_eq!(TaskDescription::MAX_CHARS, LongText::MAX_CHARS);
        for raw in ["", " \t", "x", &"é".repeat(200), &"é".repeat(201)] {
            assert_eq!(TaskTitle::parse(raw).is_ok(), ShortText::parse(raw).is_ok());
            assert_eq!(
                ChecklistText::parse(raw).is_ok(),
                ShortText::parse(raw).is_ok()
            );
        }
        for raw in ["", " ", &"é".repeat(10_000), &"é".repeat(10_001)] {
            assert_eq!(
                TaskDescription::parse(raw).is_ok(),
                LongText::parse(raw).is_ok()
            );
        }
    }
}
