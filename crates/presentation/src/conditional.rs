//! Conditional requests (RFC 9110 §13). A resource's entity tag is its version, strong
//! and quoted (`"3"`): every write bumps the version, so equal tags mean equal states.
//!
//! `If-Match` makes a change depend on the version the client last saw, so two clients
//! cannot overwrite each other unknowingly (412 with the current `ETag` instead).
//! `If-None-Match` lets a client revalidate a task it holds (304 without a body).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest};
use application::Precondition;
use utoipa::IntoParams;

use crate::error::ApiError;

/// The `ETag` of a version: `"<version>"`.
pub(crate) fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("a quoted number is a header value")
}

/// One entity tag as sent by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntityTag {
    weak: bool,
    opaque: String,
}

impl EntityTag {
    /// The version this tag names, if it is one of ours: the exact digits `etag` writes.
    fn version(&self) -> Option<i64> {
        let version: i64 = self.opaque.parse().ok()?;
        (version >= 0 && version.to_string() == self.opaque).then_some(version)
    }
}

/// What an `If-Match` or `If-None-Match` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// No such header.
    Absent,
    /// The header does not parse.
    Malformed,
    /// `*`: any current representation.
    Any,
    Tags(Vec<EntityTag>),
}

/// Reads every line of a conditional header as one list.
fn read(req: &HttpRequest, name: HeaderName) -> Condition {
    let mut lines = req.headers().get_all(name).peekable();
    if lines.peek().is_none() {
        return Condition::Absent;
    }
    let joined: Option<Vec<&str>> = lines.map(|line| line.to_str().ok()).collect();
    joined.map_or(Condition::Malformed, |lines| parse(&lines.join(",")))
}

/// The longest `If-Match` or `If-None-Match` read: a longer one does not parse.
pub(crate) const MAX_CONDITION_LEN: usize = 1024;

/// `"*" / #entity-tag`, where `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`. Tags may
/// hold commas, so the list is scanned tag by tag rather than split.
fn parse(raw: &str) -> Condition {
    const OWS: [char; 2] = [' ', '\t'];
    if raw.len() > MAX_CONDITION_LEN {
        return Condition::Malformed;
    }
    if raw.trim_matches(OWS) == "*" {
        return Condition::Any;
    }
    scan_tags(raw).map_or(Condition::Malformed, Condition::Tags)
}

/// The tags of a list, or `None` when it is not one.
fn scan_tags(raw: &str) -> Option<Vec<EntityTag>> {
    let mut tags = Vec::new();
    let mut rest = raw;
    loop {
        // A list may hold empty elements (`a, , b`); RFC 9110 §5.6.1.
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, tag) = match rest.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, rest),
        };
        let (opaque, after) = tag.strip_prefix('"')?.split_once('"')?;
        let etagc = |b: u8| b == 0x21 || (0x23..=0x7e).contains(&b);
        if !opaque.bytes().all(etagc) {
            return None;
        }
        tags.push(EntityTag {
            weak,
            opaque: opaque.to_owned(),
        });
        rest = after.trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with(',') {
            return None;
        }
    }
    (!tags.is_empty()).then_some(tags)
}

/// `If-Match`: the version a change is based on, as every change use case takes it.
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IfMatch {
    /// `"<version>"` as last received in `ETag`, a list of such tags, or `*` for any
    /// version. Compared strongly: a weak tag (`W/"3"`) matches nothing. A version that
    /// is no longer current, or a header that does not parse, is answered with 412 and
    /// the current `ETag`. Without it, the change applies to whatever version is current.
    // The pattern is what `parse` takes, and the length `MAX_CONDITION_LEN`; a test
    // holds the two to the same answers.
    #[param(
        rename = "If-Match",
        value_type = String,
        required = false,
        max_length = 1024,
        pattern = r#"^(?:[ \t]*\*[ \t]*|[ \t,]*(?:W/)?"[\x21\x23-\x7e]*"(?:[ \t]*,[ \t,]*(?:W/)?"[\x21\x23-\x7e]*")*(?:[ \t]*,[ \t,]*)?[ \t]*)$"#,
        example = json!("\"3\"")
    )]
    check: Precondition,
}

impl IfMatch {
    /// The versions the change may apply to.
    pub(crate) fn check(&self) -> &Precondition {
        &self.check
    }

    fn from_condition(condition: Condition) -> Self {
        let check = match condition {
            Condition::Absent | Condition::Any => Precondition::Any,
            // Strong comparison (RFC 9110 §8.8.3.2): weak tags never match.
            Condition::Tags(tags) => Precondition::OneOf(
                tags.iter()
                    .filter(|tag| !tag.weak)
                    .filter_map(EntityTag::version)
                    .collect(),
            ),
            // RFC 9110 §13.1.1: an If-Match that does not parse matches nothing.
            Condition::Malformed => Precondition::OneOf(Vec::new()),
        };
        Self { check }
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::from_condition(read(req, header::IF_MATCH))))
    }
}

/// `If-None-Match`: the versions a client already holds.
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IfNoneMatch {
    /// `"<version>"` as last received in `ETag` (weak `W/` tags match too), a list of
    /// such tags, or `*`. When the resource is still at one of them the answer is 304
    /// without a body. A header that does not parse is ignored.
    #[param(rename = "If-None-Match", value_type = String, required = false, example = json!("\"3\""))]
    condition: Condition,
}

