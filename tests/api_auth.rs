//! Every API route refuses requests without a token, with an unknown or revoked token, and
//! with a token whose scope is too narrow. The routes are read from the OpenAPI document, so a
//! new route is covered the day it is added.

mod common;

use common::{settings, with_server};
use lwh_domain::Plan;
use reqwest::Method;
use serde_json::Value;

/// Every (method, path) of the API, with `{id}` filled with a well-formed id.
fn api_routes() -> Vec<(Method, String)> {
    let doc: Value = serde_json::from_str(&lwh_http::api::openapi_json()).unwrap();
    let mut routes = vec![(Method::GET, "/api/v1/openapi.json".to_owned())];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let path = path.replace("{id}", "wh_01JDQ8V3W4X5Y6Z7A8B9C0D1E2");
            routes.push((method, path));
        }
    }
    assert!(routes.len() >= 6, "{routes:?}");
    routes
}

fn is_ingestion(path: &str) -> bool {
    path.starts_with("/api/v1/events")
}

/// Routes any valid token may call, whatever its scopes.
fn is_for_any_token(path: &str) -> bool {
    path == "/api/v1/token"
}

both_backends!(
    every_api_route_needs_the_right_token,
    |backend| async move {
        with_server(backend, settings(Plan::Pro), |s| async move {
            let revoked =
                common::create_api_token(&s.app, lwh_app::Scope::WebhooksManage, "old").await;
            // Used (and so remembered by the token cache), then revoked: refused at once.
            let list_with_it = || {
                s.client
                    .get(s.url("/api/v1/webhooks"))
                    .bearer_auth(&revoked.token)
                    .send()
            };
            assert_eq!(list_with_it().await.unwrap().status(), 200);
            s.app.revoke_api_token(revoked.record.id).await.unwrap();
            assert_eq!(
                list_with_it().await.unwrap().status(),
                401,
                "a revoked token stops working at once"
            );
            for (method, path) in api_routes() {
                let url = s.url(&path);
                let bodyless = s.client.request(method.clone(), &url);
                let attempts = [
                    ("no token", bodyless),
                    (
                        "garbage",
                        s.client
                            .request(method.clone(), &url)
                            .bearer_auth("lwh_garbage"),
                    ),
                    (
                        "basic",
                        s.client
                            .request(method.clone(), &url)
                            .basic_auth("admin", Some("admin")),
                    ),
                    (
                        "revoked",
                        s.client
                            .request(method.clone(), &url)
                            .bearer_auth(&revoked.token),
                    ),
                ];
                for (what, req) in attempts {
                    let res = req.json(&serde_json::json!({})).send().await.unwrap();
                    assert_eq!(res.status(), 401, "{what}: {method} {path}");
                    assert_eq!(res.headers()["www-authenticate"], "Bearer");
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["code"], "unauthorized");
                }
                if !is_ingestion(&path) && !is_for_any_token(&path) {
                    let res = s
                        .client
                        .request(method.clone(), &url)
                        .bearer_auth(&s.events_token)
                        .json(&serde_json::json!({}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 403, "events:write on {method} {path}");
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["code"], "forbidden");
                }
            }
            // The health probes stay open.
            for path in ["/healthz", "/readyz"] {
                assert_eq!(
                    s.client.get(s.url(path)).send().await.unwrap().status(),
                    200,
                    "{path}"
                );
            }
        })
        .await
    }
);

both_backends!(
    a_token_may_hold_both_scopes_and_says_what_it_may_do,
    |backend| async move {
        with_server(backend, settings(Plan::Pro), |s| async move {
            let both = common::create_api_token(
                &s.app,
                lwh_app::Scopes::of(&[lwh_app::Scope::EventsWrite, lwh_app::Scope::WebhooksManage]),
                "wordpress",
            )
            .await;
            let get = |path: &str, token: &str| {
                s.client
                    .get(s.url(path))
                    .bearer_auth(token.to_owned())
                    .send()
            };
            let me: Value = get("/api/v1/token", &both.token)
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(me["data"]["name"], "wordpress");
            assert_eq!(
                me["data"]["scopes"],
                serde_json::json!(["events:write", "webhooks:manage"])
            );
            assert_eq!(me["data"]["plan"], "pro");
            assert_eq!(me["data"]["version"], env!("CARGO_PKG_VERSION"));
            assert_eq!(me["data"]["id"], both.record.id.to_string());
            // It manages webhooks and reports events.
            assert_eq!(
                get("/api/v1/webhooks", &both.token).await.unwrap().status(),
                200
            );
            let res = s
                .client
                .post(s.url("/api/v1/events"))
                .bearer_auth(&both.token)
                .json(&serde_json::json!({"event": "course_completed", "data": {}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
            // An events:write token learns its one scope; it still cannot manage.
            let me: Value = get("/api/v1/token", &s.events_token)
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(me["data"]["scopes"], serde_json::json!(["events:write"]));
            assert_eq!(
                get("/api/v1/webhooks", &s.events_token)
                    .await
                    .unwrap()
                    .status(),
                403
            );
            // The list shows both scopes, stored as one space-separated value.
            let listed = s.app.list_api_tokens().await.unwrap();
            let stored = listed.iter().find(|t| t.id == both.record.id).unwrap();
            assert_eq!(stored.scope, "events:write webhooks:manage");
        })
        .await
    }
);

#[test]
fn the_openapi_document_is_3_1_and_generated_from_the_routes() {
    let doc: Value = serde_json::from_str(&lwh_http::api::openapi_json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/catalogue",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
