//! The documents that name tests name tests that exist: a control in
//! `docs/security.md` whose proving test was renamed or removed fails here.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The names of the tests the table's last column cites: every backticked name.
fn cited_tests(document: &str) -> Vec<&str> {
    document
        .lines()
        .filter(|line| line.starts_with('|'))
        .filter_map(|row| row.trim_end_matches('|').rsplit('|').next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .filter(|name| {
            name.contains('_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        })
        .collect()
}

/// The functions defined in every Rust file under `folder`, and the files' names (the
/// table names the module before its tests).
fn functions(folder: &Path, found: &mut HashSet<String>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            functions(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let stem = path.file_stem().unwrap().to_string_lossy();
            found.insert(stem.into_owned());
            let source = std::fs::read_to_string(&path).unwrap();
            for rest in source.split("fn ").skip(1) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.insert(name);
            }
        }
    }
}

fn missing<'a>(cited: &[&'a str], defined: &HashSet<String>) -> Vec<&'a str> {
    cited
        .iter()
        .copied()
        .filter(|name| !defined.contains(*name))
        .collect()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn every_test_the_security_document_cites_exists() {
    let root = root();
    let document = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let cited = cited_tests(&document);
    assert!(cited.len() > 30, "the table cites {} tests", cited.len());
    let mut defined = HashSet::new();
    functions(&root.join("crates"), &mut defined);
    functions(&root.join("tests"), &mut defined);
    assert_eq!(missing(&cited, &defined), Vec::<&str>::new());
}

#[test]
fn a_cited_test_that_does_not_exist_is_reported() {
    let document = "| a | b | `real_test`, `renamed_test`; `ok` |\n";
    let defined = HashSet::from(["real_test".to_owned()]);
    assert_eq!(missing(&cited_tests(document), &defined), ["renamed_test"]);
}