impl IfNoneMatch {
    /// Whether the client's copy is the current `version` (weak comparison, RFC 9110
    /// §13.1.2), so the resource need not be sent again.
    pub(crate) fn matches(&self, version: i64) -> bool {
        match &self.condition {
            // RFC 9110 §13.1.2: an If-None-Match that does not parse is ignored.
            Condition::Absent | Condition::Malformed => false,
            Condition::Any => true,
            Condition::Tags(tags) => tags.iter().any(|tag| tag.version() == Some(version)),
        }
    }
}

impl FromRequest for IfNoneMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let condition = read(req, header::IF_NONE_MATCH);
        ready(Ok(Self { condition }))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn if_match(lines: &[&str]) -> Precondition {
        let request = lines
            .iter()
            .fold(TestRequest::default(), |request, line| {
                request.append_header((header::IF_MATCH, *line))
            })
            .to_http_request();
        IfMatch::extract(&request)
            .into_inner()
            .unwrap()
            .check()
            .clone()
    }

    fn if_none_match(value: &str) -> IfNoneMatch {
        let request = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, value))
            .to_http_request();
        IfNoneMatch::extract(&request).into_inner().unwrap()
    }

    #[test]
    fn the_etag_of_a_version_is_the_number_in_quotes() {
        assert_eq!(etag(0), "\"0\"");
        assert_eq!(etag(42), "\"42\"");
    }

    #[test]
    fn tags_are_scanned_one_by_one_even_when_they_hold_commas() {
        let tags = |raw| match parse(raw) {
            Condition::Tags(tags) => tags,
            other => panic!("{raw}: {other:?}"),
        };
        let parsed = tags(r#" "3", W/"a,b" ,, "" "#);
        let opaque: Vec<(bool, &str)> = parsed
            .iter()
            .map(|tag| (tag.weak, tag.opaque.as_str()))
            .collect();
        assert_eq!(opaque, [(false, "3"), (true, "a,b"), (false, "")]);
        assert_eq!(parse(" * "), Condition::Any);
    }

    /// The `If-Match` schema of the document.
    fn documented_if_match() -> serde_json::Value {
        let document = serde_json::to_value(crate::openapi::openapi()).unwrap();
        document["paths"]["/api/v1/tasks/{id}"]["patch"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "If-Match")
            .unwrap()["schema"]
            .clone()
    }

    /// Every string of up to six characters drawn from those the grammar turns on.
    #[test]
    fn the_documented_pattern_takes_exactly_what_parses() {
        let schema = documented_if_match();
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let alphabet = [' ', '\t', ',', '"', 'W', '/', '*', '7'];
        let mut texts = vec![String::new()];
        for _ in 0..=6 {
            for text in &texts {
                let parses = parse(text) != Condition::Malformed;
                assert_eq!(pattern.is_match(text), parses, "{text:?}");
            }
            texts = texts
                .iter()
                .flat_map(|text| alphabet.map(|c| format!("{text}{c}")))
                .collect();
        }
        assert_eq!(schema["maxLength"], MAX_CONDITION_LEN);
        let tag = |digits: usize| format!("\"{}\"", "7".repeat(digits));
        assert_ne!(parse(&tag(MAX_CONDITION_LEN - 2)), Condition::Malformed);
        assert_eq!(parse(&tag(MAX_CONDITION_LEN - 1)), Condition::Malformed);
    }

    #[test]
    fn a_malformed_tag_list_does_not_parse() {
        for raw in [
            "",
            "3",
            "\"3",
            "\"3\" \"4\"",
            "w/\"3\"",
            "*, \"3\"",
            "\"a b\"",
        ] {
            assert_eq!(parse(raw), Condition::Malformed, "{raw:?}");
        }
    }

    #[test]
    fn if_match_expects_the_version_of_its_strong_tag() {
        assert_eq!(if_match(&[]), Precondition::Any);
        assert_eq!(if_match(&["*"]), Precondition::Any);
        assert_eq!(if_match(&["\"7\""]), Precondition::OneOf(vec![7]));
        assert_eq!(if_match(&["\"2\", \"5\""]), Precondition::OneOf(vec![2, 5]));
        assert_eq!(
            if_match(&["\"2\"", "\"5\""]),
            Precondition::OneOf(vec![2, 5]),
            "lines form one list"
        );
    }

    #[test]
    fn a_weak_foreign_or_unparsable_if_match_matches_no_version() {
        for value in ["W/\"7\"", "\"07\"", "\"-1\"", "\"abc\"", "garbage", "\"7"] {
            assert_eq!(if_match(&[value]), Precondition::OneOf(vec![]), "{value:?}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_star_matches_any_version() {
        assert!(if_none_match("\"3\"").matches(3));
        assert!(if_none_match("W/\"3\"").matches(3));
        assert!(if_none_match("\"1\", \"3\"").matches(3));
        assert!(if_none_match("*").matches(9));
        assert!(!if_none_match("\"2\"").matches(3));
    }

    #[test]
    fn a_missing_or_unparsable_if_none_match_matches_nothing() {
        assert!(!if_none_match("nonsense").matches(3));
        let request = TestRequest::default().to_http_request();
        let absent = IfNoneMatch::extract(&request).into_inner().unwrap();
        assert!(!absent.matches(0));
    }
}
