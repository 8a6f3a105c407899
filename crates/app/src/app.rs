//! The shared application handle.

use std::sync::Arc;

use lwh_domain::{Catalogue, MasterKey};
use lwh_storage::{DatabaseTarget, Store};
use lwh_url_policy::{HostResolver, UrlPolicy};

use crate::master_key_file::load_or_create_master_key;
use crate::settings::Settings;
use crate::StartError;

/// Everything an operation needs: settings, storage, the catalogue of the running plan, the
/// master key and the URL policy. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    store: Store,
    catalogue: Catalogue,
    master_key: MasterKey,
    policy: UrlPolicy,
    resolver: Arc<dyn HostResolver>,
    work: Arc<tokio::sync::Notify>,
    committer: std::sync::OnceLock<crate::group_commit::GroupCommit>,
    hand_over: crate::group_commit::HandOverSlot,
    token_cache: crate::tokens::TokenCache,
    mailer: Option<crate::mail::Mailer>,
    wording: Arc<lwh_formats::Wording>,
}

impl App {
    /// Opens the configured database, applies migrations and loads the master key.
    pub async fn open(
        settings: Settings,
        resolver: Arc<dyn HostResolver>,
    ) -> Result<Self, StartError> {
        settings
            .validate()
            .map_err(|p| StartError::Settings(p.join("; ")))?;
        let target = DatabaseTarget::from_settings(&settings.database_url, &settings.data_dir)
            .map_err(StartError::Settings)?;
        let master_key =
            load_or_create_master_key(&settings.data_dir).map_err(StartError::MasterKey)?;
        let store = Store::open(&target)
            .await
            .map_err(|e| StartError::Database(format!("cannot open {}: {e}", target.redacted())))?;
        store.migrate().await.map_err(|e| {
            StartError::Database(format!("cannot migrate {}: {e}", target.redacted()))
        })?;
        check_master_key(&store, &master_key, &settings.data_dir).await?;
        Self::from_parts(settings, store, master_key, resolver)
    }

    /// The SSRF settings as one line, to compare a `worker`'s with the ones `serve` last started
    /// with (stored as `url_policy`).
    pub fn url_policy_summary(&self) -> String {
        let mut networks: Vec<String> = self
            .settings()
            .allowed_networks
            .iter()
            .map(ToString::to_string)
            .collect();
        networks.sort();
        format!(
            "allow_http = {}, allowed_networks = [{}]",
            self.settings().allow_http,
            networks.join(", ")
        )
    }

