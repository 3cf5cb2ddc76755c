//! The architecture check on the real workspace, and proof that every rule in
//! `arch.toml` bites: each test injects one forbidden dependency into the real
//! dependency graph and expects the sentence `cargo xtask arch` would print.

use std::path::Path;
use std::sync::LazyLock;

use xtask::metadata::{DepKind, Dependency, Node, NodeDep, Package};
use xtask::{Metadata, Rules, check};

/// The real metadata and rules, loaded once: `cargo metadata` takes a moment.
static REAL: LazyLock<Workspace> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let metadata = Metadata::from_cargo(Some(&root.join("Cargo.toml"))).unwrap();
    let rules =
        Rules::from_toml(&std::fs::read_to_string(root.join("arch.toml")).unwrap()).unwrap();
    let baseline = check(&metadata, &rules)
        .iter()
        .map(ToString::to_string)
        .collect();
    Workspace {
        metadata,
        rules,
        baseline,
    }
});

#[derive(Clone)]
struct Workspace {
    metadata: Metadata,
    rules: Rules,
    /// What the real workspace already breaks; `real_workspace_has_no_violations` owns that.
    baseline: Vec<String>,
}

impl Workspace {
    fn real() -> Self {
        REAL.clone()
    }

    /// `from` depends on `to` as a normal dependency. Either may be a crate the graph
    /// does not have yet; it is added as an external crate with no dependencies.
    fn depend(self, from: &str, to: &str) -> Self {
        self.add_dependency(from, to, None)
    }

    fn add_dependency(mut self, from: &str, to: &str, kind: Option<&str>) -> Self {
        let (from_id, to_id) = (self.package(from), self.package(to));
        let kind = kind.map(str::to_owned);
        let package = self.metadata.packages.iter_mut().find(|p| p.id == from_id);
        package.unwrap().dependencies.push(Dependency {
            name: to.to_owned(),
            rename: None,
            kind: kind.clone(),
        });
        let node = self
            .metadata
            .resolve
            .nodes
            .iter_mut()
            .find(|n| n.id == from_id);
        node.unwrap().deps.push(NodeDep {
            name: to.replace('-', "_"),
            pkg: to_id,
            dep_kinds: vec![DepKind { kind }],
        });
        self
    }

    /// A new workspace member that arch.toml knows nothing about.
    fn add_member(mut self, name: &str) -> Self {
        let id = self.package(name);
        self.metadata.workspace_members.push(id);
        self
    }

    fn remove_member(mut self, name: &str) -> Self {
        let id = self.package(name);
        self.metadata
            .workspace_members
            .retain(|member| *member != id);
        self
    }

    /// The id of the package called `name`, adding an empty one if there is none.
    fn package(&mut self, name: &str) -> String {
        if let Some(package) = self.metadata.packages.iter().find(|p| p.name == name) {
            return package.id.clone();
        }
        let id = format!("injected#{name}@0.0.0");
        self.metadata.packages.push(Package {
            id: id.clone(),
            name: name.to_owned(),
            dependencies: vec![],
        });
        self.metadata.resolve.nodes.push(Node {
            id: id.clone(),
            deps: vec![],
        });
        id
    }

    /// The violations the injected dependencies add to the real workspace's.
    fn violations(&self) -> Vec<String> {
        let all = check(&self.metadata, &self.rules)
            .into_iter()
            .map(|v| v.to_string());
        all.filter(|v| !self.baseline.contains(v)).collect()
    }
}

#[test]
fn real_workspace_has_no_violations() {
    assert_eq!(REAL.baseline, Vec::<String>::new());
}

// ---- Internal edges ----------------------------------------------------------------

#[test]
fn domain_depending_on_application_is_reported() {
    let found = Workspace::real()
        .depend("keystone-domain", "keystone-application")
        .violations();
    let sentence = "keystone-domain depends on keystone-application; domain may not depend on any workspace crate";
    assert_eq!(found, [sentence]);
}

