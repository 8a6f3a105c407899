//! `admin create-user | reset-password`.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{bail, Context};
use lwh_app::{App, AppError};

use crate::cli::{AdminCommand, UserArgs};

/// Runs an admin subcommand.
pub async fn run(app: &App, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let outcome = match &cmd {
        AdminCommand::CreateUser(args) => {
            let password = read_password(args)?;
            app.create_user(&args.name, &password)
                .await
                .map(|_| "created")
        }
        AdminCommand::ResetPassword(args) => {
            let password = read_password(args)?;
            app.reset_password(&args.name, &password)
                .await
                .map(|_| "updated")
        }
    };
    match outcome {
        Ok(what) => {
            let name = match &cmd {
                AdminCommand::CreateUser(a) | AdminCommand::ResetPassword(a) => &a.name,
            };
            eprintln!("user {name} {what}; sign in at /admin/login");
            Ok(ExitCode::SUCCESS)
        }
        Err(AppError::Validation(errors)) => {
            for e in errors {
                eprintln!("{}: {}", e.field, e.message);
            }
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

fn read_password(args: &UserArgs) -> anyhow::Result<String> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password(format!("Password for {}: ", args.name))
        .context("cannot read the password (use --password-stdin when there is no terminal)")?;
    let again = rpassword::prompt_password("Repeat the password: ")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(first)
}
