//! The delivery engine of one process: the claim loop, the attempt recorder, the Failed-webhook
//! probe and retention pruning, started together and stopped together.

use std::time::Duration;

use lwh_app::{App, StartError};
use lwh_domain::Timestamp;
use lwh_storage::Backend;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ping::send_ping;
use crate::recorder::Recorder;
use crate::sender::Sender;
use crate::worker::Worker;

/// A running engine; [`EngineHandle::shutdown`] stops it cleanly.
pub struct EngineHandle {
    app: App,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    recorder_task: JoinHandle<()>,
    /// SQLite: this process's right to deliver from the file, held until the engine stops.
    _lock: Option<lwh_storage::DeliveryLock>,
}

/// Builds the sender for `app`'s settings (shared by the engine and the Test button).
pub fn sender_for(app: &App) -> Result<Sender, StartError> {
    let s = app.settings();
    Sender::new(
        app.policy().clone(),
        app.resolver().clone(),
        s.connect_timeout.get(),
        s.request_timeout.get(),
    )
    .map_err(|e| StartError::HttpClient(e.to_string()))
}

/// Starts delivering. On SQLite, claims left by a previous process are released first: only
/// one process uses the file (the delivery lock makes sure), so whoever held them has died.
pub async fn start(app: App, sender: Sender) -> Result<EngineHandle, StartError> {
    let lock = app.store().lock_delivery().map_err(|e| match e {
        lwh_storage::StoreError::InUse(_) => StartError::InUse(e),
        other => StartError::Database(other.to_string()),
    })?;
    if app.store().backend() == Backend::Sqlite {
        let released = app
            .store()
            .release_all_claims(Timestamp::now())
            .await
            .map_err(|e| StartError::Database(format!("cannot release old claims: {e}")))?;
        if released > 0 {
            tracing::info!(
                released,
                "re-queued deliveries claimed before the last stop"
            );
        }
    }
    let (stop, stop_rx) = watch::channel(false);
    let owner = format!(
        "wrk_{}",
        lwh_domain::ids::DeliveryId::generate()
            .to_string()
            .trim_start_matches("dlv_")
    );
    let (recorder, recorder_task) = Recorder::start(
        app.clone(),
        owner.clone(),
        crate::worker::lease_for(app.settings()),
    );
    let worker = Worker::new(app.clone(), sender.clone(), recorder, owner);
    app.set_hand_over(Some(worker.clone()));
    let tasks = vec![
        tokio::spawn(worker.run(stop_rx.clone())),
        tokio::spawn(probe_loop(app.clone(), sender, stop_rx.clone())),
        tokio::spawn(rotation_loop(app.clone(), stop_rx.clone())),
        tokio::spawn(retention_loop(app.clone(), stop_rx.clone())),
        tokio::spawn(stats_loop(app.clone(), stop_rx)),
    ];
    Ok(EngineHandle {
        app,
        stop,
        tasks,
        recorder_task,
        _lock: lock,
    })
}

impl EngineHandle {
    /// Stops claiming, waits for attempts in flight and for their results to be written.
    pub async fn shutdown(self) {
        self.app.set_hand_over(None);
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // Every Recorder clone lived in the tasks above; the writer drains and ends.
        let _ = self.recorder_task.await;
        // The last results' counts.
        if let Err(e) = self.app.store().flush_stats().await {
            tracing::warn!(error = %e, "hourly stats not written at shutdown");
        }
    }
}

/// How often the hourly stats of recorded attempts are written.
const STATS_FLUSH: Duration = Duration::from_secs(1);

/// Writes the hourly stats of the attempts recorded meanwhile, every [`STATS_FLUSH`].
async fn stats_loop(app: App, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(STATS_FLUSH) => {}
            _ = stop.changed() => {}
        }
        if let Err(e) = app.store().flush_stats().await {
            tracing::warn!(error = %e, "writing hourly stats failed; retried in a second");
        }
    }
}

/// Pings Failed webhooks every `failed_probe_interval`; a 2xx re-activates them.
async fn probe_loop(app: App, sender: Sender, mut stop: watch::Receiver<bool>) {
    let interval = app.settings().failed_probe_interval.get();
    let check_every = (interval / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
    while !*stop.borrow() {
        let now = Timestamp::now();
        match app.store().webhooks_due_for_probe(now).await {
            Ok(due) => {
                for id in due {
                    let next = now.plus_millis(interval.as_millis() as i64);
                    if let Err(e) = app.store().set_next_probe(id, next).await {
                        tracing::warn!(webhook_id = %id, error = %e, "cannot schedule the probe");
                        continue;
                    }
                    match send_ping(&app, &sender, id, crate::ping::PingKind::Probe).await {
                        Ok(r) if r.reactivated => app.work_signal().notify_one(),
                        Ok(r) => {
                            tracing::info!(webhook_id = %id, result = %r.outcome.summary(), "probe of a Failed webhook did not succeed")
                        }
                        Err(e) => {
                            tracing::warn!(webhook_id = %id, error = %e, "probe failed to run")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list webhooks to probe"),
        }
        tokio::select! {
            _ = tokio::time::sleep(check_every) => {}
            _ = stop.changed() => {}
        }
    }
}

/// How often ended rotations are looked for: a previous secret is destroyed at most this long
/// after its overlap ends (it stopped signing at the end itself: see `Target::previous`).
const ROTATION_SWEEP: Duration = Duration::from_secs(1);

/// Destroys the previous secrets of rotations whose overlap has ended.
async fn rotation_loop(app: App, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Err(e) = app.finish_due_rotations().await {
            tracing::warn!(error = %e, "cannot end the secret rotations that are due");
        }
        tokio::select! {
            _ = tokio::time::sleep(ROTATION_SWEEP) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Prunes deliveries (held ones too: they wait within retention only), attempts and payloads
/// older than `retention_days`, and hourly stats past the longest window, hourly; then releases
/// any delivery left waiting in an ordering key's line with nothing ahead of it.
async fn retention_loop(app: App, mut stop: watch::Receiver<bool>) {
    let keep = Duration::from_secs(u64::from(app.settings().retention_days) * 24 * 3600);
    while !*stop.borrow() {
        let now = Timestamp::now();
        let cutoff = now.plus_millis(-(keep.as_millis() as i64));
        match app.store().prune(cutoff, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "pruned deliveries past retention"),
            Err(e) => tracing::warn!(error = %e, "retention pruning failed"),
        }
        if let Err(e) = app.store().prune_stats(now).await {
            tracing::warn!(error = %e, "pruning hourly stats failed");
        }
        // A delivery waiting in an ordering key's line whose predecessor retention deleted.
        match app.store().release_stranded(now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(deliveries = n, "released deliveries left waiting in a line");
                app.work_signal().notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "releasing stranded waiting deliveries failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => {}
        }
    }
}
