//! One module per subcommand.

mod admin;
mod emit;
mod serve;
mod token;
mod verify;
mod worker;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use lwh_app::App;
use lwh_url_policy::SystemResolver;

use crate::cli::{Cli, Command};
use crate::{config, logging};

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Verify { secret, signature } = &cli.command {
        return verify::run(secret, signature);
    }
    if let Command::Emit(args) = &cli.command {
        let settings = config::load(&cli.global, None)?;
        return emit::run(&settings, args).await;
    }
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    let settings = config::load(&cli.global, listen)?;
    logging::init(settings.log_format);
    if matches!(cli.command, Command::Migrate) {
        eprintln!("opening the database and applying pending migrations…");
    }
    let app = App::open(settings, Arc::new(SystemResolver))
        .await
        .map_err(|e| anyhow!(e))?;
    let outcome = match cli.command {
        Command::Serve { .. } => serve::run(app.clone()).await,
        Command::Worker { listen } => worker::run(app.clone(), listen).await,
        Command::Migrate => {
            let (applied, known) = app.store().migration_status().await?;
            eprintln!(
                "{} database is up to date: {applied} of {known} migrations applied",
                app.store().backend().as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(cmd) => admin::run(&app, cmd).await,
        Command::Token(cmd) => token::run(&app, cmd).await,
        Command::Verify { .. } | Command::Emit(_) => unreachable!("handled above"),
    };
    app.store().close().await;
    outcome
}
