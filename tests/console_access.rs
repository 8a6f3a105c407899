//! Console access rules over plain HTTP: every page and action refuses signed-out requests,
//! every state-changing request needs the session's CSRF token, cookies carry their
//! protections, the first-run setup link works once, a webhook's secret appears in no page
//! after it is saved, every response carries the protective headers, and every link leads
//! somewhere.

mod common;

use common::{settings, with_server};
use lwh_console::Access;
use lwh_domain::Plan;
use reqwest::redirect::Policy;
use reqwest::Method;

const PASSWORD: &str = "a long console password";

/// Every console route that needs a session, read from the router's own table, with a
/// well-formed id where the path has one.
fn console_routes() -> Vec<(Method, String)> {
    let routes: Vec<_> = lwh_console::ROUTES
        .iter()
        .filter(|r| r.access != Access::Public)
        .map(|r| {
            let id = if r.path.starts_with("/admin/deliveries") {
                "dlv_01JDQ8V3W4X5Y6Z7A8B9C0D1E2"
            } else if r.path.starts_with("/admin/tokens") {
                "tok_01JDQ8V3W4X5Y6Z7A8B9C0D1E2"
            } else {
                "wh_01JDQ8V3W4X5Y6Z7A8B9C0D1E2"
            };
            (r.method.clone(), r.path.replace("{id}", id))
        })
        .collect();
    assert!(routes.len() >= 15, "the console's route table is read");
    routes
}