    /// Assembles an app from an already opened (and migrated) store.
    pub fn from_parts(
        settings: Settings,
        store: Store,
        master_key: MasterKey,
        resolver: Arc<dyn HostResolver>,
    ) -> Result<Self, StartError> {
        settings
            .validate()
            .map_err(|p| StartError::Settings(p.join("; ")))?;
        let catalogue = Catalogue::for_plan(settings.plan, &settings.extra_events)
            .map_err(|e| StartError::Settings(e.to_string()))?;
        let policy = UrlPolicy::new(settings.allow_http, settings.allowed_networks.clone());
        let mailer = crate::mail::Mailer::from_settings(&settings)
            .map_err(|p| StartError::Settings(p.join("; ")))?;
        let wording = Arc::new(lwh_formats::Wording::new(catalogue.entries()));
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                store,
                catalogue,
                master_key,
                policy,
                resolver,
                work: Arc::new(tokio::sync::Notify::new()),
                committer: std::sync::OnceLock::new(),
                hand_over: Default::default(),
                token_cache: Default::default(),
                mailer,
                wording,
            }),
        })
    }

    /// The notification mailer, when `smtp_url` and `notify_emails` are set.
    pub(crate) fn mailer(&self) -> Option<crate::mail::Mailer> {
        self.inner.mailer.clone()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Each event's label and sentence, for chat bodies and templates.
    pub fn wording(&self) -> Arc<lwh_formats::Wording> {
        self.inner.wording.clone()
    }

    /// The events offered on the running plan.
    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    /// The key that seals webhook secrets.
    pub fn master_key(&self) -> &MasterKey {
        &self.inner.master_key
    }

    /// The SSRF policy.
    pub fn policy(&self) -> &UrlPolicy {
        &self.inner.policy
    }

    /// Signalled when deliveries may have become due (ingestion, resume, redeliver), so this
    /// process's worker claims them at once instead of at its next poll.
    pub fn work_signal(&self) -> &Arc<tokio::sync::Notify> {
        &self.inner.work
    }

    /// The ingestion group committer, started on first use.
    pub(crate) fn committer(&self) -> &crate::group_commit::GroupCommit {
        self.inner.committer.get_or_init(|| {
            crate::group_commit::GroupCommit::start(
                self.inner.store.clone(),
                self.inner.hand_over.clone(),
                self.inner.work.clone(),
            )
        })
    }

    /// Recently verified API tokens.
    pub(crate) fn token_cache(&self) -> &crate::tokens::TokenCache {
        &self.inner.token_cache
    }

    /// Runs `change` to webhook `webhook`'s rows (its URL, status, subscriptions or queued
    /// deliveries) the one way every such change must run: this process's worker forgets what
    /// it was handed for the webhook before and after (see [`crate::HandOver::forget`]), so
    /// nothing goes to a target or in an order cached from before the change, and it is woken
    /// when `wakes` says the change left work to claim now.
    pub(crate) async fn changing_webhook<T, E>(
        &self,
        webhook: lwh_domain::WebhookId,
        change: impl std::future::Future<Output = Result<T, E>>,
        wakes: impl FnOnce(&T) -> bool,
    ) -> Result<T, E> {
        self.forget_hand_over(webhook);
        let result = change.await;
        self.forget_hand_over(webhook);
        if result.as_ref().is_ok_and(wakes) {
            self.work_signal().notify_one();
        }
        result
    }

    fn forget_hand_over(&self, webhook: lwh_domain::WebhookId) {
        if let Some(worker) = self.inner.hand_over.read().ok().and_then(|h| h.clone()) {
            worker.forget(webhook);
        }
    }

    /// Lets ingestion in this process hand deliveries straight to `worker` (`None` stops it).
    pub fn set_hand_over(&self, worker: Option<std::sync::Arc<dyn crate::HandOver>>) {
        if let Ok(mut slot) = self.inner.hand_over.write() {
            *slot = worker;
        }
    }

    /// The resolver used at save time (and by the sender at connect time).
    pub fn resolver(&self) -> &Arc<dyn HostResolver> {
        &self.inner.resolver
    }
}

/// Where this database's master key check value is kept.
const MASTER_KEY_CHECK: &str = "master_key_check";

/// Refuses to start with a master key that is not the one the database's secrets were sealed
/// with: such a process used to start and then log "cannot decrypt the webhook's secret" for
/// every delivery. The first process stores the key's check value (after making sure it opens
/// a stored secret, for databases from before the check); later ones compare.
async fn check_master_key(
    store: &Store,
    key: &MasterKey,
    data_dir: &std::path::Path,
) -> Result<(), StartError> {
    let mismatch = || {
        StartError::MasterKey(format!(
            "the master key ({} or {}) is not the one this database was written with: every \
             process sharing a database needs the same key. Copy master.key from the data folder \
             of the service that created the database (or set the same {}), then start again",
            crate::MASTER_KEY_ENV,
            data_dir.join("master.key").display(),
            crate::MASTER_KEY_ENV
        ))
    };
    let mine = key.check_value();
    let stored = store
        .meta(MASTER_KEY_CHECK)
        .await
        .map_err(|e| StartError::Database(format!("cannot read the master key check: {e}")))?;
    match stored {
        Some(stored) if stored == mine => Ok(()),
        Some(_) => Err(mismatch()),
        None => {
            let webhooks = store
                .list_webhooks()
                .await
                .map_err(|e| StartError::Database(format!("cannot read the webhooks: {e}")))?;
            if let Some(w) = webhooks.first() {
                key.open(&w.secret_ciphertext, &w.id.to_string())
                    .map_err(|_| mismatch())?;
            }
            let in_force = store
                .meta_or_insert(MASTER_KEY_CHECK, &mine)
                .await
                .map_err(|e| {
                    StartError::Database(format!("cannot store the master key check: {e}"))
                })?;
            if in_force == mine {
                Ok(())
            } else {
                Err(mismatch())
            }
        }
    }
}
