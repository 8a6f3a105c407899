//! Notification mails: when a webhook becomes Failed, recovers or exhausts a delivery, the
//! addresses in `notify_emails` get a short plain-text mail with the reason and a link to the
//! webhook — at most one per webhook per hour (a flapping endpoint sends one, not dozens).
//!
//! Mail goes out through `smtp_url` with `lettre`, in a task of its own: a slow or unreachable
//! server delays nothing else. A mail that cannot be sent is logged and counted in
//! `learnomy_webhooks_mails_total{result="failed"}`; it is not retried (the next situation an
//! hour later sends again).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use lwh_domain::{Timestamp, WebhookId};

use crate::app::App;
use crate::settings::Settings;

/// At most one mail per webhook in this time.
pub const MAIL_GAP: Duration = Duration::from_secs(3600);

/// How long one mail may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The configured SMTP server, sender and recipients.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// Problems with the mail settings, for [`Settings::validate`].
pub(crate) fn check_settings(s: &Settings) -> Vec<String> {
    match Mailer::from_settings(s) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

impl Mailer {
    /// The mailer `s` describes; `None` when `smtp_url` or `notify_emails` is empty.
    pub fn from_settings(s: &Settings) -> Result<Option<Self>, Vec<String>> {
        let mut problems = Vec::new();
        let from = s
            .notify_from
            .parse::<Mailbox>()
            .map_err(|e| problems.push(format!("notify_from {:?}: {e}", s.notify_from)))
            .ok();
        let to: Vec<Mailbox> = s
            .notify_emails
            .iter()
            .filter_map(|a| {
                a.parse::<Mailbox>()
                    .map_err(|e| problems.push(format!("notify_emails {a:?}: {e}")))
                    .ok()
            })
            .collect();
        let url = s.smtp_url.0.trim();
        let transport = if url.is_empty() {
            None
        } else {
            // The URL is not repeated in the problem: it may hold a password.
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|b| b.timeout(Some(SEND_TIMEOUT)).build())
                .map_err(|e| problems.push(format!("smtp_url is not a usable SMTP URL: {e}")))
                .ok()
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(match (transport, from) {
            (Some(transport), Some(from)) if !to.is_empty() => Some(Self {
                transport,
                from,
                to,
            }),
            _ => None,
        })
    }
}

/// One notification: its subject and body.
pub struct Notice {
    /// The subject line.
    pub subject: String,
    /// Plain-text lines of the body (the link and the footer are added).
    pub lines: Vec<String>,
}

impl App {
    /// Mails `notice` about `webhook` to `notify_emails`, unless mail is off or a mail about
    /// it went out within the hour. Returns at once; the mail is sent in its own task.
    pub async fn notify_by_mail(&self, webhook: WebhookId, notice: Notice) {
        let Some(mailer) = self.mailer() else {
            return;
        };
        let turn = self
            .store()
            .take_notification_turn(webhook, Timestamp::now(), MAIL_GAP.as_millis() as i64)
            .await;
        match turn {
            Ok(true) => {}
            Ok(false) => {
                metrics::counter!("learnomy_webhooks_mails_total", "result" => "suppressed")
                    .increment(1);
                return;
            }
            Err(e) => {
                tracing::error!(webhook_id = %webhook, error = %e, "cannot record a notification mail; not sent");
                metrics::counter!("learnomy_webhooks_mails_total", "result" => "failed")
                    .increment(1);
                return;
            }
        }
        let link = self.webhook_link(webhook);
        let mut body = notice.lines.join("\n");
        body.push_str(&format!(
            "\n\n{link}\n\nYou get at most one mail per webhook per hour. The service's \
             notify_emails setting says who gets them.\n"
        ));
        let mut message = Message::builder()
            .from(mailer.from.clone())
            .subject(notice.subject);
        for to in &mailer.to {
            message = message.to(to.clone());
        }
        let message = match message.body(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(webhook_id = %webhook, error = %e, "cannot build a notification mail");
                return;
            }
        };
        tokio::spawn(async move {
            match mailer.transport.send(message).await {
                Ok(_) => {
                    tracing::info!(webhook_id = %webhook, "notification mail sent");
                    metrics::counter!("learnomy_webhooks_mails_total", "result" => "sent")
                        .increment(1);
                }
                Err(e) => {
                    tracing::warn!(webhook_id = %webhook, error = %e, "cannot send a notification mail");
                    metrics::counter!("learnomy_webhooks_mails_total", "result" => "failed")
                        .increment(1);
                }
            }
        });
    }

    /// Where the mail points: the webhook's Delivery Log on Pro, its row on the Webhooks page
    /// on Free.
    fn webhook_link(&self, webhook: WebhookId) -> String {
        let s = self.settings();
        let base = if s.public_url.is_empty() {
            format!("http://{}", s.listen)
        } else {
            s.public_url.trim_end_matches('/').to_owned()
        };
        if s.plan.has_delivery_log() {
            format!("Delivery Log: {base}/admin/webhooks/{webhook}/log")
        } else {
            format!("Webhooks page: {base}/admin/webhooks#row-{webhook}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SmtpUrl;

    fn with(smtp: &str, to: &[&str]) -> Settings {
        Settings {
            smtp_url: SmtpUrl(smtp.to_owned()),
            notify_emails: to.iter().map(|a| (*a).to_owned()).collect(),
            ..Settings::default()
        }
    }

    #[tokio::test]
    async fn mail_is_off_unless_a_server_and_recipients_are_set() {
        assert!(Mailer::from_settings(&with("", &["ops@example.com"]))
            .unwrap()
            .is_none());
        assert!(Mailer::from_settings(&with("smtp://127.0.0.1:25", &[]))
            .unwrap()
            .is_none());
        assert!(
            Mailer::from_settings(&with("smtps://u:p@mail.example.com", &["ops@example.com"]))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn bad_mail_settings_are_named_without_echoing_the_password() {
        let problems = check_settings(&with("ftp://u:hunter2-pw@x", &["not an address"]));
        let all = problems.join("\n");
        assert!(all.contains("notify_emails \"not an address\""), "{all}");
        assert!(all.contains("smtp_url is not a usable SMTP URL"), "{all}");
        assert!(!all.contains("hunter2-pw"), "{all}");
        let shown = format!(
            "{:?}",
            SmtpUrl("smtps://u:hunter2-pw@mail.example.com".into())
        );
        assert!(
            !shown.contains("hunter2-pw") && shown.contains("mail.example.com"),
            "{shown}"
        );
    }
}
