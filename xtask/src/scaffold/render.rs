//! The files a scaffold creates, rendered from the templates in `xtask/templates/`.
//!
//! A template is Rust with `{{key}}` where a value goes; every key it names must be
//! given, and every line that depends on the fields is computed here, so the templates
//! hold no logic.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Field, Kind, Spec};
use crate::Error;

const DOMAIN: &str = include_str!("../../templates/scaffold/domain.rs.tmpl");
const APPLICATION: &str = include_str!("../../templates/scaffold/application.rs.tmpl");
const ENTITY: &str = include_str!("../../templates/scaffold/entity.rs.tmpl");
const PERSISTENCE: &str = include_str!("../../templates/scaffold/persistence.rs.tmpl");
const MIGRATION: &str = include_str!("../../templates/scaffold/migration.rs.tmpl");
const PRESENTATION: &str = include_str!("../../templates/scaffold/presentation.rs.tmpl");
const API_TESTS: &str = include_str!("../../templates/scaffold/api_tests.rs.tmpl");

/// `m<date>_<next number>_create_<plural>`, after every migration `lib` lists: the
/// date is `date` or, should the last one be later, the last one's.
pub(super) fn migration_name(lib: &str, spec: &Spec, date: &str) -> Result<String, Error> {
    let last = lib
        .lines()
        .filter_map(|line| line.trim().strip_prefix("mod m"))
        .filter_map(|rest| {
            let (day, rest) = rest.split_once('_')?;
            let (number, _) = rest.split_once('_')?;
            Some((day.to_owned(), number.parse::<u32>().ok()?))
        })
        .max()
        .ok_or_else(|| {
            Error::new("migrations/src/lib.rs lists no migration `mod m<date>_<n>_...;`")
        })?;
    let day = if date > last.0.as_str() {
        date
    } else {
        last.0.as_str()
    };
    Ok(format!("m{day}_{:06}_create_{}", last.1 + 1, spec.plural))
}

/// Every file the scaffold creates, with its content.
pub(super) fn files(spec: &Spec, migration: &str) -> Vec<(PathBuf, String)> {
    let keys = keys(spec);
    let (name, plural) = (&spec.name, &spec.plural);
    [
        (format!("crates/domain/src/{name}.rs"), DOMAIN),
        (format!("crates/application/src/{plural}.rs"), APPLICATION),
        (
            format!("crates/infrastructure/src/persistence/entity/{plural}.rs"),
            ENTITY,
        ),
        (
            format!("crates/infrastructure/src/persistence/{plural}.rs"),
            PERSISTENCE,
        ),
        (format!("migrations/src/{migration}.rs"), MIGRATION),
        (format!("crates/presentation/src/{plural}.rs"), PRESENTATION),
        (format!("tests/tests/api/{plural}.rs"), API_TESTS),
    ]
    .into_iter()
    .map(|(path, template)| (PathBuf::from(path), render(template, &keys)))
    .collect()
}

/// `template` with every `{{key}}` replaced.
///
/// # Panics
/// On a key `keys` does not give: a template and this module disagree.
pub(super) fn render(template: &str, keys: &BTreeMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        // `{{{key}}}` is a brace before a key, as in `format!("{{{name}}}")`.
        let (before, after) = rest.split_at(start);
        let Some(end) = after.find("}}") else {
            break;
        };
        let key = &after[2..end];
        if key.starts_with('{') || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str(before);
            out.push('{');
            rest = &after[1..];
            continue;
        }
        let value = keys
            .get(key)
            .unwrap_or_else(|| panic!("a template names `{{{{{key}}}}}`, which has no value"));
        out.push_str(before);
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Lines, each indented by `indent` spaces.
fn lines(indent: usize, items: impl IntoIterator<Item = String>) -> String {
    let pad = " ".repeat(indent);
    items
        .into_iter()
        .flat_map(|item| {
            item.lines()
                .map(|line| format!("{pad}{line}"))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn has(spec: &Spec, kind: Kind) -> bool {
    spec.fields.iter().any(|field| field.kind == kind)
}

/// `use path::{a, b};`, or `use path::a;`, or nothing.
fn use_list(indent: usize, path: &str, names: &[&str]) -> String {
    let pad = " ".repeat(indent);
    match names {
        [] => String::new(),
        [one] => format!("{pad}use {path}::{one};"),
        many => format!("{pad}use {path}::{{{}}};", many.join(", ")),
    }
}

/// `names` kept where `wanted` says so.
fn pick<'a>(names: &[(&'a str, bool)]) -> Vec<&'a str> {
    names
        .iter()
        .filter(|(_, wanted)| *wanted)
        .map(|(name, _)| *name)
        .collect()
}

