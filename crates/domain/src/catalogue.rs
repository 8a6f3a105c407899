//! The event catalogue: which events can fire a webhook, on which plan.
//!
//! The entries live in one data file (`catalogue.toml`) compiled into the binary, so adding an
//! event is a data change reviewed in one place. `extra_events` from the configuration are the
//! counterpart of WordPress's `learnomy_pro_webhooks_event_slugs` filter and exist on Pro only.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// The slug of the test event sent by the Test button and the Failed-webhook probe.
/// It is not in the catalogue and cannot be subscribed to.
pub const PING_EVENT: &str = "ping";

const CATALOGUE_TOML: &str = include_str!("catalogue.toml");

/// One event that webhooks can subscribe to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    /// Stable machine name, e.g. `course_completed`.
    pub slug: String,
    /// Short human name for the console checkbox.
    pub label: String,
    /// One sentence saying when the event fires.
    pub description: String,
    /// Heading the console groups checkboxes under.
    pub group: String,
    /// The event as a sentence for chat messages, with `{user}`, `{course}`… standing for
    /// the data (lwh_formats::sentence); empty: the label.
    #[serde(default)]
    pub sentence: String,
    /// Whether the event belongs to the Pro catalogue.
    #[serde(default)]
    pub pro: bool,
    /// Whether the service itself sends it (`lwh_domain::service_events`); an LMS may not.
    #[serde(default)]
    pub service: bool,
    /// An example `data` object, used by the docs and the Test payload.
    #[serde(default = "empty_object")]
    pub example: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// An event added by the operator through `extra_events` (Pro only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraEvent {
    /// Slug matching `^[a-z][a-z0-9_]{0,63}$`.
    pub slug: String,
    /// Human name; defaults to the slug.
    #[serde(default)]
    pub label: Option<String>,
    /// When the event fires; may be empty.
    #[serde(default)]
    pub description: Option<String>,
}

/// Why the catalogue could not be assembled (a broken data file or a bad `extra_events` entry).
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The compiled-in data file does not parse.
    #[error("the built-in catalogue is malformed: {0}")]
    Malformed(#[from] toml::de::Error),
    /// A slug breaks the slug rule.
    #[error("event slug {0:?} is invalid: use lowercase letters, digits and underscores, starting with a letter, at most 64 characters")]
    InvalidSlug(String),
    /// A slug appears twice.
    #[error("event slug {0:?} is defined twice")]
    Duplicate(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    event: Vec<CatalogueEntry>,
}

/// The events offered on the running plan, in console order. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalogue {
    entries: Arc<Vec<CatalogueEntry>>,
    index: Arc<HashMap<String, usize>>,
}

/// True when `slug` follows the catalogue's slug rule `^[a-z][a-z0-9_]{0,63}$`.
pub fn is_valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

impl Catalogue {
    /// Every built-in entry, core and Pro, regardless of plan.
    pub fn builtin_entries() -> Result<Vec<CatalogueEntry>, CatalogueError> {
        Ok(toml::from_str::<CatalogueFile>(CATALOGUE_TOML)?.event)
    }

