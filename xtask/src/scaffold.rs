//! `cargo xtask scaffold <name> <field>:<type>[?] ... [--plural <plural>]`: a new
//! aggregate in every layer, the way `docs/adding-an-aggregate.md` describes it.
//!
//! The work is split so that nothing is written unless everything can be: [`Spec::parse`]
//! checks the command line, [`plan`] reads the workspace, refuses a name that is taken
//! and renders every new file and every edited one in memory, and [`Plan::write`] writes
//! them. Formatting, the OpenAPI document and the golden files of the new events are
//! left to the tools that own them (`cargo fmt`, `server openapi`, the golden test),
//! which the command runs afterwards.

mod edit;
mod field;
mod render;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

pub use field::{Field, Kind};

use crate::Error;

/// Words Rust reserves, which no module, field or type may be named.
const KEYWORDS: [&str; 52] = [
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen", "union",
];

/// The columns and JSON fields every scaffolded aggregate has already.
const FIXED_FIELDS: [&str; 9] = [
    "id",
    "tenant_id",
    "creator",
    "creator_id",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
    "state",
];

/// What to generate: an aggregate's name, its plural and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Singular, `snake_case`: `purchase_order`.
    pub name: String,
    /// `purchase_orders`: the table, the module of each layer, the route's words.
    pub plural: String,
    pub fields: Vec<Field>,
}

impl Spec {
    /// Reads `<name> <field>:<type>[?] ... [--plural <plural>]`.
    ///
    /// # Errors
    /// A name or field that breaks a rule, named in the message.
    pub fn parse(args: &[String]) -> Result<Self, Error> {
        let mut words = Vec::new();
        let mut plural = None;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--plural" {
                let value = args
                    .next()
                    .ok_or_else(|| Error::new("`--plural` needs a value"))?;
                plural = Some(value.clone());
            } else if let Some(value) = arg.strip_prefix("--plural=") {
                plural = Some(value.to_owned());
            } else if arg.starts_with("--") {
                return Err(Error::new(format!("`{arg}` is not an option of scaffold")));
            } else {
                words.push(arg.as_str());
            }
        }
        let Some((name, fields)) = words.split_first() else {
            return Err(Error::new("scaffold needs a name and at least one field"));
        };
        check_identifier("name", name)?;
        let plural = plural.unwrap_or_else(|| format!("{name}s"));
        check_identifier("plural", &plural)?;
        if plural == *name {
            return Err(Error::new(format!(
                "the plural `{plural}` must differ from the name"
            )));
        }
        if fields.is_empty() {
            return Err(Error::new(format!(
                "`{name}` needs at least one field, such as `title:string`"
            )));
        }
        let mut seen = BTreeSet::new();
        let fields = fields
            .iter()
            .map(|spec| {
                let field = Field::parse(spec).map_err(|error| Error::new(error.0))?;
                check_identifier("field", &field.name)?;
                if FIXED_FIELDS.contains(&field.name.as_str()) {
                    return Err(Error::new(format!(
                        "`{}` is a field every aggregate has already; choose another name",
                        field.name
                    )));
                }
                if !seen.insert(field.name.clone()) {
                    return Err(Error::new(format!(
                        "the field `{}` is given twice",
                        field.name
                    )));
                }
                Ok(field)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: (*name).to_owned(),
            plural,
            fields,
        })
    }

    /// `PurchaseOrder`.
    #[must_use]
    pub fn pascal(&self) -> String {
        pascal(&self.name)
    }

    /// `PurchaseOrders`.
    #[must_use]
    pub fn pascal_plural(&self) -> String {
        pascal(&self.plural)
    }

    /// `purchase-orders`: the last segment of the route.
    #[must_use]
    pub fn path(&self) -> String {
        self.plural.replace('_', "-")
    }
}

/// `snake_case`, not a keyword: a name Rust, SQL and URLs all take as it is.
fn check_identifier(what: &str, word: &str) -> Result<(), Error> {
    let snake = word.split('_').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }) && word.starts_with(|c: char| c.is_ascii_lowercase());
    if !snake {
        return Err(Error::new(format!(
            "the {what} `{word}` is not snake_case (lower-case letters, digits and single \
             underscores, starting with a letter)"
        )));
    }
    if KEYWORDS.contains(&word) {
        return Err(Error::new(format!(
            "the {what} `{word}` is a Rust keyword or reserved word"
        )));
    }
    Ok(())
}

/// `purchase_order` → `PurchaseOrder`.
pub(crate) fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Everything one scaffold writes: new files and the new content of edited ones.
#[derive(Debug)]
pub struct Plan {
    pub created: Vec<(PathBuf, String)>,
    pub edited: Vec<(PathBuf, String)>,
}

impl Plan {
    /// Writes every file of the plan under `root`.
    ///
    /// # Errors
    /// When a file cannot be written; the files written before it stay.
    pub fn write(&self, root: &Path) -> Result<(), Error> {
        for (path, content) in self.created.iter().chain(&self.edited) {
            let full = root.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::new(format!("cannot create {}: {e}", parent.display())))?;
            }
            std::fs::write(&full, content)
                .map_err(|e| Error::new(format!("cannot write {}: {e}", full.display())))?;
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, content) in &self.created {
            writeln!(
                f,
                "created {} ({} lines)",
                path.display(),
                content.lines().count()
            )?;
        }
        for (path, _) in &self.edited {
            writeln!(f, "edited  {}", path.display())?;
        }
        Ok(())
    }
}

/// The plan of `spec` in the workspace at `root`: refused, changing nothing, when the
/// aggregate or anything it would add exists already, or when a file it registers the
/// aggregate in no longer has the shape it expects. `date` (`YYYYMMDD`) names the
/// migration.
///
/// # Errors
/// What is taken or cannot be found, in a sentence.
pub fn plan(root: &Path, spec: &Spec, date: &str) -> Result<Plan, Error> {
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path))
            .map_err(|e| Error::new(format!("cannot read {path}: {e}")))
    };
    let migration = render::migration_name(&read("migrations/src/lib.rs")?, spec, date)?;
    let created = render::files(spec, &migration);
    for (path, _) in &created {
        if root.join(path).exists() {
            return Err(Error::new(format!(
                "{} exists already: `{}` is taken (scaffold writes each aggregate once)",
                path.display(),
                spec.name
            )));
        }
    }
    taken_names(&read("crates/domain/src/lib.rs")?, spec)?;
    let edited = edit::all(spec, &migration, read)?;
    Ok(Plan { created, edited })
}

/// Refuses a name whose types the domain exports already (`task_event` would make a
/// second `TaskEvent`).
fn taken_names(domain_lib: &str, spec: &Spec) -> Result<(), Error> {
    let name = spec.pascal();
    let types = [
        name.clone(),
        format!("{name}Id"),
        format!("{name}Error"),
        format!("{name}Edit"),
        format!("{name}Event"),
        format!("{name}Fact"),
        format!("{name}Snapshot"),
        format!("New{name}"),
    ];
    let exported: BTreeSet<&str> = domain_lib
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    match types.iter().find(|ty| exported.contains(ty.as_str())) {
        Some(ty) => Err(Error::new(format!(
            "the domain has a `{ty}` already: `{}` would clash with it",
            spec.name
        ))),
        None => Ok(()),
    }
}

/// Today, `YYYYMMDD`, in UTC.
#[must_use]
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Howard Hinnant's days-to-civil, for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}")
}

#[cfg(test)]
mod tests;
