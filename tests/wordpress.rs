//! The WordPress plugin (`wordpress/learnomy-webhooks/`) in a real WordPress (Debian's package on
//! MariaDB, PHP's built-in server), against the real service binary and loopback receivers:
//! every Learnomy hook becomes one signed, enriched delivery; events fired while the service is
//! down wait in the outbox and arrive exactly once, through a `kill -9` of the service during a
//! flush too; a refused event is set aside and shown in wp-admin while the rest flow; uninstall
//! leaves nothing behind; and no run logs a PHP notice.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use common::receiver::{Answer, Received, Receiver};
use common::wordpress::{lint_plugin, Admin, Service, WordPress};
use hmac::{Hmac, Mac};
use lwh_storage::Backend;
use serde_json::{json, Value};
use sha2::Sha256;

/// The plugin's page in wp-admin.
const PLUGIN_PAGE: &str = "/wp-admin/admin.php?page=learnomy-webhooks";

const SECRET: &str = "wp-plugin-secret-Qm2xV7pL0sT4wZ8cR1";

/// The catalogue as the plugin must map it, written independently of the plugin's own table:
/// (slug, Pro?, the hook's arguments in order).
const HOOKS: &[(&str, bool, &[&str])] = &[
    (
        "student_enrolled",
        false,
        &["enrollment_id", "user_id", "course_id", "source"],
    ),
    (
        "student_unenrolled",
        false,
        &["enrollment_id", "user_id", "course_id"],
    ),
    (
        "enrollment_expired",
        false,
        &["enrollment_id", "user_id", "course_id"],
    ),
    (
        "lesson_completed",
        false,
        &["user_id", "lesson_id", "course_id"],
    ),
    (
        "quiz_passed",
        false,
        &["attempt_id", "user_id", "quiz_id", "score"],
    ),
    (
        "quiz_failed",
        false,
        &["attempt_id", "user_id", "quiz_id", "score"],
    ),
    (
        "course_completed",
        false,
        &["enrollment_id", "user_id", "course_id"],
    ),
    (
        "certificate_issued",
        false,
        &["certificate_id", "user_id", "course_id"],
    ),
    (
        "review_submitted",
        false,
        &["review_id", "user_id", "course_id"],
    ),
    (
        "instructor_application_submitted",
        false,
        &["application_id", "user_id"],
    ),
    ("instructor_approved", false, &["application_id", "user_id"]),
    (
        "subscription_created",
        false,
        &["subscription_id", "user_id", "plan_id"],
    ),
    (
        "subscription_cancelled",
        false,
        &["subscription_id", "user_id", "plan_id"],
    ),
    (
        "subscription_expired",
        false,
        &["subscription_id", "user_id", "plan_id"],
    ),
    ("course_published", false, &["course_id", "author_id"]),
    ("course_deleted", false, &["course_id"]),
    (
        "order_completed",
        false,
        &["order_id", "user_id", "total", "currency"],
    ),
    (
        "order_refunded",
        false,
        &["order_id", "user_id", "amount", "currency"],
    ),
    (
        "learning_path_enrolled",
        true,
        &["enrollment_id", "user_id", "path_id", "source"],
    ),
    (
        "learning_path_completed",
        true,
        &["certificate_id", "user_id", "path_id"],
    ),
    (
        "assignment_submitted",
        true,
        &["submission_id", "assignment_id", "user_id"],
    ),
    (
        "assignment_graded",
        true,
        &["submission_id", "assignment_id", "user_id", "grade"],
    ),
    ("cohort_member_added", true, &["cohort_id", "user_id"]),
    ("cohort_member_removed", true, &["cohort_id", "user_id"]),
    ("cohort_deleted", true, &["cohort_id"]),
    ("space_member_added", true, &["space_id", "user_id"]),
    ("space_member_removed", true, &["space_id", "user_id"]),
    ("space_member_suspended", true, &["space_id", "user_id"]),
    ("space_member_resumed", true, &["space_id", "user_id"]),
    ("space_deleted", true, &["space_id"]),
    (
        "gift_redeemed",
        true,
        &["code", "user_id", "subscription_id"],
    ),
];

