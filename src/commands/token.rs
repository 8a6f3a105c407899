//! `token create | list | revoke`.

use std::process::ExitCode;

use anyhow::{anyhow, Context};
use lwh_app::{App, Scope, Scopes};
use lwh_domain::TokenId;

use crate::cli::TokenCommand;
use crate::hints::CommandPrefix;

/// Runs a token subcommand.
pub async fn run(app: &App, cmd: TokenCommand, hints: &CommandPrefix) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create { scope, name } => {
            let mut scopes = Scopes::default();
            for name in &scope {
                scopes.insert(Scope::parse(name).ok_or_else(|| anyhow!("unknown scope {name}"))?);
            }
            let created = app.create_api_token(scopes, &name).await?;
            // The token alone on stdout, so scripts can capture it.
            println!("{}", created.token);
            eprintln!(
                "created {} ({}, scopes {}); it is not shown again",
                created.record.id, created.record.name, created.record.scope
            );
        }
        TokenCommand::List => {
            let tokens = app.list_api_tokens().await?;
            if tokens.is_empty() {
                eprintln!(
                    "no tokens yet: {}",
                    hints.command("token create --scope webhooks:manage")
                );
            }
            for t in tokens {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => match t.last_used_at {
                        Some(at) => format!("last used {at}"),
                        None => "never used".to_owned(),
                    },
                };
                println!(
                    "{}\t{}…\t{}\t{}\tcreated {}\t{}",
                    t.id, t.prefix, t.scope, t.name, t.created_at, state
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let id: TokenId = id.parse().context("token ids look like tok_01J…")?;
            app.revoke_api_token(id).await?;
            eprintln!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