/// A refused console request: a page sends the browser to the login page, an action is 401.
fn assert_refused(res: &reqwest::Response, method: &Method, path: &str, why: &str) {
    if *method == Method::GET {
        assert_eq!(res.status(), 303, "{why}: {method} {path}");
        let location = res.headers()["location"].to_str().unwrap();
        assert!(
            location == "/admin/login"
                || location.starts_with("/admin/login?next=%2F")
                || location.starts_with("/admin/login?next=/admin/"),
            "{why}: {path} → {location}"
        );
    } else {
        assert_eq!(res.status(), 401, "{why}: {method} {path}");
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in and returns (cookie header value, csrf token).
async fn sign_in(s: &common::TestServer) -> (String, String) {
    common::logs::remember(PASSWORD);
    s.app.create_user("admin", PASSWORD).await.ok();
    let res = common::console_login(&no_redirects(), &s.base, "admin", PASSWORD, &[]).await;
    assert_eq!(res.status(), 303);
    let set_cookie = common::session_cookie_of(&res).expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: no Secure flag");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = no_redirects()
        .get(s.url("/admin/webhooks"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

both_backends!(
    signed_out_and_csrf_less_requests_are_refused,
    |backend| async move {
        with_server(backend, settings(Plan::Pro), |s| async move {
            let client = no_redirects();
            for (method, path) in console_routes() {
                let path = path.as_str();
                let res = client
                    .request(method.clone(), s.url(path))
                    .form(&[("_csrf", "x")])
                    .send()
                    .await
                    .unwrap();
                assert_refused(&res, &method, path, "signed out");
                // A forged session cookie is no better.
                let res = client
                    .request(method.clone(), s.url(path))
                    .header("cookie", "lwh_session=forged-session-cookie")
                    .form(&[("_csrf", "x")])
                    .send()
                    .await
                    .unwrap();
                assert_refused(&res, &method, path, "forged session");
            }
            let (cookie, csrf) = sign_in(&s).await;
            // An expired session, even with its own CSRF token, is refused on every route.
            let expired = common::logs::remember("expired-session-on-every-route-0123456789");
            let user = s.app.store().find_user("admin").await.unwrap().unwrap();
            let past = lwh_domain::Timestamp::now().plus_millis(-1_000);
            s.app
                .store()
                .insert_session(
                    &lwh_app::tokens::hash_token(expired),
                    user.id,
                    "csrf-of-the-expired-session",
                    past.plus_millis(-3_600_000),
                    past,
                )
                .await
                .unwrap();
            for (method, path) in console_routes() {
                let res = client
                    .request(method.clone(), s.url(&path))
                    .header("cookie", format!("lwh_session={expired}"))
                    .form(&[("_csrf", "csrf-of-the-expired-session")])
                    .send()
                    .await
                    .unwrap();
                assert_refused(&res, &method, &path, "expired session");
            }
            // The public routes really are reachable signed out.
            for route in lwh_console::ROUTES
                .iter()
                .filter(|r| r.access == Access::Public && r.method == Method::GET)
            {
                let res = client.get(s.url(route.path)).send().await.unwrap();
                assert!(
                    matches!(res.status().as_u16(), 200 | 303 | 410),
                    "GET {} signed out: {}",
                    route.path,
                    res.status()
                );
            }
            for (method, path) in console_routes()
                .into_iter()
                .filter(|(m, _)| *m == Method::POST)
            {
                let path = path.as_str();
                for token in [None, Some("wrong-token")] {
                    let mut form = vec![
                        ("url", "https://hooks.example.com/x"),
                        ("events", "quiz_passed"),
                        ("status", "paused"),
                        ("scope", "events:write"),
                    ];
                    if let Some(t) = token {
                        form.push(("_csrf", t));
                    }
                    let res = client
                        .request(method.clone(), s.url(path))
                        .header("cookie", &cookie)
                        .form(&form)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 403, "{method} {path} with CSRF {token:?}");
                }
            }
            assert_eq!(
                s.app.store().count_webhooks().await.unwrap(),
                0,
                "nothing happened"
            );
            // With the token it works, and behind TLS the cookie is Secure.
            let res = client
                .post(s.url("/admin/webhooks"))
                .header("cookie", &cookie)
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("url", "https://hooks.example.com/x"),
                    ("events", "quiz_passed"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303, "Add Webhook answers with a redirect");
            let res = common::console_login(
                &client,
                &s.base,
                "admin",
                PASSWORD,
                &[("x-forwarded-proto", "https")],
            )
            .await;
            assert!(common::session_cookie_of(&res)
                .expect("a session cookie")
                .contains("Secure"));
            // Logging out ends the session.
            let res = client
                .post(s.url("/admin/logout"))
                .header("cookie", &cookie)
                .form(&[("_csrf", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
            let res = client
                .get(s.url("/admin/webhooks"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
        })
        .await;
    }
);

both_backends!(
    the_secret_appears_on_no_page_after_saving_and_a_reload_adds_nothing,
    |backend| async move {
        with_server(backend, settings(Plan::Pro), |s| async move {
            let client = no_redirects();
            let (cookie, csrf) = sign_in(&s).await;
            let secret = common::logs::remember("console-chosen-secret-0123456789");
            let res = client
                .post(s.url("/admin/webhooks"))
                .header("cookie", &cookie)
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("url", "https://hooks.example.com/s"),
                    ("events", "quiz_passed"),
                    ("secret", secret),
                ])
                .send()
                .await
                .unwrap();
            // A redirect (a reload of the page it leads to adds nothing); the secret was the form's,
            // copied before saving, and is in no answer after it.
            assert_eq!(res.status(), 303);
            let back = res.headers()["location"].to_str().unwrap().to_owned();
            assert!(back.starts_with("/admin/webhooks?notice=added"), "{back}");
            assert!(!res.text().await.unwrap().contains(secret));
            let id = s.app.list_webhooks().await.unwrap().0[0].id;
            for _ in 0..2 {
                client
                    .get(s.url(&back))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
            }
            assert_eq!(
                s.app.list_webhooks().await.unwrap().0.len(),
                1,
                "reloading adds nothing"
            );
            for path in [
                back.clone(),
                "/admin/webhooks".to_owned(),
                format!("/admin/webhooks?edit={id}"),
                format!("/admin/webhooks/{id}/log"),
                "/admin/tokens".to_owned(),
            ] {
                let page = client
                    .get(s.url(&path))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert!(!page.contains(secret), "secret on {path}");
            }
            // The API reference page renders the OpenAPI document.
            let api = client
                .get(s.url("/admin/api"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for route in [
                "/api/v1/events/batch",
                "/api/v1/webhooks/{id}/deliveries",
                "/api/v1/catalogue",
            ] {
                assert!(
                    api.contains(route),
                    "{route} missing from the API reference page"
                );
            }
            // Oversize input gets the form back with an error, never a 5xx.
            let huge = format!("https://hooks.example.com/{}", "a".repeat(100_000));
            let res = client
                .post(s.url("/admin/webhooks"))
                .header("cookie", &cookie)
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("url", huge.as_str()),
                    ("events", "quiz_passed"),
                    ("secret", &"s".repeat(5_000)),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422);
            assert!(res
                .text()
                .await
                .unwrap()
                .contains("at most 2048 characters"));
            // Script-bearing input is rendered escaped.
            let res = client
                .post(s.url("/admin/webhooks"))
                .header("cookie", &cookie)
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("url", "<script>alert(1)</script>"),
                    ("events", "quiz_passed"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422);
            let page = res.text().await.unwrap();
            assert!(!page.contains("<script>alert(1)</script>"));
            assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        })
        .await;
    }
);

both_backends!(
    first_run_setup_link_works_once_and_logins_are_rate_limited,
    |backend| async move {
        with_server(backend, settings(Plan::Free), |s| async move {
            let client = no_redirects();
            let path = lwh_console::first_run_setup_path(&s.app)
                .await
                .expect("no user yet: a link");
            let token = path.split("token=").nth(1).unwrap().to_owned();
            common::logs::remember(&token);
            assert_eq!(client.get(s.url(&path)).send().await.unwrap().status(), 200);
            let res = client
                .post(s.url("/admin/setup"))
                .form(&[
                    ("token", token.as_str()),
                    ("name", "first"),
                    ("password", "short"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                422,
                "a weak password is refused and the link stays valid"
            );
            let res = client
                .post(s.url("/admin/setup"))
                .form(&[
                    ("token", token.as_str()),
                    ("name", "first"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
            assert!(res.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("lwh_session="));
            let again = client
                .post(s.url("/admin/setup"))
                .form(&[
                    ("token", token.as_str()),
                    ("name", "second"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 410, "the link works once");
            assert!(
                lwh_console::first_run_setup_path(&s.app).await.is_none(),
                "no link once a user exists"
            );

            // Without the login form's CSRF token (or with another one): refused, unchecked.
            for csrf in [None, Some("forged-token")] {
                let mut form = vec![("name", "first"), ("password", PASSWORD)];
                if let Some(token) = csrf {
                    form.push(("_csrf", token));
                }
                let res = client
                    .post(s.url("/admin/login"))
                    .header("cookie", "lwh_login_csrf=another-token")
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 403, "login without its CSRF token ({csrf:?})");
                assert!(common::session_cookie_of(&res).is_none());
            }
            for _ in 0..5 {
                let res =
                    common::console_login(&client, &s.base, "first", "wrong password", &[]).await;
                assert_eq!(res.status(), 401);
            }
            let res = common::console_login(&client, &s.base, "first", PASSWORD, &[]).await;
            assert_eq!(
                res.status(),
                429,
                "even the right password waits after 5 failures"
            );
        })
        .await;
    }
);

both_backends!(
    api_tokens_page_creates_once_lists_and_revokes,
    |backend| async move {
        with_server(backend, settings(Plan::Free), |s| async move {
            let client = no_redirects();
            let (cookie, csrf) = sign_in(&s).await;
            let res = client
                .post(s.url("/admin/tokens"))
                .header("cookie", &cookie)
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("name", "WordPress site"),
                    ("scope", "events:write"),
                    ("scope", "webhooks:manage"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303, "Create token answers with a redirect");
            assert_eq!(res.headers()["location"], "/admin/tokens");
            let page = client
                .get(s.url("/admin/tokens"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let token = page
                .split("id=\"created-token\"")
                .nth(1)
                .and_then(|r| r.split("value=\"").nth(1))
                .and_then(|r| r.split('"').next())
                .unwrap()
                .to_owned();
            assert!(token.starts_with("lwh_"));
            common::logs::remember(&token);
            let identity = s.app.authenticate_token(&token).await.unwrap();
            assert_eq!(
                identity.map(|i| i.scopes.to_string()).as_deref(),
                Some("events:write webhooks:manage"),
                "the shown token works, with both scopes ticked"
            );
            // No scope ticked: refused beside the form, nothing created.
            let res = client
                .post(s.url("/admin/tokens"))
                .header("cookie", &cookie)
                .form(&[("_csrf", csrf.as_str()), ("name", "none")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422);
            assert!(res
                .text()
                .await
                .unwrap()
                .contains("Choose at least one scope."));
            let list = client
                .get(s.url("/admin/tokens"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(list.contains("WordPress site") && list.contains("events:write"));
            assert!(!list.contains(&token), "shown once only");
            let record = s
                .app
                .list_api_tokens()
                .await
                .unwrap()
                .into_iter()
                .find(|t| t.name == "WordPress site")
                .unwrap();
            let res = client
                .post(s.url(&format!("/admin/tokens/{}/revoke", record.id)))
                .header("cookie", &cookie)
                .form(&[("_csrf", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
            assert!(
                s.app.authenticate_token(&token).await.unwrap().is_none(),
                "revoked at once"
            );
        })
        .await;
    }
);

/// The headers every console response must carry (DESIGN §8).
fn assert_protected(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    assert_eq!(h["cache-control"], "no-store", "{what}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{what}: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
}

both_backends!(
    every_console_response_carries_the_protective_headers,
    |backend| async move {
        with_server(backend, settings(Plan::Pro), |s| async move {
            let client = no_redirects();
            let (cookie, csrf) = sign_in(&s).await;
            // Every route of the router's own table, signed in and signed out.
            for route in lwh_console::ROUTES {
                let id = if route.path.starts_with("/admin/deliveries") {
                    "dlv_01JDQ8V3W4X5Y6Z7A8B9C0D1E2"
                } else if route.path.starts_with("/admin/tokens") {
                    "tok_01JDQ8V3W4X5Y6Z7A8B9C0D1E2"
                } else {
                    "wh_01JDQ8V3W4X5Y6Z7A8B9C0D1E2"
                };
                let path = route.path.replace("{id}", id);
                for signed_in in [false, true] {
                    let mut req = client
                        .request(route.method.clone(), s.url(&path))
                        .form(&[("_csrf", csrf.as_str())]);
                    if signed_in {
                        req = req.header("cookie", &cookie);
                    }
                    let res = req.send().await.unwrap();
                    assert_protected(
                        &res,
                        &format!("{} {path} (signed in: {signed_in})", route.method),
                    );
                }
            }
            // Behind TLS, HSTS too.
            let res = client
                .get(s.url("/admin/login"))
                .header("x-forwarded-proto", "https")
                .send()
                .await
                .unwrap();
            assert!(res.headers()["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age="));
            // Notices are chosen by code: free text in a link shows nothing. (The sweep above
            // signed out through /admin/logout: sign in again.)
            let (cookie, _) = sign_in(&s).await;
            let page = |q: &'static str| {
                let (client, cookie) = (client.clone(), cookie.clone());
                let url = s.url(&format!("/admin/webhooks?notice={q}"));
                async move {
                    client
                        .get(url)
                        .header("cookie", cookie)
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap()
                }
            };
            assert!(page("paused").await.contains("Webhook is now Paused."));
            let phish = page("Your+account+is+locked.+Call+555-0100").await;
            assert!(!phish.contains("Call 555-0100") && !phish.contains("account is locked"));
        })
        .await;
    }
);

both_backends!(
    every_link_of_every_console_page_leads_somewhere,
    |backend| async move {
        for plan in [Plan::Free, Plan::Pro] {
            with_server(backend, settings(plan), |s| async move {
                let client = no_redirects();
                let (cookie, _) = sign_in(&s).await;
                // Enough to show every kind of link: webhooks up to the Free limit (the Pro notice),
                // an edit form, a log.
                for i in 0..3 {
                    s.create_webhook(&format!("https://hooks.example.com/{i}"), &["quiz_passed"])
                        .await;
                }
                let mut seen = std::collections::BTreeSet::new();
                let mut queue = vec!["/admin/webhooks".to_owned()];
                while let Some(path) = queue.pop() {
                    if !seen.insert(path.clone()) {
                        continue;
                    }
                    let res = client
                        .get(s.url(&path))
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        matches!(res.status().as_u16(), 200 | 303),
                        "{path}: {} ({plan:?})",
                        res.status()
                    );
                    let page = res.text().await.unwrap();
                    for link in page.split("href=\"").skip(1) {
                        let target = link.split('"').next().unwrap_or_default();
                        let target = target.split('#').next().unwrap_or_default();
                        if target.starts_with("/admin") {
                            queue.push(target.replace("&amp;", "&"));
                        }
                    }
                }
                assert!(seen.contains("/admin/pro") || plan == Plan::Pro, "{seen:?}");
                assert!(seen.len() >= 6, "{seen:?}");
            })
            .await;
        }
    }
);

both_backends!(
    signing_in_returns_to_the_page_asked_for_and_the_first_run_is_explained,
    |backend| async move {
        with_server(backend, settings(Plan::Pro), |s| async move {
            let client = no_redirects();
            // Before any user exists the sign-in page says how to make the first one.
            let login = client.get(s.url("/admin/login")).send().await.unwrap();
            let page = login.text().await.unwrap();
            assert!(page.contains("No admin account exists yet"), "{page}");
            assert!(page.contains("/admin/setup?token=…"));
            common::logs::remember(PASSWORD);
            s.app.create_user("admin", PASSWORD).await.unwrap();
            let page = client
                .get(s.url("/admin/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!page.contains("No admin account exists yet"));

            // A signed-out visit to a deep page goes to the sign-in page, which comes back to it.
            let wanted = "/admin/tokens?x=1&y=2";
            let res = client.get(s.url(wanted)).send().await.unwrap();
            assert_eq!(res.status(), 303);
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            assert_eq!(location, "/admin/login?next=/admin/tokens%3Fx%3D1%26y%3D2");
            let (cookie, page) = common::login_form(&client, &s.url(&location)).await;
            let field = |name: &str| {
                page.split(&format!("name=\"{name}\" value=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("no {name} field: {page}"))
                    .replace("&amp;", "&")
            };
            assert_eq!(field("next"), wanted);
            let signed_in = client
                .post(s.url("/admin/login"))
                .header("cookie", cookie)
                .form(&[
                    ("_csrf", field("_csrf").as_str()),
                    ("name", "admin"),
                    ("password", PASSWORD),
                    ("next", &field("next")),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(signed_in.status(), 303);
            assert_eq!(signed_in.headers()["location"], wanted);

            // Never to another site, nor back to the sign-in page.
            for next in [
                "//evil.example/admin/x",
                "https://evil.example/",
                "/admin/login",
            ] {
                let res = common::console_login(&client, &s.base, "admin", PASSWORD, &[]).await;
                assert_eq!(res.headers()["location"], "/admin/webhooks");
                let page = client
                    .get(s.url(&format!("/admin/login?next={next}")))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert!(!page.contains("name=\"next\""), "{next} is not kept");
            }
        })
        .await;
    }
);
