use std::path::Path;

use clap::Parser;
use keystone_server::cli::{Cli, Command};
use keystone_server::settings::Settings;
use keystone_server::{cli, startup, telemetry};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(Path::new("config"))?;
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Healthcheck = command {
        // Runs every few seconds beside the server: no telemetry, only an exit code.
        return cli::healthcheck(&settings);
    }
    let telemetry = telemetry::init(&settings)?;
    let outcome = match command {
        Command::Serve => {
            let application = startup::Application::build(&settings).await?;
            application.run_until_signalled().await
        }
        Command::Worker => startup::run_worker(&settings).await,
        Command::Migrate { action } => cli::migrate(&settings, action).await,
        Command::Projections { action } => cli::projections(&settings, action).await,
        Command::Openapi => cli::print_openapi(),
        Command::Healthcheck => unreachable!("answered before telemetry starts"),
    };
    // Once the server has stopped, so the last requests' spans are flushed too.
    telemetry.shutdown();
    outcome
}