#[test]
fn presentation_depending_on_infrastructure_is_reported() {
    let found = Workspace::real()
        .depend("keystone-presentation", "keystone-infrastructure")
        .violations();
    let sentence = "keystone-presentation depends on keystone-infrastructure; presentation may depend only on application, domain";
    assert_eq!(found, [sentence]);
}

#[test]
fn infrastructure_depending_on_presentation_is_reported() {
    let found = Workspace::real()
        .depend("keystone-infrastructure", "keystone-presentation")
        .violations();
    let sentence = "keystone-infrastructure depends on keystone-presentation; infrastructure may depend only on application, domain, migrations";
    assert_eq!(found, [sentence]);
}

#[test]
fn migrations_depending_on_domain_is_reported() {
    let found = Workspace::real()
        .depend("keystone-migrations", "keystone-domain")
        .violations();
    let sentence = "keystone-migrations depends on keystone-domain; migrations may not depend on any workspace crate";
    assert_eq!(found, [sentence]);
}

#[test]
fn presentation_depending_on_the_server_is_reported() {
    let found = Workspace::real()
        .depend("keystone-presentation", "keystone-server")
        .violations();
    let sentence = "keystone-presentation depends on keystone-server; presentation may depend only on application, domain";
    assert_eq!(found, [sentence]);
}

#[test]
fn server_depending_on_the_tests_crate_is_reported() {
    let found = Workspace::real()
        .depend("keystone-server", "keystone-tests")
        .violations();
    let sentence = "keystone-server depends on keystone-tests; server may depend only on domain, application, infrastructure, presentation, migrations";
    assert_eq!(found, [sentence]);
}

#[test]
fn xtask_depending_on_domain_is_reported() {
    let found = Workspace::real()
        .depend("xtask", "keystone-domain")
        .violations();
    assert_eq!(
        found,
        ["xtask depends on keystone-domain; xtask may not depend on any workspace crate"]
    );
}

// ---- Every member has an entry ---------------------------------------------------

#[test]
fn a_workspace_member_missing_from_arch_toml_is_reported() {
    let found = Workspace::real()
        .add_member("keystone-reports")
        .violations();
    assert_eq!(
        found,
        ["workspace member `keystone-reports` has no entry in arch.toml"]
    );
}

#[test]
fn a_restricted_layer_depending_on_a_member_missing_from_arch_toml_is_reported() {
    let ws = Workspace::real().add_member("keystone-reports");
    let found = ws
        .depend("keystone-presentation", "keystone-reports")
        .violations();
    let direct = "keystone-presentation depends on keystone-reports; presentation may depend only on application, domain";
    let reach = "keystone-server reaches keystone-reports through keystone-server -> keystone-presentation -> keystone-reports; server may depend only on domain, application, infrastructure, presentation, migrations";
    let missing = "workspace member `keystone-reports` has no entry in arch.toml";
    assert_eq!(found, [direct, reach, missing]);
}

#[test]
fn an_arch_toml_entry_for_a_crate_no_longer_in_the_workspace_is_reported() {
    let found = Workspace::real().remove_member("xtask").violations();
    assert_eq!(
        found,
        ["arch.toml puts `xtask` in layer `xtask`, but the workspace has no such package"]
    );
}

// ---- Internal transitive reach ---------------------------------------------------

#[test]
fn presentation_reaching_infrastructure_through_application_is_reported() {
    let found = Workspace::real()
        .depend("keystone-application", "keystone-infrastructure")
        .violations();
    let direct = "keystone-application depends on keystone-infrastructure; application may depend only on domain";
    let reach = "keystone-presentation reaches keystone-infrastructure through keystone-presentation -> keystone-application -> keystone-infrastructure; presentation may depend only on application, domain";
    assert_eq!(found, [direct, reach]);
}

#[test]
fn presentation_reaching_infrastructure_through_an_external_crate_is_reported() {
    let ws = Workspace::real().depend("keystone-presentation", "innocent-helper");
    let found = ws
        .depend("innocent-helper", "keystone-infrastructure")
        .violations();
    let sentence = "keystone-presentation reaches keystone-infrastructure through keystone-presentation -> innocent-helper -> keystone-infrastructure; presentation may depend only on application, domain";
    assert_eq!(found, [sentence]);
}

