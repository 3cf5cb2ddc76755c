//! `cargo xtask <task>` (an alias in `.cargo/config.toml`). The work is in the library.

use std::path::Path;
use std::process::{Command, ExitCode};

use xtask::rename::{self, Names};
use xtask::scaffold::{self, Spec};
use xtask::{Error, Metadata, Rules, check};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  arch                          check crate dependencies against the rules in arch.toml
  scaffold <name> <field>:<type>[?]... [--plural <plural>]
                                add an aggregate to every layer, with its tests
                                (types: string text int bool date datetime uuid;
                                `?` makes a field optional)
  rename <new-name> [--dry-run] turn the project into <new-name>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.split_first() {
        Some((task, [])) if task == "arch" => arch(),
        Some((task, rest)) if task == "scaffold" => scaffold(rest).map(|()| true),
        Some((task, rest)) if task == "rename" => rename(rest).map(|()| true),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
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

/// Writes the aggregate, then lets the tools that own them format the code, regenerate
/// the OpenAPI document and write the golden files of its events.
fn scaffold(args: &[String]) -> Result<(), Error> {
    let spec = Spec::parse(args)?;
    let root = Metadata::from_cargo(None)?.workspace_root;
    let plan = scaffold::plan(&root, &spec, &scaffold::today())?;
    plan.write(&root)?;
    print!("{plan}");
    run(
        &root,
        "formatting",
        Command::new("cargo").args(["fmt", "--all"]),
    )?;
    let document = output(
        &root,
        "regenerating docs/openapi.json",
        Command::new("cargo").args(["run", "--quiet", "--", "openapi"]),
    )?;
    std::fs::write(root.join("docs/openapi.json"), document)
        .map_err(|e| Error::new(format!("cannot write docs/openapi.json: {e}")))?;
    println!("edited  docs/openapi.json");
    run(
        &root,
        "writing the golden files of the new events",
        Command::new("cargo")
            .args([
                "test",
                "--quiet",
                "-p",
                "keystone-infrastructure",
                "--lib",
                "golden",
            ])
            .env("KEYSTONE_BLESS_GOLDEN", "1"),
    )?;
    println!(
        "\n`{}` is in every layer. Add its rules to crates/domain/src/{}.rs, then run `just test-all`.",
        spec.name, spec.name
    );
    Ok(())
}

/// Renames the project, or with `--dry-run` lists what would change.
fn rename(args: &[String]) -> Result<(), Error> {
    let (dry_run, names): (Vec<&String>, Vec<&String>) =
        args.iter().partition(|arg| *arg == "--dry-run");
    let [name] = names.as_slice() else {
        return Err(Error::new(
            "rename takes one new name, and optionally --dry-run",
        ));
    };
    let to = Names::of(name)?;
    let root = Metadata::from_cargo(None)?.workspace_root;
    let changes = rename::plan(&root, &to)?;
    for (path, _) in &changes {
        println!(
            "{} {}",
            if dry_run.is_empty() {
                "renamed in"
            } else {
                "would rename in"
            },
            path.display()
        );
    }
    if dry_run.is_empty() {
        for (path, content) in &changes {
            std::fs::write(root.join(path), content)
                .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
        }
        println!(
            "{} files now name the project `{}`.",
            changes.len(),
            to.kebab
        );
    } else {
        println!("{} files would change; nothing was written.", changes.len());
    }
    Ok(())
}

/// Runs `command` in `root`; an error names `what` it was doing.
fn run(root: &Path, what: &str, command: &mut Command) -> Result<(), Error> {
    let status = command
        .current_dir(root)
        .status()
        .map_err(|e| Error::new(format!("{what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!("{what} failed ({status})")))
    }
}

/// Runs `command` in `root` and returns what it printed.
fn output(root: &Path, what: &str, command: &mut Command) -> Result<Vec<u8>, Error> {
    let output = command
        .current_dir(root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::new(format!("{what}: {e}")))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(Error::new(format!("{what} failed ({})", output.status)))
    }
}
