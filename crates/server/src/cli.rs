//! The command line: `server [serve]`, `server migrate ...`, `server openapi`.

use std::io::Write;

use anyhow::bail;
use clap::{Parser, Subcommand};
use infrastructure::database;

use crate::settings::{Environment, Settings};
use crate::startup::connect;

#[derive(Debug, Parser)]
#[command(
    name = "server",
    version,
    about = "Keystone: a multi-tenant REST service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the OpenAPI document to standard output.
    Openapi,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last `steps` migrations.
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List applied and pending migrations.
    Status,
    /// Drop every table, then apply all migrations.
    Fresh {
        /// Required in production: this destroys all data.
        #[arg(long)]
        force: bool,
    },
    /// Roll back every migration, leaving an empty schema.
    Reset {
        /// Required in production: this destroys all data.
        #[arg(long)]
        force: bool,
    },
}

/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = connect(settings).await?;
    let destructive_force = match action {
        MigrateAction::Fresh { force } | MigrateAction::Reset { force } => Some(force),
        _ => None,
    };
    if destructive_force == Some(false) && settings.environment == Environment::Production {
        bail!("refusing to drop production data without --force");
    }
    match action {
        MigrateAction::Up => database::migrate_up(&db).await?,
        MigrateAction::Down { steps } => database::migrate_down(&db, steps).await?,
        MigrateAction::Fresh { .. } => database::migrate_fresh(&db).await?,
        MigrateAction::Reset { .. } => database::migrate_reset(&db).await?,
        MigrateAction::Status => {
            let mut out = std::io::stdout().lock();
            for migration in database::migration_status(&db).await? {
                let state = if migration.applied {
                    "applied"
                } else {
                    "pending"
                };
                writeln!(out, "{state:<8} {}", migration.name)?;
            }
        }
    }
    Ok(())
}

/// # Errors
/// When standard output is closed.
pub fn print_openapi() -> anyhow::Result<()> {
    let document = presentation::openapi().to_pretty_json()?;
    writeln!(std::io::stdout().lock(), "{document}")?;
    Ok(())
}