/// Both signatures of a delivery verify with the secret: `X-Learnomy-Signature` computed here,
/// the Standard Webhooks headers with the `standardwebhooks` library.
fn assert_signed(r: &Received) {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&r.body);
    assert_eq!(
        r.header("x-learnomy-signature"),
        hex::encode(mac.finalize().into_bytes()),
        "X-Learnomy-Signature"
    );
    let wh = standardwebhooks::Webhook::new(&lwh_domain::signing::standard_webhooks_secret(SECRET))
        .unwrap();
    let mut headers = axum::http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, r.header(name).parse().unwrap());
    }
    assert!(
        wh.verify(&r.body, &headers).is_ok(),
        "the Standard Webhooks signature verifies"
    );
}

/// The value fired for an argument, given the fixtures' ids.
fn argument(name: &str, ids: &HashMap<&str, i64>) -> Value {
    match name {
        "user_id" => json!(ids["user"]),
        "course_id" => json!(ids["course"]),
        "lesson_id" => json!(ids["lesson"]),
        "quiz_id" => json!(ids["quiz"]),
        "path_id" => json!(ids["path"]),
        "source" => json!("purchase"),
        "score" => json!(85),
        "grade" => json!(92),
        "total" | "amount" => json!("49.00"),
        "currency" => json!("USD"),
        "code" => json!("GIFT-7Q2M"),
        _ => json!(1000 + name.len() as i64),
    }
}

