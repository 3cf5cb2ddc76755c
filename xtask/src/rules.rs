//! `arch.toml`: layers, what each may depend on, and crates reserved to some layers.
//! Unknown keys and layer names are errors, so a typo cannot switch a rule off.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Error;

/// The validated contents of `arch.toml`.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) layers: Vec<Layer>,
    pub(crate) groups: Vec<Group>,
}

#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub name: String,
    pub package: String,
    /// Layers whose packages this one may depend on; `None` means any.
    pub depends_on: Option<Vec<String>>,
    /// When present, the only external crates it may depend on directly.
    pub external: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub name: String,
    /// Crate names; a trailing `*` matches any name with that prefix.
    pub crates: Vec<String>,
    pub access: Access,
}

#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// Only `direct` layers may depend on the crates; `reach` layers may also
    /// depend on them through others; every other layer must not reach them.
    Reserved {
        direct: Vec<String>,
        reach: Vec<String>,
    },
    /// These layers must not reach the crates; all others may.
    Never(Vec<String>),
}

/// Does `name` match `pattern` (exact, or a prefix when the pattern ends in `*`)?
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

// The file as written; `Rules::from_toml` turns it into `Rules` or an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    layer: BTreeMap<String, LayerEntry>,
    #[serde(default)]
    group: BTreeMap<String, GroupEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerEntry {
    package: String,
    depends_on: Vec<String>,
    external: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    crates: Vec<String>,
    direct: Option<Vec<String>>,
    reach: Option<Vec<String>>,
    never: Option<Vec<String>>,
}

impl Rules {
    /// Reads and validates the text of `arch.toml`.
    ///
    /// # Errors
    /// When the text is not TOML of the expected shape, names a layer that is not
    /// defined, gives two layers the same package, misplaces a `*`, or gives a group
    /// neither or both of `direct` and `never`.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let file: File = toml::from_str(text).map_err(|e| Error(format!("arch.toml: {e}")))?;
        let known = |context: &str, names: &[String]| -> Result<(), Error> {
            match names.iter().find(|name| !file.layer.contains_key(*name)) {
                Some(name) => Err(Error(format!(
                    "arch.toml: {context} names unknown layer `{name}`"
                ))),
                None => Ok(()),
            }
        };

        let mut layers = Vec::new();
        for (name, entry) in &file.layer {
            if let Some(other) = layers.iter().find(|l: &&Layer| l.package == entry.package) {
                return Err(Error(format!(
                    "arch.toml: layers `{}` and `{name}` both claim package `{}`",
                    other.name, entry.package
                )));
            }
            let context = format!("layer.{name}.depends_on");
            let depends_on = if entry.depends_on == ["*"] {
                None
            } else {
                known(&context, &entry.depends_on)?;
                Some(entry.depends_on.clone())
            };
            if let Some(external) = &entry.external {
                check_patterns(&format!("layer.{name}.external"), external)?;
            }
            layers.push(Layer {
                name: name.clone(),
                package: entry.package.clone(),
                depends_on,
                external: entry.external.clone(),
            });
        }

        let mut groups = Vec::new();
        for (name, entry) in &file.group {
            let context = format!("group.{name}");
            if entry.crates.is_empty() {
                return Err(Error(format!("arch.toml: {context} lists no crates")));
            }
            check_patterns(&context, &entry.crates)?;
            let access = match (&entry.direct, &entry.reach, &entry.never) {
                (Some(direct), reach, None) => {
                    let reach = reach.clone().unwrap_or_default();
                    known(&format!("{context}.direct"), direct)?;
                    known(&format!("{context}.reach"), &reach)?;
                    Access::Reserved {
                        direct: direct.clone(),
                        reach,
                    }
                }
                (None, None, Some(never)) => {
                    known(&format!("{context}.never"), never)?;
                    Access::Never(never.clone())
                }
                _ => {
                    return Err(Error(format!(
                        "arch.toml: {context} needs either `direct` (and maybe `reach`) or `never`"
                    )));
                }
            };
            groups.push(Group {
                name: name.clone(),
                crates: entry.crates.clone(),
                access,
            });
        }
        Ok(Self { layers, groups })
    }

    /// How many rules the file states: one per layer, allowlist and group.
    #[must_use]
    pub fn count(&self) -> usize {
        let allowlists = self.layers.iter().filter(|l| l.external.is_some()).count();
        self.layers.len() + allowlists + self.groups.len()
    }

    pub(crate) fn layer_of(&self, package: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.package == package)
    }
}

