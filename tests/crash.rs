//! Crash safety with the real binary: `kill -9` while thousands of deliveries are queued and in
//! flight, restart, and every accepted (event, webhook) pair still reaches the receiver, with
//! duplicates bounded by what was in flight. On PostgreSQL, three processes share the queue
//! and losing one of them loses nothing.

mod common;

use std::time::{Duration, Instant};

use common::process::{free_port, kill9, ProcessEnv};
use common::receiver::{Answer, Receiver};
use common::TestDb;
use lwh_storage::Backend;
use serde_json::{json, Value};

const EVENTS: usize = 10_000;
const IN_FLIGHT_CAP: usize = 32;

struct Setup {
    env: ProcessEnv,
    db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup(backend: Backend) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(backend).await;
    let mut env = ProcessEnv::new(dir.path(), db.postgres_url());
    env.vars.push((
        "LEARNOMY_WEBHOOKS_MAX_IN_FLIGHT_PER_WEBHOOK".into(),
        IN_FLIGHT_CAP.to_string(),
    ));
    Setup { env, db, _dir: dir }
}

async fn api(port: u16, token: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = client
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

/// Accepts `EVENTS` events in batches of 500; returns their ids.
async fn ingest_all(port: u16, token: &str) -> Vec<String> {
    let mut ids = Vec::with_capacity(EVENTS);
    for chunk in 0..EVENTS / 500 {
        let events: Vec<Value> = (0..500)
            .map(|i| json!({"event": "course_completed", "data": {"n": chunk * 500 + i}}))
            .collect();
        let accepted = api(
            port,
            token,
            reqwest::Method::POST,
            "/api/v1/events/batch",
            json!({"events": events}),
        )
        .await;
        for a in accepted["data"].as_array().unwrap() {
            assert_eq!(a["deliveries"], 1);
            ids.push(a["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

async fn kill_while_in_flight(backend: Backend) {
    let s = setup(backend).await;
    let token = s
        .env
        .run(&["token", "create", "--scope", "webhooks:manage"]);
    let rx = Receiver::start().await;
    rx.always(Answer::SlowOk(5));
    let port = free_port();
    let mut service = s.env.serve(port).await;
    api(
        port,
        &token,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        json!({"url": rx.url("/crash"), "events": ["course_completed"]}),
    )
    .await;
    let ids = ingest_all(port, &token).await;
    // Kill in the middle of the drain, while deliveries are in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.count() < EVENTS / 4 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kill9(&mut service);
    let at_kill = rx.count();
    assert!(at_kill < EVENTS, "the kill must land before the drain ends");
    let mut service = s.env.serve(port).await;
    let (distinct, dups) = rx.wait_for_events(&ids, Duration::from_secs(120)).await;
    kill9(&mut service);
    eprintln!(
        "{backend:?}: {distinct} delivered, {dups} duplicates, killed after {at_kill} requests"
    );
    assert_eq!(distinct, EVENTS);
    assert!(
        dups <= IN_FLIGHT_CAP,
        "{dups} duplicates: more than were in flight"
    );
    s.db.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_in_flight_loses_nothing_sqlite() {
    kill_while_in_flight(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_in_flight_loses_nothing_postgres() {
    kill_while_in_flight(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_postgres_workers_share_the_queue_and_survive_losing_one() {
    let s = setup(Backend::Postgres).await;
    let token = s
        .env
        .run(&["token", "create", "--scope", "webhooks:manage"]);
    let rx = Receiver::start().await;
    rx.always(Answer::SlowOk(5));
    let port = free_port();
    let mut serve = s.env.serve(port).await;
    let hook = api(
        port,
        &token,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        json!({"url": rx.url("/shared"), "events": ["course_completed"]}),
    )
    .await;
    let id = hook["data"]["id"].as_str().unwrap().to_owned();
    // Hold everything, start the workers, then release it all at once.
    api(
        port,
        &token,
        reqwest::Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        json!({"status": "paused"}),
    )
    .await;
    kill9(&mut serve);
    // Each worker serves its own /metrics, to show it is alive and doing its share.
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut workers = Vec::new();
    for port in &ports {
        workers.push(s.env.worker_listening(*port).await);
    }
    let mut serve = s.env.serve(port).await;
    let ids = ingest_all(port, &token).await;
    kill9(&mut serve);
    // Re-activate straight in the database: the three workers do all the delivering.
    let store = lwh_storage::Store::open(&s.db.target).await.unwrap();
    let changes = lwh_storage::WebhookChanges {
        status: Some(lwh_domain::WebhookStatus::Active),
        ..Default::default()
    };
    store
        .update_webhook(id.parse().unwrap(), &changes, lwh_domain::Timestamp::now())
        .await
        .unwrap();
    store.close().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.count() < EVENTS / 3 {
        assert!(Instant::now() < deadline, "workers did not deliver");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (n, w) in workers.iter_mut().enumerate() {
        common::process::assert_alive(w, &format!("worker {n}"));
    }
    let mut attempts = vec![common::process::attempts_recorded(ports[0]).await];
    kill9(&mut workers[0]);
    let (distinct, dups) = rx.wait_for_events(&ids, Duration::from_secs(120)).await;
    eprintln!("3 PostgreSQL workers, one killed: {distinct} delivered, {dups} duplicates");
    for (n, port) in ports.iter().enumerate().skip(1) {
        common::process::assert_alive(&mut workers[n], &format!("worker {n}"));
        attempts.push(common::process::attempts_recorded(*port).await);
    }
    for w in workers.iter_mut() {
        kill9(w);
    }
    eprintln!("attempts recorded per worker: {attempts:?}");
    assert!(
        attempts.iter().filter(|a| **a > 0.0).count() >= 2,
        "the queue was shared: at least two workers recorded attempts ({attempts:?})"
    );
    assert_eq!(distinct, EVENTS);
    assert!(
        dups <= IN_FLIGHT_CAP,
        "{dups} duplicates: more than the killed worker had in flight"
    );
    s.db.drop_all().await;
}
