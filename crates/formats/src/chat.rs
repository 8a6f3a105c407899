//! The bodies chat apps' incoming webhooks accept, one function per app, each from the
//! event's label, its sentence and the envelope's time and site:
//!
//! * Slack — `text` (the notification's words) and `blocks`: a `section` in `mrkdwn` with the
//!   title linked, a `context` line (api.slack.com/messaging/webhooks, Block Kit).
//! * Discord — one `embed` (title, description in Discord's Markdown, url, timestamp, footer)
//!   with `allowed_mentions` empty, so nothing an LMS sends can ping anyone
//!   (discord.com/developers/docs/resources/webhook#execute-webhook).
//! * Microsoft Teams — a `message` with one Adaptive Card attachment, what a Teams Workflows
//!   "When a Teams webhook request is received" flow posts (Office 365 connector cards are
//!   retired).
//! * Google Chat — `text` with Chat's own markup: `*bold*` and `<url|label>` links
//!   (developers.google.com/workspace/chat/format-messages).
//!
//! Words that come from the LMS are escaped for each app, so a course title cannot inject a
//! link, a mention or markup.

use serde_json::{json, Value};

use crate::sentence::Sentence;
use crate::Envelope;

/// Discord's limits: embed title 256 characters, description 4096.
const DISCORD_TITLE_MAX: usize = 256;
const DISCORD_DESCRIPTION_MAX: usize = 4096;
/// Slack's limit on a section's text.
const SLACK_SECTION_MAX: usize = 3000;

/// What every chat body is made of.
pub struct Message<'a> {
    /// The event's label ("Course completed").
    pub label: &'a str,
    /// The sentence.
    pub sentence: &'a Sentence,
    /// The event's envelope (time, site).
    pub envelope: &'a Envelope,
}

impl Message<'_> {
    /// "academy.example · 2026-11-27T10:00:00.123Z": where and when, for the small print.
    fn context(&self) -> String {
        let site = self
            .envelope
            .site_url
            .as_deref()
            .map(|u| {
                u.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
            })
            .filter(|s| !s.is_empty())
            .unwrap_or("Learnomy");
        format!("{site} · {}", self.envelope.created_at)
    }
}

/// Cuts `text` to at most `max` characters, ending with "…" when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack's three escapes (`&`, `<`, `>`): the only characters mrkdwn treats as control.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack's body.
pub fn slack(m: &Message<'_>) -> Value {
    let line = m.sentence.markup(slack_escape, |title, url| match url {
        Some(url) => format!("*<{}|{}>*", slack_escape(url), slack_escape(title)),
        None => format!("*{}*", slack_escape(title)),
    });
    json!({
        "text": format!("{}: {}", m.label, m.sentence.plain()),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": cut(&format!("*{}*\n{}", slack_escape(m.label), line), SLACK_SECTION_MAX),
                },
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": slack_escape(&m.context())}],
            },
        ],
    })
}

/// A backslash before every character Discord's (and Teams') Markdown gives a meaning.
fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '|'
                | '>'
                | '#'
                | '['
                | ']'
                | '('
                | ')'
                | '<'
                | '@'
                | '-'
                | '+'
                | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Markdown link's URL with the characters that would end it escaped.
fn markdown_url(url: &str) -> String {
    url.replace('(', "%28")
        .replace(')', "%29")
        .replace(' ', "%20")
}

fn markdown_line(sentence: &Sentence) -> String {
    sentence.markup(markdown_escape, |title, url| match url {
        Some(url) => format!("[**{}**]({})", markdown_escape(title), markdown_url(url)),
        None => format!("**{}**", markdown_escape(title)),
    })
}

/// Discord's body.
pub fn discord(m: &Message<'_>) -> Value {
    let mut embed = json!({
        "title": cut(m.label, DISCORD_TITLE_MAX),
        "description": cut(&markdown_line(m.sentence), DISCORD_DESCRIPTION_MAX),
        "color": 0x3858e9,
        "timestamp": m.envelope.created_at,
        "footer": {"text": m.context()},
    });
    if let Some(url) = m.sentence.link() {
        embed["url"] = json!(url);
    }
    json!({
        "username": "Learnomy",
        "allowed_mentions": {"parse": []},
        "embeds": [embed],
    })
}