    /// The catalogue a plan offers: core events on Free; core, Pro and `extra` events on Pro.
    pub fn for_plan(plan: Plan, extra: &[ExtraEvent]) -> Result<Self, CatalogueError> {
        let mut entries: Vec<CatalogueEntry> = Self::builtin_entries()?
            .into_iter()
            .filter(|e| plan == Plan::Pro || !e.pro)
            .collect();
        if plan == Plan::Pro {
            entries.extend(extra.iter().map(|x| CatalogueEntry {
                slug: x.slug.clone(),
                label: x.label.clone().unwrap_or_else(|| x.slug.clone()),
                description: x.description.clone().unwrap_or_default(),
                group: "Custom".to_owned(),
                sentence: String::new(),
                pro: true,
                service: false,
                example: empty_object(),
            }));
        }
        let mut index = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if !is_valid_slug(&entry.slug) || entry.slug == PING_EVENT {
                return Err(CatalogueError::InvalidSlug(entry.slug.clone()));
            }
            if index.insert(entry.slug.clone(), i).is_some() {
                return Err(CatalogueError::Duplicate(entry.slug.clone()));
            }
        }
        Ok(Self {
            entries: Arc::new(entries),
            index: Arc::new(index),
        })
    }

    /// The entries in console order.
    pub fn entries(&self) -> &[CatalogueEntry] {
        &self.entries
    }

    /// The entry for `slug`, if this plan offers it.
    pub fn get(&self, slug: &str) -> Option<&CatalogueEntry> {
        self.index.get(slug).map(|&i| &self.entries[i])
    }

    /// Whether this plan offers `slug`.
    pub fn contains(&self, slug: &str) -> bool {
        self.index.contains_key(slug)
    }

    /// `slugs` deduplicated and put in catalogue order, so a stored subscription reads the same
    /// way whatever order the client sent it in. Unknown slugs are dropped; validate first.
    pub fn normalize(&self, slugs: &[String]) -> Vec<String> {
        let mut positions: Vec<usize> = slugs
            .iter()
            .filter_map(|s| self.index.get(s.as_str()).copied())
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
            .into_iter()
            .map(|i| self.entries[i].slug.clone())
            .collect()
    }

    /// Whether `slug` is a Pro event (built-in Pro catalogue) regardless of the running plan.
    pub fn is_builtin_pro_event(slug: &str) -> bool {
        Self::builtin_entries()
            .map(|all| all.iter().any(|e| e.pro && e.slug == slug))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE: [&str; 18] = [
        "student_enrolled",
        "student_unenrolled",
        "enrollment_expired",
        "lesson_completed",
        "quiz_passed",
        "quiz_failed",
        "course_completed",
        "certificate_issued",
        "review_submitted",
        "instructor_application_submitted",
        "instructor_approved",
        "subscription_created",
        "subscription_cancelled",
        "subscription_expired",
        "course_published",
        "course_deleted",
        "order_completed",
        "order_refunded",
    ];
    const PRO: [&str; 13] = [
        "learning_path_enrolled",
        "learning_path_completed",
        "assignment_submitted",
        "assignment_graded",
        "cohort_member_added",
        "cohort_member_removed",
        "cohort_deleted",
        "space_member_added",
        "space_member_removed",
        "space_member_suspended",
        "space_member_resumed",
        "space_deleted",
        "gift_redeemed",
    ];

    #[test]
    fn free_offers_exactly_the_core_events() {
        let free = Catalogue::for_plan(Plan::Free, &[]).unwrap();
        let mut slugs: Vec<&str> = free.entries().iter().map(|e| e.slug.as_str()).collect();
        slugs.sort_unstable();
        let mut want = CORE.to_vec();
        want.extend(crate::service_events::SERVICE_EVENTS);
        want.sort_unstable();
        assert_eq!(slugs, want);
        assert!(PRO.iter().all(|p| !free.contains(p)));
    }

    #[test]
    fn pro_adds_lifecycle_and_extra_events() {
        let extra = [ExtraEvent {
            slug: "badge_awarded".into(),
            label: None,
            description: None,
        }];
        let pro = Catalogue::for_plan(Plan::Pro, &extra).unwrap();
        assert_eq!(
            pro.entries().len(),
            CORE.len() + crate::service_events::SERVICE_EVENTS.len() + PRO.len() + 1
        );
        assert!(PRO.iter().all(|p| pro.contains(p)));
        assert_eq!(pro.get("badge_awarded").unwrap().label, "badge_awarded");
        // Extra events never reach the Free catalogue.
        assert!(!Catalogue::for_plan(Plan::Free, &extra)
            .unwrap()
            .contains("badge_awarded"));
    }

    #[test]
    fn every_entry_is_documented_with_an_object_example() {
        for e in Catalogue::builtin_entries().unwrap() {
            assert!(is_valid_slug(&e.slug), "{}", e.slug);
            assert!(!e.label.is_empty() && !e.description.is_empty() && !e.group.is_empty());
            assert!(
                e.example.is_object(),
                "{} example must be an object",
                e.slug
            );
        }
    }

    #[test]
    fn ping_and_bad_or_duplicate_extra_slugs_are_refused() {
        for bad in ["ping", "Course", "9lives", "has-dash", "", &"a".repeat(65)] {
            let extra = [ExtraEvent {
                slug: bad.to_string(),
                label: None,
                description: None,
            }];
            assert!(Catalogue::for_plan(Plan::Pro, &extra).is_err(), "{bad}");
        }
        let dup = [ExtraEvent {
            slug: "quiz_passed".into(),
            label: None,
            description: None,
        }];
        assert!(matches!(
            Catalogue::for_plan(Plan::Pro, &dup),
            Err(CatalogueError::Duplicate(_))
        ));
    }

    #[test]
    fn normalize_dedupes_and_orders_like_the_catalogue() {
        let c = Catalogue::for_plan(Plan::Free, &[]).unwrap();
        let got = c.normalize(&[
            "order_refunded".into(),
            "student_enrolled".into(),
            "order_refunded".into(),
        ]);
        assert_eq!(got, vec!["student_enrolled", "order_refunded"]);
    }
}
