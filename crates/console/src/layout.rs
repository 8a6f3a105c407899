//! The page shell shared by every console page, and small view helpers.

use lwh_domain::{DeliveryStatus, Timestamp, WebhookStatus};
use maud::{html, Markup, DOCTYPE};

use crate::session::Session;

/// Which item of the side menu is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Settings > Webhooks (and its Delivery Log).
    Webhooks,
    /// API tokens.
    Tokens,
    /// The API reference.
    Api,
}

/// A full page: header bar, side menu ("Learnomy Settings"), content.
pub fn page(title: &str, session: &Session, section: Section, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(session.csrf);
                title { (title) " ‹ Learnomy" }
                link rel="stylesheet" href="/admin/assets/app.css";
                script src="/admin/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    span.brand { "Learnomy" }
                    span.topbar-spacer {}
                    span.user { "Signed in as " strong { (session.user_name) } }
                    form method="post" action="/admin/logout" {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        button.link-button type="submit" { "Sign out" }
                    }
                }
                div.shell {
                    nav.sidebar aria-label="Learnomy Settings" {
                        p.sidebar-title { "Learnomy Settings" }
                        ul {
                            li { a href="/admin/webhooks" aria-current=[(section == Section::Webhooks).then_some("page")] { "Webhooks" } }
                            li { a href="/admin/tokens" aria-current=[(section == Section::Tokens).then_some("page")] { "API tokens" } }
                            li { a href="/admin/api" aria-current=[(section == Section::Api).then_some("page")] { "API reference" } }
                        }
                    }
                    main #main tabindex="-1" { (content) }
                }
            }
        }
    }
}

/// A page for signed-out visitors (login, first-run setup).
pub fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " ‹ Learnomy" }
                link rel="stylesheet" href="/admin/assets/app.css";
            }
            body.bare {
                main.login-card {
                    p.brand.brand-large { "Learnomy" }
                    (content)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="_csrf" value=(session.csrf); }
}

/// "2026-11-28 17:51:02 UTC": the text a time shows without JavaScript, and its tooltip.
pub fn utc_text(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    format!("{} {} UTC", &text[..10], &text[11..19])
}

/// A time, or "Never": in UTC from the server, turned into the viewer's local time by the
/// page's script (`data-local`), with UTC kept in the tooltip.
pub fn when(t: Option<Timestamp>) -> Markup {
    match t {
        None => html! { "Never" },
        Some(t) => {
            let utc = utc_text(t);
            html! { time datetime=(t.to_rfc3339()) title=(utc) data-local { (utc) } }
        }
    }
}

/// "just now", "45 s ago", "2 min ago", "3 h ago", "4 days ago": how long before `now`.
pub fn ago(t: Timestamp, now: Timestamp) -> String {
    let secs = (now.millis() - t.millis()).max(0) / 1000;
    match secs {
        0..=4 => "just now".to_owned(),
        5..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        86_400..=172_799 => "1 day ago".to_owned(),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// A time as "2 min ago", with the exact time (UTC, local by the script) in its tooltip.
pub fn ago_markup(t: Timestamp, now: Timestamp) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(utc_text(t)) data-title-local { (ago(t, now)) } }
}

/// A URL that wraps at its separators (after `/`, `?`, `&`, `.`) instead of mid-word.
pub fn wrappable_url(url: &str) -> Markup {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in url.char_indices() {
        if matches!(c, '/' | '?' | '&' | '.' | '=') {
            pieces.push(&url[start..i + 1]);
            start = i + 1;
        }
    }
    pieces.push(&url[start..]);
    html! { @for piece in pieces { (piece) wbr; } }
}

/// Text from doc comments with its `backticked` parts as code, as Markdown would show them.
pub fn with_code(text: &str) -> Markup {
    let pieces: Vec<&str> = text.split('`').collect();
    // An unmatched backtick is shown as it is.
    if pieces.len().is_multiple_of(2) {
        return html! { (text) };
    }
    html! {
        @for (i, piece) in pieces.iter().enumerate() {
            @if i % 2 == 1 { code { (piece) } } @else { (piece) }
        }
    }
}

/// The first `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

/// A coloured status label for a webhook.
pub fn webhook_badge(status: WebhookStatus) -> Markup {
    html! { span class={"badge status-" (status.as_str())} { (status.label()) } }
}

/// A coloured status label for a delivery.
pub fn delivery_badge(status: DeliveryStatus) -> Markup {
    html! { span class={"badge delivery-" (status.as_str())} { (status.label()) } }
}

/// 12345 → "12,345".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_to_sixty_characters() {
        let long = format!("https://example.com/{}", "a".repeat(80));
        let cut = truncate(&long, 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
        assert_eq!(
            truncate("https://short.example/", 60),
            "https://short.example/"
        );
    }

    #[test]
    fn formats_times_and_never() {
        assert_eq!(when(None).into_string(), "Never");
        let t = Timestamp::parse_rfc3339("2026-11-28T17:51:02.345Z").unwrap();
        assert_eq!(utc_text(t), "2026-11-28 17:51:02 UTC");
        let shown = when(Some(t)).into_string();
        assert!(shown.contains("data-local"), "{shown}");
        assert!(shown.contains(">2026-11-28 17:51:02 UTC</time>"), "{shown}");
    }

    #[test]
    fn says_how_long_ago() {
        let now = Timestamp::from_millis(10_000_000_000);
        let before = |secs: i64| Timestamp::from_millis(now.millis() - secs * 1000);
        assert_eq!(ago(before(2), now), "just now");
        assert_eq!(ago(before(45), now), "45 s ago");
        assert_eq!(ago(before(150), now), "2 min ago");
        assert_eq!(ago(before(3 * 3600 + 5), now), "3 h ago");
        assert_eq!(ago(before(90_000), now), "1 day ago");
        assert_eq!(ago(before(4 * 86_400), now), "4 days ago");
        // A clock a little ahead elsewhere is "just now", not negative.
        assert_eq!(
            ago(Timestamp::from_millis(now.millis() + 3000), now),
            "just now"
        );
    }

    #[test]
    fn backticks_become_code() {
        assert_eq!(
            with_code("send `events:write` or `webhooks:manage`").into_string(),
            "send <code>events:write</code> or <code>webhooks:manage</code>"
        );
        assert_eq!(with_code("a ` alone").into_string(), "a ` alone");
    }

    #[test]
    fn urls_wrap_at_separators() {
        let shown = wrappable_url("https://hooks.example/a?b=c").into_string();
        assert_eq!(
            shown,
            "https:/<wbr>/<wbr>hooks.<wbr>example/<wbr>a?<wbr>b=<wbr>c<wbr>"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