/// Waits until the receiver has `n` requests, then a little longer to see that no more come.
async fn exactly(rx: &Receiver, n: usize) -> Vec<Received> {
    rx.wait_for(n, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = rx.received();
    assert_eq!(got.len(), n, "exactly {n} deliveries");
    got
}

both_backends!(
    every_learnomy_hook_becomes_one_signed_enriched_delivery,
    |backend| async move {
        lint_plugin();
        let service = Service::start(backend, "pro").await;
        let rx = Receiver::start().await;
        let slugs: Vec<&str> = HOOKS.iter().map(|(slug, _, _)| *slug).collect();
        service.subscribe(&rx.url("/wp"), &slugs, SECRET).await;
        let wp = WordPress::start(&service.base(), &service.token).await;

        let made = wp
            .fixtures(
                json!([{"login": "jane", "email": "jane@example.com", "display_name": "Jane Doe"}]),
                json!([
                    {"title": "Intro to Pottery & Clay", "type": "lrn_course"},
                    {"title": "Centering the clay", "type": "lrn_lesson"},
                    {"title": "Glazes and firing", "type": "lrn_quiz"},
                    {"title": "Studio Ceramics", "type": "lrn_path"}
                ]),
            )
            .await;
        let ids: HashMap<&str, i64> = HashMap::from([
            ("user", made["users"][0].as_i64().unwrap()),
            ("course", made["posts"][0].as_i64().unwrap()),
            ("lesson", made["posts"][1].as_i64().unwrap()),
            ("quiz", made["posts"][2].as_i64().unwrap()),
            ("path", made["posts"][3].as_i64().unwrap()),
        ]);
        let mut calls = Vec::new();
        for (slug, pro, args) in HOOKS {
            let prefix = if *pro { "learnomy_pro_" } else { "learnomy_" };
            let mut values: Vec<Value> = args.iter().map(|a| argument(a, &ids)).collect();
            if *slug == "course_deleted" {
                values = vec![json!(987_654)]; // a course WordPress does not know
            }
            calls.push((format!("{prefix}{slug}"), values));
        }
        wp.fire(&calls).await;
        assert_eq!(
            wp.state().await["outbox_pending"],
            HOOKS.len(),
            "every event waits in the outbox until it is sent"
        );

        wp.cron().await;
        let got = exactly(&rx, HOOKS.len()).await;
        let by_event: BTreeMap<String, &Received> = got
            .iter()
            .map(|r| (r.header("x-learnomy-event"), r))
            .collect();
        assert_eq!(by_event.len(), HOOKS.len(), "one delivery per hook");
        for (slug, _, args) in HOOKS {
            let r = by_event[*slug];
            assert_signed(r);
            let data = &r.json()["data"];
            if *slug == "course_deleted" {
                assert_eq!(data, &json!({"course_id": 987_654}), "nothing is made up");
                continue;
            }
            for a in *args {
                assert_eq!(data[*a], argument(a, &ids), "{slug}.{a}");
            }
            let mut expected_keys: HashSet<String> = args.iter().map(|a| a.to_string()).collect();
            if args.contains(&"user_id") {
                assert_eq!(data["user_name"], "Jane Doe", "{slug}");
                assert_eq!(data["user_email"], "jane@example.com", "{slug}");
                expected_keys.extend(["user_name".into(), "user_email".into()]);
            }
            for (object, title) in [
                ("course", "Intro to Pottery & Clay"),
                ("lesson", "Centering the clay"),
                ("quiz", "Glazes and firing"),
                ("path", "Studio Ceramics"),
            ] {
                if args.contains(&format!("{object}_id").as_str()) {
                    assert_eq!(data[format!("{object}_title")], title, "{slug}");
                    let link = data[format!("{object}_url")].as_str().unwrap_or_default();
                    assert!(
                        link.starts_with(&wp.base),
                        "{slug}: {object}_url is the permalink: {link}"
                    );
                    expected_keys.extend([format!("{object}_title"), format!("{object}_url")]);
                }
            }
            let keys: HashSet<String> = data.as_object().unwrap().keys().cloned().collect();
            assert_eq!(
                keys, expected_keys,
                "{slug}: the hook's arguments and the enrichment"
            );
        }
        assert_eq!(
            wp.state().await["outbox_pending"],
            0,
            "sent rows are removed"
        );
        wp.assert_clean_debug_log();
        drop(wp);
        service.finish().await;
    }
);

/// `(hook, args)` for `course_completed` with enrolment ids `from..to`.
fn completions(from: i64, to: i64) -> Vec<(String, Vec<Value>)> {
    (from..to)
        .map(|n| {
            (
                "learnomy_course_completed".to_owned(),
                vec![json!(n), json!(7), json!(42)],
            )
        })
        .collect()
}

/// Every enrolment id in `expected` was delivered, each as exactly one event (a repeated
/// delivery may only be a resend of the same delivery, never a second event).
fn assert_each_once(got: &[Received], expected: std::ops::Range<i64>) {
    let mut events: HashMap<i64, HashSet<String>> = HashMap::new();
    for r in got {
        let n = r.json()["data"]["enrollment_id"].as_i64().unwrap();
        events.entry(n).or_default().insert(r.header("webhook-id"));
    }
    let missing: Vec<i64> = expected
        .clone()
        .filter(|n| !events.contains_key(n))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    let doubled: Vec<i64> = events
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(n, _)| *n)
        .collect();
    assert!(doubled.is_empty(), "reported twice: {doubled:?}");
    assert_eq!(events.len(), expected.count());
}