fn check_patterns(context: &str, patterns: &[String]) -> Result<(), Error> {
    // Only a trailing `*` is supported; anything else would silently match nothing.
    match patterns
        .iter()
        .find(|p| p.is_empty() || p.trim_end_matches('*').contains('*'))
    {
        Some(p) => Err(Error(format!(
            "arch.toml: {context} has pattern `{p}`; only a trailing `*` is supported"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYERS: &str = r#"
        [layer.domain]
        package = "keystone-domain"
        depends_on = []
        external = ["thiserror"]

        [layer.application]
        package = "keystone-application"
        depends_on = ["domain"]
    "#;

    fn error(extra: &str) -> String {
        Rules::from_toml(&format!("{LAYERS}\n{extra}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_valid_file_counts_one_rule_per_layer_allowlist_and_group() {
        let rules = Rules::from_toml(&format!(
            "{LAYERS}\n[group.db]\ncrates = [\"sqlx*\"]\ndirect = [\"application\"]"
        ))
        .unwrap();
        assert_eq!(rules.count(), 4);
        assert_eq!(rules.layer_of("keystone-domain").unwrap().name, "domain");
    }

    #[test]
    fn the_workspace_arch_toml_is_valid() {
        let rules = Rules::from_toml(include_str!("../../arch.toml")).unwrap();
        assert_eq!(rules.layers.len(), 8, "one layer per workspace member");
        let groups: Vec<&str> = rules
            .groups
            .iter()
            .map(|group| group.name.as_str())
            .collect();
        for expected in ["database", "cache", "tokens-and-hashing", "web", "config"] {
            assert!(
                groups.contains(&expected),
                "{expected} missing from {groups:?}"
            );
        }
    }

    #[test]
    fn an_unknown_layer_in_depends_on_is_an_error() {
        let message = error("[layer.server]\npackage = \"s\"\ndepends_on = [\"domian\"]");
        assert_eq!(
            message,
            "arch.toml: layer.server.depends_on names unknown layer `domian`"
        );
    }

    #[test]
    fn an_unknown_layer_in_a_group_is_an_error() {
        let message = error("[group.db]\ncrates = [\"sqlx\"]\ndirect = [\"infra\"]");
        assert_eq!(
            message,
            "arch.toml: group.db.direct names unknown layer `infra`"
        );
        let message = error("[group.rt]\ncrates = [\"tokio\"]\nnever = [\"core\"]");
        assert_eq!(
            message,
            "arch.toml: group.rt.never names unknown layer `core`"
        );
    }

    #[test]
    fn a_misspelt_key_is_an_error_rather_than_a_silently_missing_rule() {
        let message = error("[group.db]\ncrates = [\"sqlx\"]\ndirectly = [\"domain\"]");
        assert!(message.contains("unknown field `directly`"), "{message}");
    }

    #[test]
    fn a_group_needs_exactly_one_of_direct_and_never() {
        let both = "[group.db]\ncrates = [\"sqlx\"]\ndirect = [\"domain\"]\nnever = [\"domain\"]";
        assert!(error(both).contains("needs either `direct`"));
        assert!(error("[group.db]\ncrates = [\"sqlx\"]").contains("needs either `direct`"));
    }

    #[test]
    fn a_star_inside_a_pattern_is_an_error() {
        let message = error("[group.web]\ncrates = [\"actix-*-web\"]\nnever = [\"domain\"]");
        assert!(message.contains("only a trailing `*`"), "{message}");
    }

    #[test]
    fn two_layers_claiming_one_package_is_an_error() {
        let message = error("[layer.core]\npackage = \"keystone-domain\"\ndepends_on = []");
        assert!(
            message.contains("both claim package `keystone-domain`"),
            "{message}"
        );
    }

    #[test]
    fn patterns_match_exact_names_or_prefixes() {
        assert!(matches("sea-orm", "sea-orm"));
        assert!(!matches("sea-orm", "sea-orm-migration"));
        assert!(matches("sqlx*", "sqlx"));
        assert!(matches("actix-*", "actix-http"));
        assert!(!matches("actix-*", "actix"));
    }
}
