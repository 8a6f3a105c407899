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

/// "2026-11-28 17:51 UTC", or "Never".
pub fn when(t: Option<Timestamp>) -> String {
    match t {
        None => "Never".to_owned(),
        Some(t) => {
            let text = t.to_rfc3339();
            format!("{} {} UTC", &text[..10], &text[11..19])
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
        assert_eq!(when(None), "Never");
        let t = Timestamp::parse_rfc3339("2026-11-28T17:51:02.345Z");
        assert_eq!(when(t), "2026-11-28 17:51:02 UTC");
    }
}
