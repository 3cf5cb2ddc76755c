//! The part of `cargo metadata --format-version 1` the check reads. Fields are public
//! so tests can inject dependencies into a real graph.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Deserializer, de::Error as _};

use crate::Error;

/// A workspace and its resolved dependency graph.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Every package in the graph, workspace members and external crates alike.
    pub packages: Vec<Package>,
    /// Package ids of the workspace members.
    pub workspace_members: Vec<String>,
    /// Where the root `Cargo.toml` (and so `arch.toml`) lives.
    pub workspace_root: PathBuf,
    /// The graph Cargo resolved, with every dependency edge and its kinds.
    #[serde(deserialize_with = "required_resolve")]
    pub resolve: Resolve,
}

/// One package; for workspace members, `dependencies` is what their `Cargo.toml` names.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub dependencies: Vec<Dependency>,
}

/// One entry of a `[dependencies]`, `[build-dependencies]` or `[dev-dependencies]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct Dependency {
    /// The package name, even when the entry renames it.
    pub name: String,
    /// The name code uses for it, when renamed (`domain` for `keystone-domain`).
    pub rename: Option<String>,
    /// `None` for a normal dependency, else `"dev"` or `"build"`.
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resolve {
    pub nodes: Vec<Node>,
}

/// A package in the resolved graph and the packages it depends on.
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    pub id: String,
    pub deps: Vec<NodeDep>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodeDep {
    /// The crate name code uses (underscored, possibly renamed); not the package name.
    pub name: String,
    /// The package id of the dependency.
    pub pkg: String,
    /// One entry per way it is depended on (normal, dev, build; per target).
    pub dep_kinds: Vec<DepKind>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DepKind {
    /// `None` for a normal dependency, else `"dev"` or `"build"`.
    pub kind: Option<String>,
}

impl Metadata {
    /// Runs `cargo metadata --format-version 1 --locked` (with `$CARGO` when Cargo
    /// set it) for the workspace of `manifest_path`, or of the current directory.
    ///
    /// # Errors
    /// When cargo cannot be started, exits unsuccessfully (for instance because
    /// `Cargo.lock` is out of date), or prints something [`Metadata::from_json`] rejects.
    pub fn from_cargo(manifest_path: Option<&Path>) -> Result<Self, Error> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["metadata", "--format-version", "1", "--locked"]);
        if let Some(path) = manifest_path {
            command.arg("--manifest-path").arg(path);
        }
        let output = command
            .output()
            .map_err(|e| Error(format!("could not run cargo metadata: {e}")))?;
        if !output.status.success() {
            return Err(Error(format!(
                "cargo metadata failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            )));
        }
        Self::from_json(&String::from_utf8_lossy(&output.stdout))
    }

    /// Parses the output of `cargo metadata --format-version 1`.
    ///
    /// # Errors
    /// When the text is not such output, or lacks the resolved graph because
    /// cargo was run with `--no-deps`.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        serde_json::from_str(json).map_err(|e| Error(format!("cannot read cargo metadata: {e}")))
    }
}

/// `--no-deps` output has `"resolve": null`; say so rather than "invalid type: null".
fn required_resolve<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Resolve, D::Error> {
    Option::<Resolve>::deserialize(deserializer)?.ok_or_else(|| {
        D::Error::custom("it has no resolved dependency graph; run it without --no-deps")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
        "packages": [{"id": "a 0.1", "name": "a", "manifest_path": "/w/a/Cargo.toml",
                      "dependencies": [{"name": "b", "rename": null, "kind": null}]},
                     {"id": "b 1.0", "name": "b", "dependencies": []}],
        "workspace_members": ["a 0.1"],
        "workspace_root": "/w",
        "resolve": {"nodes": [{"id": "a 0.1", "deps": [{"name": "b", "pkg": "b 1.0",
                                "dep_kinds": [{"kind": null, "target": null}]}]},
                              {"id": "b 1.0", "deps": []}], "root": null}
    }"#;

    #[test]
    fn metadata_keeps_packages_members_and_edges() {
        let metadata = Metadata::from_json(MINIMAL).unwrap();
        assert_eq!(metadata.packages[0].dependencies[0].name, "b");
        assert_eq!(metadata.workspace_members, ["a 0.1"]);
        assert_eq!(metadata.resolve.nodes[0].deps[0].pkg, "b 1.0");
    }

    #[test]
    fn metadata_without_a_resolved_graph_is_rejected_with_a_hint() {
        let no_deps = MINIMAL.replace(
            r#""resolve": {"nodes""#,
            r#""resolve": null, "x": {"nodes""#,
        );
        let error = Metadata::from_json(&no_deps).unwrap_err();
        assert!(error.to_string().contains("without --no-deps"), "{error}");
    }
}
