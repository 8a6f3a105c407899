//! The plugin's Webhooks page and Delivery Log in wp-admin ("Learnomy Settings > Webhooks"),
//! in a real WordPress (Debian's package on MariaDB, PHP's built-in server) driven by a real
//! headless Chromium, against the real service binary and loopback receivers: the seed page's
//! walk-through (usage counter, Add New Webhook with Select all and the pre-filled secret,
//! Regenerate, Copy, the row at once, Edit keeping the secret, Test in the row, Delete after a
//! confirmation, the Pro notice at the Free limit), the body format and the delivery order, the
//! SSRF refusal beside the field, forged and unprivileged requests that change nothing, the Pro
//! Delivery Log (filters and pages without a reload, details, Redeliver), the keyboard, and a
//! 375 px wide screen. The secret never appears in a page after it was saved, and WordPress's
//! debug log stays empty.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::receiver::{Answer, Received, Receiver};
use common::wordpress::{Admin, Service, WordPress, ADMIN_PASSWORD, ADMIN_USER};
use fantoccini::key::Key;
use fantoccini::Locator;
use hmac::{Hmac, Mac};
use lwh_storage::Backend;
use serde_json::{json, Value};
use sha2::Sha256;

/// The plugin's page in wp-admin.
const PLUGIN_PAGE: &str = "/wp-admin/admin.php?page=learnomy-webhooks";

/// The secret of webhooks created through the API in these tests.
const SECRET: &str = "wp-admin-secret-Hk3F9mQ2xV7pL0sT4w";

/// Events in the Free catalogue: 18 from the LMS, 3 from the service itself.
const FREE_EVENTS: usize = 21;

/// The rows of the webhooks table.
const ROWS: &str = "#lrn-webhooks-table tbody tr";

/// The rows of the Delivery Log.
const LOG_ROWS: &str = "#lrn-webhooks-log-table tbody tr";

/// lowercase hex of HMAC-SHA256(secret, body): what `X-Learnomy-Signature` must be.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a delivery is signed with `secret`.
fn signed_with(r: &Received, secret: &str) -> bool {
    r.header("x-learnomy-signature") == signature(secret, &r.body)
}