/// Microsoft Teams' body: an Adaptive Card 1.4 in a message.
pub fn teams(m: &Message<'_>) -> Value {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": markdown_escape(m.label), "weight": "Bolder", "size": "Medium", "wrap": true},
            {"type": "TextBlock", "text": markdown_line(m.sentence), "wrap": true},
            {"type": "TextBlock", "text": markdown_escape(&m.context()), "isSubtle": true, "size": "Small", "wrap": true},
        ],
    });
    if let Some(url) = m.sentence.link() {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open", "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// Google Chat has no escape for its markup: the characters that would start a link or bold
/// text are replaced by look-alikes.
fn chat_escape(text: &str) -> String {
    text.replace('<', "‹")
        .replace('>', "›")
        .replace('*', "∗")
        .replace('_', "ˍ")
        .replace('~', "∼")
        .replace('`', "ˋ")
}

/// Google Chat's body.
pub fn google_chat(m: &Message<'_>) -> Value {
    let line = m.sentence.markup(chat_escape, |title, url| match url {
        Some(url) => format!(
            "*<{}|{}>*",
            url.replace(['<', '>', '|'], ""),
            chat_escape(title)
        ),
        None => format!("*{}*", chat_escape(title)),
    });
    json!({"text": format!("*{}*\n{}\n{}", chat_escape(m.label), line, chat_escape(&m.context()))})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            id: "evt_1".into(),
            event: "course_completed".into(),
            created_at: "2026-11-27T10:00:00.123Z".into(),
            site_url: Some("https://academy.example/".into()),
            data: json!({}),
        }
    }

    fn sentence(title: &str) -> Sentence {
        Sentence::build(
            "{user} completed {course}",
            "",
            &json!({"user_name": "Jane <@everyone> Doe", "course_title": title,
                "course_url": "https://academy.example/c/1"}),
        )
    }

    #[test]
    fn slack_links_the_title_and_escapes_what_the_lms_sent() {
        let (e, s) = (envelope(), sentence("Rust & <b>"));
        let body = slack(&Message {
            label: "Course completed",
            sentence: &s,
            envelope: &e,
        });
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(
            section,
            "*Course completed*\nJane &lt;@everyone&gt; Doe completed *<https://academy.example/c/1|Rust &amp; &lt;b&gt;>*"
        );
        assert_eq!(
            body["blocks"][1]["elements"][0]["text"],
            "academy.example · 2026-11-27T10:00:00.123Z"
        );
        assert!(body["text"]
            .as_str()
            .unwrap()
            .starts_with("Course completed: Jane"));
    }

    #[test]
    fn discord_pings_nobody_and_escapes_markdown() {
        let (e, s) = (envelope(), sentence("**Bold** [x](y)"));
        let body = discord(&Message {
            label: "Course completed",
            sentence: &s,
            envelope: &e,
        });
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
        let embed = &body["embeds"][0];
        assert_eq!(embed["url"], "https://academy.example/c/1");
        assert_eq!(
            embed["description"],
            r"Jane \<\@everyone\> Doe completed [**\*\*Bold\*\* \[x\]\(y\)**](https://academy.example/c/1)"
        );
        let long = Sentence::build(&"x".repeat(5000), "", &json!({}));
        let cut_body = discord(&Message {
            label: "L",
            sentence: &long,
            envelope: &e,
        });
        assert_eq!(
            cut_body["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            4096
        );
    }

    #[test]
    fn teams_sends_an_adaptive_card_with_an_open_action() {
        let (e, s) = (envelope(), sentence("Rust"));
        let body = teams(&Message {
            label: "Course completed",
            sentence: &s,
            envelope: &e,
        });
        let card = &body["attachments"][0]["content"];
        assert_eq!(
            body["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["actions"][0]["url"], "https://academy.example/c/1");
    }

    #[test]
    fn google_chat_marks_up_with_its_own_syntax() {
        let (e, s) = (envelope(), sentence("Rust *fast*"));
        let body = google_chat(&Message {
            label: "Course completed",
            sentence: &s,
            envelope: &e,
        });
        assert_eq!(
            body["text"],
            "*Course completed*\nJane ‹@everyone› Doe completed *<https://academy.example/c/1|Rust ∗fast∗>*\nacademy.example · 2026-11-27T10:00:00.123Z"
        );
    }
}
