//! Payload formats end to end, on SQLite and on PostgreSQL: a webhook per chat app receives
//! every LMS event of the catalogue (with its example data) on a loopback receiver that checks
//! the body against that app's published shape, the learner's name and the title, and the
//! signatures over the bytes received; a template webhook gets its own body; a broken template
//! is refused on save; a template that runs forever or writes megabytes fails its delivery with
//! the reason, once, while a neighbour on the same event is delivered; the preview answers.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Received, Receiver};
use common::{delivery_settings, with_server, TestServer};
use lwh_domain::Plan;
use serde_json::{json, Value};

const SECRET: &str = "formats-test-secret-Qm4Zt8Lw2Xp6";
const WAIT: Duration = Duration::from_secs(20);

/// A webhook for `events` in `format` (with `template`), with our secret; its id.
async fn webhook(
    s: &TestServer,
    url: &str,
    events: &[String],
    format: &str,
    template: Option<&str>,
) -> String {
    common::logs::remember(SECRET);
    let mut body = json!({"url": url, "events": events, "secret": SECRET, "format": format});
    if let Some(t) = template {
        body["template"] = json!(t);
    }
    let created = s.post_webhook(body).await;
    assert_eq!(created["format"], format, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

/// Every event an LMS may send on Pro, with its example data.
async fn lms_events(s: &TestServer) -> Vec<(String, Value)> {
    let catalogue = s.get_json("/api/v1/catalogue").await;
    catalogue["data"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["service"] != json!(true))
        .map(|e| {
            (
                e["slug"].as_str().expect("slug").to_owned(),
                e["example"].clone(),
            )
        })
        .collect()
}

async fn emit(s: &TestServer, event: &str, data: &Value) {
    let res = s
        .client
        .post(s.url("/api/v1/events"))
        .bearer_auth(&s.events_token)
        .json(&json!({"event": event, "data": data}))
        .send()
        .await
        .expect("event");
    assert_eq!(res.status(), 202, "{event}");
}

/// The words the message must carry: the learner's name and the title, when the data has them.
fn expected_words(data: &Value) -> Vec<&str> {
    [
        "user_name",
        "course_title",
        "lesson_title",
        "quiz_title",
        "path_title",
    ]
    .iter()
    .filter_map(|f| data.get(*f).and_then(Value::as_str))
    .collect()
}

fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Checks a body against one app's shape and returns its words.
type ShapeCheck = fn(&Value) -> String;

/// Slack's incoming webhook shape: `text`, and `blocks` of known types with mrkdwn text
/// within Slack's limits.
fn slack_text(body: &Value) -> String {
    assert!(!text_of(&body["text"]).is_empty());
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    let mut all = String::new();
    for b in blocks {
        match text_of(&b["type"]) {
            "section" => {
                assert_eq!(b["text"]["type"], "mrkdwn");
                let t = text_of(&b["text"]["text"]);
                assert!(t.chars().count() <= 3000);
                all.push_str(t);
            }
            "context" => {
                for e in b["elements"].as_array().expect("elements") {
                    assert_eq!(e["type"], "mrkdwn");
                    all.push_str(text_of(&e["text"]));
                }
            }
            other => panic!("unexpected block {other}"),
        }
    }
    all
}

/// Discord's execute-webhook shape: embeds within Discord's limits, no mentions parsed.
fn discord_text(body: &Value) -> String {
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    let embeds = body["embeds"].as_array().expect("embeds");
    assert!(!embeds.is_empty() && embeds.len() <= 10);
    let e = &embeds[0];
    assert!(text_of(&e["title"]).chars().count() <= 256);
    assert!(text_of(&e["description"]).chars().count() <= 4096);
    assert!(e["color"].is_u64());
    assert!(lwh_domain::Timestamp::parse_rfc3339(text_of(&e["timestamp"])).is_some());
    format!("{} {}", text_of(&e["title"]), text_of(&e["description"]))
}

/// The Teams Workflows shape: a message with one Adaptive Card of TextBlocks.
fn teams_text(body: &Value) -> String {
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert!(card["version"].is_string());
    let mut all = String::new();
    for block in card["body"].as_array().expect("card body") {
        assert_eq!(block["type"], "TextBlock");
        all.push_str(text_of(&block["text"]));
        all.push('\n');
    }
    if let Some(actions) = card["actions"].as_array() {
        for a in actions {
            assert_eq!(a["type"], "Action.OpenUrl");
            assert!(text_of(&a["url"]).starts_with("https://"));
        }
    }
    all
}

/// Google Chat's shape: `text`.
fn google_chat_text(body: &Value) -> String {
    text_of(&body["text"]).to_owned()
}

/// Waits until `rx` has `n` requests.
async fn received(rx: &Receiver, n: usize) -> Vec<Received> {
    let got = rx.wait_for(n, WAIT).await;
    assert_eq!(got.len(), n, "{} of {n} arrived", got.len());
    got
}

both_backends!(
    every_event_reaches_each_chat_app_in_its_shape,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let events = lms_events(&s).await;
            let slugs: Vec<String> = events.iter().map(|(e, _)| e.clone()).collect();
            let apps: [(&str, ShapeCheck); 4] = [
                ("slack", slack_text),
                ("discord", discord_text),
                ("teams", teams_text),
                ("google_chat", google_chat_text),
            ];
            let mut receivers = Vec::new();
            for (format, _) in apps {
                let rx = Receiver::start().await;
                webhook(&s, &rx.url(&format!("/{format}")), &slugs, format, None).await;
                receivers.push(rx);
            }
            for (event, data) in &events {
                emit(&s, event, data).await;
            }
            for ((format, text), rx) in apps.iter().zip(&receivers) {
                for r in received(rx, events.len()).await {
                    r.assert_signed(SECRET);
                    assert_eq!(r.header("content-type"), "application/json");
                    let event = r.header("x-learnomy-event");
                    let (_, data) = events.iter().find(|(e, _)| *e == event).expect("sent");
                    let words = text(&r.json());
                    for word in expected_words(data) {
                        assert!(
                            words.contains(word),
                            "{format} {event}: {word} not in {words}"
                        );
                    }
                }
            }
        })
        .await;
    }
);

