use std::path::Path;

use clap::Parser;
use keystone_server::cli::{Cli, Command};
use keystone_server::settings::Settings;
use keystone_server::{cli, startup, telemetry};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(Path::new("config"))?;
    telemetry::init(&settings)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => startup::Application::build(&settings).await?.run().await,
        Command::Migrate { action } => cli::migrate(&settings, action).await,
        Command::Openapi => cli::print_openapi(),
    }
}
