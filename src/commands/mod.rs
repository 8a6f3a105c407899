//! One module per subcommand.

mod admin;
mod emit;
mod serve;
mod token;
mod verify;
mod webhook;
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
    if !matches!(
        cli.command,
        Command::Serve { .. } | Command::Worker { .. } | Command::Migrate
    ) {
        require_existing_service(&settings)?;
    }
    if matches!(cli.command, Command::Migrate) {
        eprintln!("opening the database and applying pending migrations…");
    }
    let hints = crate::hints::CommandPrefix::for_this_process(&cli.global);
    let app = App::open(settings, Arc::new(SystemResolver)).await?;
    let outcome = match cli.command {
        Command::Serve { .. } => serve::run(app.clone(), &hints).await,
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
        Command::Token(cmd) => token::run(&app, cmd, &hints).await,
        Command::Webhook(cmd) => webhook::run(&app, cmd).await,
        Command::Recover {
            webhook: id,
            since,
            until,
        } => webhook::recover(&app, &id, &since, until.as_deref()).await,
        Command::Verify { .. } | Command::Emit(_) => unreachable!("handled above"),
    };
    app.store().close().await;
    outcome
}

/// Commands that work on a service's data (tokens, users) must find it rather than create a
/// new, empty one: run from another folder, `token create` used to make a fresh `./data` with
/// a new master key and print a token the running service rejected. Only `serve`, `worker`
/// and `migrate` create a database and a master key.
fn require_existing_service(settings: &lwh_app::Settings) -> anyhow::Result<()> {
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let target =
        lwh_storage::DatabaseTarget::from_settings(&settings.database_url, &settings.data_dir)
            .map_err(|e| anyhow!(e))?;
    let hint =
        "point at the service's data with --data-dir DIR or --config FILE (the ones `serve` \
                was started with), or DATABASE_URL for PostgreSQL; or create it with \
                `learnomy-webhooks migrate` (or by starting `serve`)";
    if let lwh_storage::DatabaseTarget::Sqlite(path) = &target {
        if !path.exists() {
            anyhow::bail!("no database at {}: {hint}", absolute(path).display());
        }
    }
    let key = settings.data_dir.join("master.key");
    if std::env::var_os(lwh_app::MASTER_KEY_ENV).is_none() && !key.exists() {
        anyhow::bail!(
            "no master key at {} (nor LEARNOMY_WEBHOOKS_MASTER_KEY): {hint}",
            absolute(&key).display()
        );
    }
    Ok(())
}
