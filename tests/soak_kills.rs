//! The crash soak: a steady load while processes are killed with `kill -9` at random moments,
//! twenty times, each restarted at once. Every event the API accepted (answered 202) must reach
//! the receiver, with duplicates bounded by what the killed processes had in flight. SQLite with
//! one `serve`; PostgreSQL with `serve` and three `worker`s, any of which may be the one killed.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process::{create_webhook, free_port, kill9, ProcessEnv, Running};
use common::receiver::Receiver;
use common::TestDb;
use lwh_storage::Backend;
use rand::Rng;
use serde_json::{json, Value};

const KILLS: usize = 20;
const IN_FLIGHT_CAP: usize = 16;

async fn soak(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(backend).await;
    let mut env = ProcessEnv::new(dir.path(), db.postgres_url());
    env.vars.push((
        "LEARNOMY_WEBHOOKS_MAX_IN_FLIGHT_PER_WEBHOOK".into(),
        IN_FLIGHT_CAP.to_string(),
    ));
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let rx = Receiver::start().await;
    let port = free_port();
    // processes[0] is serve (HTTP + delivery); on PostgreSQL three workers share the queue.
    let mut processes: Vec<Running> = vec![env.serve(port).await];
    // Workers serve their own /metrics: each must stay alive until killed, and the attempts
    // each recorded (summed over its restarts) show the queue was shared.
    let mut worker_ports = vec![port];
    if backend == Backend::Postgres {
        for _ in 0..3 {
            let worker_port = free_port();
            processes.push(env.worker_listening(worker_port).await);
            worker_ports.push(worker_port);
        }
    }
    let mut attempts = vec![0.0; processes.len()];
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    create_webhook(&client, &base, &token, &rx.url("/soak")).await;

    // Steady load: four clients posting one event per request; only 202s count as accepted.
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for c in 0..4 {
        let (client, base, token, accepted, stop) = (
            client.clone(),
            base.clone(),
            token.clone(),
            accepted.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let sent = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .json(&json!({"event": "course_completed", "data": {"client": c, "i": i}}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 202 => {
                        let body: Value = r.json().await.unwrap_or_default();
                        if let Some(id) = body["data"]["id"].as_str() {
                            accepted.lock().unwrap().push(id.to_owned());
                        }
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    for _ in 0..KILLS {
        let (pause, victim) = {
            let mut rng = rand::thread_rng();
            (rng.gen_range(150..600), rng.gen_range(0..processes.len()))
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        common::process::assert_alive(&mut processes[victim], &format!("process {victim}"));
        if victim > 0 {
            attempts[victim] += common::process::attempts_recorded(worker_ports[victim]).await;
        }
        kill9(&mut processes[victim]);
        processes[victim] = if victim == 0 {
            env.serve(port).await
        } else {
            env.worker_listening(worker_ports[victim]).await
        };
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }

    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() > 100,
        "the load kept going between kills ({} accepted)",
        accepted.len()
    );
    let (delivered, duplicates) = rx
        .wait_for_events(&accepted, Duration::from_secs(120))
        .await;
    for (n, p) in processes.iter_mut().enumerate() {
        common::process::assert_alive(p, &format!("process {n}"));
        if n > 0 {
            attempts[n] += common::process::attempts_recorded(worker_ports[n]).await;
        }
    }
    for p in processes.iter_mut() {
        kill9(p);
    }
    if backend == Backend::Postgres {
        eprintln!("attempts recorded per worker slot: {:?}", &attempts[1..]);
        assert!(
            attempts[1..].iter().filter(|a| **a > 0.0).count() >= 2,
            "at least two workers recorded attempts: {attempts:?}"
        );
    }
    eprintln!("{backend:?}: {KILLS} kills survived, {} accepted, {delivered} delivered, {duplicates} duplicates", accepted.len());
    assert!(
        duplicates <= KILLS * IN_FLIGHT_CAP,
        "{duplicates} duplicates: more than the killed processes had in flight"
    );
    db.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_random_kills_under_load_lose_nothing_sqlite() {
    soak(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_random_kills_of_any_of_three_processes_lose_nothing_postgres() {
    soak(Backend::Postgres).await;
}