/// A generated secret key: 32 characters of [A-Za-z0-9].
fn is_generated_secret(secret: &str) -> bool {
    secret.len() == 32 && secret.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The value of the `value` attribute of the element whose markup contains `marker`.
fn value_after(page: &str, marker: &str) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not on the page"));
    let tag = &page[page[..at].rfind('<').unwrap_or(0)..];
    let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    tag.split(" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// Clicks the first element matching `css` after scrolling it to the middle of the window: the
/// fixed admin bar of wp-admin would otherwise cover elements near the top of the window.
async fn click(b: &Browser, css: &str) {
    b.client
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'}); return true;",
            vec![json!(css)],
        )
        .await
        .unwrap_or_else(|e| panic!("{css} not on the page: {e}"));
    b.click(css).await;
}

/// Signs the browser in through wp-login.php's form.
async fn sign_in(b: &Browser, wp: &WordPress, user: &str, password: &str) {
    b.client
        .goto(&format!("{}/wp-login.php", wp.base))
        .await
        .unwrap();
    b.fill("#user_login", user).await;
    b.fill("#user_pass", password).await;
    click(b, "#wp-submit").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !b
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/wp-admin")
    {
        assert!(Instant::now() < deadline, "{user} could not sign in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the plugin's page (with `query` appended, e.g. "&view=pro").
async fn open(b: &Browser, wp: &WordPress, query: &str) {
    b.client
        .goto(&format!("{}{PLUGIN_PAGE}{query}", wp.base))
        .await
        .unwrap();
}

/// The Webhooks page of a Free site, open in a browser signed in as its admin: the service, a
/// receiver, WordPress and the browser.
async fn webhooks_page_on_free() -> (Service, Receiver, WordPress, Browser) {
    let service = Service::start(Backend::Sqlite, "free").await;
    let rx = Receiver::start().await;
    let wp = WordPress::start(&service.base(), &service.token).await;
    let b = Browser::start(Backend::Sqlite).await;
    sign_in(&b, &wp, ADMIN_USER, ADMIN_PASSWORD).await;
    open(&b, &wp, "").await;
    (service, rx, wp, b)
}

/// Closes the browser, checks WordPress's debug log stayed empty, and stops the service.
async fn finish(b: Browser, wp: WordPress, service: Service) {
    b.close().await;
    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}

/// Fills the Add New Webhook form (URL, then a click on each event) and submits it.
async fn add_webhook(b: &Browser, url: &str, events: &[&str]) {
    b.fill("#lrn-webhooks-delivery-url", url).await;
    for e in events {
        click(b, &format!("input[name=\"events[]\"][value=\"{e}\"]")).await;
    }
    click(b, "#lrn-webhooks-submit").await;
}

/// How many event boxes are ticked.
async fn ticked(b: &Browser) -> usize {
    b.count("input[name=\"events[]\"]:checked").await
}

/// The page's HTML as the browser has it.
async fn source(b: &Browser) -> String {
    b.client.source().await.unwrap()
}

/// Whether the focused element has a visible outline (its computed style).
async fn focus_outline(b: &Browser) -> (String, bool) {
    let style = b
        .js("const e = document.activeElement, s = getComputedStyle(e);\
             return [e.id, s.outlineStyle, parseFloat(s.outlineWidth) || 0, s.outlineColor];")
        .await;
    let id = style[0].as_str().unwrap_or_default().to_owned();
    let visible = style[1] != "none"
        && style[2].as_f64().unwrap_or(0.0) >= 1.0
        && style[3] != "rgba(0, 0, 0, 0)"
        && style[3] != "transparent";
    (id, visible)
}

both_backends!(webhooks_page_walkthrough_on_free, |backend| async move {
    let service = Service::start(backend, "free").await;
    let first_rx = Receiver::start().await;
    let rx = Receiver::start().await;
    let wp = WordPress::start(&service.base(), &service.token).await;
    let b = Browser::start(backend).await;
    sign_in(&b, &wp, ADMIN_USER, ADMIN_PASSWORD).await;
    open(&b, &wp, "").await;
    assert_eq!(b.text("#lrn-webhooks-usage").await, "0 of 3 webhooks used");
    assert!(b
        .text("#lrn-webhooks-form-title")
        .await
        .contains("Add New Webhook"));
    assert!(
        b.exists("#lrn-webhooks-form fieldset.lrn-webhooks-group legend")
            .await,
        "events are grouped in fieldsets with a legend"
    );

    // A URL the SSRF policy refuses: refused when saved (nothing is sent), the rule the service
    // named beside the field, the URL and the events filled in again, a fresh secret.
    let refused_secret = b.value("#lrn-webhooks-secret").await;
    add_webhook(&b, "http://169.254.169.254/", &["course_completed"]).await;
    let error = b
        .wait_text("#lrn-webhooks-delivery-url-error", "not allowed")
        .await;
    assert!(error.contains("169.254.0.0/16"), "{error}");
    let described = b
        .attr("#lrn-webhooks-delivery-url", "aria-describedby")
        .await
        .unwrap_or_default();
    assert!(
        described.contains("lrn-webhooks-delivery-url-error"),
        "{described}"
    );
    assert_eq!(
        b.attr("#lrn-webhooks-delivery-url", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        b.value("#lrn-webhooks-delivery-url").await,
        "http://169.254.169.254/"
    );
    assert!(
        b.exists("input[name=\"events[]\"][value=\"course_completed\"]:checked")
            .await
    );
    assert_ne!(b.value("#lrn-webhooks-secret").await, refused_secret);
    assert!(service.webhooks().await.is_empty(), "nothing was created");

    // The secret key: pre-filled by PHP, Regenerate changes it, Copy copies it.
    let prefilled = b.value("#lrn-webhooks-secret").await;
    assert!(is_generated_secret(&prefilled), "{prefilled}");
    click(&b, "#lrn-webhooks-regenerate").await;
    b.wait_text("#lrn-webhooks-secret-status", "New key").await;
    let secret = b.value("#lrn-webhooks-secret").await;
    assert!(is_generated_secret(&secret), "{secret}");
    assert_ne!(secret, prefilled, "Regenerate makes a new key");
    common::logs::remember(&secret);
    // Headless Chromium's clipboard cannot be read back: record what the page hands to it
    // (the Clipboard API, or execCommand("copy") on the selected field).
    b.js("window.__copied = [];\
          if (navigator.clipboard) {\
            const write = navigator.clipboard.writeText.bind(navigator.clipboard);\
            navigator.clipboard.writeText = function (t) { window.__copied.push(t); return write(t); };\
          }\
          const exec = document.execCommand.bind(document);\
          document.execCommand = function (c) {\
            if (c === 'copy') { window.__copied.push(document.activeElement.value); }\
            return exec.apply(document, arguments);\
          };\
          return true;")
        .await;
    click(&b, "#lrn-webhooks-copy").await;
    b.wait_text("#lrn-webhooks-secret-status", "Copied").await;
    let copied = b.js("return window.__copied;").await;
    assert!(
        copied
            .as_array()
            .is_some_and(|c| c.iter().any(|v| v == &json!(secret))),
        "Copy handed the key to the clipboard: {copied}"
    );
    assert!(b
        .text("#lrn-webhooks-secret-help")
        .await
        .contains("Copy it now. For security, it is not shown again after you save."));

    // Add Webhook with Select all: the row is in the table at once.
    b.fill("#lrn-webhooks-delivery-url", &first_rx.url("/first"))
        .await;
    click(&b, "#lrn-webhooks-select-all").await;
    assert_eq!(
        ticked(&b).await,
        FREE_EVENTS,
        "Select all ticks every event"
    );
    click(&b, "#lrn-webhooks-submit").await;
    b.wait_text(".lrn-webhooks-flash", "Webhook added").await;
    assert_eq!(b.text("#lrn-webhooks-usage").await, "1 of 3 webhooks used");
    assert_eq!(b.count(ROWS).await, 1);
    let row = b.text(ROWS).await;
    assert!(
        row.contains(&first_rx.url("/first"))
            && row.contains(&format!("All events ({FREE_EVENTS})"))
            && row.contains("Active")
            && row.contains("Never"),
        "{row}"
    );
    assert!(
        !b.exists(".lrn-webhooks-view-log").await,
        "no Delivery Log on Free"
    );
    assert!(
        !source(&b).await.contains(&secret),
        "the secret is not shown again"
    );
    // POST-redirect-GET: reloading adds nothing.
    b.client.refresh().await.unwrap();
    assert_eq!(b.text("#lrn-webhooks-usage").await, "1 of 3 webhooks used");
    let webhooks = service.webhooks().await;
    assert_eq!(webhooks.len(), 1);
    assert_eq!(
        webhooks[0]["events"].as_array().map(Vec::len),
        Some(FREE_EVENTS),
        "Select all stored the explicit list"
    );
    let id = webhooks[0]["id"].as_str().unwrap().to_owned();

    // Edit: the form pre-filled with URL and events; the secret is neither shown nor changed.
    click(&b, &format!("#lrn-webhook-{id} a[href*=\"edit=\"]")).await;
    b.wait_text("#lrn-webhooks-form-title", "Edit Webhook")
        .await;
    assert_eq!(
        b.value("#lrn-webhooks-delivery-url").await,
        first_rx.url("/first")
    );
    assert_eq!(ticked(&b).await, FREE_EVENTS);
    assert!(!b.exists("#lrn-webhooks-secret").await);
    assert!(!source(&b).await.contains(&secret), "not in the edit form");
    b.fill("#lrn-webhooks-delivery-url", &rx.url("/edited"))
        .await;
    click(&b, "#lrn-webhooks-submit").await;
    b.wait_text(".lrn-webhooks-flash", "updated").await;
    assert!(b
        .text(&format!("#lrn-webhook-{id}"))
        .await
        .contains(&rx.url("/edited")));

    // Test: the outcome in the row; the ping is signed with the secret of the form.
    click(
        &b,
        &format!("#lrn-webhook-{id} .lrn-webhooks-test-form button"),
    )
    .await;
    let outcome = b
        .wait_text(
            &format!("#lrn-webhook-{id} .lrn-webhooks-test-result"),
            "Delivered",
        )
        .await;
    assert!(
        outcome.contains("Delivered · HTTP 200 · ") && outcome.ends_with(" ms"),
        "{outcome}"
    );
    let got = rx.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].header("x-learnomy-event"), "ping");
    assert!(signed_with(&got[0], &secret));

    // An event after the edit still verifies with the original secret.
    wp.fire(&[(
        "learnomy_course_completed".to_owned(),
        vec![json!(9), json!(7), json!(42)],
    )])
    .await;
    wp.cron().await;
    let got = rx.wait_for(2, Duration::from_secs(30)).await;
    let event = got
        .iter()
        .find(|r| r.header("x-learnomy-event") == "course_completed")
        .expect("the event reached the edited URL");
    assert!(signed_with(event, &secret), "the secret was preserved");
    assert_eq!(first_rx.count(), 0, "nothing went to the old URL");
    b.client.refresh().await.unwrap();
    assert!(
        !b.text(&format!("#lrn-webhook-{id} .column-last"))
            .await
            .contains("Never"),
        "Last Triggered is set"
    );

    // The Free slots fill up: the form gives way to the Pro notice, which links to a page that
    // exists.
    add_webhook(&b, &first_rx.url("/second"), &["quiz_passed"]).await;
    b.wait_text("#lrn-webhooks-usage", "2 of 3").await;
    add_webhook(&b, &first_rx.url("/third"), &["certificate_issued"]).await;
    b.wait_text("#lrn-webhooks-usage", "3 of 3").await;
    assert!(!b.exists("#lrn-webhooks-form").await);
    let notice = b.text("#lrn-webhooks-pro-notice").await;
    assert!(
        notice.contains("The Free plan allows 3 webhooks") && notice.contains("Learnomy Pro"),
        "{notice}"
    );
    click(&b, "#lrn-webhooks-pro-notice a").await;
    b.wait_text("#lrn-webhooks-pro-title", "Learnomy Pro").await;
    open(&b, &wp, "").await;

    // Delete asks first: dismissing keeps the webhook, accepting removes it.
    click(
        &b,
        &format!("{ROWS}:last-child .lrn-webhooks-delete-form button"),
    )
    .await;
    let question = b.client.get_alert_text().await.unwrap();
    assert!(question.contains("Delete the webhook to"), "{question}");
    b.client.dismiss_alert().await.unwrap();
    assert_eq!(b.count(ROWS).await, 3);
    assert_eq!(service.webhooks().await.len(), 3);
    click(
        &b,
        &format!("{ROWS}:last-child .lrn-webhooks-delete-form button"),
    )
    .await;
    b.client.accept_alert().await.unwrap();
    b.wait_text(".lrn-webhooks-flash", "deleted").await;
    assert_eq!(b.count(ROWS).await, 2);
    assert_eq!(service.webhooks().await.len(), 2);
    assert!(
        b.exists("#lrn-webhooks-form").await,
        "a free slot brings the form back"
    );
    b.client.set_window_size(1280, 1900).await.unwrap();
    b.screenshot("wp-webhooks.png").await;
    b.client.set_window_size(1280, 1000).await.unwrap();

    // The Delivery Log is Pro: on Free its page shows the Pro notice.
    open(&b, &wp, &format!("&view=log&webhook={id}")).await;
    b.wait_text("#lrn-webhooks-pro-notice", "Pro feature").await;
    assert!(b
        .text(".lrn-webhooks-breadcrumb")
        .await
        .contains("Webhooks / Delivery Log"));
    assert!(!source(&b).await.contains(&secret), "not in the log page");

    finish(b, wp, service).await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_and_against_forged_or_unprivileged_requests() {
    let service = Service::start(Backend::Sqlite, "free").await;
    let rx = Receiver::start().await;
    let wp = WordPress::start(&service.base(), &service.token).await;
    let admin = wp.sign_in().await;

    // Add without JavaScript: the pre-filled key is simply submitted.
    let page = admin.page(PLUGIN_PAGE).await;
    let secret = value_after(&page, "id=\"lrn-webhooks-secret\"");
    assert!(is_generated_secret(&secret), "{secret}");
    common::logs::remember(&secret);
    let url = rx.url("/nojs");
    let mut add = Admin::form_fields(&page, "lrn_webhooks_add", "");
    add.extend([
        ("url".to_owned(), url.clone()),
        ("events[]".to_owned(), "course_completed".to_owned()),
        ("secret".to_owned(), secret.clone()),
    ]);
    let form: Vec<(&str, &str)> = add.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, back) = admin.post_admin(&form).await;
    assert_eq!(status, 302, "POST-redirect-GET");
    assert!(back.contains("page=learnomy-webhooks"), "{back}");
    let webhooks = service.webhooks().await;
    assert_eq!(webhooks.len(), 1);
    let id = webhooks[0]["id"].as_str().unwrap().to_owned();
    let page = admin.page(PLUGIN_PAGE).await;
    assert!(
        page.contains(&format!("id=\"lrn-webhook-{id}\"")),
        "the row is there"
    );
    assert!(!page.contains(&secret), "the secret is not shown again");

    // Test without JavaScript: admin-post, then the outcome in the row.
    let test = Admin::form_fields(&page, "lrn_webhooks_test", &id);
    let form: Vec<(&str, &str)> = test.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, back) = admin.post_admin(&form).await;
    assert_eq!(status, 302);
    assert!(back.ends_with(&format!("#lrn-webhook-{id}")), "{back}");
    let page = admin.page(PLUGIN_PAGE).await;
    let row = &page[page.find(&format!("id=\"lrn-webhook-{id}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("Delivered · HTTP 200 · "), "{row}");
    let got = rx.wait_for(1, Duration::from_secs(15)).await;
    assert!(signed_with(&got[0], &secret), "the pre-filled key signs");

    // Delete without JavaScript: a confirmation screen first; nothing is deleted until then.
    let delete = Admin::form_fields(&page, "lrn_webhooks_delete", &id);
    let form: Vec<(&str, &str)> = delete
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, confirm_url) = admin.post_admin(&form).await;
    assert_eq!(status, 302);
    assert!(confirm_url.contains("view=confirm"), "{confirm_url}");
    assert_eq!(
        service.webhooks().await.len(),
        1,
        "not deleted before confirming"
    );
    let confirm_path = &confirm_url[confirm_url.find("/wp-admin/").unwrap()..];
    let confirm = admin.page(confirm_path).await;
    assert!(
        confirm.contains("Delete this webhook?"),
        "the confirmation screen"
    );

    // Forged requests (a wrong nonce, or none) change nothing.
    let forged = |fields: &[(String, String)]| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| {
                if k == "_wpnonce" {
                    (k.clone(), "0123456789".to_owned())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    };
    let mut bad_add = forged(&add);
    bad_add.retain(|(k, _)| k != "url");
    bad_add.push(("url".to_owned(), rx.url("/forged")));
    let mut bad_delete = forged(&delete);
    bad_delete.retain(|(k, _)| k != "confirmed");
    bad_delete.push(("confirmed".to_owned(), "1".to_owned()));
    let mut no_nonce = delete.clone();
    no_nonce.retain(|(k, _)| k != "_wpnonce" && k != "confirmed");
    no_nonce.push(("confirmed".to_owned(), "1".to_owned()));
    for fields in [&bad_add, &bad_delete, &no_nonce] {
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, _) = admin.post_admin(&form).await;
        assert_eq!(status, 403, "{fields:?}");
    }
    let bad_test = forged(&test);
    let form: Vec<(&str, &str)> = bad_test
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _) = admin.post_ajax(&form).await;
    assert_eq!(status, 403, "admin-ajax with a wrong nonce");

    // A subscriber changes nothing, even with the administrator's nonces.
    wp.fixtures(
        json!([{"login": "student", "email": "student@example.com", "display_name": "A Student",
                "role": "subscriber", "password": "student-password-7Q"}]),
        json!([]),
    )
    .await;
    let student = wp.sign_in_as("student", "student-password-7Q").await;
    let (status, _) = student.get(PLUGIN_PAGE).await;
    assert_eq!(status, 403, "the page is for administrators");
    let pause = Admin::form_fields(&page, "lrn_webhooks_status", &id);
    let mut confirmed_delete = delete.clone();
    confirmed_delete.retain(|(k, _)| k != "confirmed");
    confirmed_delete.push(("confirmed".to_owned(), "1".to_owned()));
    for fields in [&add, &confirmed_delete, &pause] {
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, _) = student.post_admin(&form).await;
        assert_eq!(status, 403, "{fields:?}");
    }
    let form: Vec<(&str, &str)> = test.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, _) = student.post_ajax(&form).await;
    assert_eq!(status, 403, "admin-ajax Test by a subscriber");
    let log_rows = [
        ("action", "lrn_webhooks_log_rows"),
        ("webhook", id.as_str()),
        ("_wpnonce", "0123456789"),
    ];
    let (status, _) = student.post_ajax(&log_rows).await;
    assert_eq!(status, 403, "admin-ajax log rows by a subscriber");

    let webhooks = service.webhooks().await;
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    assert_eq!(webhooks[0]["status"], "active");
    assert_eq!(webhooks[0]["url"], json!(url));
    assert_eq!(rx.count(), 1, "no further test was sent");

    // The administrator confirms: now it is deleted.
    let (status, _) = admin.submit(&confirm, "lrn_webhooks_delete").await;
    assert_eq!(status, 302);
    assert!(service.webhooks().await.is_empty());
    let page = admin.page(PLUGIN_PAGE).await;
    assert!(page.contains("Webhook deleted."), "{page}");

    wp.assert_clean_debug_log();
    drop(wp);
    service.finish().await;
}

/// Waits until the service lists `n` deliveries of `id` with `status`.
async fn wait_deliveries(service: &Service, id: &str, status: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = service
            .get(&format!(
                "/api/v1/webhooks/{id}/deliveries?status={status}&limit=100"
            ))
            .await;
        let found = body["data"].as_array().map_or(0, Vec::len);
        if found >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{found} {status} deliveries, never {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `{"events": [...]}` with `n` events of `event`.
fn batch(event: &str, n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"event": event, "data": {"i": i}}))
        .collect();
    json!({ "events": events })
}

both_backends!(delivery_log_on_pro, |backend| async move {
    let service = Service::start(backend, "pro").await;
    let rx = Receiver::start().await;
    service
        .subscribe(&rx.url("/log"), &["quiz_passed", "quiz_failed"], SECRET)
        .await;
    let id = service.webhooks().await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 22 delivered, then 3 that fail for good (the test service retries 3 times, 200 ms apart).
    let (status, body) = service
        .post("/api/v1/events/batch", batch("quiz_passed", 22))
        .await;
    assert_eq!(status, 202, "{body}");
    rx.wait_for(22, Duration::from_secs(30)).await;
    wait_deliveries(&service, &id, "delivered", 22).await;
    rx.always(Answer::Status(500));
    let (status, body) = service
        .post("/api/v1/events/batch", batch("quiz_failed", 3))
        .await;
    assert_eq!(status, 202, "{body}");
    wait_deliveries(&service, &id, "failed", 3).await;

    let wp = WordPress::start(&service.base(), &service.token).await;
    let b = Browser::start(backend).await;
    sign_in(&b, &wp, ADMIN_USER, ADMIN_PASSWORD).await;
    open(&b, &wp, "").await;
    assert_eq!(b.text("#lrn-webhooks-usage").await, "1 webhook");
    // The row says the receiver is failing, and how, without opening the log.
    let status = b.text(&format!("#lrn-webhook-{id} .column-status")).await;
    assert!(
        status.contains("Active")
            && status.contains("Failing")
            && status.contains("Last delivery failed · HTTP 500 · "),
        "{status}"
    );
    click(&b, &format!("#lrn-webhook-{id} .lrn-webhooks-view-log")).await;
    b.wait_text("h1", "Delivery Log").await;
    assert!(b
        .text(".lrn-webhooks-breadcrumb")
        .await
        .contains("Webhooks / Delivery Log"));
    assert!(b
        .text(".lrn-webhooks-endpoint")
        .await
        .contains(&rx.url("/log")));
    assert_eq!(b.count(LOG_ROWS).await, 20, "the first page");
    let newest = b.text(LOG_ROWS).await;
    assert!(
        newest.contains("Quiz failed") && newest.contains("Failed") && newest.contains("500"),
        "newest first: {newest}"
    );
    b.screenshot("wp-delivery-log.png").await;

    // Pages and filters update the list without a page reload.
    b.js("window.__sameDocument = true; return true;").await;
    click(&b, "#lrn-webhooks-next").await;
    b.wait_count(LOG_ROWS, 5).await;
    click(&b, "#lrn-webhooks-previous").await;
    b.wait_count(LOG_ROWS, 20).await;
    click(&b, "[data-lrn-status=\"failed\"]").await;
    b.wait_count(LOG_ROWS, 3).await;
    for row in b.client.find_all(Locator::Css(LOG_ROWS)).await.unwrap() {
        let text = row.text().await.unwrap();
        assert!(text.contains("Failed") && text.contains("500"), "{text}");
    }
    click(&b, "[data-lrn-status=\"delivered\"]").await;
    b.wait_count(LOG_ROWS, 20).await;
    click(&b, "[data-lrn-status=\"pending\"]").await;
    b.wait_text("#lrn-webhooks-log-rows", "No deliveries with this status")
        .await;
    click(&b, "[data-lrn-status=\"delivered\"]").await;
    b.wait_count(LOG_ROWS, 20).await;
    assert_eq!(
        b.js("return window.__sameDocument === true;").await,
        json!(true),
        "no page reload"
    );
    assert_eq!(
        b.attr("[data-lrn-status=\"delivered\"]", "aria-pressed")
            .await
            .as_deref(),
        Some("true")
    );

    // A failed delivery's details (attempts, payload), then Redeliver.
    rx.always(Answer::Status(200));
    click(&b, "[data-lrn-status=\"failed\"]").await;
    b.wait_count(LOG_ROWS, 3).await;
    click(&b, &format!("{LOG_ROWS}:first-child a")).await;
    b.wait_text("h1", "Delivery").await;
    assert!(b
        .text(".lrn-webhooks-breadcrumb")
        .await
        .contains("Webhooks / Delivery Log / Delivery"));
    let attempts = b.text("#lrn-webhooks-attempts").await;
    assert!(
        attempts.contains("HTTP 500") && !attempts.contains("http_status"),
        "labels, not slugs: {attempts}"
    );
    let facts = b.text("#lrn-webhooks-delivery-facts").await;
    assert!(
        facts.contains("Event time") && facts.contains("Last attempt"),
        "{facts}"
    );
    // Each attempt's request and response headers, on demand.
    click(
        &b,
        "#lrn-webhooks-attempts .lrn-webhooks-attempt-headers summary",
    )
    .await;
    let headers = b
        .text("#lrn-webhooks-attempts .lrn-webhooks-attempt-headers .lrn-webhooks-headers")
        .await;
    assert!(
        headers.contains("webhook-signature: v1,")
            && headers.contains("x-learnomy-event: quiz_failed")
            && headers.contains("Response headers")
            && headers.contains("date: "),
        "{headers}"
    );
    assert!(b
        .text("#lrn-webhooks-payload")
        .await
        .contains("quiz_failed"));
    click(&b, "#lrn-webhooks-redeliver").await;
    b.wait_text(".lrn-webhooks-flash", "queued again").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        b.client.refresh().await.unwrap();
        if b.text("#lrn-webhooks-delivery-facts")
            .await
            .contains("Delivered")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the redelivery did not succeed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let facts = b.text("#lrn-webhooks-delivery-facts").await;
    assert!(
        facts.contains("5 attempts") && facts.contains("Redelivered (attempts 5 and later"),
        "the redelivery is marked and counted: {facts}"
    );
    let got = rx.received();
    assert!(
        got.last().is_some_and(
            |r| signed_with(r, SECRET) && r.header("x-learnomy-event") == "quiz_failed"
        ),
        "the redelivery reached the receiver"
    );

    finish(b, wp, service).await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_add_form_works_with_the_keyboard_and_on_a_375_px_screen() {
    let (service, rx, wp, b) = webhooks_page_on_free().await;

    // Every control of the page has a label.
    let unlabelled = b
        .js("return Array.from(document.querySelectorAll('.lrn-webhooks input:not([type=hidden]), .lrn-webhooks select, .lrn-webhooks button, .lrn-webhooks textarea'))\
               .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())\
               .map(el => el.outerHTML);")
        .await;
    assert_eq!(unlabelled, json!([]), "controls without a label");

    // From the Delivery URL field on, the keyboard alone: type, Tab, Space, Tab…, Enter.
    let tab = Key::Tab.to_string();
    b.js("document.getElementById('lrn-webhooks-delivery-url').focus(); return true;")
        .await;
    b.press(&rx.url("/keyboard")).await;
    b.press(&tab).await;
    let (focused, visible) = focus_outline(&b).await;
    assert_eq!(focused, "lrn-webhooks-select-all");
    assert!(visible, "the focused Select all has a visible outline");
    b.press(&Key::Space.to_string()).await;
    assert_eq!(ticked(&b).await, FREE_EVENTS, "Space on Select all");
    b.press(&tab.repeat(FREE_EVENTS + 1)).await;
    let (focused, visible) = focus_outline(&b).await;
    assert_eq!(focused, "lrn-webhooks-format", "past every event box");
    assert!(visible, "the focused Body format has a visible outline");
    b.press(&tab.repeat(3)).await; // the preview's event, the preview itself, the order
    let (focused, visible) = focus_outline(&b).await;
    assert_eq!(focused, "lrn-webhooks-ordering");
    assert!(visible, "the focused Delivery order has a visible outline");
    b.press(&tab).await;
    let (focused, visible) = focus_outline(&b).await;
    assert_eq!(focused, "lrn-webhooks-secret");
    assert!(visible);
    b.press(&tab.repeat(3)).await; // Regenerate, Copy, Add Webhook
    let (focused, visible) = focus_outline(&b).await;
    assert_eq!(focused, "lrn-webhooks-submit");
    assert!(
        visible,
        "the focused Add Webhook button has a visible outline"
    );
    b.press(&Key::Enter.to_string()).await;
    b.wait_text(".lrn-webhooks-flash", "Webhook added").await;
    assert_eq!(b.text("#lrn-webhooks-usage").await, "1 of 3 webhooks used");
    let webhooks = service.webhooks().await;
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["url"], json!(rx.url("/keyboard")));
    assert_eq!(
        webhooks[0]["events"].as_array().map(Vec::len),
        Some(FREE_EVENTS)
    );

    // 375 px wide: the page with the form does not scroll sideways (the table scrolls inside
    // its own wrapper).
    b.client.set_window_size(375, 800).await.unwrap();
    open(&b, &wp, "").await;
    assert!(b.exists("#lrn-webhooks-form").await);
    let widths = b
        .js("return [document.documentElement.scrollWidth, window.innerWidth];")
        .await;
    assert!(
        widths[0].as_i64().unwrap() <= widths[1].as_i64().unwrap(),
        "horizontal scrolling at 375 px: {widths}"
    );

    finish(b, wp, service).await;
}

/// Chooses `format` in the form's Body format, as a user's change would.
async fn choose_format(b: &Browser, format: &str) {
    b.js(&format!(
        "const s = document.getElementById('lrn-webhooks-format'); s.value = '{format}';\
         s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_format_and_a_template_from_wp_admin() {
    let (service, rx, wp, b) = webhooks_page_on_free().await;

    // The preview is there with the page (asked of the service by PHP), then follows the
    // format through admin-ajax.
    let first = b.text("#lrn-webhooks-preview").await;
    assert!(first.contains("\"event\": \"course_completed\""), "{first}");
    assert!(b.exists("#lrn-webhooks-template-field[hidden]").await);
    choose_format(&b, "slack").await;
    let slack = b.wait_text("#lrn-webhooks-preview", "\"blocks\"").await;
    assert!(slack.contains("Jane Doe completed"), "{slack}");

    // A broken template: the preview says why, with the line; saving is refused beside the
    // field and the template is kept.
    choose_format(&b, "template").await;
    assert!(!b.exists("#lrn-webhooks-template-field[hidden]").await);
    b.fill("#lrn-webhooks-template", "{\"text\": {{ sentence }")
        .await;
    let broken = b.wait_text("#lrn-webhooks-preview", "line 1").await;
    assert!(broken.contains("cannot be used"), "{broken}");
    add_webhook(&b, &rx.url("/chat"), &["course_completed"]).await;
    let error = b.wait_text("#lrn-webhooks-template-error", "line 1").await;
    assert!(error.contains("template"), "{error}");
    assert_eq!(
        b.value("#lrn-webhooks-template").await,
        "{\"text\": {{ sentence }"
    );
    assert!(service.webhooks().await.is_empty(), "nothing was created");

    // Fixed: saved with its format and template, and the first delivery is the template's
    // body, signed like any.
    b.fill("#lrn-webhooks-template", "{\"text\": {{ sentence }}}")
        .await;
    b.wait_text("#lrn-webhooks-preview", "Jane Doe completed")
        .await;
    let secret = b.value("#lrn-webhooks-secret").await;
    click(&b, "#lrn-webhooks-submit").await;
    b.wait_text(".lrn-webhooks-flash", "Webhook added").await;
    let webhooks = service.webhooks().await;
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["format"], "template");
    assert_eq!(webhooks[0]["template"], "{\"text\": {{ sentence }}}");
    wp.fire(&[(
        "learnomy_course_completed".to_owned(),
        vec![json!(9), json!(1), json!(42)],
    )])
    .await;
    wp.cron().await;
    let got = rx.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1);
    assert!(signed_with(&got[0], &secret));
    let text = got[0].json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains(" completed "),
        "the sentence, as JSON: {text}"
    );

    // Edited to Discord: the template goes.
    let id = webhooks[0]["id"].as_str().unwrap().to_owned();
    open(&b, &wp, &format!("&edit={id}")).await;
    assert_eq!(b.value("#lrn-webhooks-format").await, "template");
    choose_format(&b, "discord").await;
    b.wait_text("#lrn-webhooks-preview", "\"embeds\"").await;
    click(&b, "#lrn-webhooks-submit").await;
    b.wait_text(".lrn-webhooks-flash", "Webhook updated").await;
    let webhooks = service.webhooks().await;
    assert_eq!(webhooks[0]["format"], "discord");
    assert_eq!(webhooks[0]["template"], Value::Null);

    finish(b, wp, service).await;
}

/// An admin who needs one learner's events in order turns it on in wp-admin, as in the
/// console: the form sends `ordering`, and the Edit form shows and changes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_order_from_wp_admin() {
    let (service, rx, wp, b) = webhooks_page_on_free().await;
    assert_eq!(
        b.value("#lrn-webhooks-ordering").await,
        "none",
        "no order promised unless asked for"
    );
    let help = b.text("#lrn-webhooks-ordering-help").await;
    assert!(help.contains("one at a time"), "{help}");
    b.js("document.getElementById('lrn-webhooks-ordering').value = 'by_key'; return true;")
        .await;
    add_webhook(&b, &rx.url("/crm"), &["course_completed"]).await;
    b.wait_text(".lrn-webhooks-flash", "Webhook added").await;
    let webhooks = service.webhooks().await;
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["ordering"], "by_key", "{}", webhooks[0]);

    let id = webhooks[0]["id"].as_str().unwrap().to_owned();
    open(&b, &wp, &format!("&edit={id}")).await;
    assert_eq!(b.value("#lrn-webhooks-ordering").await, "by_key");
    b.js("document.getElementById('lrn-webhooks-ordering').value = 'none'; return true;")
        .await;
    click(&b, "#lrn-webhooks-submit").await;
    b.wait_text(".lrn-webhooks-flash", "Webhook updated").await;
    assert_eq!(service.webhooks().await[0]["ordering"], "none");

    finish(b, wp, service).await;
}

#[test]
fn the_translation_template_is_up_to_date() {
    let out = std::process::Command::new("php")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/wordpress-make-pot"
        ))
        .arg("--check")
        .output()
        .expect("php runs scripts/wordpress-make-pot");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
