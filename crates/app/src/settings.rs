//! Every setting of the service, with its safe default (docs/configuration.md).
//!
//! Loaded by the binary from `learnomy-webhooks.toml`, then `LEARNOMY_WEBHOOKS_<KEY>`
//! environment variables, then flags. The docs' configuration reference is generated from
//! [`Settings::reference`], so it cannot drift from this struct.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use lwh_domain::catalogue::ExtraEvent;
use lwh_domain::Plan;
use serde::{Deserialize, Serialize};

use crate::duration::Dur;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, ids as fields.
    Json,
}

/// The service's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Folder for the SQLite file and the master key.
    pub data_dir: PathBuf,
    /// Empty for SQLite in `data_dir`; `postgres://…` for PostgreSQL.
    pub database_url: String,
    /// `free` or `pro`.
    pub plan: Plan,
    /// Copied into every payload as `site_url` when set.
    pub site_url: String,
    /// Allow plain `http://` delivery URLs (development only).
    pub allow_http: bool,
    /// CIDRs exempted from the SSRF policy, e.g. `["127.0.0.0/8"]`.
    pub allowed_networks: Vec<IpNet>,
    /// Delays after attempts 1..n; a delivery gets `1 + len` attempts.
    pub retry_schedule: Vec<Dur>,
    /// Continuous failure (with at least 5 failed attempts) before a webhook becomes Failed.
    pub failed_after: Dur,
    /// How often a Failed webhook is probed with `ping`.
    pub failed_probe_interval: Dur,
    /// TCP + TLS connect timeout per attempt.
    pub connect_timeout: Dur,
    /// Whole-request timeout per attempt.
    pub request_timeout: Dur,
    /// Concurrent requests to one webhook.
    pub max_in_flight_per_webhook: usize,
    /// Days finished deliveries, attempts and payloads are kept.
    pub retention_days: u32,
    /// Pro: events added to the catalogue.
    pub extra_events: Vec<ExtraEvent>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Time for a client to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    pub http_header_timeout: Dur,
    /// Time for a client to send a request's body and get its answer.
    pub http_request_timeout: Dur,
    /// Connections the HTTP server keeps open at once; more wait their turn.
    pub http_max_connections: usize,
    /// After SIGTERM, how long requests in flight get before the process exits.
    pub shutdown_timeout: Dur,
    /// The console's address as admins reach it, for links in mails; empty: `http://{listen}`.
    pub public_url: String,
    /// `smtp://`, `smtps://` (TLS) or `smtp://…?tls=required` (STARTTLS) server for
    /// notification mails; empty: no mail. May hold a user name and password: never logged.
    pub smtp_url: SmtpUrl,
    /// Who gets a mail when a webhook fails, recovers or exhausts a delivery.
    pub notify_emails: Vec<String>,
    /// The mails' sender.
    pub notify_from: String,
}

/// The SMTP server's URL, with any password kept out of `Debug` output.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(u) if u.password().is_some() => {
                write!(f, "{}://…@{}", u.scheme(), u.host_str().unwrap_or(""))
            }
            _ => write!(f, "{:?}", self.0),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            plan: Plan::Free,
            site_url: String::new(),
            allow_http: false,
            allowed_networks: Vec::new(),
            retry_schedule: ["5s", "1m", "5m", "30m", "2h", "6h", "12h"]
                .iter()
                .filter_map(|t| humantime::parse_duration(t).ok().map(Dur))
                .collect(),
            failed_after: Dur::secs(24 * 3600),
            failed_probe_interval: Dur::secs(3600),
            connect_timeout: Dur::secs(5),
            request_timeout: Dur::secs(15),
            max_in_flight_per_webhook: 32,
            retention_days: 30,
            extra_events: Vec::new(),
            log_format: LogFormat::Text,
            http_header_timeout: Dur::secs(10),
            http_request_timeout: Dur::secs(30),
            http_max_connections: 4096,
            shutdown_timeout: Dur::secs(30),
            public_url: String::new(),
            smtp_url: SmtpUrl::default(),
            notify_emails: Vec::new(),
            notify_from: "Learnomy Webhooks <learnomy-webhooks@localhost>".to_owned(),
        }
    }
}

