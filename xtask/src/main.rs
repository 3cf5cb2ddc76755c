//! `cargo xtask <task>` (an alias in `.cargo/config.toml`). The work is in the library.

use std::process::ExitCode;

use xtask::{Error, Metadata, Rules, check};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  arch    check crate dependencies against the rules in arch.toml";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [task] if task == "arch" => match arch() {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Prints each violation and a summary; `Ok(true)` when there were none.
fn arch() -> Result<bool, Error> {
    let metadata = Metadata::from_cargo(None)?;
    let path = metadata.workspace_root.join("arch.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
    let rules = Rules::from_toml(&text)?;
    let violations = check(&metadata, &rules);
    for violation in &violations {
        println!("{violation}");
    }
    let (crates, count) = (metadata.workspace_members.len(), rules.count());
    match violations.len() {
        0 => println!("architecture: {crates} crates, {count} rules, no violations"),
        n => println!("architecture: {crates} crates, {count} rules, {n} violation(s)"),
    }
    Ok(violations.is_empty())
}