#[allow(clippy::too_many_lines, reason = "one key after another, each short")]
fn keys(spec: &Spec) -> BTreeMap<&'static str, String> {
    let (name, plural, fields) = (&spec.name, &spec.plural, &spec.fields);
    let title = name.replace('_', " ");
    let titles = plural.replace('_', " ");
    let first = &fields[0];
    let string = has(spec, Kind::String);
    let text = has(spec, Kind::Text);
    let date = has(spec, Kind::Date);
    let datetime = has(spec, Kind::DateTime);
    let uuid = has(spec, Kind::Uuid);
    let optional = fields.iter().any(|field| field.optional);
    let value_objects = pick(&[("LongText", text), ("ShortText", string)]);
    let api_parsed: Vec<&Field> = fields.iter().filter(|f| f.parsed_by_api()).collect();

    let mut keys = BTreeMap::new();
    let mut set = |key: &'static str, value: String| {
        keys.insert(key, value);
    };
    set("name", name.clone());
    set("plural", plural.clone());
    set("Name", spec.pascal());
    set("Plural", spec.pascal_plural());
    set("PLURAL", plural.to_uppercase());
    set("path", spec.path());
    set("title", title.clone());
    set("titles", titles.clone());
    set("Title", capitalised(&title));
    set("Titles", capitalised(&titles));
    set("first", first.name.clone());
    set("first_other", first.sample(true));
    set("first_other_json", first.sample_json(true));

    // Domain.
    set(
        "domain_uses",
        [
            use_list(
                0,
                "chrono",
                &pick(&[("DateTime", true), ("NaiveDate", date), ("Utc", true)]),
            ),
            if uuid {
                "use uuid::Uuid;".to_owned()
            } else {
                String::new()
            },
        ]
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n"),
    );
    set(
        "domain_crate_uses",
        use_list(0, "crate::text", &value_objects),
    );
    set("domain_test_uses", "    use chrono::TimeZone;".to_owned());
    set(
        "new_fields",
        lines(
            4,
            fields
                .iter()
                .map(|f| format!("pub {}: {},", f.name, f.domain_type())),
        ),
    );
    set(
        "edit_clears",
        if optional {
            "; `Some(None)` clears an optional one".to_owned()
        } else {
            String::new()
        },
    );
    set(
        "edit_allow",
        if optional {
            "#[allow(\n    clippy::option_option,\n    reason = \"an optional field may be left, cleared or set\"\n)]\n".to_owned()
        } else {
            String::new()
        },
    );
    set(
        "edit_fields",
        lines(
            4,
            fields
                .iter()
                .map(|f| format!("pub {}: {},", f.name, f.edit_type())),
        ),
    );
    set(
        "snapshot_fields",
        lines(
            4,
            fields
                .iter()
                .map(|f| format!("pub {}: {},", f.name, f.domain_type())),
        ),
    );
    set(
        "fact_fields",
        lines(
            8,
            fields
                .iter()
                .map(|f| format!("{}: {},", f.name, f.plain_type())),
        ),
    );
    set(
        "from_new",
        lines(16, fields.iter().map(|f| format!("{0}: new.{0},", f.name))),
    );
    set(
        "to_fact",
        lines(
            12,
            fields
                .iter()
                .map(|f| format!("{}: {},", f.name, f.to_plain("state"))),
        ),
    );
    set(
        "apply_edit",
        lines(
            8,
            fields.iter().map(|f| {
                format!(
                    "if let Some({0}) = edit.{0} {{\n    self.state.{0} = {0};\n}}",
                    f.name
                )
            }),
        ),
    );
    set(
        "samples",
        lines(
            12,
            fields
                .iter()
                .map(|f| format!("{}: {},", f.name, f.sample(false))),
        ),
    );
    set(
        "assert_samples",
        lines(
            8,
            fields
                .iter()
                .map(|f| format!("assert_eq!(created.snapshot().{0}, new().{0});", f.name)),
        ),
    );

    // Application.
    set(
        "application_test_uses",
        [
            use_list(
                4,
                "chrono",
                &pick(&[
                    ("NaiveDate", date),
                    ("TimeZone", datetime),
                    ("Utc", datetime),
                ]),
            ),
            use_list(4, "domain", &value_objects),
            if uuid {
                "    use uuid::Uuid;".to_owned()
            } else {
                String::new()
            },
        ]
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n"),
    );

    // Infrastructure.
    set(
        "entity_fields",
        lines(
            4,
            fields.iter().map(|f| {
                let column = if f.kind == Kind::Text {
                    "#[sea_orm(column_type = \"Text\")]\n"
                } else {
                    ""
                };
                format!("{column}pub {}: {},", f.name, f.entity_type())
            }),
        ),
    );
    let parsed_in_domain = fields.iter().any(Field::parsed_in_domain);
    set(
        "persistence_uses",
        if parsed_in_domain {
            "use anyhow::Context;".to_owned()
        } else {
            String::new()
        },
    );
    set(
        "persistence_domain_uses",
        value_objects
            .iter()
            .map(|name| [", ", name].concat())
            .collect(),
    );
    set(
        "to_row",
        lines(
            12,
            fields
                .iter()
                .map(|f| format!("{}: {},", f.name, f.to_plain(name))),
        ),
    );
    set(
        "from_row_id",
        if parsed_in_domain {
            "        let id = row.id;".to_owned()
        } else {
            String::new()
        },
    );
    set(
        "from_row",
        lines(
            12,
            fields
                .iter()
                .map(|f| format!("{}: {},", f.name, f.read_back(&title))),
        ),
    );
    set("persistence_test_domain_uses", String::new());
    set(
        "persistence_test_uses",
        use_list(4, "chrono", &pick(&[("NaiveDate", date)])),
    );

    // Migration.
    let mut functions: Vec<String> = [
        "big_integer",
        "pk_uuid",
        "timestamp_with_time_zone",
        "timestamp_with_time_zone_null",
        "uuid",
    ]
    .iter()
    .map(|f| (*f).to_owned())
    .chain(fields.iter().map(Field::column_function))
    .collect();
    functions.sort();
    functions.dedup();
    set("migration_uses", format!("{{{}}}", functions.join(", ")));
    let table = spec.pascal_plural();
    set(
        "columns",
        lines(
            20,
            fields.iter().map(|f| format!(".col({})", f.column(&table))),
        ),
    );
    set(
        "idens",
        lines(4, fields.iter().map(|f| format!("{},", f.pascal()))),
    );

    // Presentation.
    set(
        "presentation_uses",
        use_list(
            0,
            "chrono",
            &pick(&[("DateTime", true), ("NaiveDate", date), ("Utc", true)]),
        ),
    );
    set(
        "presentation_domain_uses",
        value_objects
            .iter()
            .map(|name| [", ", name].concat())
            .collect(),
    );
    let taken_as_is = fields.iter().any(|f| !f.parsed_by_api());
    set(
        "presentation_std_uses",
        if taken_as_is {
            "use std::convert::Infallible;\n\n".to_owned()
        } else {
            String::new()
        },
    );
    set(
        "presentation_crate_uses",
        use_list(0, "crate::values", &pick(&[("parse_date", date)])),
    );
    set(
        "json_fields",
        lines(
            4,
            fields.iter().map(|f| {
                let nullable = if f.optional {
                    format!(
                        "/// {}; `null` when not set.\n#[schema(required = true)]\n",
                        f.describe()
                    )
                } else {
                    format!("/// {}.\n", f.describe())
                };
                format!("{nullable}{}: {},", f.name, f.plain_type())
            }),
        ),
    );
    set(
        "to_json",
        lines(
            12,
            fields
                .iter()
                .map(|f| format!("{}: {},", f.name, f.to_plain("state"))),
        ),
    );
    set(
        "body_fields",
        lines(
            4,
            fields.iter().map(|f| {
                let doc = if f.optional {
                    format!("/// {}; may be left out or `null`.\n", f.describe())
                } else {
                    format!("/// {}.\n", f.describe())
                };
                let schema = f
                    .body_schema()
                    .map(|s| format!("{s}\n"))
                    .unwrap_or_default();
                format!("{doc}{schema}{}: {},", f.name, f.body_type())
            }),
        ),
    );
    set("into_new", into_new(spec, &api_parsed));
    set(
        "presentation_helpers",
        if datetime {
            PARSE_DATETIME.to_owned()
        } else {
            String::new()
        },
    );
    set(
        "into_new_try",
        if api_parsed.is_empty() {
            String::new()
        } else {
            "?".to_owned()
        },
    );
    set(
        "patch_clears",
        if optional {
            ", `null` clears the optional ones".to_owned()
        } else {
            String::new()
        },
    );
    set(
        "patch_fields",
        lines(
            4,
            fields.iter().map(|f| {
                let null = if f.optional {
                    "`null` clears it"
                } else {
                    "cannot be `null`"
                };
                format!(
                    "/// {}; {null}.\n#[serde(default)]\n{}\n{}: {},",
                    f.describe(),
                    f.patch_schema(),
                    f.name,
                    f.patch_type()
                )
            }),
        ),
    );
    set(
        "check_patch",
        lines(
            12,
            fields
                .iter()
                .map(|f| format!("{}: {},", f.name, f.check_patch())),
        ),
    );

    // Black-box tests.
    set(
        "json_sample",
        lines(
            8,
            fields
                .iter()
                .map(|f| format!("\"{}\": {},", f.name, f.sample_json(false))),
        ),
    );
    set(
        "patch_clear",
        fields.iter().find(|f| f.optional).map_or_else(String::new, |f| {
            lines(
                4,
                [format!(
                    "let cleared = app.patch(&path(&{name}), token, &json!({{ \"{0}\": null }})).await;\n\
                     assert_eq!(cleared.status, StatusCode::OK, \"{{}}\", cleared.text);\n\
                     assert_eq!(cleared.body[\"{0}\"], Value::Null);",
                    f.name
                )],
            )
        }),
    );
    set("bad_count", (fields.len() + 1).to_string());
    set(
        "bad_json",
        lines(
            8,
            fields
                .iter()
                .map(|f| format!("(\"{}\", json!({})),", f.name, f.bad_json())),
        ),
    );
    keys
}

