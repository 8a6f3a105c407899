//! The behaviour-test harness: every test runs once on SQLite and once on PostgreSQL, against a
//! real HTTP server on 127.0.0.1, with its own database (a temporary SQLite file, or a fresh
//! PostgreSQL schema that is dropped afterwards).

#![allow(dead_code)]

pub mod browser;
pub mod logs;
pub mod process;
pub mod receiver;
pub mod wordpress;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use lwh_app::{App, Scope, Settings};
use lwh_domain::MasterKey;
use lwh_storage::{Backend, DatabaseTarget, Store};
use lwh_url_policy::HostResolver;
use sqlx::{Connection, Executor};

/// PostgreSQL server used by the suite; override with `LEARNOMY_TEST_POSTGRES_URL`.
pub fn postgres_admin_url() -> String {
    std::env::var("LEARNOMY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database of its own for one test.
pub struct TestDb {
    pub target: DatabaseTarget,
    cleanup: Cleanup,
}

enum Cleanup {
    TempDir(tempfile::TempDir),
    Schema(String),
}

impl TestDb {
    /// A fresh, empty database on `backend`. PostgreSQL must be reachable: the suite fails
    /// rather than silently skipping its PostgreSQL half.
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let target = DatabaseTarget::Sqlite(dir.path().join("test.db"));
                Self {
                    target,
                    cleanup: Cleanup::TempDir(dir),
                }
            }
            Backend::Postgres => {
                let schema = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required for the test suite ({admin}): {e}. \
                         Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
                    )
                });
                conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await
                    .expect("create schema");
                let sep = if admin.contains('?') { '&' } else { '?' };
                let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
                Self {
                    target: DatabaseTarget::Postgres(url),
                    cleanup: Cleanup::Schema(schema),
                }
            }
        }
    }

    /// The PostgreSQL URL to give a process, or `None` for SQLite (the process then uses the
    /// file in its data dir).
    pub fn postgres_url(&self) -> Option<&str> {
        match &self.target {
            DatabaseTarget::Postgres(url) => Some(url),
            DatabaseTarget::Sqlite(_) => None,
        }
    }

    /// Removes what [`TestDb::create`] made.
    pub async fn drop_all(self) {
        match self.cleanup {
            Cleanup::TempDir(dir) => drop(dir),
            Cleanup::Schema(schema) => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let _ = conn
                        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                        .await;
                }
            }
        }
    }

    /// The PostgreSQL schema name, when on PostgreSQL.
    pub fn schema(&self) -> Option<&str> {
        match &self.cleanup {
            Cleanup::Schema(s) => Some(s),
            Cleanup::TempDir(_) => None,
        }
    }
}

/// A resolver with fixed answers; any other name resolves to a public address. Lets tests save
/// `https://hooks.example.com/…` without DNS, and change answers between save and send.
#[derive(Clone, Default)]
pub struct StubResolver {
    /// Per host, the answers still to give in order; the last one is given from then on.
    answers: Arc<Mutex<HashMap<String, Vec<Vec<IpAddr>>>>>,
    lookups: Arc<Mutex<HashMap<String, usize>>>,
}

impl StubResolver {
    /// Answer `ips` for `host` from now on.
    pub fn set(&self, host: &str, ips: &[&str]) {
        self.set_sequence(host, &[ips]);
    }

    /// Answer `sequence[0]` to the next lookup of `host`, `sequence[1]` to the one after, …,
    /// and the last from then on (a DNS server that changes its answer between lookups).
    pub fn set_sequence(&self, host: &str, sequence: &[&[&str]]) {
        let answers = sequence
            .iter()
            .map(|ips| ips.iter().map(|i| i.parse().expect("ip")).collect())
            .collect();
        self.answers
            .lock()
            .unwrap()
            .insert(host.to_owned(), answers);
    }

    /// How many times `host` was looked up.
    pub fn lookups(&self, host: &str) -> usize {
        self.lookups.lock().unwrap().get(host).copied().unwrap_or(0)
    }
}

impl HostResolver for StubResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        *self
            .lookups
            .lock()
            .unwrap()
            .entry(host.to_owned())
            .or_default() += 1;
        let answer = self.answers.lock().unwrap().get_mut(host).map(|queue| {
            if queue.len() > 1 {
                queue.remove(0)
            } else {
                queue.first().cloned().unwrap_or_default()
            }
        });
        Box::pin(async move {
            Ok(match answer {
                Some(ips) => ips,
                None if host.ends_with(".invalid") => Vec::new(),
                None => vec!["93.184.216.34".parse().expect("ip")],
            })
        })
    }
}

