//! The regular expressions the value objects state for the API document agree with
//! their parsers: the same strings pass both, or neither.

use proptest::prelude::*;
use regex::Regex;

use crate::text::NOT_BLANK;
use crate::{Email, LongText, ShortText, TenantName, Username};

fn pattern(source: &str) -> Regex {
    Regex::new(source).expect("a pattern of the document compiles")
}

/// Strings drawn from the characters each rule turns on, so both answers come up often.
fn texts() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._@+-]{0,70}",
        "[a-z0-9.]{1,66}@[a-zA-Z0-9-]{1,65}(\\.[a-zA-Z0-9-]{0,64}){0,3}",
        "[ \t\n\u{a0}\u{2003}\u{85}\u{1c}]{0,3}[a-z \u{7}\u{3000}é]{0,40}[ \t\u{2028}]{0,3}",
        "\\PC{0,12}",
        any::<String>(),
    ]
}

#[test]
fn the_white_space_class_is_what_trim_removes() {
    let not_blank = pattern(NOT_BLANK);
    for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
        let text = c.to_string();
        assert_eq!(
            not_blank.is_match(&text),
            !text.trim().is_empty(),
            "U+{:04X}",
            u32::from(c)
        );
    }
}

#[test]
fn the_edges_of_each_rule_fall_on_the_same_side_for_pattern_and_parser() {
    let email = pattern(Email::PATTERN);
    let local = "a".repeat(64);
    let label = "b".repeat(63);
    for (raw, valid) in [
        (format!("{local}@{label}.co"), true),
        (format!("a{local}@{label}.co"), false),
        (format!("a@{label}b.co"), false),
        ("a@b".to_owned(), false),
        ("A@B.CO".to_owned(), true),
    ] {
        assert_eq!(email.is_match(&raw), valid, "{raw}");
        assert_eq!(Email::parse(&raw).is_ok(), valid, "{raw}");
    }
    for (raw, valid) in [("abc", true), ("ab", false), ("abc ", false)] {
        assert_eq!(pattern(Username::PATTERN).is_match(raw), valid, "{raw}");
        assert_eq!(Username::parse(raw).is_ok(), valid, "{raw}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn an_email_passes_its_pattern_and_length_exactly_when_it_parses(raw in texts()) {
        let documented = raw.chars().count() <= Email::MAX_LEN
            && pattern(Email::PATTERN).is_match(&raw);
        prop_assert_eq!(documented, Email::parse(&raw).is_ok());
    }

    #[test]
    fn a_username_passes_its_pattern_exactly_when_it_parses(raw in texts()) {
        prop_assert_eq!(pattern(Username::PATTERN).is_match(&raw), Username::parse(&raw).is_ok());
    }

    #[test]
    fn a_tenant_name_passes_its_pattern_and_length_exactly_when_it_parses(raw in texts()) {
        let documented = raw.chars().count() <= TenantName::MAX_CHARS
            && pattern(TenantName::PATTERN).is_match(&raw);
        prop_assert_eq!(documented, TenantName::parse(&raw).is_ok());
    }

    #[test]
    fn a_short_text_is_documented_by_its_length_and_not_blank(raw in texts()) {
        let documented = raw.chars().count() <= ShortText::MAX_CHARS
            && pattern(NOT_BLANK).is_match(&raw);
        prop_assert_eq!(documented, ShortText::parse(&raw).is_ok());
    }

    #[test]
    fn a_long_text_is_documented_by_its_length(raw in texts()) {
        let documented = raw.chars().count() <= LongText::MAX_CHARS;
        prop_assert_eq!(documented, LongText::parse(&raw).is_ok());
    }
}
