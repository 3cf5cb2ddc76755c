//! A field of a scaffolded aggregate: its type, and the code each layer writes for it.

use std::fmt;

/// The types a field may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1 to 200 characters: `domain::ShortText`.
    String,
    /// Up to 10,000 characters: `domain::LongText`.
    Text,
    Int,
    Bool,
    Date,
    DateTime,
    Uuid,
}

impl Kind {
    pub const NAMES: [&'static str; 7] =
        ["string", "text", "int", "bool", "date", "datetime", "uuid"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "text" => Self::Text,
            "int" => Self::Int,
            "bool" => Self::Bool,
            "date" => Self::Date,
            "datetime" => Self::DateTime,
            "uuid" => Self::Uuid,
            _ => return None,
        })
    }

    /// The value object that parses it in the domain, if any.
    fn value_object(self) -> Option<&'static str> {
        match self {
            Self::String => Some("ShortText"),
            Self::Text => Some("LongText"),
            _ => None,
        }
    }

    /// The plain Rust type of its value (events, rows, JSON answers).
    fn plain(self) -> &'static str {
        match self {
            Self::String | Self::Text => "String",
            Self::Int => "i64",
            Self::Bool => "bool",
            Self::Date => "NaiveDate",
            Self::DateTime => "DateTime<Utc>",
            Self::Uuid => "Uuid",
        }
    }

    /// The type the domain holds.
    fn domain(self) -> &'static str {
        self.value_object().unwrap_or_else(|| self.plain())
    }
}

/// One field: `name:type`, or `name:type?` for an optional one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub optional: bool,
}

