//! Recording finished attempts: one transaction per batch, a few statements per batch rather
//! than per attempt, and rows locked in a fixed order (webhooks by id, then deliveries by id)
//! so recorders in several processes cannot deadlock.

use std::collections::BTreeMap;

use lwh_domain::lifecycle::{failure_reason, FailureRecord};
use lwh_domain::ordering::releases_key;
use lwh_domain::{NextStep, Timestamp, WebhookId, WebhookStatus};

use crate::connect::{HotPath, Store};
use crate::error::StoreError;
use crate::model::{AttemptRecord, ClaimedDelivery, FailureRules};
use crate::ordering::SuccessorClaim;
use crate::queue::ClaimedRow;

/// Attempt rows per multi-row INSERT (8 values each).
pub(crate) const ATTEMPT_ROWS_PER_INSERT: usize = 200;
/// Ids per `IN (…)` list.
pub(crate) const IDS_PER_UPDATE: usize = 500;

/// What a batch says about one webhook, in attempt order.
#[derive(Default)]
pub(crate) struct WebhookSummary {
    /// The latest start among the webhook's attempts.
    pub(crate) last_started: i64,
    succeeded: bool,
    /// Failures after the batch's last success (all of them if none succeeded).
    pub(crate) failures: i64,
    /// The first of those failures' start.
    pub(crate) first_failure: Option<i64>,
    gone: bool,
}

/// What recording a batch changed beyond the attempts themselves.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// Webhooks that became Failed.
    pub became_failed: Vec<WebhookId>,
    /// Webhooks of which a delivery waiting in an ordering key's line became due, because the
    /// one ahead of it finished: their queue has work again.
    pub released: Vec<WebhookId>,
    /// Deliveries released from their line and claimed for the recording worker
    /// ([`SuccessorClaim`]), with their payloads: ready to send.
    pub successors: Vec<ClaimedDelivery>,
    /// Due deliveries claimed from the queue for the recording worker, into the slots of the
    /// results that asked ([`AttemptRecord::refill`]), with their payloads: ready to send.
    pub refills: Vec<ClaimedDelivery>,
}

impl Recorded {
    /// The changes a backend's transaction made (its claimed successors come after, with
    /// their payloads).
    pub(crate) fn new(became_failed: Vec<WebhookId>, released: Vec<WebhookId>) -> Self {
        Self {
            became_failed,
            released,
            successors: Vec::new(),
            refills: Vec::new(),
        }
    }
}

/// What a backend's recording returns: the changes, then the rows it claimed for the worker —
/// deliveries released from their lines, and due deliveries taken from the queue into slots.
pub(crate) struct BackendRecorded {
    pub(crate) recorded: Recorded,
    pub(crate) successors: Vec<(WebhookId, ClaimedRow)>,
    pub(crate) refills: Vec<(WebhookId, ClaimedRow)>,
}

/// How many due deliveries to claim from each webhook's queue, in webhook order: one per
/// result that asked for its slot to be refilled, less the line successors already claimed
/// for that webhook in the batch (they take slots of the same results first).
pub(crate) fn refills_wanted(
    records: &[AttemptRecord],
    successors: &[(WebhookId, ClaimedRow)],
) -> Vec<(WebhookId, usize)> {
    let mut wanted: BTreeMap<WebhookId, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.refill) {
        *wanted.entry(r.webhook_id).or_default() += 1;
    }
    for (webhook, _) in successors {
        if let Some(n) = wanted.get_mut(webhook) {
            *n = n.saturating_sub(1);
        }
    }
    wanted.into_iter().filter(|(_, n)| *n > 0).collect()
}

impl Store {
    /// Stores finished attempts and their consequences atomically: attempt rows, each
    /// delivery's status and next due time (held while its webhook is not Active), each
    /// webhook's failure record — which can make it Failed (deliveries held, probe
    /// scheduled) — and, for each delivery that finished in an ordering key's line, the next
    /// one of the line made due — or, with `successor`, claimed for that worker and returned
    /// with its payload, when its webhook is Active and unthrottled. With `successor` too, the
    /// results that ask ([`AttemptRecord::refill`]) get their webhook's next due deliveries
    /// claimed for that worker in the same transaction (Active, unthrottled webhooks only): a
    /// result is committed before its slot sends anything else. Results for deliveries
    /// that were cancelled meanwhile leave them cancelled. The attempts are then counted in the
    /// hourly stats, which [`Store::flush_stats`] writes.
    pub async fn record_attempts(
        &self,
        records: &[AttemptRecord],
        rules: FailureRules,
        now: Timestamp,
        successor: Option<&SuccessorClaim>,
    ) -> Result<Recorded, StoreError> {
        if records.is_empty() {
            return Ok(Recorded::default());
        }
        let backend = match &self.hot {
            HotPath::Sqlite(writer) => {
                crate::sqlite::attempts::run(writer, records, rules, now, successor).await
            }
            HotPath::Postgres => {
                crate::postgres::attempts::run(self, records, rules, now, successor).await
            }
        }?;
        self.pending_stats.add(records);
        let mut recorded = backend.recorded;
        recorded.successors = self.claimed_with_payloads(backend.successors).await?;
        recorded.refills = self.claimed_with_payloads(backend.refills).await?;
        Ok(recorded)
    }

    /// Claimed rows of several webhooks, with their payloads.
    async fn claimed_with_payloads(
        &self,
        rows: Vec<(WebhookId, ClaimedRow)>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut by_webhook: BTreeMap<WebhookId, Vec<ClaimedRow>> = BTreeMap::new();
        for (webhook, row) in rows {
            by_webhook.entry(webhook).or_default().push(row);
        }
        let mut claimed = Vec::new();
        for (webhook, rows) in by_webhook {
            claimed.extend(self.with_payloads(webhook, rows).await?);
        }
        Ok(claimed)
    }
}

