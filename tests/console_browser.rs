//! The admin console in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` with fantoccini), on both backends: sign in, add a webhook, copy its secret,
//! edit it, Test it against a live receiver, fill the Free slots, delete with confirmation, and
//! on Pro filter and page through the Delivery Log. Screenshots for the docs are written from
//! the SQLite run when `LEARNOMY_SCREENSHOTS=1`.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::receiver::{Answer, Receiver};
use common::{delivery_settings, with_server, TestServer};
use fantoccini::Locator;
use lwh_domain::Plan;
use serde_json::json;

const PASSWORD: &str = "a long console password";

/// Signs in to the console through its login page (a wrong password first).
async fn sign_in(b: &Browser, s: &TestServer) {
    common::logs::remember(PASSWORD);
    s.app.create_user("admin", PASSWORD).await.unwrap();
    b.client.goto(&s.url("/admin/webhooks")).await.unwrap();
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/login"),
        "signed-out visitors go to the login page"
    );
    b.fill("#name", "admin").await;
    b.fill("#password", "wrong password!!").await;
    b.click("button[type=submit]").await;
    b.wait_text(".notice-error", "wrong").await;
    b.fill("#name", "admin").await;
    b.fill("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_text("h1", "Webhooks").await;
}

/// Waits (the page's script runs after the page is shown) until `script` returns `expected`.
async fn wait_js(b: &Browser, script: &str, expected: serde_json::Value, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = b.js(script).await;
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{why}: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of each row of the Delivery Log's table.
async fn row_texts(b: &Browser) -> Vec<String> {
    let mut texts = Vec::new();
    for row in b
        .client
        .find_all(Locator::Css("#log-table tbody tr"))
        .await
        .unwrap()
    {
        texts.push(row.text().await.unwrap());
    }
    texts
}

async fn add_webhook(b: &Browser, url: &str, events: &[&str]) {
    b.fill("#url", url).await;
    for e in events {
        b.click(&format!("input[name=events][value={e}]")).await;
    }
    b.click("#webhook-form button[type=submit]").await;
}

both_backends!(webhooks_page_end_to_end_on_free, |backend| async move {
    with_server(
        backend,
        delivery_settings(Plan::Free),
        move |s| async move {
            let rx = Receiver::start().await;
            let b = Browser::start(backend).await;
            sign_in(&b, &s).await;
            assert_eq!(b.text("#usage").await, "0 of 3 webhooks used");

            // Server-side validation beside the field, with the SSRF reason.
            add_webhook(&b, "https://10.0.0.1/hook", &["course_completed"]).await;
            let error = b.wait_text("#url-error", "not allowed").await;
            assert!(error.contains("10.0.0.0/8"), "{error}");
            wait_js(
                &b,
                "return document.activeElement.id;",
                json!("url"),
                "after a refused save the focus is on the field to fix",
            )
            .await;
            assert!(
                b.count("#webhook-form fieldset.event-group > legend").await >= 5,
                "each event group is a fieldset with a legend"
            );

            // Add a webhook with the pre-filled secret, after copying it.
            let secret = b.value("#secret").await;
            assert_eq!(secret.len(), 32);
            let width = "return document.querySelector('[data-action=regenerate]').offsetWidth;";
            let before = b.js(width).await;
            b.click("[data-action=regenerate]").await;
            assert_eq!(b.js(width).await, before, "Regenerate keeps its width");
            b.wait_text("#announcer", "New key").await;
            let regenerated = b.value("#secret").await;
            assert_eq!(regenerated.len(), 32);
            assert_ne!(regenerated, secret);
            b.click("[data-action=copy][data-target=secret]").await;
            b.wait_text("[data-action=copy][data-target=secret]", "Copied")
                .await;
            b.wait_text("#announcer", "Copied").await;
            // The refused form kept its values: course_completed is still checked.
            assert!(
                b.exists("input[name=events][value=course_completed]:checked")
                    .await
            );
            add_webhook(&b, &rx.url("/first"), &["certificate_issued"]).await;
            b.wait_text(".notice-success", "Webhook added").await;
            wait_js(
                &b,
                "return document.activeElement.id;",
                json!("notice"),
                "after saving the focus is on the confirmation",
            )
            .await;
            assert!(
                !b.client.source().await.unwrap().contains(&regenerated),
                "the secret was copied from the form; after saving no page shows it"
            );
            let url = b.client.current_url().await.unwrap();
            b.client.refresh().await.unwrap();
            assert_eq!(b.client.current_url().await.unwrap(), url);
            assert_eq!(b.text("#usage").await, "1 of 3 webhooks used");
            let row = b.text("#webhooks-table tbody tr").await;
            assert!(
                row.contains(&rx.url("/first"))
                    && row.contains("Course completed")
                    && row.contains("Active")
                    && row.contains("Never"),
                "{row}"
            );

            // The secret is not on any later page.
            b.client.goto(&s.url("/admin/webhooks")).await.unwrap();
            assert!(!b.client.source().await.unwrap().contains(&regenerated));

            // Edit: pre-filled with URL and events; the secret is preserved.
            b.click("#webhooks-table a[href*=edit]").await;
            b.wait_text("#form-title", "Edit Webhook").await;
            assert_eq!(b.value("#url").await, rx.url("/first"));
            assert!(
                b.exists("input[name=events][value=certificate_issued]:checked")
                    .await
            );
            assert!(
                !b.exists("#secret").await,
                "the edit form never shows the secret"
            );
            b.fill("#url", &rx.url("/edited")).await;
            b.click("#webhook-form button[type=submit]").await;
            b.wait_text(".notice-success", "updated").await;
            assert!(b
                .text("#webhooks-table tbody tr")
                .await
                .contains(&rx.url("/edited")));
            let (webhooks, _) = s.app.list_webhooks().await.unwrap();
            assert_eq!(
                s.app.webhook_secret(&webhooks[0]).unwrap().expose(),
                regenerated
            );

            // Test against the live receiver: outcome in the row, signature verifies, and the
            // row itself is refreshed in place (no reload): Last Triggered and the last
            // delivery's outcome.
            b.js("window.__sameDocument = true;").await;
            b.click("[data-test-url]").await;
            let outcome = b.wait_text(".test-result", "Test delivered").await;
            assert!(
                outcome.contains("HTTP 200") && outcome.contains("ms"),
                "{outcome}"
            );
            let row = b.text("#webhooks-table tbody tr").await;
            assert!(
                row.contains("Last delivery succeeded") && !row.contains("Never"),
                "the row is refreshed: {row}"
            );
            assert_eq!(b.js("return window.__sameDocument === true;").await, json!(true));
            assert_eq!(
                b.js("return document.activeElement.matches('[data-test-url]');").await,
                json!(true),
                "focus stays on the Test button of the refreshed row"
            );
            let got = rx.wait_for(1, Duration::from_secs(10)).await;
            assert!(lwh_domain::signing::verify_learnomy_signature(
                &regenerated,
                &got[0].body,
                &got[0].header("x-learnomy-signature")
            ));
            // Times are shown in the viewer's local time, with UTC in the tooltip.
            let (shown, title) = (
                b.text("#webhooks-table td.when time").await,
                b.attr("#webhooks-table td.when time", "title").await.unwrap_or_default(),
            );
            assert!(title.ends_with("UTC") && !shown.ends_with("UTC"), "{shown} / {title}");

            // Fill the Free slots (one with Select all): the form gives way to the Pro notice.
            b.click("#select-all").await;
            add_webhook(&b, &rx.url("/second"), &[]).await;
            b.wait_text("#usage", "2 of 3").await;
            let bad = Receiver::start().await;
            bad.always(Answer::Status(500));
            add_webhook(&b, &bad.url("/third"), &["quiz_passed"]).await;
            b.wait_text("#usage", "3 of 3").await;
            assert!(b.exists("#pro-notice").await);
            assert!(!b.exists("#webhook-form").await);
            let (all, _) = s.app.list_webhooks().await.unwrap();
            assert_eq!(
                all[1].events.len(),
                18 + 3,
                "Select all stored every event, the service's included"
            );
            // Every event is one line, with the list on demand, not 21 badges.
            let second = format!("#row-{}", all[1].id);
            assert_eq!(b.text(&format!("{second} details summary")).await, "All events");
            assert_eq!(
                b.js(&format!("return document.querySelector('{second} details').open;")).await,
                json!(false)
            );

            // A failing receiver shows on the row, on Free (no log): "Failing" while Active,
            // with the last answer.
            let third = format!("#row-{}", all[2].id);
            let quiz = || lwh_app::ingest::IncomingEvent {
                event: "quiz_passed".into(),
                data: json!({"user_id": 7}),
                idempotency_key: None,
                ordering_key: None,
            };
            s.app.ingest(vec![quiz()], true).await.unwrap();
            bad.wait_for(1, Duration::from_secs(10)).await;
            let deadline = Instant::now() + Duration::from_secs(10);
            let row = loop {
                b.client.refresh().await.unwrap();
                let row = b.text(&third).await;
                // The row's chart follows within a second (its counters are written then).
                if row.contains("Last delivery failed") && row.contains("0.0 %") {
                    break row;
                }
                assert!(Instant::now() < deadline, "the failure never showed: {row}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            assert!(
                row.contains("Failing") && row.contains("HTTP 500") && row.contains("failed attempt"),
                "{row}"
            );
            // Its health chart (on Free too) draws the failure in red and says it in words.
            assert!(b.count(&format!("{third} .health svg rect.bad")).await >= 1);
            let label = b
                .js(&format!(
                    "return document.querySelector('{third} .health svg').getAttribute('aria-label');"
                ))
                .await;
            assert!(
                label.as_str().is_some_and(|l| l.contains("0.0 % delivered")),
                "{label}"
            );
            let drawn = b
                .js(&format!(
                    "return document.querySelector('{third} .health svg').getBoundingClientRect().width;"
                ))
                .await;
            assert!(drawn.as_f64().is_some_and(|w| w >= 100.0), "{drawn}");
            b.screenshot("webhooks.png").await;

            // A failing Test says the code once, and shows what the receiver answered.
            b.click(&format!("{third} [data-test-url]")).await;
            let outcome = b.wait_text(&format!("{third} .test-result"), "Test failed").await;
            assert!(outcome.contains("HTTP 500"), "{outcome}");
            assert_eq!(outcome.matches("500").count(), 1, "{outcome}");

            // Paused holds deliveries and says how many (once the failed one has used its
            // retries, nothing else is queued).
            let deadline = Instant::now() + Duration::from_secs(10);
            while s.app.webhook_activity(all[2].id).await.unwrap().queued > 0 {
                assert!(Instant::now() < deadline, "the failing delivery never finished");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            b.click(&format!("{third} form[action$=status] button[title*=Hold]")).await;
            b.wait_text(".notice-success", "Paused").await;
            s.app.ingest(vec![quiz(), quiz()], true).await.unwrap();
            b.client.refresh().await.unwrap();
            let row = b.text(&third).await;
            assert!(row.contains("Holding 2 deliveries"), "{row}");

            // Disable asks first, saying what it cancels; dismissing changes nothing.
            b.click(&format!("{third} form[data-confirm*=Disable] button")).await;
            let question = b.client.get_alert_text().await.unwrap();
            assert!(
                question.contains("2 queued deliveries are cancelled") && question.contains("Pause"),
                "{question}"
            );
            b.client.dismiss_alert().await.unwrap();
            assert!(b.text(&third).await.contains("Paused"));
            b.click(&format!("{third} form[data-confirm*=Disable] button")).await;
            b.client.accept_alert().await.unwrap();
            b.wait_text(".notice-success", "Disabled").await;
            assert!(!b.text(&third).await.contains("Holding"));
            assert!(b.text("#status-help").await.contains("Pause holds deliveries"));

            // Every visible control has a label, and the page is usable at 375 px.
        let unlabelled = b
            .client
            .execute(
                "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, button, textarea'))\
                   .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())\
                   .map(el => el.outerHTML);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unlabelled, json!([]), "controls without a label");
        b.client.set_window_size(375, 800).await.unwrap();
        // Cards keep their column labels, and the action buttons do not touch.
        let label = b
            .js("return getComputedStyle(document.querySelector('#webhooks-table td.status'), '::before').content;")
            .await;
        assert_eq!(label, json!("\"Status\""), "the Status cell is labelled at 375 px");
        let gap = b
            .js("var bs = document.querySelectorAll('#webhooks-table tbody tr:first-child .row-actions .button');\
                 var a = bs[0].getBoundingClientRect(), c = bs[1].getBoundingClientRect();\
                 return Math.round(a.top === c.top ? c.left - a.right : c.top - a.bottom);")
            .await;
        assert!(gap.as_i64().unwrap() >= 6, "buttons touch at 375 px: {gap}");
        let overflow = b
            .client
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
            .await
            .unwrap();
        assert!(overflow.as_i64().unwrap() <= 0, "horizontal scrolling at 375 px: {overflow}");
        b.js("document.getElementById('webhooks-table').scrollIntoView();").await;
        b.screenshot("webhooks-375.png").await;
        b.client.set_window_size(1280, 1000).await.unwrap();

        // Delete with confirmation: dismissing keeps it, accepting removes it.
            b.click("#webhooks-table form[action$=delete] button").await;
            b.client.dismiss_alert().await.unwrap();
            assert_eq!(b.count("#webhooks-table tbody tr").await, 3);
            b.click("#webhooks-table form[action$=delete] button").await;
            b.client.accept_alert().await.unwrap();
            b.wait_text(".notice-success", "deleted").await;
            assert_eq!(b.count("#webhooks-table tbody tr").await, 2);
            assert!(
                b.exists("#webhook-form").await,
                "a free slot brings the form back"
            );

            // The Delivery Log is Pro.
            let id = s.app.list_webhooks().await.unwrap().0[0].id;
            b.client
                .goto(&s.url(&format!("/admin/webhooks/{id}/log")))
                .await
                .unwrap();
            b.wait_text("#pro-notice", "Pro").await;
            b.close().await;
        },
    )
    .await;
});

both_backends!(
    delivery_log_filters_and_pages_on_pro,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.retry_schedule = vec![lwh_app::Dur(Duration::from_millis(50))];
        with_server(backend, settings, move |s| async move {
            let rx = Receiver::start().await;
            let created = s
                .app
                .create_webhook(
                    &rx.url("/log"),
                    &["quiz_passed".into(), "quiz_failed".into()],
                    None,
                    &[],
                    None,
                )
                .await
                .unwrap();
            let id = created.webhook.id;
            let events = |event: &str, count: usize| {
                (0..count)
                    .map(|i| lwh_app::ingest::IncomingEvent {
                        event: event.into(),
                        data: json!({"i": i}),
                        idempotency_key: None,
                        ordering_key: None,
                    })
                    .collect()
            };
            s.app.ingest(events("quiz_passed", 22), true).await.unwrap();
            rx.wait_for(22, Duration::from_secs(15)).await;
            rx.always(Answer::Status(500));
            s.app.ingest(events("quiz_failed", 3), true).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            while s
                .app
                .delivery_log(id, Some(lwh_domain::DeliveryStatus::Failed), None, 10)
                .await
                .unwrap()
                .deliveries
                .len()
                < 3
            {
                assert!(
                    Instant::now() < deadline,
                    "failed deliveries did not settle"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }

            // The hourly counters are written within a second of the attempts.
            let deadline = Instant::now() + Duration::from_secs(5);
            while s
                .app
                .webhook_stats(id, lwh_domain::stats::Window::Day)
                .await
                .unwrap()
                .attempts
                < 28
            {
                assert!(Instant::now() < deadline, "the stats never caught up");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }

            let b = Browser::start(backend).await;
            sign_in(&b, &s).await;
            b.click(&format!("a[href='/admin/webhooks/{id}/log']"))
                .await;
            b.wait_text("h1", "Delivery Log").await;
            assert!(b
                .text(".breadcrumb")
                .await
                .contains("Webhooks / Delivery Log"));
            assert!(b.text(".endpoint").await.contains(&rx.url("/log")));
            assert_eq!(b.count("#log-table tbody tr").await, 20, "first page");
            assert!(
                b.text("#log-table tbody tr").await.contains("Failed"),
                "newest first"
            );
            // The health chart: 22 delivered, and 3 failed twice each (one retry).
            assert_eq!(b.text("#stat-attempts").await, "28");
            assert_eq!(b.text("#stat-rate").await, "78.5 %");
            assert!(b.count("#health-chart rect.ok").await >= 1);
            assert!(b.count("#health-chart rect.bad").await >= 1);
            let drawn = b
                .js("return document.querySelector('#health-chart svg').getBoundingClientRect().width;")
                .await;
            assert!(drawn.as_f64().is_some_and(|w| w >= 400.0), "{drawn}");
            b.screenshot("delivery-log.png").await;
            b.click("a[href='?window=7d']").await;
            wait_js(
                &b,
                "return document.querySelector('#health-chart').dataset.window;",
                json!("7d"),
                "the week's chart",
            )
            .await;
            assert_eq!(b.text("#stat-attempts").await, "28");
            b.client.back().await.unwrap();
            wait_js(
                &b,
                "return document.querySelector('#health-chart').dataset.window;",
                json!("24h"),
                "back to the day's chart",
            )
            .await;

            // Filters and paging update the list without a page reload.
            b.client
                .execute("window.__sameDocument = true;", vec![])
                .await
                .unwrap();
            b.click("#next-page").await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while b.count("#log-table tbody tr").await != 5 {
                assert!(Instant::now() < deadline, "the second page did not load");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            b.click("[data-status=failed]").await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while b.count("#log-table tbody tr").await != 3 {
                assert!(Instant::now() < deadline, "the Failed filter did not apply");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for text in row_texts(&b).await {
                assert!(text.contains("Failed") && text.contains("500"), "{text}");
            }
            b.click("[data-status=delivered]").await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while b.count("#log-table tbody tr").await != 20 {
                assert!(
                    Instant::now() < deadline,
                    "the Delivered filter did not apply"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for text in row_texts(&b).await {
                assert!(
                    text.contains("Delivered") && !text.contains("Failed"),
                    "the Delivered filter shows only Delivered rows: {text}"
                );
            }
            let same = b
                .client
                .execute("return window.__sameDocument === true;", vec![])
                .await
                .unwrap();
            assert_eq!(same, json!(true), "no page reload");
            assert_eq!(
                b.client
                    .find(Locator::Css("[data-status=delivered]"))
                    .await
                    .unwrap()
                    .attr("aria-pressed")
                    .await
                    .unwrap()
                    .as_deref(),
                Some("true")
            );

            // Details of a failed delivery, then Redeliver.
            rx.always(Answer::Status(200));
            b.click("[data-status=failed]").await;
            b.wait_text("#log-table tbody tr", "Failed").await;
            // Labels, not slugs; the event's time and the last attempt's; attempts counted
            // as attempts (1 + the retry schedule's one retry).
            let headers = b.text("#log-table thead").await;
            assert!(
                headers.contains("Event time")
                    && headers.contains("Last attempt")
                    && headers.contains("Attempts"),
                "{headers}"
            );
            let failed_row = b.text("#log-table tbody tr").await;
            assert!(
                failed_row.contains("Quiz failed") && !failed_row.contains("quiz_failed"),
                "{failed_row}"
            );
            assert_eq!(
                b.text("#log-table tbody tr td:nth-child(5)").await,
                "2",
                "two attempts: {failed_row}"
            );
            assert_eq!(
                b.count("#log-table tbody tr:first-child td.when time")
                    .await,
                2
            );
            b.click("#log-table tbody tr a").await;
            b.wait_text("h1", "Delivery").await;
            let attempts = b.text("#attempts-table").await;
            assert!(attempts.contains("HTTP 500"), "{attempts}");
            assert!(
                !attempts.contains("http_status"),
                "labels, not slugs: {attempts}"
            );
            assert!(b.text("pre.payload").await.contains("quiz_failed"));
            // Each attempt's request and response headers, on demand.
            b.click("#attempts-table tr.attempt-headers summary").await;
            let headers = b
                .text("#attempts-table tr.attempt-headers .headers")
                .await
                .to_lowercase();
            assert!(
                headers.contains("request headers")
                    && headers.contains("webhook-signature: v1,")
                    && headers.contains("x-learnomy-signature: ")
                    && headers.contains("webhook-id: evt_")
                    && headers.contains("response headers")
                    && headers.contains("date: "),
                "{headers}"
            );
            b.click_and_load("form[action$=redeliver] button").await;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                b.client.refresh().await.unwrap();
                if b.text("dl.facts").await.contains("Delivered") {
                    break;
                }
                assert!(Instant::now() < deadline, "redelivery did not succeed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let facts = b.text("dl.facts").await;
            assert!(
                facts.contains("Redelivered") && facts.contains("3 attempts"),
                "the redelivery is marked and its attempt counted: {facts}"
            );
            b.client
                .goto(&s.url(&format!("/admin/webhooks/{id}/log?status=delivered")))
                .await
                .unwrap();
            assert!(
                b.text("#log-table tbody tr").await.contains("Redelivered"),
                "the log marks it too"
            );
            b.close().await;
        })
        .await;
    }
);

both_backends!(rotating_a_secret_in_the_console, |backend| async move {
    with_server(
        backend,
        delivery_settings(Plan::Free),
        move |s| async move {
            let rx = Receiver::start().await;
            let b = Browser::start(backend).await;
            sign_in(&b, &s).await;
            let old = b.value("#secret").await;
            common::logs::remember(&old);
            // With a custom header, typed in the form's first empty row.
            common::logs::remember("Bearer console-hdr-9Xq2");
            b.fill("#custom-headers input[name=header_name]", "Authorization")
                .await;
            b.fill(
                "#custom-headers input[name=header_value]",
                "Bearer console-hdr-9Xq2",
            )
            .await;
            add_webhook(&b, &rx.url("/rotate"), &["course_completed"]).await;
            b.wait_text(".notice", "Webhook added").await;
            b.click("#webhooks-table a[href*=edit]").await;
            b.wait_text("#custom-headers", "Authorization: ••••••••")
                .await;
            assert!(!b
                .client
                .source()
                .await
                .unwrap()
                .contains("console-hdr-9Xq2"));
            b.client.goto(&s.url("/admin/webhooks")).await.unwrap();

            // The Rotate secret page: a new key pre-filled, to copy before starting.
            b.click("#webhooks-table a[href$='/rotate']").await;
            b.wait_text("h1", "Rotate secret").await;
            let new = b.value("#secret").await;
            common::logs::remember(&new);
            assert_eq!(new.len(), 32);
            assert_ne!(new, old);
            assert_eq!(b.value("#overlap").await, "24h", "a day by default");
            b.screenshot("rotate-secret.png").await;
            b.click("[data-action=copy]").await;
            b.click("#rotate-card button[type=submit]").await;
            b.wait_text(".notice", "Secret rotation started").await;
            assert!(
                !b.client.source().await.unwrap().contains(&new),
                "the new secret appears in no page after starting"
            );
            let status = b.text("#webhooks-table td.status").await;
            assert!(
                status.contains("Rotating secret · the previous key signs until"),
                "{status}"
            );

            // Test: the previous key signs X-Learnomy-Signature, the new one the -Next header.
            b.click("#webhooks-table button[data-test-url]").await;
            b.wait_text("#webhooks-table .test-result", "Test delivered")
                .await;
            let got = rx.received().pop().expect("the test delivery");
            assert_eq!(got.header("authorization"), "Bearer console-hdr-9Xq2");
            let body = &got.body;
            assert!(lwh_domain::signing::verify_learnomy_signature(
                &old,
                body,
                &got.header("x-learnomy-signature")
            ));
            assert!(lwh_domain::signing::verify_learnomy_signature(
                &new,
                body,
                &got.header("x-learnomy-signature-next")
            ));

            // Back to the Rotate secret page: it says a rotation runs, and shows no key.
            b.client.back().await.unwrap();
            b.wait_text("#rotate-card", "A rotation is in progress")
                .await;
            assert!(!b.exists("#secret").await);
            assert!(!b.client.source().await.unwrap().contains(&new));

            // Finish now (after the confirmation): only the new key signs.
            b.client.goto(&s.url("/admin/webhooks")).await.unwrap();
            b.click("#webhooks-table .rotation button").await;
            b.client.accept_alert().await.unwrap();
            b.wait_text(".notice", "Secret rotation finished").await;
            assert!(!b
                .text("#webhooks-table td.status")
                .await
                .contains("Rotating"));
            b.click("#webhooks-table button[data-test-url]").await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while rx.count() < 2 {
                assert!(Instant::now() < deadline, "no second test delivery");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let got = rx.received().pop().expect("the second test delivery");
            assert!(got.header("x-learnomy-signature-next").is_empty());
            assert!(lwh_domain::signing::verify_learnomy_signature(
                &new,
                &got.body,
                &got.header("x-learnomy-signature")
            ));
            b.close().await;
        },
    )
    .await;
});

/// Chooses `format` in the form's Body format, as a user's change would.
async fn choose_format(b: &Browser, format: &str) {
    b.js(&format!(
        "const s = document.getElementById('format'); s.value = '{format}';\
         s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_formats_with_a_live_preview() {
    let backend = lwh_storage::Backend::Sqlite;
    with_server(
        backend,
        delivery_settings(Plan::Free),
        move |s| async move {
            let rx = Receiver::start().await;
            let b = Browser::start(backend).await;
            sign_in(&b, &s).await;
            // Rendered with the page, then following the format, the template and the event.
            let first = b.text("#format-preview").await;
            assert!(first.contains("\"event\": \"course_completed\""), "{first}");
            assert!(b.exists("#template-field[hidden]").await);
            choose_format(&b, "teams").await;
            let teams = b.wait_text("#format-preview", "AdaptiveCard").await;
            assert!(teams.contains("Jane Doe completed"), "{teams}");
            b.js(
                "const e = document.getElementById('preview-event'); e.value = 'quiz_passed';\
              e.dispatchEvent(new Event('change', {bubbles: true})); return true;",
            )
            .await;
            b.wait_text("#format-preview", "with a score of 85").await;

            // A template: a broken one is explained live and refused on save, with the line.
            choose_format(&b, "template").await;
            assert!(!b.exists("#template-field[hidden]").await);
            b.fill("#template", "{\"text\": {{ sentence }").await;
            b.wait_text("#format-preview", "line 1").await;
            add_webhook(&b, &rx.url("/tpl"), &["course_completed"]).await;
            let error = b.wait_text("#template-error", "line 1").await;
            assert!(!error.is_empty());
            assert_eq!(b.value("#template").await, "{\"text\": {{ sentence }");
            assert!(s.app.list_webhooks().await.unwrap().0.is_empty());

            // Fixed and saved: the receiver gets the template's body, signed.
            b.fill("#template", "{\"text\": {{ sentence }}}").await;
            b.wait_text("#format-preview", "Jane Doe completed").await;
            let secret = b.value("#secret").await;
            b.click("#webhook-form button[type=submit]").await;
            b.wait_text("#notice", "Webhook added").await;
            let (webhooks, _) = s.app.list_webhooks().await.unwrap();
            assert_eq!(webhooks[0].format, lwh_domain::format::Format::Template);
            s.app
            .ingest(
                vec![lwh_app::ingest::IncomingEvent {
                    event: "course_completed".into(),
                    data: json!({"user_id": 7, "user_name": "Ann <b>", "course_title": "Glaze"}),
                    idempotency_key: None,
                    ordering_key: None,
                }],
                true,
            )
            .await
            .unwrap();
            let got = rx.wait_for(1, Duration::from_secs(15)).await;
            got[0].assert_signed(&secret);
            assert_eq!(got[0].json(), json!({"text": "Ann <b> completed Glaze"}));
            // For the docs: the form on that webhook, at its Body format.
            b.client
                .goto(&s.url(&format!("/admin/webhooks?edit={}", webhooks[0].id)))
                .await
                .unwrap();
            assert_eq!(b.value("#format").await, "template");
            b.js("document.getElementById('body-format').scrollIntoView(); return true;")
                .await;
            b.screenshot("body-format.png").await;
            b.close().await;
        },
    )
    .await;
}
