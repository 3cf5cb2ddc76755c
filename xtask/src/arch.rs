//! The check itself: walk each workspace member's dependencies and compare them
//! with the rules. Only normal and build dependencies count; tests may use anything.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use crate::metadata::Metadata;
use crate::rules::{Access, Layer, Rules, matches};

/// One broken rule; `Display` gives the sentence to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A workspace package that `arch.toml` does not place in a layer.
    Unassigned { package: String },
    /// A layer whose package is not in the workspace (renamed or removed).
    Stale { layer: String, package: String },
    /// `path[0]` depends on `path.last()`, directly when the path has two names.
    Forbidden { path: Vec<String>, rule: Rule },
}

/// The rule a forbidden dependency breaks, with what the sentence needs to explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A workspace member the layer may not depend on.
    Internal { layer: String, allowed: Vec<String> },
    /// An external crate missing from the layer's allowlist.
    External { allowed: Vec<String> },
    /// A crate reserved to other layers.
    Reserved { group: String, direct: Vec<String> },
    /// A crate this layer must not reach at all.
    Never { group: String, layer: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, rule) = match self {
            Self::Unassigned { package } => {
                return write!(f, "workspace member `{package}` has no entry in arch.toml");
            }
            Self::Stale { layer, package } => {
                return write!(
                    f,
                    "arch.toml puts `{package}` in layer `{layer}`, but the workspace has no such package"
                );
            }
            Self::Forbidden { path, rule } => (path, rule),
        };
        let (from, to) = (&path[0], &path[path.len() - 1]);
        let verb = if path.len() == 2 {
            "depends on"
        } else {
            "reaches"
        };
        write!(f, "{from} {verb} {to}")?;
        if let Rule::Reserved { group, .. } | Rule::Never { group, .. } = rule {
            write!(f, " ({group})")?;
        }
        if path.len() > 2 {
            write!(f, " through {}", path.join(" -> "))?;
        }
        match rule {
            Rule::Internal { layer, allowed } if allowed.is_empty() => {
                write!(f, "; {layer} may not depend on any workspace crate")
            }
            Rule::Internal { layer, allowed } => {
                write!(f, "; {layer} may depend only on {}", allowed.join(", "))
            }
            Rule::External { allowed } => {
                write!(
                    f,
                    ", which is not in its allowed list ({})",
                    allowed.join(", ")
                )
            }
            Rule::Reserved { direct, .. } => {
                write!(f, "; only {} may depend on it", direct.join(", "))
            }
            Rule::Never { layer, .. } => write!(f, "; {layer} may not reach it"),
        }
    }
}

/// Checks every workspace member against the rules and returns what it breaks:
/// first the bookkeeping (members missing from `arch.toml`, stale entries), then per
/// member its direct dependencies, then what it reaches through them, along the
/// shortest path. A crate is reported once per member and rule. What a member reaches
/// only through a crate already reported is not reported again: one bad edge into
/// sea-orm is one line, not one per sqlx crate behind it.
#[must_use]
pub fn check(metadata: &Metadata, rules: &Rules) -> Vec<Violation> {
    let graph = Graph::new(metadata);
    let mut violations = Vec::new();
    for layer in &rules.layers {
        if !graph.is_member(&layer.package) {
            violations.push(Violation::Stale {
                layer: layer.name.clone(),
                package: layer.package.clone(),
            });
        }
    }
    for &(id, name) in &graph.members {
        let Some(layer) = rules.layer_of(name) else {
            violations.push(Violation::Unassigned {
                package: name.to_owned(),
            });
            continue;
        };
        let direct = graph.direct(id);
        let mut reported = HashSet::new();
        for &dep in &direct {
            for rule in broken_by(rules, &graph, layer, dep, true) {
                reported.insert(dep);
                let path = vec![name.to_owned(), dep.to_owned()];
                violations.push(Violation::Forbidden { path, rule });
            }
        }
        graph.walk(id, |path| {
            let dep = path[path.len() - 1];
            if direct.contains(&dep) {
                return !reported.contains(dep);
            }
            let broken = broken_by(rules, &graph, layer, dep, false);
            let explore = broken.is_empty();
            for rule in broken {
                let path = path.iter().map(|&n| n.to_owned()).collect();
                violations.push(Violation::Forbidden { path, rule });
            }
            explore
        });
    }
    violations
}