impl Settings {
    /// Checks values serde cannot: ranges and combinations. Returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.retry_schedule.is_empty() {
            problems.push("retry_schedule must list at least one delay".to_owned());
        }
        if self.max_in_flight_per_webhook == 0 {
            problems.push("max_in_flight_per_webhook must be at least 1".to_owned());
        }
        if self.retention_days == 0 {
            problems.push("retention_days must be at least 1".to_owned());
        }
        if self.request_timeout.get().is_zero() || self.connect_timeout.get().is_zero() {
            problems.push("connect_timeout and request_timeout must be positive".to_owned());
        }
        if self.http_header_timeout.get().is_zero()
            || self.http_request_timeout.get().is_zero()
            || self.shutdown_timeout.get().is_zero()
        {
            problems.push(
                "http_header_timeout, http_request_timeout and shutdown_timeout must be positive"
                    .to_owned(),
            );
        }
        if self.http_max_connections == 0 {
            problems.push("http_max_connections must be at least 1".to_owned());
        }
        // The Test button waits for one delivery attempt inside an HTTP request.
        if self.http_request_timeout.get()
            <= self.connect_timeout.get() + self.request_timeout.get()
        {
            problems.push(format!(
                "http_request_timeout ({}) must be longer than connect_timeout + request_timeout ({}), \
                 which a Test of a webhook may take",
                self.http_request_timeout,
                Dur(self.connect_timeout.get() + self.request_timeout.get())
            ));
        }
        if !self.site_url.is_empty() && url::Url::parse(&self.site_url).is_err() {
            problems.push(format!("site_url {:?} is not a URL", self.site_url));
        }
        if !self.public_url.is_empty() && url::Url::parse(&self.public_url).is_err() {
            problems.push(format!("public_url {:?} is not a URL", self.public_url));
        }
        problems.extend(crate::mail::check_settings(self));
        if !self.extra_events.is_empty() && self.plan == Plan::Free {
            problems.push(
                "extra_events are a Pro feature: set plan = \"pro\" or remove them".to_owned(),
            );
        }
        if let Err(e) = lwh_domain::Catalogue::for_plan(self.plan, &self.extra_events) {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The defaults as a commented TOML file: the configuration reference.
    pub fn reference() -> String {
        let defaults = toml_like(&Settings::default());
        let mut out = String::from(
            "# learnomy-webhooks.toml — every setting with its default.\n\
             # Each key can also be set as LEARNOMY_WEBHOOKS_<KEY> in the environment.\n\n",
        );
        for (key, doc) in FIELD_DOCS {
            out.push_str(&format!("# {doc}\n"));
            if let Some(line) = defaults.iter().find(|l| l.starts_with(&format!("{key} ="))) {
                out.push_str(line);
                out.push('\n');
            } else {
                out.push_str(&format!("# {key} = …\n"));
            }
            out.push('\n');
        }
        out
    }
}

