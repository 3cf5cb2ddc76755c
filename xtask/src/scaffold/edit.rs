//! The lines a scaffold adds to files that list every aggregate: module declarations,
//! `domain_events!`, the transaction's stores, error variants, the application state,
//! the routes, the wiring, the migrations. Each edit finds its place by the code around
//! it and fails, naming the file, when that code has changed shape; rustfmt tidies the
//! result afterwards.

use std::path::PathBuf;

use super::{Field, Kind, Spec};
use crate::Error;

/// A file's new content, or why its place for the aggregate could not be found.
type Edited = Result<String, String>;

/// The names an edit writes.
struct Names<'a> {
    spec: &'a Spec,
    migration: &'a str,
    /// `purchase_order`, `purchase_orders`.
    n: &'a str,
    p: &'a str,
    /// `PurchaseOrder`, `PurchaseOrders`.
    name: String,
    plural: String,
}

/// How one file is edited.
type EditFn = fn(&Names<'_>, &str) -> Edited;

/// Every file a scaffold edits, and how.
const EDITS: [(&str, EditFn); 17] = [
    ("crates/domain/src/lib.rs", domain_lib),
    ("crates/domain/src/event.rs", domain_events),
    ("crates/application/src/lib.rs", application_lib),
    ("crates/application/src/error.rs", application_error),
    ("crates/application/src/ports/unit_of_work.rs", transaction),
    ("crates/application/src/testing.rs", fakes),
    (
        "crates/infrastructure/src/persistence/entity.rs",
        entity_list,
    ),
    ("crates/infrastructure/src/persistence.rs", persistence),
    ("crates/infrastructure/src/lib.rs", infrastructure_lib),
    (
        "crates/infrastructure/src/events/envelope/tests.rs",
        envelope_examples,
    ),
    ("crates/presentation/src/lib.rs", presentation_lib),
    ("crates/presentation/src/error.rs", presentation_error),
    ("crates/presentation/src/openapi.rs", openapi_tag),
    ("crates/presentation/src/testing.rs", test_state),
    ("crates/server/src/wiring.rs", wiring),
    ("migrations/src/lib.rs", migrations),
    ("tests/tests/api/main.rs", api_tests),
];

/// Every edited file's new content.
pub(super) fn all(
    spec: &Spec,
    migration: &str,
    read: impl Fn(&str) -> Result<String, Error>,
) -> Result<Vec<(PathBuf, String)>, Error> {
    let names = Names {
        spec,
        migration,
        n: &spec.name,
        p: &spec.plural,
        name: spec.pascal(),
        plural: spec.pascal_plural(),
    };
    EDITS
        .iter()
        .map(|(path, edit)| {
            let edited = edit(&names, &read(path)?).map_err(|why| {
                Error::new(format!(
                    "{path}: cannot find where to add `{}` ({why}); has the file changed shape?",
                    spec.name
                ))
            })?;
            Ok((PathBuf::from(path), edited))
        })
        .collect()
}

fn domain_lib(names: &Names<'_>, s: &str) -> Edited {
    let Names { n, name, .. } = names;
    let s = after_last_line(s, "pub mod ", &format!("pub mod {n};\n"))?;
    after_last_statement(
        &s,
        "pub use ",
        &format!(
            "pub use {n}::{{New{name}, {name}, {name}Edit, {name}Error, {name}Event, {name}Fact, {name}Id, {name}Snapshot}};\n"
        ),
    )
}

fn domain_events(names: &Names<'_>, s: &str) -> Edited {
    let Names { n, name, .. } = names;
    before_closing(
        s,
        "domain_events! {",
        '{',
        &format!("    {name}(crate::{n}::{name}Event),\n"),
    )
}

fn application_lib(names: &Names<'_>, s: &str) -> Edited {
    after_last_line(s, "pub mod ", &format!("pub mod {};\n", names.p))
}

fn application_error(names: &Names<'_>, s: &str) -> Edited {
    let (title, name) = (names.n.replace('_', " "), &names.name);
    before_closing(
        s,
        "pub enum Error {",
        '{',
        &format!(
            "    /// A {title} rule refused the change.\n    #[error(transparent)]\n    {name}(domain::{name}Error),\n"
        ),
    )
}

fn transaction(names: &Names<'_>, s: &str) -> Edited {
    let trait_at = s
        .find("pub trait Transaction:")
        .ok_or("no `pub trait Transaction:`")?;
    let accounts = s[trait_at..]
        .find("Accounts")
        .ok_or("no `Accounts` among `Transaction`'s supertraits")?;
    let at = trait_at + accounts;
    Ok(format!(
        "{}Store<domain::{}> + {}",
        &s[..at],
        names.name,
        &s[at..]
    ))
}

fn fakes(names: &Names<'_>, s: &str) -> Edited {
    let Names { p, plural, .. } = names;
    before_closing(
        s,
        "impl Fakes {",
        '{',
        &format!(
            "\n    #[must_use]\n    pub fn {p}(&self) -> crate::{p}::{plural} {{\n        crate::{p}::{plural}::new(\n            &self.ports(),\n            Arc::new(self.db.clone()),\n            Arc::new(self.db.clone()),\n        )\n    }}\n"
        ),
    )
}

fn entity_list(names: &Names<'_>, s: &str) -> Edited {
    after_last_line(s, "pub mod ", &format!("pub mod {};\n", names.p))
}

fn persistence(names: &Names<'_>, s: &str) -> Edited {
    let Names { p, name, .. } = names;
    let s = after_last_line(s, "mod ", &format!("mod {p};\n"))?;
    after_last_statement(&s, "pub use ", &format!("pub use {p}::Sql{name}Queries;\n"))
}

fn infrastructure_lib(names: &Names<'_>, s: &str) -> Edited {
    after_last_statement(
        s,
        "pub use persistence::",
        &format!("pub use persistence::Sql{}Queries;\n", names.name),
    )
}

fn presentation_lib(names: &Names<'_>, s: &str) -> Edited {
    let Names { p, plural, .. } = names;
    let s = after_last_line(s, "mod ", &format!("mod {p};\n"))?;
    let s = before_closing(
        &s,
        "pub struct AppState {",
        '{',
        &format!("    pub {p}: application::{p}::{plural},\n"),
    )?;
    before_closing(
        &s,
        "pub(crate) fn routes() -> Routes {",
        '{',
        &format!("        .with({p}::routes)\n"),
    )
}

fn presentation_error(names: &Names<'_>, s: &str) -> Edited {
    let Names { p, name, .. } = names;
    let s = before(
        s,
        "            _ => self.kind(),",
        &format!(
            "            Self::Application(Error::{name}(rule)) => return crate::{p}::refusal(rule),\n"
        ),
    )?;
    let marker = s
        .find("// Told by the aggregates' modules, in `refusal`.")
        .ok_or("no comment `// Told by the aggregates' modules, in `refusal`.`")?;
    let arm = s[marker..]
        .find("Error::")
        .ok_or("no `Error::` after the comment on the aggregates' rules")?
        + marker;
    Ok(format!("{}Error::{name}(_) | {}", &s[..arm], &s[arm..]))
}

fn openapi_tag(names: &Names<'_>, s: &str) -> Edited {
    let (p, titles) = (names.p, names.p.replace('_', " "));
    before_closing(
        s,
        "    tags(",
        '(',
        &format!(
            "        (name = \"{p}\", description = \"The {titles} of the caller's tenant; their `ETag` is their version\"),\n"
        ),
    )
}

fn test_state(names: &Names<'_>, s: &str) -> Edited {
    let p = names.p;
    let state = s
        .find("fn state(&self) -> AppState {")
        .ok_or("no `fn state(&self) -> AppState {`")?;
    let (head, tail) = s.split_at(state);
    let tail = before_closing(
        tail,
        "        AppState {",
        '{',
        &format!("            {p}: self.fakes.{p}(),\n"),
    )?;
    Ok(format!("{head}{tail}"))
}

fn wiring(names: &Names<'_>, s: &str) -> Edited {
    let Names {
        p, name, plural, ..
    } = names;
    before_closing(
        s,
        "Ok(AppState {",
        '{',
        &format!(
            "        {p}: application::{p}::{plural}::new(\n            &ports,\n            lookup(db, &cache),\n            Arc::new(infrastructure::Sql{name}Queries::new(db.clone())),\n        ),\n"
        ),
    )
}

fn migrations(names: &Names<'_>, s: &str) -> Edited {
    let migration = names.migration;
    let s = after_last_line(s, "mod m", &format!("mod {migration};\n"))?;
    let list = s.find("fn migrations()").ok_or("no `fn migrations()`")?;
    let (head, tail) = s.split_at(list);
    let tail = before_closing(
        tail,
        "vec![",
        '[',
        &format!("            Box::new({migration}::Migration),\n"),
    )?;
    Ok(format!("{head}{tail}"))
}

fn api_tests(names: &Names<'_>, s: &str) -> Edited {
    after_last_line(s, "mod ", &format!("mod {};\n", names.p))
}

/// An example of each of the aggregate's facts for the golden files, and its arm in
/// the check that every kind of event has one.
fn envelope_examples(names: &Names<'_>, s: &str) -> Edited {
    let (spec, n, name) = (names.spec, names.n, &names.name);
    let fields = |alternative: bool| -> String {
        spec.fields
            .iter()
            .map(|f| {
                let value = plain_sample(f, alternative);
                ["            ", &f.name, ": ", &value, ",\n"].concat()
            })
            .collect()
    };
    let s = before(
        s,
        "    events\n}",
        &format!("    events.extend({n}_examples());\n"),
    )?;
    let check = s
        .find("fn every_kind_has_an_example(")
        .ok_or("no `fn every_kind_has_an_example(`")?;
    let (head, tail) = s.split_at(check);
    let tail = before_closing(
        tail,
        "match event {",
        '{',
        &format!(
            "        DomainEvent::{name}(domain::{name}Event {{ fact, .. }}) => match fact {{\n            domain::{name}Fact::Created {{ .. }}\n            | domain::{name}Fact::Edited {{ .. }}\n            | domain::{name}Fact::Deleted\n            | domain::{name}Fact::Restored => {{}}\n        }},\n"
        ),
    )?;
    Ok(format!(
        "{head}{tail}\nfn {n}_examples() -> Vec<DomainEvent> {{\n    let {n} = |fact| {{\n        DomainEvent::from(domain::{name}Event {{\n            meta: meta(),\n            {n}_id: domain::{name}Id::from_uuid(id(6)),\n            fact,\n        }})\n    }};\n    vec![\n        {n}(domain::{name}Fact::Created {{\n{created}        }}),\n        {n}(domain::{name}Fact::Edited {{\n{edited}        }}),\n        {n}(domain::{name}Fact::Deleted),\n        {n}(domain::{name}Fact::Restored),\n    ]\n}}\n",
        created = fields(false),
        edited = fields(true),
    ))
}

/// A field's sample as the plain value its events carry, with paths that need no `use`.
fn plain_sample(field: &Field, alternative: bool) -> String {
    let value = match (field.kind, alternative) {
        (Kind::String | Kind::Text, _) => {
            let json = field.sample_json(alternative);
            format!("{json}.to_owned()")
        }
        (Kind::Int | Kind::Bool, _) => field.sample_json(alternative),
        (Kind::Date, false) => "chrono::NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()".to_owned(),
        (Kind::Date, true) => "chrono::NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()".to_owned(),
        (Kind::DateTime, false) => "Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()".to_owned(),
        (Kind::DateTime, true) => "Utc.with_ymd_and_hms(2026, 6, 7, 8, 9, 10).unwrap()".to_owned(),
        (Kind::Uuid, false) => "id(1)".to_owned(),
        (Kind::Uuid, true) => "id(2)".to_owned(),
    };
    if field.optional {
        format!("Some({value})")
    } else {
        value
    }
}

/// `text` inserted before the first `anchor`.
fn before(s: &str, anchor: &str, text: &str) -> Edited {
    let at = s
        .find(anchor)
        .ok_or_else(|| format!("no `{}`", anchor.trim()))?;
    Ok(format!("{}{text}{}", &s[..at], &s[at..]))
}

/// `text` inserted after the last line that starts with `prefix` and ends with `;`
/// (a declaration such as `mod users;`, not `mod tests {`).
fn after_last_line(s: &str, prefix: &str, text: &str) -> Edited {
    let mut end = None;
    let mut offset = 0;
    for line in s.split_inclusive('\n') {
        offset += line.len();
        if line.starts_with(prefix) && line.trim_end().ends_with(';') {
            end = Some(offset);
        }
    }
    let at = end.ok_or_else(|| format!("no line starting with `{}`", prefix.trim()))?;
    Ok(format!("{}{text}{}", &s[..at], &s[at..]))
}

/// `text` inserted after the statement that the last line starting with `prefix`
/// begins (up to its `;` and the end of that line).
fn after_last_statement(s: &str, prefix: &str, text: &str) -> Edited {
    let start = s
        .split_inclusive('\n')
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len();
            Some((at, line))
        })
        .filter(|(_, line)| line.starts_with(prefix))
        .map(|(at, _)| at)
        .last()
        .ok_or_else(|| format!("no statement starting with `{}`", prefix.trim()))?;
    let semicolon = s[start..]
        .find(";\n")
        .ok_or("a statement without its `;`")?
        + start
        + 2;
    Ok(format!("{}{text}{}", &s[..semicolon], &s[semicolon..]))
}