/// The (webhook, ordering key) lines in which a delivery of the batch finished, each once:
/// the next delivery of each may go.
/// Each comes with whether the recording worker takes the line's next delivery itself
/// ([`AttemptRecord::take_next`]).
pub(crate) fn finished_lines(records: &[AttemptRecord]) -> Vec<(WebhookId, &str, bool)> {
    if records.iter().all(|r| r.ordering_key.is_none()) {
        return Vec::new();
    }
    let mut seen: std::collections::HashSet<(WebhookId, &str)> = Default::default();
    let mut lines = Vec::new();
    for r in records {
        if let Some(key) = r.ordering_key.as_deref() {
            if releases_key(r.next) && seen.insert((r.webhook_id, key)) {
                lines.push((r.webhook_id, key, r.take_next));
            }
        }
    }
    lines
}

pub(crate) const WEBHOOK_AFTER_SUCCESS: &str = "UPDATE webhooks SET \
     last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                         THEN $2 ELSE last_triggered_at END, \
     failing_since = $3, failures_since_success = $4 WHERE id = $1 \
     RETURNING failing_since, failures_since_success, status";

/// The same after a batch that ended in success while the webhook is healthy, which changes
/// nothing but `last_triggered_at`: the row is then written only if that time is more than a
/// second old (the console shows it to the second). Every recorder of every process used to
/// lock the row of each webhook it had results for until its commit, so the recorders of
/// `serve` and the workers took turns (PostgreSQL's top statement by time, ~7 ms a call, most
/// of it waiting), and each SQLite commit dirtied the page again.
pub(crate) const WEBHOOK_AFTER_CLEAN_SUCCESS: &str = "UPDATE webhooks SET \
     last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                         THEN $2 ELSE last_triggered_at END, \
     failing_since = $3, failures_since_success = $4 WHERE id = $1 \
     AND (failing_since IS NOT NULL OR failures_since_success <> $4 OR last_triggered_at IS NULL \
          OR last_triggered_at < $2 - 1000) \
     RETURNING failing_since, failures_since_success, status";

pub(crate) const WEBHOOK_AFTER_FAILURES: &str = "UPDATE webhooks SET \
     last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                         THEN $2 ELSE last_triggered_at END, \
     failing_since = COALESCE(failing_since, $3), \
     failures_since_success = failures_since_success + $4 WHERE id = $1 \
     RETURNING failing_since, failures_since_success, status";

pub(crate) const SET_NEXT_PROBE: &str = "UPDATE webhooks SET next_probe_at = $2 WHERE id = $1";

pub(crate) const INSERT_ATTEMPTS: &str = "INSERT INTO attempts (delivery_id, number, started_at, \
     duration_ms, status_code, error_kind, error, response_excerpt, request_headers, \
     response_headers) VALUES ";

pub(crate) const ON_ATTEMPT_CONFLICT: &str = "ON CONFLICT (delivery_id, number) DO NOTHING";

/// A delivered delivery's new state, before its `WHERE`; `$1` status code, `$2` now.
pub(crate) const DELIVERED: &str =
    "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, \
     due_at = NULL, claimed_by = NULL, last_status_code = $1, last_error = NULL, updated_at = $2";

/// A failed attempt's consequence for its delivery: retrying at `$3`, or failed.
pub(crate) const NOT_DELIVERED: &str =
    "UPDATE deliveries SET status = $2, attempts = attempts + 1, \
     due_at = $3, claimed_by = NULL, last_status_code = $4, last_error = $5, updated_at = $6 \
     WHERE id = $1 AND status IN ('pending', 'retrying')";

/// What a batch says about each of its webhooks.
pub(crate) fn summarize(records: &[AttemptRecord]) -> BTreeMap<WebhookId, WebhookSummary> {
    let mut summaries: BTreeMap<WebhookId, WebhookSummary> = BTreeMap::new();
    for r in records {
        let s = summaries.entry(r.webhook_id).or_default();
        let started = r.started_at.millis();
        s.last_started = s.last_started.max(started);
        if r.outcome.delivered() {
            s.succeeded = true;
            s.failures = 0;
            s.first_failure = None;
            s.gone = false;
        } else {
            s.failures += 1;
            s.first_failure.get_or_insert(started);
            s.gone |= r.outcome.gone();
        }
    }
    summaries
}

/// The webhook update for a summary: reset by a success, then count what failed after it.
pub(crate) fn webhook_update(s: &WebhookSummary) -> &'static str {
    if s.succeeded && s.failures == 0 {
        WEBHOOK_AFTER_CLEAN_SUCCESS
    } else if s.succeeded {
        WEBHOOK_AFTER_SUCCESS
    } else {
        WEBHOOK_AFTER_FAILURES
    }
}

/// Whether an Active webhook must become Failed, given its failure record after the update
/// (`failing_since`, `failures_since_success`, `status`); the reason if so.
pub(crate) fn turns_failed(
    s: &WebhookSummary,
    (failing_since, failures, status): (Option<i64>, i64, String),
    rules: FailureRules,
    now: Timestamp,
) -> Option<String> {
    if s.failures == 0 || status != WebhookStatus::Active.as_str() {
        return None;
    }
    let record = FailureRecord {
        failing_since: failing_since?,
        failures,
    };
    failure_reason(record, now.millis(), rules.failed_after_ms, s.gone)
}

/// A delivery's status and due time after a failed attempt.
pub(crate) fn next_state(next: NextStep) -> (&'static str, Option<i64>) {
    match next {
        NextStep::RetryAt(at) => ("retrying", Some(at.millis())),
        _ => ("failed", None),
    }
}