/// The rules that `layer` breaks by depending on `dep`, directly or through others.
fn broken_by(rules: &Rules, graph: &Graph, layer: &Layer, dep: &str, direct: bool) -> Vec<Rule> {
    let mut broken = Vec::new();
    if graph.is_member(dep) {
        // A member with no layer of its own cannot be allowed by name; it is reported
        // separately, and `depends_on = ["*"]` still admits it.
        let to = rules.layer_of(dep).map(|l| l.name.as_str());
        if let Some(allowed) = &layer.depends_on
            && !to.is_some_and(|to| allowed.iter().any(|a| a == to))
        {
            broken.push(Rule::Internal {
                layer: layer.name.clone(),
                allowed: allowed.clone(),
            });
        }
        return broken;
    }
    if direct
        && let Some(allowed) = &layer.external
        && !allowed.iter().any(|p| matches(p, dep))
    {
        broken.push(Rule::External {
            allowed: allowed.clone(),
        });
    }
    for group in rules
        .groups
        .iter()
        .filter(|g| g.crates.iter().any(|p| matches(p, dep)))
    {
        let named = |layers: &[String]| layers.contains(&layer.name);
        match &group.access {
            Access::Reserved {
                direct: may_depend,
                reach,
            } => {
                let ok = named(may_depend) || (!direct && named(reach));
                if !ok {
                    broken.push(Rule::Reserved {
                        group: group.name.clone(),
                        direct: may_depend.clone(),
                    });
                }
            }
            Access::Never(never) => {
                if named(never) {
                    broken.push(Rule::Never {
                        group: group.name.clone(),
                        layer: layer.name.clone(),
                    });
                }
            }
        }
    }
    broken
}

/// The metadata indexed for the walk, with dev-dependency edges left out.
struct Graph<'a> {
    /// Workspace members as (package id, package name), in `cargo metadata` order.
    members: Vec<(&'a str, &'a str)>,
    names: HashMap<&'a str, &'a str>,
    /// Normal and build dependency names each member's `Cargo.toml` states.
    manifests: HashMap<&'a str, Vec<&'a str>>,
    /// Normal and build edges of the resolved graph, by package id.
    edges: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Graph<'a> {
    fn new(metadata: &'a Metadata) -> Self {
        let counts = |kind: Option<&String>| kind.is_none_or(|k| k == "build");
        let names = metadata
            .packages
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        let manifests = metadata
            .packages
            .iter()
            .map(|p| {
                let deps = p.dependencies.iter().filter(|d| counts(d.kind.as_ref()));
                (p.id.as_str(), deps.map(|d| d.name.as_str()).collect())
            })
            .collect();
        let edges = metadata
            .resolve
            .nodes
            .iter()
            .map(|node| {
                let deps = node
                    .deps
                    .iter()
                    .filter(|d| d.dep_kinds.iter().any(|k| counts(k.kind.as_ref())));
                (node.id.as_str(), deps.map(|d| d.pkg.as_str()).collect())
            })
            .collect();
        let mut graph = Self {
            members: Vec::new(),
            names,
            manifests,
            edges,
        };
        graph.members = metadata
            .workspace_members
            .iter()
            .map(|id| (id.as_str(), graph.name(id)))
            .collect();
        graph
    }

    fn name(&self, id: &'a str) -> &'a str {
        // An id without a package would be malformed metadata; show the id rather than panic.
        self.names.get(id).copied().unwrap_or(id)
    }

    fn is_member(&self, name: &str) -> bool {
        self.members.iter().any(|(_, member)| *member == name)
    }

    /// What the member's `Cargo.toml` depends on, each name once, in manifest order.
    fn direct(&self, id: &str) -> Vec<&'a str> {
        let mut seen = HashSet::new();
        let deps = self.manifests.get(id).map_or(&[][..], Vec::as_slice);
        deps.iter()
            .copied()
            .filter(|name| seen.insert(*name))
            .collect()
    }

    /// Breadth-first walk from `start` along normal and build edges. `visit` gets
    /// the shortest path (names, `start` first) to each package name reached, once
    /// per name; when it returns false, what lies behind that package is not walked.
    fn walk(&self, start: &'a str, mut visit: impl FnMut(&[&'a str]) -> bool) {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        // Two versions of one crate are one finding; the nearer one explains it.
        let mut explore_name = HashMap::from([(self.name(start), true)]);
        let mut queue = VecDeque::from([start]);
        while let Some(id) = queue.pop_front() {
            for &next in self.edges.get(id).map_or(&[][..], Vec::as_slice) {
                if next == start || parent.contains_key(next) {
                    continue;
                }
                parent.insert(next, id);
                let name = self.name(next);
                let explore = *explore_name.entry(name).or_insert_with(|| {
                    let mut path = vec![name];
                    let mut at = next;
                    while let Some(&up) = parent.get(at) {
                        path.push(self.name(up));
                        at = up;
                    }
                    path.reverse();
                    visit(&path)
                });
                if explore {
                    queue.push_back(next);
                }
            }
        }
    }
}