/// `text` inserted at the start of the line that closes the bracket `opener` opens
/// (the first `open` character in it, counted to its match).
fn before_closing(s: &str, opener: &str, open: char, text: &str) -> Edited {
    let start = s
        .find(opener)
        .ok_or_else(|| format!("no `{}`", opener.trim()))?;
    let bracket = s[start..]
        .find(open)
        .ok_or_else(|| format!("no `{open}` in `{}`", opener.trim()))?
        + start;
    let close = match open {
        '{' => '}',
        '(' => ')',
        '[' => ']',
        _ => return Err(format!("`{open}` is not a bracket")),
    };
    let mut depth = 0_usize;
    for (at, c) in s[bracket..].char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                let closing = bracket + at;
                let line_start = s[..closing].rfind('\n').map_or(0, |n| n + 1);
                return Ok(format!("{}{text}{}", &s[..line_start], &s[line_start..]));
            }
        }
    }
    Err(format!("`{}` is never closed", opener.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_goes_after_the_last_of_its_kind_and_before_a_bracket_s_closing_line() {
        let s = "mod a;\nmod b;\n\nfn f() {\n    x(\n        1,\n    );\n}\nmod tests {}\n";
        assert_eq!(
            after_last_line(s, "mod ", "mod c;\n").unwrap(),
            "mod a;\nmod b;\nmod c;\n\nfn f() {\n    x(\n        1,\n    );\n}\nmod tests {}\n"
        );
        assert_eq!(
            before_closing(s, "    x(", '(', "        2,\n").unwrap(),
            "mod a;\nmod b;\n\nfn f() {\n    x(\n        1,\n        2,\n    );\n}\nmod tests {}\n"
        );
        assert!(
            before_closing(s, "y(", '(', "")
                .unwrap_err()
                .contains("no `y(`")
        );
    }

    #[test]
    fn a_statement_over_several_lines_is_followed_whole() {
        let s = "pub use a::b;\npub use c::{\n    d, e,\n};\n\nfn f() {}\n";
        assert_eq!(
            after_last_statement(s, "pub use ", "pub use g::h;\n").unwrap(),
            "pub use a::b;\npub use c::{\n    d, e,\n};\npub use g::h;\n\nfn f() {}\n"
        );
    }
}