// ---- External allowlists ---------------------------------------------------------

#[test]
fn domain_depending_on_serde_json_breaks_its_allowlist_and_the_json_rule() {
    let found = Workspace::real()
        .depend("keystone-domain", "serde_json")
        .violations();
    let allowlist = "keystone-domain depends on serde_json, which is not in its allowed list (thiserror, uuid, chrono, serde)";
    let json = "keystone-domain depends on serde_json (json); domain may not reach it";
    assert_eq!(found, [allowlist, json]);
}

#[test]
fn application_depending_on_an_unlisted_crate_is_reported() {
    let found = Workspace::real()
        .depend("keystone-application", "serde")
        .violations();
    let sentence = "keystone-application depends on serde, which is not in its allowed list (thiserror, anyhow, tracing, async-trait, chrono, uuid, futures-util)";
    assert_eq!(found, [sentence]);
}

// ---- Reserved crates, direct -----------------------------------------------------

#[test]
fn presentation_depending_on_sea_orm_is_reported() {
    let found = Workspace::real()
        .depend("keystone-presentation", "sea-orm")
        .violations();
    let sentence = "keystone-presentation depends on sea-orm (database); only infrastructure, migrations may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn server_depending_on_redis_directly_is_reported() {
    let found = Workspace::real()
        .depend("keystone-server", "redis")
        .violations();
    assert_eq!(
        found,
        ["keystone-server depends on redis (cache); only infrastructure may depend on it"]
    );
}

#[test]
fn presentation_depending_on_argon2_is_reported() {
    let found = Workspace::real()
        .depend("keystone-presentation", "argon2")
        .violations();
    let sentence = "keystone-presentation depends on argon2 (tokens-and-hashing); only infrastructure may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn infrastructure_depending_on_actix_web_is_reported() {
    let found = Workspace::real()
        .depend("keystone-infrastructure", "actix-web")
        .violations();
    let sentence = "keystone-infrastructure depends on actix-web (web); only presentation, server, tests may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn infrastructure_depending_on_any_actix_crate_is_reported() {
    let found = Workspace::real()
        .depend("keystone-infrastructure", "actix-cors")
        .violations();
    let sentence = "keystone-infrastructure depends on actix-cors (web); only presentation, server, tests may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn presentation_depending_on_figment_is_reported() {
    let found = Workspace::real()
        .depend("keystone-presentation", "figment")
        .violations();
    let sentence =
        "keystone-presentation depends on figment (config); only server may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn presentation_depending_on_an_exporter_is_reported() {
    let found = Workspace::real()
        .depend("keystone-presentation", "metrics-exporter-prometheus")
        .violations();
    let sentence = "keystone-presentation depends on metrics-exporter-prometheus (telemetry-export); only server may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn infrastructure_depending_on_the_tracing_api_is_reported() {
    let found = Workspace::real()
        .depend("keystone-infrastructure", "tracing-opentelemetry")
        .violations();
    let sentence = "keystone-infrastructure depends on tracing-opentelemetry (telemetry-api); only presentation, server may depend on it";
    assert_eq!(found, [sentence]);
}

// ---- Reserved crates, transitive -------------------------------------------------