both_backends!(
    templates_are_checked_bounded_and_isolated,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
        let event = vec!["course_completed".to_owned()];
        // Refused on save, with the line, naming the field.
        let refused = s
            .manage(reqwest::Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "http://127.0.0.1:9/x", "events": event, "format": "template",
                "template": "{\n  \"text\": {{ sentence \n}"}))
            .send()
            .await
            .expect("request");
        assert_eq!(refused.status(), 422);
        let problem: Value = refused.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], "template", "{problem}");
        assert!(
            text_of(&problem["errors"][0]["message"]).starts_with("line "),
            "{problem}"
        );
        let unknown = s
            .manage(reqwest::Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "http://127.0.0.1:9/x", "events": event, "format": "irc"}))
            .send()
            .await
            .expect("request");
        assert_eq!(unknown.status(), 422);
        let problem: Value = unknown.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], "format", "{problem}");

        // A template that works: its own body, signed like any.
        let own = Receiver::start().await;
        let id = webhook(
            &s,
            &own.url("/own"),
            &event,
            "template",
            Some(r#"{"who": {{ data.user_name }}, "what": {{ label }}, "said": {{ sentence }}}"#),
        )
        .await;
        // Runaway templates, and a neighbour on the same event.
        let forever = Receiver::start().await;
        let forever_id = webhook(
            &s,
            &forever.url("/forever"),
            &event,
            "template",
            Some("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"),
        )
        .await;
        let huge = Receiver::start().await;
        let huge_id = webhook(
            &s,
            &huge.url("/huge"),
            &event,
            "template",
            Some(r#"{% for a in range(100000) %}{{ "0123456789abcdef0123456789abcdef"|safe }}{% endfor %}"#),
        )
        .await;
        let neighbour = Receiver::start().await;
        webhook(&s, &neighbour.url("/plain"), &event, "learnomy", None).await;

        emit(
            &s,
            "course_completed",
            &json!({"user_id": 7, "user_name": "Jane \"JD\" Doe", "course_title": "Pottery"}),
        )
        .await;
        let got = received(&own, 1).await;
        got[0].assert_signed(SECRET);
        assert_eq!(
            got[0].json(),
            json!({"who": "Jane \"JD\" Doe", "what": "Course completed",
                "said": "Jane \"JD\" Doe completed Pottery"})
        );
        let plain = received(&neighbour, 1).await;
        assert_eq!(plain[0].json()["event"], "course_completed");
        // The log shows the body sent beside the payload it was rendered from.
        let log = s.get_json(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        let detail = s
            .get_json(&format!("/api/v1/deliveries/{}", text_of(&log["data"][0]["id"])))
            .await;
        assert_eq!(
            serde_json::from_str::<Value>(text_of(&detail["data"]["body"])).expect("JSON"),
            got[0].json()
        );
        assert_eq!(detail["data"]["payload"]["event"], "course_completed");

        for (id, reason) in [(&forever_id, "ran too long"), (&huge_id, "produced more than")] {
            let deadline = Instant::now() + WAIT;
            let delivery = loop {
                let log = s
                    .get_json(&format!("/api/v1/webhooks/{id}/deliveries?status=failed"))
                    .await;
                if let Some(d) = log["data"].as_array().and_then(|d| d.first()) {
                    break d.clone();
                }
                assert!(Instant::now() < deadline, "{reason}: never failed: {log}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            // One attempt, not retried: the same template would fail the same way.
            assert_eq!(delivery["attempts"], 1, "{delivery}");
            let detail = s
                .get_json(&format!("/api/v1/deliveries/{}", text_of(&delivery["id"])))
                .await;
            let attempt = &detail["data"]["attempts_log"][0];
            assert_eq!(attempt["error_kind"], "template", "{detail}");
            assert!(text_of(&attempt["error"]).contains(reason), "{detail}");
            assert_eq!(attempt["request_headers"], Value::Null, "nothing was sent");
        }
        assert_eq!(forever.count() + huge.count(), 0, "nothing reached the receivers");

        // Switching to a chat format drops the template.
        let patched = s
            .manage(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"))
            .json(&json!({"format": "discord"}))
            .send()
            .await
            .expect("patch");
        let patched: Value = patched.json().await.expect("json");
        assert_eq!(patched["data"]["format"], "discord", "{patched}");
        assert_eq!(patched["data"]["template"], Value::Null);
    })
    .await;
    }
);

both_backends!(
    the_preview_renders_an_events_example,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Free), |s| async move {
            let preview = |body: Value| {
                s.manage(reqwest::Method::POST, "/api/v1/formats/preview")
                    .json(&body)
                    .send()
            };
            let ok = preview(json!({"format": "slack", "event": "course_completed"}))
                .await
                .expect("preview");
            assert_eq!(ok.status(), 200);
            let ok: Value = ok.json().await.expect("json");
            let body: Value =
                serde_json::from_str(text_of(&ok["data"]["body"])).expect("a JSON body");
            assert!(slack_text(&body).contains("Jane Doe completed"), "{body}");
            let bad = preview(
                json!({"format": "template", "template": "{{ }", "event": "course_completed"}),
            )
            .await
            .expect("preview");
            assert_eq!(bad.status(), 422);
            let problem: Value = bad.json().await.expect("problem");
            assert_eq!(problem["errors"][0]["field"], "template");
            let unknown = preview(json!({"format": "slack", "event": "no_such_event"}))
                .await
                .expect("preview");
            assert_eq!(unknown.status(), 422);
        })
        .await;
    }
);
