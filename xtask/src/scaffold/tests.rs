use std::path::{Path, PathBuf};

use super::*;

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

fn refusal(words: &[&str]) -> String {
    Spec::parse(&args(words)).unwrap_err().to_string()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every field type, required and optional, for an aggregate no workspace has (the
/// tests plan it in this one, which may be a fork with aggregates of its own).
fn every_type() -> Spec {
    Spec::parse(&args(&[
        "scaffold_probe",
        "number:string",
        "notes:text?",
        "amount_cents:int",
        "paid:bool",
        "due_on:date?",
        "sent_at:datetime?",
        "supplier_id:uuid",
    ]))
    .unwrap()
}

#[test]
fn a_spec_is_a_snake_case_name_its_fields_and_an_optional_plural() {
    let spec = Spec::parse(&args(&["person", "name:string", "--plural", "people"])).unwrap();
    assert_eq!(
        (spec.name.as_str(), spec.plural.as_str()),
        ("person", "people")
    );
    assert_eq!(spec.pascal_plural(), "People");
    let spec = every_type();
    assert_eq!(spec.plural, "scaffold_probes");
    assert_eq!(spec.pascal(), "ScaffoldProbe");
    assert_eq!(spec.path(), "scaffold-probes");
    assert_eq!(spec.fields.len(), 7);
}

#[test]
fn a_name_or_field_that_breaks_a_rule_is_refused_saying_which() {
    assert!(refusal(&["Invoice", "n:int"]).contains("not snake_case"));
    assert!(refusal(&["purchase__order", "n:int"]).contains("not snake_case"));
    assert!(refusal(&["type", "n:int"]).contains("keyword"));
    assert!(refusal(&["invoice"]).contains("at least one field"));
    assert!(refusal(&["invoice", "amount:money"]).contains("`money`"));
    assert!(refusal(&["invoice", "a:int", "a:bool"]).contains("given twice"));
    assert!(refusal(&["invoice", "version:int"]).contains("every aggregate has"));
    assert!(refusal(&["invoice", "Amount:int"]).contains("not snake_case"));
    assert!(refusal(&["invoice", "match:int"]).contains("keyword"));
    assert!(refusal(&["sheep", "n:int", "--plural", "sheep"]).contains("must differ"));
    assert!(refusal(&["invoice", "n:int", "--force"]).contains("not an option"));
}

#[test]
fn the_plan_renders_every_file_and_finds_every_place_to_register_the_aggregate() {
    let plan = plan(&workspace(), &every_type(), "20991231").unwrap();
    let created: Vec<String> = plan
        .created
        .iter()
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert_eq!(
        created,
        [
            "crates/domain/src/scaffold_probe.rs",
            "crates/application/src/scaffold_probes.rs",
            "crates/infrastructure/src/persistence/entity/scaffold_probes.rs",
            "crates/infrastructure/src/persistence/scaffold_probes.rs",
            "migrations/src/m20991231_000011_create_scaffold_probes.rs",
            "crates/presentation/src/scaffold_probes.rs",
            "tests/tests/api/scaffold_probes.rs",
        ]
        .map(|path| path.replace("000011", &next_migration_number()))
    );
    assert_eq!(plan.edited.len(), 17);
    for (path, content) in plan.created.iter().chain(&plan.edited) {
        assert!(
            !content.contains("{{"),
            "{} keeps a template key",
            path.display()
        );
    }
    let (_, domain) = &plan.created[0];
    assert!(domain.contains("pub struct ScaffoldProbe {"));
    assert!(domain.contains("pub notes: Option<LongText>,"));
    let (_, presentation) = &plan.created[5];
    assert!(presentation.contains("path = \"/api/v1/scaffold-probes/{id}\""));
    let edited = |suffix: &str| {
        &plan
            .edited
            .iter()
            .find(|(path, _)| path.ends_with(suffix))
            .unwrap()
            .1
    };
    assert!(
        edited("crates/domain/src/event.rs")
            .contains("ScaffoldProbe(crate::scaffold_probe::ScaffoldProbeEvent),")
    );
    assert!(edited("ports/unit_of_work.rs").contains("Store<domain::ScaffoldProbe> + Accounts"));
}

/// The number after the last migration's, as the plan names the new one.
fn next_migration_number() -> String {
    let lib = std::fs::read_to_string(workspace().join("migrations/src/lib.rs")).unwrap();
    let last = lib
        .lines()
        .filter_map(|line| line.trim().strip_prefix("mod m"))
        .filter_map(|rest| rest.split('_').nth(1)?.parse::<u32>().ok())
        .max()
        .unwrap();
    format!("{:06}", last + 1)
}

#[test]
fn an_aggregate_or_a_type_that_exists_is_refused() {
    let root = workspace();
    let task = Spec::parse(&args(&["task", "title:string"])).unwrap();
    assert!(
        plan(&root, &task, "20991231")
            .unwrap_err()
            .to_string()
            .contains("exists already")
    );
    let clash = Spec::parse(&args(&["task_event", "title:string"])).unwrap();
    assert!(
        plan(&root, &clash, "20991231")
            .unwrap_err()
            .to_string()
            .contains("`TaskEvent`")
    );
}

#[test]
fn scaffolding_the_same_name_twice_refuses_the_second_time_and_writes_nothing() {
    let scratch = std::env::temp_dir().join(format!("xtask-scaffold-{}", std::process::id()));
    let spec = Spec::parse(&args(&["scaffold_probe", "number:string"])).unwrap();
    let first = plan(&workspace(), &spec, "20991231").unwrap();
    // A scratch workspace holding the files the plan reads: the edited ones.
    for (path, _) in &first.edited {
        let copy = scratch.join(path);
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(workspace().join(path), copy).unwrap();
    }
    plan(&scratch, &spec, "20991231")
        .unwrap()
        .write(&scratch)
        .unwrap();
    let written: Vec<String> = first
        .edited
        .iter()
        .map(|(path, _)| std::fs::read_to_string(scratch.join(path)).unwrap())
        .collect();
    let error = plan(&scratch, &spec, "20991231").unwrap_err();
    assert!(error.to_string().contains("exists already"), "{error}");
    for ((path, _), content) in first.edited.iter().zip(&written) {
        assert_eq!(
            &std::fs::read_to_string(scratch.join(path)).unwrap(),
            content
        );
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[test]
fn today_is_a_date_in_the_form_migrations_are_named() {
    let today = today();
    assert_eq!(today.len(), 8);
    assert!(today.as_str() > "20260101", "{today}");
}