/// A running service for one test.
pub struct TestServer {
    pub app: App,
    pub base: String,
    pub client: reqwest::Client,
    pub manage_token: String,
    pub events_token: String,
    pub master_key: MasterKey,
    pub resolver: StubResolver,
    pub db: Option<TestDb>,
    server: tokio::task::JoinHandle<()>,
    engine: Option<lwh_delivery::EngineHandle>,
}

impl TestServer {
    /// Starts the API on 127.0.0.1 with `settings` (data_dir and database are set here).
    pub async fn start(backend: Backend, settings: Settings) -> Self {
        logs::capture_in_process();
        let db = TestDb::create(backend).await;
        let store = Store::open(&db.target).await.expect("open store");
        store.migrate().await.expect("migrate");
        let master_key = MasterKey::generate();
        // In the form it is written to master.key; the check derives its other encodings.
        logs::remember(&master_key.to_hex());
        let resolver = StubResolver::default();
        let app = App::from_parts(
            settings,
            store,
            master_key.clone(),
            Arc::new(resolver.clone()),
        )
        .expect("valid settings");
        let manage_token = create_api_token(&app, Scope::WebhooksManage, "test manage")
            .await
            .token;
        let events_token = create_api_token(&app, Scope::EventsWrite, "test events")
            .await
            .token;
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let sender = lwh_delivery::sender_for(&app).expect("sender");
        let engine = lwh_delivery::start(app.clone(), sender.clone())
            .await
            .expect("engine");
        let router = lwh_http::router(lwh_http::AppState {
            app: app.clone(),
            sender,
        });
        let server = tokio::spawn(async move {
            lwh_http::server::serve(
                listener,
                router,
                lwh_http::server::ServerLimits::default(),
                std::future::pending(),
            )
            .await;
        });
        Self {
            app,
            base,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            manage_token,
            events_token,
            master_key,
            resolver,
            db: Some(db),
            server,
            engine: Some(engine),
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the manage token.
    pub fn manage(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.manage_token)
    }

    /// GETs `path` with the manage token and returns the JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.manage(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    /// Creates a webhook through the API; returns the `data` object (with its secret).
    pub async fn create_webhook(&self, url: &str, events: &[&str]) -> serde_json::Value {
        self.post_webhook(serde_json::json!({"url": url, "events": events}))
            .await
    }

    /// Creates a webhook on `course_completed` with our own `secret`; returns its id.
    pub async fn create_webhook_with_secret(&self, url: &str, secret: &str) -> String {
        let body =
            serde_json::json!({"url": url, "events": ["course_completed"], "secret": secret});
        self.post_webhook(body).await["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Creates a webhook from a whole request body (asserting 201); returns its `data`, and
    /// remembers its secret for the log check.
    pub async fn post_webhook(&self, request: serde_json::Value) -> serde_json::Value {
        let res = self
            .manage(reqwest::Method::POST, "/api/v1/webhooks")
            .json(&request)
            .send()
            .await
            .expect("request");
        let status = res.status();
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(status, 201, "create webhook: {body}");
        if let Some(secret) = body["data"]["secret"].as_str() {
            logs::remember(secret);
        }
        body["data"].clone()
    }

    /// POSTs `body` to `/api/v1/webhooks/{id}/{action}` (`rotate-secret`, …).
    pub async fn webhook_action(
        &self,
        id: &str,
        action: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let request = self.manage(
            reqwest::Method::POST,
            &format!("/api/v1/webhooks/{id}/{action}"),
        );
        match body {
            Some(body) => request.json(&body),
            None => request,
        }
        .send()
        .await
        .expect("request")
    }

    /// Creates the console user `admin` and signs in through the login form.
    pub async fn console_session(&self) -> ConsoleSession {
        let password = "a long console password";
        logs::remember(password);
        self.app
            .create_user("admin", password)
            .await
            .expect("create user");
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let login = console_login(&client, &self.base, "admin", password, &[]).await;
        let cookie = session_cookie_of(&login).expect("signed in");
        ConsoleSession {
            cookie: cookie.split(';').next().unwrap_or_default().to_owned(),
            client,
            base: self.base.clone(),
        }
    }

    /// A GET on the API (with the manage token) as text, whatever the status.
    pub async fn api_text(&self, path: &str) -> String {
        self.manage(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text")
    }

    /// The webhook's row as stored (its ciphertexts included).
    pub async fn stored_webhook(&self, id: &str) -> lwh_storage::WebhookRecord {
        self.app
            .store()
            .get_webhook(id.parse().expect("webhook id"))
            .await
            .expect("read")
            .expect("the webhook exists")
    }

    /// Stops the server and drops the database.
    pub async fn finish(mut self) {
        self.server.abort();
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
        self.app.store().close().await;
        if let Some(db) = self.db.take() {
            db.drop_all().await;
        }
    }
}

/// Creates an API token in `app` and writes it down for the log check: tests that need a token
/// besides the server's two make it here.
pub async fn create_api_token(
    app: &App,
    scopes: impl Into<lwh_app::Scopes>,
    name: &str,
) -> lwh_app::tokens::CreatedToken {
    let created = app.create_api_token(scopes, name).await.expect("token");
    logs::remember(&created.token);
    created
}

/// Settings for delivery tests: receivers on 127.0.0.1 over plain http, quick retries and
/// short timeouts.
pub fn delivery_settings(plan: lwh_domain::Plan) -> Settings {
    let ms = |n| lwh_app::Dur(std::time::Duration::from_millis(n));
    Settings {
        plan,
        allow_http: true,
        allowed_networks: vec!["127.0.0.0/8".parse().expect("cidr")],
        retry_schedule: vec![ms(100), ms(100), ms(100)],
        connect_timeout: ms(1000),
        request_timeout: ms(1000),
        failed_probe_interval: ms(300),
        ..Settings::default()
    }
}

/// Settings for tests: defaults plus the given plan.
pub fn settings(plan: lwh_domain::Plan) -> Settings {
    Settings {
        plan,
        ..Settings::default()
    }
}

/// Runs `body` with a server on `backend`, then cleans up even if the body panicked.
pub async fn with_server<F, Fut>(backend: Backend, settings: Settings, body: F)
where
    F: FnOnce(Arc<TestServer>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server = Arc::new(TestServer::start(backend, settings).await);
    let outcome = tokio::spawn(body(server.clone())).await;
    match Arc::try_unwrap(server) {
        Ok(server) => server.finish().await,
        Err(_) => panic!("the test kept a handle on the server"),
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Declares one test per backend: `both_backends!(name, |backend| async { … })` makes
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(lwh_storage::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(lwh_storage::Backend::Postgres).await
            }
        }
    };
}

/// The login form at `url` as a browser gets it: its CSRF cookie (`lwh_login_csrf=…`) and its
/// page.
pub async fn login_form(client: &reqwest::Client, url: &str) -> (String, String) {
    let form = client.get(url).send().await.expect("login form");
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lwh_login_csrf="))
        .and_then(|v| v.split(';').next())
        .expect("the login form sets its CSRF cookie")
        .to_owned();
    (cookie, form.text().await.expect("login page"))
}

/// The CSRF token in a console page's first form.
pub fn form_csrf(page: &str) -> String {
    page.split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's form carries a CSRF token")
        .to_owned()
}

/// A signed-in console session over plain HTTP (redirects are not followed).
pub struct ConsoleSession {
    client: reqwest::Client,
    cookie: String,
    base: String,
}

impl ConsoleSession {
    /// A console page's HTML.
    pub async fn page(&self, path_and_query: &str) -> String {
        self.client
            .get(format!("{}{path_and_query}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("console GET")
            .text()
            .await
            .expect("page text")
    }

    /// Posts a console form.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .expect("console POST")
    }
}

/// Signs in to the console as a browser does: fetches the login form (its CSRF cookie and
/// hidden field), then posts it with `name`, `password` and `extra` headers. Answers the POST's
/// response (303 and a session cookie on success).
pub async fn console_login(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let (cookie, page) = login_form(client, &format!("{base}/admin/login")).await;
    let csrf = form_csrf(&page);
    let mut request = client
        .post(format!("{base}/admin/login"))
        .header("cookie", cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", name),
            ("password", password),
        ]);
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let res = request.send().await.expect("login POST");
    // Writes down the session it opened, whether or not the test looks at it.
    let _ = session_cookie_of(&res);
    res
}

/// The `lwh_session=…` cookie among a response's cookies (with its attributes). Its value, a
/// credential, is written down for the log check.
pub fn session_cookie_of(res: &reqwest::Response) -> Option<String> {
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lwh_session="))?;
    let pair = cookie.split(';').next().unwrap_or_default();
    logs::remember(pair.trim_start_matches("lwh_session="));
    Some(cookie.to_owned())
}