both_backends!(
    events_fired_while_the_service_is_down_arrive_once,
    |backend| async move {
        let mut service = Service::start(backend, "free").await;
        let rx = Receiver::start().await;
        service
            .subscribe(&rx.url("/outage"), &["course_completed"], SECRET)
            .await;
        let wp = WordPress::start(&service.base(), &service.token).await;

        // The service is down: 200 events across 20 page requests wait in the outbox.
        service.kill();
        for page in 0..20 {
            wp.fire(&completions(page * 10, page * 10 + 10)).await;
        }
        wp.cron().await; // a cron run while the service is down keeps every row
        let state = wp.state().await;
        assert_eq!(state["outbox_pending"], 200, "{state}");

        service.restart().await;
        for _ in 0..2 {
            wp.cron().await;
            if wp.state().await["outbox_pending"] == 0 {
                break;
            }
        }
        let state = wp.state().await;
        assert_eq!(
            state["outbox_pending"], 0,
            "two cron runs send 200 events: {state}"
        );
        let got = rx.wait_for(200, Duration::from_secs(30)).await;
        assert_each_once(&got, 0..200);

        // kill -9 of the service while a flush is sending 4,000 events in batches.
        for page in 0..8 {
            wp.fire(&completions(1000 + page * 500, 1500 + page * 500))
                .await;
        }
        let cron = {
            let base = wp.base.clone();
            tokio::spawn(async move {
                let _ = reqwest::Client::new()
                    .get(format!("{base}/wp-cron.php?doing_wp_cron"))
                    .send()
                    .await;
            })
        };
        rx.wait_for(201, Duration::from_secs(60)).await; // the first batch is in
        service.kill();
        let _ = cron.await;
        assert!(
            wp.state().await["outbox_pending"].as_u64().unwrap_or(0) > 0,
            "the kill interrupted the flush"
        );
        service.restart().await;
        for _ in 0..3 {
            wp.cron().await;
            if wp.state().await["outbox_pending"] == 0 {
                break;
            }
        }
        let state = wp.state().await;
        assert_eq!(state["outbox_pending"], 0, "{state}");
        let expected = 200 + 4000;
        rx.wait_for(expected, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = rx.received();
        let late: Vec<Received> = got
            .iter()
            .filter(|r| r.json()["data"]["enrollment_id"].as_i64().unwrap() >= 1000)
            .cloned()
            .collect();
        assert_each_once(&late, 1000..5000);
        wp.assert_clean_debug_log();
        drop(wp);
        service.finish().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_set_aside_shown_and_never_blocks_the_rest() {
    // On Free, Pro events are refused for good (`unknown_event`).
    let service = Service::start(Backend::Sqlite, "free").await;
    let rx = Receiver::start().await;
    service
        .subscribe(&rx.url("/refused"), &["course_completed"], SECRET)
        .await;
    let wp = WordPress::start(&service.base(), &service.token).await;
    let mut calls = completions(1, 4);
    calls.insert(
        1,
        (
            "learnomy_pro_cohort_member_added".to_owned(),
            vec![json!(12), json!(7)],
        ),
    );
    wp.fire(&calls).await;
    wp.cron().await;
    let got = exactly(&rx, 3).await;
    assert_each_once(&got, 1..4);
    let state = wp.state().await;
    assert_eq!(state["outbox_pending"], 0, "{state}");
    assert_eq!(state["outbox_refused"], 1, "{state}");
    let reason = state["refused"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unknown_event"), "{reason}");

    // Later events still flow past the refused one.
    wp.fire(&completions(4, 6)).await;
    wp.cron().await;
    exactly(&rx, 5).await;

    let admin = wp.sign_in().await;
    let page = admin.page(PLUGIN_PAGE).await;
    assert!(
        page.contains("cohort_member_added"),
        "the refused event is listed"
    );
    assert!(
        page.contains("is a Pro event and the plan is Free"),
        "with the service's reason"
    );
    // Discard removes it for good.
    let (status, _) = admin.submit(&page, "lrn_webhooks_discard").await;
    assert_eq!(status, 302);
    let state = wp.state().await;
    assert_eq!(state["outbox_refused"], 0, "{state}");
    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learners_events_reach_an_in_order_webhook_in_the_order_they_happened() {
    let service = Service::start(Backend::Sqlite, "pro").await;
    let rx = Receiver::start().await;
    // The enrolment fails twice before it is taken; the completion must wait for it.
    rx.script(&[Answer::Status(503), Answer::Status(503)]);
    common::logs::remember(SECRET);
    let (status, created) = service
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("/crm"), "events": ["student_enrolled", "course_completed"],
                   "secret": SECRET, "ordering": "by_key"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let webhook = created["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let wp = WordPress::start(&service.base(), &service.token).await;
    let made = wp
        .fixtures(
            json!([{"login": "jane", "email": "jane@example.com", "display_name": "Jane Doe"}]),
            json!([{"title": "Intro to Pottery & Clay", "type": "lrn_course"}]),
        )
        .await;
    let (user, course) = (
        made["users"][0].as_i64().unwrap(),
        made["posts"][0].as_i64().unwrap(),
    );
    wp.fire(&[
        (
            "learnomy_student_enrolled".to_owned(),
            vec![json!(31), json!(user), json!(course), json!("purchase")],
        ),
        (
            "learnomy_course_completed".to_owned(),
            vec![json!(31), json!(user), json!(course)],
        ),
    ])
    .await;
    wp.cron().await;
    let got = exactly(&rx, 4).await;
    let order: Vec<String> = got.iter().map(|r| r.header("x-learnomy-event")).collect();
    assert_eq!(
        order,
        [
            "student_enrolled",
            "student_enrolled",
            "student_enrolled",
            "course_completed"
        ],
        "the completion waited until the enrolment was delivered"
    );
    assert_signed(&got[3]);
    let (_, log) = service
        .get(&format!("/api/v1/webhooks/{webhook}/deliveries"))
        .await;
    let keys: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["ordering_key"])
        .collect();
    assert_eq!(
        keys,
        [&json!(format!("user:{user}")); 2],
        "keyed by the learner: {log}"
    );
    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connection_says_in_words_what_the_token_may_do() {
    let mut service = Service::start(Backend::Sqlite, "pro").await;
    let wp = WordPress::start(&service.base(), &service.token).await;
    let admin = wp.sign_in().await;
    let page = admin.page(PLUGIN_PAGE).await;
    assert!(
        !page.contains(&service.token),
        "the token never reaches the browser"
    );
    let (status, back) = admin.submit(&page, "lrn_webhooks_check").await;
    assert_eq!(status, 302, "Check connection answers with a redirect");
    assert!(back.contains("page=learnomy-webhooks"), "{back}");
    let page = admin.page(PLUGIN_PAGE).await;
    let connected = format!(
        "Connected to Learnomy Webhooks {} at {}. Plan: Pro.",
        env!("CARGO_PKG_VERSION"),
        service.base()
    );
    assert!(page.contains(&connected), "{page}");
    assert!(page.contains("This token can report events and manage webhooks."));

    // Down: the Webhooks page says so in a notice (not a PHP error), and so does the check.
    service.kill();
    let down = admin.page(PLUGIN_PAGE).await;
    assert!(
        down.contains("The Learnomy Webhooks service does not answer at"),
        "the page says the service is down"
    );
    admin.submit(&down, "lrn_webhooks_check").await;
    let page = admin.page(PLUGIN_PAGE).await;
    assert!(page.contains("does not answer"), "the service is down");
    // A forged request (no nonce) is refused.
    let (status, _) = admin.post_admin(&[("action", "lrn_webhooks_check")]).await;
    assert_eq!(status, 403);
    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_leaves_no_table_option_or_cron_event() {
    let service = Service::start(Backend::Sqlite, "free").await;
    let wp = WordPress::start(&service.base(), &service.token).await;
    wp.fire(&completions(1, 3)).await;
    // A notice waiting for the administrator is a transient of the plugin's.
    let admin = wp.sign_in().await;
    let page = admin.page(PLUGIN_PAGE).await;
    admin.submit(&page, "lrn_webhooks_check").await;
    let before = wp.state().await;
    let transient = before["options"].as_array().is_some_and(|o| {
        o.iter()
            .any(|n| n.as_str().unwrap_or("").contains("transient"))
    });
    assert!(transient, "{before}");
    assert_eq!(
        before["tables"].as_array().map(Vec::len),
        Some(1),
        "{before}"
    );
    assert!(
        before["cron_next"].is_number(),
        "the flush is scheduled: {before}"
    );
    let after = wp.uninstall().await;
    assert_eq!(after["tables"], json!([]), "{after}");
    assert_eq!(after["options"], json!([]), "{after}");
    assert_eq!(after["cron_next"], Value::Null, "{after}");
    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pro_slugs_filter_adds_events_and_the_outbox_cap_drops_with_a_notice() {
    // The service knows one extra event (Pro's extra_events); the site reports two.
    let service = Service::start_with(
        Backend::Sqlite,
        "pro",
        &[(
            "EXTRA_EVENTS",
            r#"[{ slug = "badge_awarded", label = "Badge awarded" }]"#,
        )],
    )
    .await;
    let rx = Receiver::start().await;
    service
        .subscribe(&rx.url("/extra"), &["badge_awarded"], SECRET)
        .await;
    let wp = WordPress::start(&service.base(), &service.token).await;
    let made = wp
        .fixtures(
            json!([{"login": "sam", "email": "sam@example.com", "display_name": "Sam Rivera"}]),
            json!([]),
        )
        .await;
    let user = made["users"][0].as_i64().unwrap();
    wp.fire_with(
        &[
            (
                "learnomy_pro_badge_awarded".to_owned(),
                vec![json!(3), json!(user)],
            ),
            (
                "learnomy_pro_mystery_event".to_owned(),
                vec![json!({"x": 1})],
            ),
        ],
        json!({"extra_slugs": {"badge_awarded": ["badge_id", "user_id"], "mystery_event": []}}),
    )
    .await;
    wp.cron().await;
    let got = exactly(&rx, 1).await;
    assert_signed(&got[0]);
    assert_eq!(got[0].header("x-learnomy-event"), "badge_awarded");
    assert_eq!(
        got[0].json()["data"],
        json!({"badge_id": 3, "user_id": user, "user_name": "Sam Rivera", "user_email": "sam@example.com"}),
        "named by the filter's argument list, enriched like any event"
    );
    let state = wp.state().await;
    assert_eq!(
        state["outbox_refused"], 1,
        "the slug the service does not know: {state}"
    );
    assert!(
        state["refused"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown_event"),
        "{state}"
    );

    // The cap: with room for 3 waiting events, the 4th and 5th are dropped and counted, and
    // every admin screen says so.
    let mut service = service;
    service.kill();
    wp.fire_with(&completions(1, 6), json!({"max_rows": 3}))
        .await;
    let state = wp.state().await;
    assert_eq!(state["outbox_pending"], 3, "{state}");
    assert_eq!(state["dropped"], 2, "{state}");
    let admin = wp.sign_in().await;
    let dashboard = admin.page("/wp-admin/").await;
    assert!(
        dashboard.contains("lrn-webhooks-dropped") && dashboard.contains("2 events"),
        "the notice on the dashboard says how many were dropped"
    );
    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_owner_connects_on_the_settings_screen_and_the_token_is_never_shown_again() {
    let service = Service::start(Backend::Sqlite, "free").await;
    let rx = Receiver::start().await;
    service
        .subscribe(&rx.url("/settings"), &["course_completed"], SECRET)
        .await;
    let wp = WordPress::start_unconfigured().await;
    // Not connected yet: events wait in the outbox, and the page says what is missing.
    wp.fire(&completions(1, 3)).await;
    let admin = wp.sign_in().await;
    let page = admin.page(PLUGIN_PAGE).await;
    let mut fields = Admin::form_fields(&page, "lrn_webhooks_save_settings", "");
    fields.push(("lrn_webhooks_url".into(), service.base()));
    fields.push(("lrn_webhooks_token".into(), service.token.clone()));
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _) = admin.post_admin(&form).await;
    assert_eq!(status, 302, "Save answers with a redirect");
    let page = admin.page(PLUGIN_PAGE).await;
    assert!(page.contains("Settings saved."), "{page}");
    assert!(
        !page.contains(&service.token),
        "the saved token is never printed again"
    );
    assert!(
        page.contains(&format!("{}…", &service.token[..8])),
        "only its first characters, to recognise it"
    );
    // Saving again with the token field empty keeps the token.
    let mut fields = Admin::form_fields(&page, "lrn_webhooks_save_settings", "");
    fields.push(("lrn_webhooks_url".into(), service.base()));
    fields.push(("lrn_webhooks_token".into(), String::new()));
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    admin.post_admin(&form).await;
    // The events that waited, and a new one, are delivered.
    wp.fire(&completions(3, 4)).await;
    wp.cron().await;
    let got = exactly(&rx, 3).await;
    assert_each_once(&got, 1..4);
    for r in &got {
        assert_signed(r);
    }
    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}
