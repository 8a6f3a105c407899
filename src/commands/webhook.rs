//! `webhook list | rotate-secret | complete-rotation`.

use std::process::ExitCode;

use anyhow::Context;
use lwh_app::App;
use lwh_domain::{Timestamp, WebhookId};

use crate::cli::WebhookCommand;

/// Runs a webhook subcommand.
pub async fn run(app: &App, cmd: WebhookCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WebhookCommand::List => {
            let (webhooks, _) = app.list_webhooks().await?;
            if webhooks.is_empty() {
                eprintln!("no webhooks yet: add one in the console or with POST /api/v1/webhooks");
            }
            for w in webhooks {
                let rotation = w
                    .rotation_ends_at
                    .map(|t| format!("\trotating until {}", t.to_rfc3339()))
                    .unwrap_or_default();
                let throttle = w
                    .throttle
                    .map(|t| format!("\tat most {}/s", t.per_second()))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}{throttle}{rotation}",
                    w.id,
                    w.status.as_str(),
                    w.url
                );
            }
        }
        WebhookCommand::RotateSecret { id, overlap } => {
            let id = webhook_id(&id)?;
            let rotated = app.rotate_secret(id, None, overlap.as_deref()).await?;
            // The secret alone on stdout, so scripts can capture it.
            println!("{}", rotated.secret.expose());
            let ends = rotated
                .webhook
                .rotation_ends_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            eprintln!(
                "rotating {id}: the new secret signs now (X-Learnomy-Signature-Next, webhook-signature); \
                 the previous one keeps signing X-Learnomy-Signature until {ends}, then it is destroyed. \
                 It is not shown again."
            );
        }
        WebhookCommand::CompleteRotation { id } => {
            let id = webhook_id(&id)?;
            app.finish_rotation(id).await?;
            eprintln!("{id}: only the new secret signs; the previous one is destroyed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `recover WEBHOOK --since … [--until …]`.
pub async fn recover(
    app: &App,
    id: &str,
    since: &str,
    until: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let id = webhook_id(id)?;
    let time = |text: &str, what: &str| {
        Timestamp::parse_rfc3339(text).with_context(|| {
            format!("--{what} must be an RFC 3339 date-time, e.g. 2026-11-27T00:00:00Z")
        })
    };
    let since = time(since, "since")?;
    let until = until.map(|t| time(t, "until")).transpose()?;
    let n = app.recover(id, since, until).await?;
    println!("{n}");
    eprintln!("{n} failed deliveries of {id} queued again");
    Ok(ExitCode::SUCCESS)
}

fn webhook_id(text: &str) -> anyhow::Result<WebhookId> {
    text.parse()
        .context("webhook ids look like wh_01J… (see `learnomy-webhooks webhook list`)")
}