#[test]
fn presentation_reaching_sea_orm_through_another_crate_is_reported() {
    let ws = Workspace::real().depend("keystone-presentation", "innocent-helper");
    let found = ws.depend("innocent-helper", "sea-orm").violations();
    let sentence = "keystone-presentation reaches sea-orm (database) through keystone-presentation -> innocent-helper -> sea-orm; only infrastructure, migrations may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn presentation_reaching_redis_through_another_crate_is_reported() {
    let ws = Workspace::real().depend("keystone-presentation", "innocent-helper");
    let found = ws.depend("innocent-helper", "redis").violations();
    let sentence = "keystone-presentation reaches redis (cache) through keystone-presentation -> innocent-helper -> redis; only infrastructure may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn presentation_reaching_jsonwebtoken_through_another_crate_is_reported() {
    let ws = Workspace::real().depend("keystone-presentation", "innocent-helper");
    let found = ws.depend("innocent-helper", "jsonwebtoken").violations();
    let sentence = "keystone-presentation reaches jsonwebtoken (tokens-and-hashing) through keystone-presentation -> innocent-helper -> jsonwebtoken; only infrastructure may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn infrastructure_reaching_actix_through_another_crate_is_reported() {
    let ws = Workspace::real().depend("keystone-infrastructure", "innocent-helper");
    let found = ws.depend("innocent-helper", "actix-web").violations();
    let sentence = "keystone-infrastructure reaches actix-web (web) through keystone-infrastructure -> innocent-helper -> actix-web; only presentation, server, tests may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn presentation_reaching_figment_through_another_crate_is_reported() {
    let ws = Workspace::real().depend("keystone-presentation", "innocent-helper");
    let found = ws.depend("innocent-helper", "figment").violations();
    let sentence = "keystone-presentation reaches figment (config) through keystone-presentation -> innocent-helper -> figment; only server may depend on it";
    assert_eq!(found, [sentence]);
}

#[test]
fn infrastructure_reaching_an_http_client_through_another_crate_is_reported() {
    let ws = Workspace::real().depend("keystone-infrastructure", "innocent-helper");
    let found = ws.depend("innocent-helper", "reqwest").violations();
    let sentence = "keystone-infrastructure reaches reqwest (telemetry-export) through keystone-infrastructure -> innocent-helper -> reqwest; only server may depend on it";
    assert_eq!(found, [sentence]);
}

// ---- Crates some layers must never reach -----------------------------------------

#[test]
fn domain_and_application_reaching_an_async_runtime_are_reported() {
    let found = Workspace::real().depend("chrono", "tokio").violations();
    let domain = "keystone-domain reaches tokio (async-runtime) through keystone-domain -> chrono -> tokio; domain may not reach it";
    let application = "keystone-application reaches tokio (async-runtime) through keystone-application -> chrono -> tokio; application may not reach it";
    assert_eq!(found, [domain, application]);
}

#[test]
fn application_depending_on_tokio_is_reported_for_both_rules() {
    let found = Workspace::real()
        .depend("keystone-application", "tokio")
        .violations();
    let allowlist = "keystone-application depends on tokio, which is not in its allowed list (thiserror, anyhow, tracing, async-trait, chrono, uuid, futures-util)";
    let runtime =
        "keystone-application depends on tokio (async-runtime); application may not reach it";
    assert_eq!(found, [allowlist, runtime]);
}

#[test]
fn domain_reaching_serde_json_is_reported() {
    let found = Workspace::real()
        .depend("chrono", "serde_json")
        .violations();
    let sentence = "keystone-domain reaches serde_json (json) through keystone-domain -> chrono -> serde_json; domain may not reach it";
    assert_eq!(found, [sentence]);
}

// ---- What counts -------------------------------------------------------------------

#[test]
fn a_crate_reached_along_several_paths_is_reported_once_along_the_shortest() {
    let ws = Workspace::real()
        .depend("keystone-presentation", "a-helper")
        .depend("a-helper", "b-helper");
    let ws = ws
        .depend("b-helper", "redis")
        .depend("keystone-presentation", "c-helper")
        .depend("c-helper", "redis");
    let sentence = "keystone-presentation reaches redis (cache) through keystone-presentation -> c-helper -> redis; only infrastructure may depend on it";
    assert_eq!(ws.violations(), [sentence]);
}

#[test]
fn dev_dependencies_are_ignored() {
    let ws = Workspace::real().add_dependency(
        "keystone-presentation",
        "keystone-infrastructure",
        Some("dev"),
    );
    let ws = ws.add_dependency("keystone-domain", "sea-orm", Some("dev"));
    assert_eq!(ws.violations(), Vec::<String>::new());
}

#[test]
fn build_dependencies_count_like_normal_ones() {
    let found = Workspace::real()
        .add_dependency("keystone-presentation", "redis", Some("build"))
        .violations();
    assert_eq!(
        found,
        ["keystone-presentation depends on redis (cache); only infrastructure may depend on it"]
    );
}
