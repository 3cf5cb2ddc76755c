//! `cargo xtask rename <new-name> [--dry-run]`: the fork becomes its own project. Every
//! file git tracks is rewritten, each spelling of the project's name in the form that
//! place uses: crate and container names in kebab case (`acme-billing-domain`), Rust
//! paths, metrics and key prefixes in snake case (`acme_billing_http_requests_total`),
//! variables in upper case (`ACME_BILLING_TEST_STACK`), prose in words
//! (`Acme Billing`). README gains one line that credits the origin.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The project's name now. The rename rewrites this line too, so the next rename
/// starts from the name this one gave.
pub const CURRENT: &str = "keystone";

/// One name in the forms the project writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `acme-billing`.
    pub kebab: String,
    /// `acme_billing`.
    pub snake: String,
    /// `ACME_BILLING`.
    pub upper: String,
    /// `Acme Billing`.
    pub words: String,
}

impl Names {
    /// The forms of a crate-name-like `name` (lower-case letters, digits, `-` or `_`
    /// between words).
    ///
    /// # Errors
    /// When `name` is not one.
    pub fn of(name: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = name.split(['-', '_']).collect();
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && parts.iter().all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !valid {
            return Err(Error::new(format!(
                "`{name}` is not a valid name: use lower-case letters and digits, words \
                 joined by `-` or `_`, starting with a letter (`acme-billing`)"
            )));
        }
        let snake = parts.join("_");
        if matches!(
            snake.as_str(),
            "test" | "self" | "crate" | "super" | "std" | "core"
        ) {
            return Err(Error::new(format!(
                "`{name}` is a name Cargo or Rust reserves"
            )));
        }
        Ok(Self {
            kebab: parts.join("-"),
            upper: snake.to_uppercase(),
            words: parts
                .iter()
                .map(|part| {
                    let mut chars = part.chars();
                    chars.next().map_or_else(String::new, |first| {
                        first.to_ascii_uppercase().to_string() + chars.as_str()
                    })
                })
                .collect::<Vec<_>>()
                .join(" "),
            snake,
        })
    }
}

/// `text` with every spelling of `from` written as the same spelling of `to`. A name
/// of one word is spelt alike in kebab and snake case; there the neighbours decide:
/// next to `_` it is snake case (`keystone_tests`), else kebab (`keystone-domain`).
#[must_use]
pub fn rename_text(text: &str, from: &Names, to: &Names) -> String {
    let forms = [
        (&from.upper, &to.upper),
        (&from.words, &to.words),
        (&from.snake, &to.snake),
        (&from.kebab, &to.kebab),
    ];
    let joined = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let mut preceding = text[..at].chars().rev();
        let before = preceding.next();
        // A letter of an escape (`"\nkeystone_..."`) does not join the name to a word.
        let escaped = preceding.next() == Some('\\');
        let found = forms.iter().find(|(old, _)| {
            rest.starts_with(old.as_str())
                && (escaped || !joined(before))
                && !joined(rest[old.len()..].chars().next())
        });
        let Some((old, new)) = found else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            at += c.len_utf8();
            continue;
        };
        let after = rest[old.len()..].chars().next();
        let new = if from.snake == from.kebab && *old == &from.kebab {
            if before == Some('_') || after == Some('_') {
                &to.snake
            } else {
                &to.kebab
            }
        } else {
            new
        };
        out.push_str(new);
        at += old.len();
    }
    out
}

/// The line README gains, the one place the old name stays.
#[must_use]
pub fn credit(from: &Names) -> String {
    format!(
        "This service was started from the {} reference architecture.\n",
        from.words
    )
}

/// Every tracked text file under `root` whose content the rename changes, with its new
/// content; README.md gains the credit line.
///
/// # Errors
/// When git cannot list the files or one cannot be read.
pub fn plan(root: &Path, to: &Names) -> Result<Vec<(PathBuf, String)>, Error> {
    let from = Names::of(CURRENT)?;
    if to.snake == from.snake {
        return Err(Error::new(format!(
            "the project is called `{}` already",
            from.kebab
        )));
    }
    let listed = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .map_err(|e| Error::new(format!("cannot run git: {e}")))?;
    if !listed.status.success() {
        return Err(Error::new(format!(
            "git ls-files failed (is {} a git checkout?): {}",
            root.display(),
            String::from_utf8_lossy(&listed.stderr).trim()
        )));
    }
    let mut changed = Vec::new();
    for path in String::from_utf8_lossy(&listed.stdout).split('\0') {
        if path.is_empty() {
            continue;
        }
        let full = root.join(path);
        let Ok(bytes) = std::fs::read(&full) else {
            // Listed but deleted in the working tree.
            continue;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let mut renamed = rename_text(&text, &from, to);
        if path == "README.md" {
            if !renamed.ends_with('\n') {
                renamed.push('\n');
            }
            renamed.push('\n');
            renamed.push_str(&credit(&from));
        }
        if renamed != text {
            changed.push((PathBuf::from(path), renamed));
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Names {
        Names::of("acme-billing").unwrap()
    }

    // The tests rename `atlas`, a name the project never has, so that renaming the
    // project leaves them as they are.
    #[test]
    fn each_spelling_becomes_the_same_spelling_of_the_new_name() {
        let text = "[package]\nname = \"atlas-domain\"\nuse atlas_tests::spawn_app;\n\
             atlas_http_requests_total urn:atlas:problem data/atlas.db ATLAS_TEST_STACK\n\
             Atlas is a service. atlases and myatlas stay.\n\\natlas_db\n";
        assert_eq!(
            rename_text(text, &Names::of("atlas").unwrap(), &acme()),
            "[package]\nname = \"acme-billing-domain\"\nuse acme_billing_tests::spawn_app;\n\
             acme_billing_http_requests_total urn:acme-billing:problem data/acme-billing.db \
             ACME_BILLING_TEST_STACK\nAcme Billing is a service. atlases and myatlas stay.\n\
             \\nacme_billing_db\n"
        );
    }

    #[test]
    fn a_renamed_project_renames_again_from_its_new_name() {
        let once = "acme-billing-domain acme_billing_http ACME_BILLING_X Acme Billing";
        let twice = rename_text(once, &acme(), &Names::of("zeta").unwrap());
        assert_eq!(twice, "zeta-domain zeta_http ZETA_X Zeta");
    }

    #[test]
    fn a_name_that_is_not_a_crate_name_is_refused() {
        for bad in [
            "Acme",
            "acme billing",
            "-acme",
            "acme--billing",
            "1acme",
            "acme_",
            "test",
            "",
        ] {
            assert!(Names::of(bad).is_err(), "{bad:?} was taken");
        }
        assert_eq!(acme().snake, "acme_billing");
        assert_eq!(acme().upper, "ACME_BILLING");
        assert_eq!(Names::of("acme_billing").unwrap().kebab, "acme-billing");
    }
}
