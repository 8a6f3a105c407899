//! A webhook's body format (§15): the Learnomy payload, a chat app's body, or the admin's own
//! template. The bodies themselves are built by the `lwh-formats` crate.

/// A webhook's body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Format {
    /// The Learnomy payload (§5 of the contract).
    #[default]
    Learnomy,
    /// Slack incoming webhooks.
    Slack,
    /// Discord webhooks.
    Discord,
    /// Microsoft Teams (Workflows) webhooks.
    Teams,
    /// Google Chat webhooks.
    GoogleChat,
    /// The webhook's own MiniJinja template.
    Template,
}

impl Format {
    /// Every format, in the order the console offers them.
    pub const ALL: [Format; 6] = [
        Format::Learnomy,
        Format::Slack,
        Format::Discord,
        Format::Teams,
        Format::GoogleChat,
        Format::Template,
    ];

    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Learnomy => "learnomy",
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Teams => "teams",
            Format::GoogleChat => "google_chat",
            Format::Template => "template",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// How the console names it.
    pub fn label(self) -> &'static str {
        match self {
            Format::Learnomy => "Learnomy JSON (signed payload)",
            Format::Slack => "Slack",
            Format::Discord => "Discord",
            Format::Teams => "Microsoft Teams",
            Format::GoogleChat => "Google Chat",
            Format::Template => "Custom template",
        }
    }
}