/// How a generated resource with instants parses them.
const PARSE_DATETIME: &str = "
/// An instant as RFC 3339, with its offset (`2026-01-02T03:04:05Z`); kept in UTC.
fn parse_datetime(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    DateTime::parse_from_rfc3339(raw)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|_| \"must be a date and time as RFC 3339, with an offset\")
}
";

/// `NewX::into_new`: parses what the domain or the API must, collecting every refusal.
fn into_new(spec: &Spec, parsed: &[&Field]) -> String {
    let name = spec.pascal();
    let assign = lines(
        12,
        spec.fields.iter().map(|f| {
            if f.parsed_by_api() {
                format!("{},", f.name)
            } else {
                format!("{0}: self.{0},", f.name)
            }
        }),
    );
    if parsed.is_empty() {
        return format!(
            "    fn into_new(self) -> domain::New{name} {{\n        domain::New{name} {{\n{assign}\n        }}\n    }}"
        );
    }
    let checks = lines(
        8,
        parsed
            .iter()
            .map(|f| format!("let {} = {};", f.name, f.check_new())),
    );
    let names: Vec<&str> = parsed.iter().map(|f| f.name.as_str()).collect();
    let somes: Vec<String> = names.iter().map(|n| format!("Some({n})")).collect();
    let (pattern, values) = if names.len() == 1 {
        (somes[0].clone(), names[0].to_owned())
    } else {
        (
            format!("({})", somes.join(", ")),
            format!("({})", names.join(", ")),
        )
    };
    format!(
        "    fn into_new(self) -> Result<domain::New{name}, ApiError> {{\n        \
         let mut errors = FieldErrors::default();\n{checks}\n        \
         let {pattern} = {values} else {{\n            return Err(errors.into());\n        }};\n        \
         Ok(domain::New{name} {{\n{assign}\n        }})\n    }}"
    )
}

/// `purchase order` → `Purchase order`.
fn capitalised(words: &str) -> String {
    let mut chars = words.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_uppercase().to_string() + chars.as_str()
    })
}