/// One-line docs for the reference, in file order.
const FIELD_DOCS: &[(&str, &str)] = &[
    ("listen", "Address the HTTP server (console, API, health, metrics) listens on."),
    ("data_dir", "Folder for the SQLite database and master.key."),
    ("database_url", "Empty: SQLite in data_dir. postgres://user@host/db for PostgreSQL (also DATABASE_URL)."),
    ("plan", "\"free\" (3 webhooks, core events) or \"pro\" (unlimited, Pro events, delivery log)."),
    ("site_url", "Copied into every payload as site_url when set."),
    ("allow_http", "Allow plain http:// delivery URLs. Development only."),
    ("allowed_networks", "CIDRs exempted from the SSRF policy, e.g. [\"127.0.0.0/8\"]. Empty by default."),
    ("retry_schedule", "Delays after attempts 1, 2, …: a delivery gets one attempt more than there are delays (8 with these). Each delay has ±15% jitter; a retry due within 10 s starts on time, a later one within about a second."),
    ("failed_after", "Continuous failure (and at least 5 failed attempts) before a webhook becomes Failed."),
    ("failed_probe_interval", "How often a Failed webhook gets a ping probe; a 2xx makes it Active again."),
    ("connect_timeout", "Connect timeout per attempt."),
    ("request_timeout", "Whole-request timeout per attempt."),
    ("max_in_flight_per_webhook", "Concurrent requests to one webhook, so one slow endpoint cannot hold up others."),
    ("retention_days", "Days delivered and failed deliveries, their attempts and payloads are kept."),
    ("extra_events", "Pro: extra catalogue events, e.g. [{ slug = \"badge_awarded\", label = \"Badge awarded\" }]."),
    ("log_format", "\"text\" or \"json\" (also --log-format)."),
    ("http_header_timeout", "Time a client gets to send a request's headers; also how long an idle keep-alive connection stays open."),
    ("http_request_timeout", "Time a client gets to send a request's body and receive the answer (408 beyond). Longer than connect_timeout + request_timeout, which a Test may take."),
    ("http_max_connections", "Connections open at once; more wait in the listen backlog until one closes."),
    ("shutdown_timeout", "After SIGTERM, how long requests in flight get; then the process exits (accepted events are already durable)."),
    ("public_url", "The console's address as admins reach it (e.g. https://webhooks.example.com), for the links in notification mails. Empty: http://<listen>."),
    ("smtp_url", "SMTP server for notification mails: smtp://host:25, smtps://user:pass@host:465 (TLS) or smtp://user:pass@host:587?tls=required (STARTTLS). Empty: no mail. Never logged."),
    ("notify_emails", "Who gets a mail when a webhook becomes Failed, recovers, or exhausts a delivery: at most one per webhook per hour, e.g. [\"ops@example.com\"]."),
    ("notify_from", "The notification mails' sender."),
];

fn toml_like(settings: &Settings) -> Vec<String> {
    let value = serde_json::to_value(settings).unwrap_or_default();
    let Some(map) = value.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| format!("{k} = {}", toml_value(v)))
        .collect()
}

fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_contract() {
        let s = Settings::default();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.retry_schedule.len(), 7);
        assert_eq!(s.retry_schedule[6], Dur::secs(12 * 3600));
        assert_eq!(s.max_in_flight_per_webhook, 32);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn reads_the_documented_toml() {
        let text = r#"
            listen = "127.0.0.1:9000"
            plan = "pro"
            allowed_networks = ["127.0.0.0/8"]
            retry_schedule = ["1s", "2s"]
            failed_after = "10m"
            extra_events = [{ slug = "badge_awarded", label = "Badge awarded" }]
        "#;
        let s: Settings = toml::from_str(text).unwrap();
        assert_eq!(s.plan, Plan::Pro);
        assert_eq!(s.retry_schedule, vec![Dur::secs(1), Dur::secs(2)]);
        assert_eq!(s.failed_after, Dur::secs(600));
        assert!(s.validate().is_ok());
        assert!(toml::from_str::<Settings>("nonsense_key = 1").is_err());
        assert!(toml::from_str::<Settings>("failed_after = \"soon\"").is_err());
    }

    #[test]
    fn refuses_inconsistent_values() {
        let s = Settings {
            retry_schedule: vec![],
            extra_events: vec![ExtraEvent {
                slug: "x_y".into(),
                label: None,
                description: None,
            }],
            ..Settings::default()
        };
        let problems = s.validate().unwrap_err();
        assert!(problems.iter().any(|p| p.contains("retry_schedule")));
        assert!(problems.iter().any(|p| p.contains("Pro feature")));
    }

    #[test]
    fn reference_documents_every_key() {
        let reference = Settings::reference();
        let parsed: Settings = toml::from_str(&reference).unwrap();
        assert_eq!(parsed, Settings::default());
        for (key, _) in FIELD_DOCS {
            assert!(reference.contains(&format!("{key} =")), "{key}");
        }
    }
}
