//! The command line: one binary, one subcommand per job (README.md, "CLI").

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Learnomy Outgoing Webhooks: POSTs a signed JSON payload to every webhook subscribed to an
/// LMS event, with an admin console, a REST API and a durable delivery engine.
///
/// Start with `learnomy-webhooks serve`; data goes to ./data (SQLite) unless --database-url
/// points at PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "learnomy-webhooks", version, propagate_version = true)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// TOML config file [default: ./learnomy-webhooks.toml if it exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite database and master.key [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// postgres://user@host/db to use PostgreSQL instead of the embedded SQLite database.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log line format [default: text].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (console, API, health, metrics) and the delivery workers.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run delivery workers only (scale-out with PostgreSQL); with --listen, also serve
    /// /healthz, /readyz and /metrics (no API, no console) for monitoring.
    Worker {
        /// Address for the health and metrics endpoints [default: none].
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage console users.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Redeliver a webhook's Failed deliveries created in a time window (Pro); prints how many
    /// were queued again.
    Recover {
        /// Webhook id (wh_…, from `webhook list`).
        webhook: String,
        /// Start of the window (RFC 3339, e.g. 2026-11-27T00:00:00Z).
        #[arg(long)]
        since: String,
        /// End of the window (RFC 3339) [default: now].
        #[arg(long)]
        until: Option<String>,
    },
    /// List webhooks and rotate their secrets.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Report an event through the API (for scripts and smoke tests).
    Emit(EmitArgs),
    /// Check an X-Learnomy-Signature against a captured body read from stdin: exit 0 if it
    /// matches, 1 if it does not.
    Verify {
        /// The webhook's secret key.
        #[arg(long)]
        secret: String,
        /// The X-Learnomy-Signature header value (hex).
        #[arg(long)]
        signature: String,
    },
}

/// `admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a console user; the password is prompted for, or read from stdin.
    CreateUser(UserArgs),
    /// Set a new password for a console user and sign them out everywhere.
    ResetPassword(UserArgs),
}

/// A user name and how to read the password.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// Login name.
    pub name: String,
    /// Read the password as one line from stdin instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it alone on stdout (it is not shown again).
    Create {
        /// `events:write` (ingestion only, for the LMS) or `webhooks:manage` (everything); repeat
        /// it for a token holding both (the WordPress plugin reports events and manages webhooks).
        #[arg(long, required = true, value_parser = ["events:write", "webhooks:manage"])]
        scope: Vec<String>,
        /// A name to recognise the token by.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id (tok_…).
    Revoke {
        /// Token id from `token list`.
        id: String,
    },
}

/// `webhook …`
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// List webhooks: id, status, URL and, during a rotation, when it ends.
    List,
    /// Start a secret rotation and print the new secret alone on stdout (it is not shown
    /// again). The previous secret keeps signing beside it for the overlap, then is destroyed.
    RotateSecret {
        /// Webhook id (wh_…, from `webhook list`).
        id: String,
        /// How long the previous secret keeps signing: e.g. 24h (the default), 90m, 7d (the
        /// most); 0s ends it at once.
        #[arg(long)]
        overlap: Option<String>,
    },
    /// End a rotation now: only the new secret signs, the previous one is destroyed.
    CompleteRotation {
        /// Webhook id (wh_…).
        id: String,
    },
}

/// `emit EVENT --data JSON`
#[derive(Debug, Args)]
pub struct EmitArgs {
    /// Event slug, e.g. course_completed.
    pub event: String,
    /// The event's data as a JSON object.
    #[arg(long, default_value = "{}")]
    pub data: String,
    /// Idempotency key: repeating it within 24 h creates nothing new.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Service base URL [default: http://<listen> from the config].
    #[arg(long)]
    pub url: Option<String>,
    /// API token with scope events:write (or webhooks:manage).
    #[arg(long, env = "LEARNOMY_WEBHOOKS_TOKEN", hide_env_values = true)]
    pub token: String,
}