/// Why a field was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldError(pub String);

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Field {
    /// Parses `name:type[?]`; the name's own rules are checked by the caller.
    pub(crate) fn parse(spec: &str) -> Result<Self, FieldError> {
        let Some((name, kind)) = spec.split_once(':') else {
            return Err(FieldError(format!(
                "`{spec}` is not a field: write `name:type`, with type one of {}",
                Kind::NAMES.join(", ")
            )));
        };
        let (kind, optional) = match kind.strip_suffix('?') {
            Some(kind) => (kind, true),
            None => (kind, false),
        };
        let kind = Kind::parse(kind).ok_or_else(|| {
            FieldError(format!(
                "`{kind}` (field `{name}`) is not a type: use one of {}",
                Kind::NAMES.join(", ")
            ))
        })?;
        Ok(Self {
            name: name.to_owned(),
            kind,
            optional,
        })
    }

    /// `Option<inner>` when optional.
    fn maybe(&self, inner: &str) -> String {
        if self.optional {
            format!("Option<{inner}>")
        } else {
            inner.to_owned()
        }
    }

    pub(crate) fn pascal(&self) -> String {
        super::pascal(&self.name)
    }

    /// The type of the field in the domain.
    pub(crate) fn domain_type(&self) -> String {
        self.maybe(self.kind.domain())
    }

    /// The type of the field in an edit: `None` leaves it; optional ones take
    /// `Some(None)` to clear.
    pub(crate) fn edit_type(&self) -> String {
        format!("Option<{}>", self.domain_type())
    }

    /// The type of the field in events, rows and answers.
    pub(crate) fn plain_type(&self) -> String {
        self.maybe(self.kind.plain())
    }

    /// `state.<field>` as a plain value.
    pub(crate) fn to_plain(&self, from: &str) -> String {
        let name = &self.name;
        match (self.kind.value_object(), self.optional) {
            (Some(_), false) => format!("{from}.{name}.as_str().to_owned()"),
            (Some(_), true) => {
                format!("{from}.{name}.as_ref().map(|value| value.as_str().to_owned())")
            }
            (None, _) => format!("{from}.{name}"),
        }
    }

    /// A row's column back as the domain's value, with `?` on a refused value.
    pub(crate) fn read_back(&self, title: &str) -> String {
        let name = &self.name;
        match (self.kind.value_object(), self.optional) {
            (Some(object), false) => format!(
                "{object}::parse(&row.{name})\n.with_context(|| format!(\"{title} {{id}}: stored {name}\"))?"
            ),
            (Some(object), true) => format!(
                "row.{name}\n.as_deref()\n.map({object}::parse)\n.transpose()\n.with_context(|| format!(\"{title} {{id}}: stored {name}\"))?"
            ),
            (None, _) => format!("row.{name}"),
        }
    }

    pub(crate) fn parsed_in_domain(&self) -> bool {
        self.kind.value_object().is_some()
    }

    /// Whether the API parses it from a string (a value object, a date, a time).
    pub(crate) fn parsed_by_api(&self) -> bool {
        matches!(
            self.kind,
            Kind::String | Kind::Text | Kind::Date | Kind::DateTime
        )
    }

    /// The function that parses the API's string, for a field `parsed_by_api`.
    fn api_parser(&self) -> &'static str {
        match self.kind {
            Kind::String => "ShortText::parse",
            Kind::Text => "LongText::parse",
            Kind::Date => "parse_date",
            Kind::DateTime => "parse_datetime",
            _ => unreachable!("only strings are parsed"),
        }
    }

    /// The type of the field in a create body.
    pub(crate) fn body_type(&self) -> String {
        if self.parsed_by_api() {
            self.maybe("String")
        } else {
            self.plain_type()
        }
    }

    /// The `Patch` of the field in a change body.
    pub(crate) fn patch_type(&self) -> String {
        if self.parsed_by_api() {
            "Patch<String>".to_owned()
        } else {
            format!("Patch<{}>", self.kind.plain())
        }
    }

    /// Its parsing in a create body, as an expression giving `Option<domain type>` after
    /// noting a refusal in `errors`.
    pub(crate) fn check_new(&self) -> String {
        let (name, parser) = (&self.name, self.api_parser());
        if self.optional {
            format!("errors.check(\"{name}\", self.{name}.as_deref().map({parser}).transpose())")
        } else {
            format!("errors.check(\"{name}\", {parser}(&self.{name}))")
        }
    }

    /// Its parsing in a change body, into the edit's field.
    pub(crate) fn check_patch(&self) -> String {
        let name = &self.name;
        let method = if self.optional {
            "nullable"
        } else {
            "required"
        };
        if self.parsed_by_api() {
            format!(
                "self.{name}.parse_{method}(\"{name}\", &mut errors, |raw| {}(&raw))",
                self.api_parser()
            )
        } else {
            // Taken as it is: JSON typed it already.
            format!(
                "self.{name}.parse_{method}(\"{name}\", &mut errors, Ok::<{}, Infallible>)",
                self.kind.plain()
            )
        }
    }

    /// What the documentation of the field says about its values.
    pub(crate) fn describe(&self) -> &'static str {
        match self.kind {
            Kind::String => "1 to 200 characters",
            Kind::Text => "Up to 10,000 characters",
            Kind::Int => "A whole number (64-bit)",
            Kind::Bool => "Yes or no",
            Kind::Date => "A day, `YYYY-MM-DD`",
            Kind::DateTime => "An instant, RFC 3339 with an offset",
            Kind::Uuid => "A UUID",
        }
    }

    /// The utoipa annotation of the field in a change body.
    pub(crate) fn patch_schema(&self) -> String {
        if let Some(schema) = self.text_schema() {
            return format!("#[schema(schema_with = {schema})]");
        }
        let value = match self.kind {
            Kind::String | Kind::Text | Kind::Date | Kind::DateTime => "String",
            Kind::Int => "i64",
            Kind::Bool => "bool",
            Kind::Uuid => "Uuid",
        };
        let value = self.maybe(value);
        match self.kind {
            Kind::Date => format!("#[schema(value_type = {value}, format = Date)]"),
            Kind::DateTime => format!("#[schema(value_type = {value}, format = DateTime)]"),
            _ => format!("#[schema(value_type = {value})]"),
        }
    }

    /// The utoipa annotation of the field in a create body, if it needs one.
    pub(crate) fn body_schema(&self) -> Option<String> {
        if let Some(schema) = self.text_schema() {
            return Some(format!("#[schema(schema_with = {schema})]"));
        }
        match self.kind {
            Kind::Date => Some("#[schema(format = Date)]".to_owned()),
            Kind::DateTime => Some("#[schema(format = DateTime)]".to_owned()),
            _ => None,
        }
    }

    /// The function of `presentation::schema` that states a text field's limits, as
    /// its value object checks them.
    fn text_schema(&self) -> Option<String> {
        let base = match self.kind {
            Kind::String => "short_text",
            Kind::Text => "long_text",
            _ => return None,
        };
        let null = if self.optional { "_or_null" } else { "" };
        Some(format!("crate::schema::{base}{null}"))
    }

    /// The migration's column.
    pub(crate) fn column(&self, table: &str) -> String {
        let iden = format!("{table}::{}", self.pascal());
        let null = if self.optional { "_null" } else { "" };
        match self.kind {
            Kind::String => format!("string_len{null}({iden}, 200)"),
            Kind::Text => format!("text{null}({iden})"),
            Kind::Int => format!("big_integer{null}({iden})"),
            Kind::Bool => format!("boolean{null}({iden})"),
            Kind::Date => format!("date{null}({iden})"),
            Kind::DateTime => format!("timestamp_with_time_zone{null}({iden})"),
            Kind::Uuid => format!("uuid{null}({iden})"),
        }
    }

    /// The schema-builder function the column uses.
    pub(crate) fn column_function(&self) -> String {
        let base = match self.kind {
            Kind::String => "string_len",
            Kind::Text => "text",
            Kind::Int => "big_integer",
            Kind::Bool => "boolean",
            Kind::Date => "date",
            Kind::DateTime => "timestamp_with_time_zone",
            Kind::Uuid => "uuid",
        };
        if self.optional {
            format!("{base}_null")
        } else {
            base.to_owned()
        }
    }

    /// The entity's field type.
    pub(crate) fn entity_type(&self) -> String {
        let inner = match self.kind {
            Kind::String | Kind::Text => "String",
            Kind::Int => "i64",
            Kind::Bool => "bool",
            Kind::Date => "Date",
            Kind::DateTime => "DateTimeUtc",
            Kind::Uuid => "Uuid",
        };
        self.maybe(inner)
    }

    /// A value of the domain type, for tests; `alternative` gives a different one.
    pub(crate) fn sample(&self, alternative: bool) -> String {
        let value = match (self.kind, alternative) {
            (Kind::String, false) => format!("ShortText::parse(\"A {}\").unwrap()", self.words()),
            (Kind::String, true) => "ShortText::parse(\"Changed\").unwrap()".to_owned(),
            (Kind::Text, false) => "LongText::parse(\"Some words.\").unwrap()".to_owned(),
            (Kind::Text, true) => "LongText::parse(\"Other words.\").unwrap()".to_owned(),
            (Kind::Int, false) => "42".to_owned(),
            (Kind::Int, true) => "-7".to_owned(),
            (Kind::Bool, false) => "true".to_owned(),
            (Kind::Bool, true) => "false".to_owned(),
            (Kind::Date, false) => "NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()".to_owned(),
            (Kind::Date, true) => "NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()".to_owned(),
            (Kind::DateTime, false) => {
                "Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()".to_owned()
            }
            (Kind::DateTime, true) => {
                "Utc.with_ymd_and_hms(2026, 6, 7, 8, 9, 10).unwrap()".to_owned()
            }
            (Kind::Uuid, false) => {
                "Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)".to_owned()
            }
            (Kind::Uuid, true) => {
                "Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002)".to_owned()
            }
        };
        if self.optional {
            format!("Some({value})")
        } else {
            value
        }
    }

    /// The sample, as the JSON the API takes and gives back.
    pub(crate) fn sample_json(&self, alternative: bool) -> String {
        match (self.kind, alternative) {
            (Kind::String, false) => format!("\"A {}\"", self.words()),
            (Kind::String, true) => "\"Changed\"".to_owned(),
            (Kind::Text, false) => "\"Some words.\"".to_owned(),
            (Kind::Text, true) => "\"Other words.\"".to_owned(),
            (Kind::Int, false) => "42".to_owned(),
            (Kind::Int, true) => "-7".to_owned(),
            (Kind::Bool, false) => "true".to_owned(),
            (Kind::Bool, true) => "false".to_owned(),
            (Kind::Date, false) => "\"2026-02-28\"".to_owned(),
            (Kind::Date, true) => "\"2026-03-31\"".to_owned(),
            (Kind::DateTime, false) => "\"2026-01-02T03:04:05Z\"".to_owned(),
            (Kind::DateTime, true) => "\"2026-06-07T08:09:10Z\"".to_owned(),
            (Kind::Uuid, false) => "\"01900000-0000-7000-8000-000000000001\"".to_owned(),
            (Kind::Uuid, true) => "\"01900000-0000-7000-8000-000000000002\"".to_owned(),
        }
    }

    /// A JSON value the API refuses for this field.
    pub(crate) fn bad_json(&self) -> &'static str {
        match self.kind {
            Kind::String => "\"  \"",
            Kind::Text => "\"x\".repeat(10_001)",
            Kind::Int => "\"42\"",
            Kind::Bool => "\"yes\"",
            Kind::Date => "\"2026-02-30\"",
            Kind::DateTime => "\"yesterday\"",
            Kind::Uuid => "\"not-a-uuid\"",
        }
    }

    /// The name in words: `due_on` is "due on".
    fn words(&self) -> String {
        self.name.replace('_', " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_a_name_a_type_and_an_optional_question_mark() {
        let field = Field::parse("due_on:date?").unwrap();
        assert_eq!(field.name, "due_on");
        assert_eq!(field.kind, Kind::Date);
        assert!(field.optional);
        assert_eq!(field.domain_type(), "Option<NaiveDate>");
        assert_eq!(field.column("Invoices"), "date_null(Invoices::DueOn)");
        let field = Field::parse("number:string").unwrap();
        assert_eq!(field.domain_type(), "ShortText");
        assert_eq!(field.to_plain("state"), "state.number.as_str().to_owned()");
    }

    #[test]
    fn an_unknown_type_or_a_missing_one_is_refused_naming_the_types() {
        let error = Field::parse("amount:money").unwrap_err();
        assert!(error.0.contains("`money`"), "{error}");
        assert!(error.0.contains("string, text, int"), "{error}");
        assert!(Field::parse("amount").unwrap_err().0.contains("name:type"));
    }
}
