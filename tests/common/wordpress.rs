//! A real WordPress for the plugin's tests: Debian's `wordpress` on MariaDB, built fresh by
//! `scripts/wordpress-testbed` in a temporary folder, served by PHP's built-in server on
//! 127.0.0.1, with the plugin activated and the test-only must-use plugin
//! (`tests/wordpress/mu-plugins/learnomy-test-hooks.php`) that fires Learnomy hooks on request.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lwh_storage::Backend;
use serde_json::{json, Value};

use super::process::{free_port, kill9, ProcessEnv, Running};
use super::TestDb;

/// The key the test-only must-use plugin asks for.
const TEST_KEY: &str = "lrn-test-key-5c1e";
/// The WordPress administrator the test bed creates.
pub const ADMIN_USER: &str = "admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-password";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One WordPress site, its database and its PHP server; all removed when dropped.
pub struct WordPress {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    dir: tempfile::TempDir,
    database: String,
    _server: ProcessGroup,
    client: reqwest::Client,
}

impl WordPress {
    /// Builds a fresh site that reports to the service at `service_url` with `token` (set as
    /// the `LEARNOMY_WEBHOOKS_URL` / `_TOKEN` constants in `wp-config.php`).
    pub async fn start(service_url: &str, token: &str) -> Self {
        Self::build(Some((service_url, token))).await
    }

    /// A fresh site whose connection is not configured (no constants in `wp-config.php`): the
    /// admin sets it on the plugin's settings screen, as a new site owner does.
    pub async fn start_unconfigured() -> Self {
        Self::build(None).await
    }

    async fn build(connection: Option<(&str, &str)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lwh-wp-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mut testbed = Command::new(root().join("scripts/wordpress-testbed"));
        testbed
            .arg(dir.path())
            .arg(port.to_string())
            .env("LRN_TEST_HOOKS_KEY", TEST_KEY)
            .env_remove("LEARNOMY_WEBHOOKS_URL")
            .env_remove("LEARNOMY_WEBHOOKS_TOKEN");
        if let Some((url, token)) = connection {
            testbed
                .env("LEARNOMY_WEBHOOKS_URL", url)
                .env("LEARNOMY_WEBHOOKS_TOKEN", token);
        }
        let out = testbed.output().expect("scripts/wordpress-testbed");
        assert!(
            out.status.success(),
            "the WordPress test bed failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let database = database_name(dir.path());
        // Its own process group: PHP's workers outlive their parent, so the group is killed.
        let server = Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}"), "-t"])
            .arg(dir.path().join("site"))
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php -S");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "PHP's server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            database,
            _server: ProcessGroup(server),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    async fn test_call(&self, action: &str, body: Option<Value>) -> Value {
        let url = format!("{}/?lrn_test={action}&key={TEST_KEY}", self.base);
        let request = match body {
            Some(body) => self.client.post(url).json(&body),
            None => self.client.get(url),
        };
        let res = request.send().await.expect("WordPress answers");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert!(status.is_success(), "lrn_test={action}: {status}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("lrn_test={action} did not answer JSON ({e}): {text}"))
    }

    /// Fires hooks in one request with `options` merged into the request body (`extra_slugs` for
    /// the `learnomy_pro_webhooks_event_slugs` filter, `max_rows` for the outbox cap).
    pub async fn fire_with(&self, calls: &[(String, Vec<Value>)], options: Value) {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(hook, args)| json!({"hook": hook, "args": args}))
            .collect();
        let n = calls.len();
        let mut body = options;
        body["calls"] = Value::Array(calls);
        let answer = self.test_call("fire", Some(body)).await;
        assert_eq!(answer["fired"], n, "{answer}");
    }

    /// Fires Learnomy action hooks in one WordPress request: `(hook, args)` pairs.
    pub async fn fire(&self, calls: &[(String, Vec<Value>)]) {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(hook, args)| json!({"hook": hook, "args": args}))
            .collect();
        let n = calls.len();
        let answer = self
            .test_call("fire", Some(json!({ "calls": calls })))
            .await;
        assert_eq!(answer["fired"], n, "{answer}");
    }

    /// Creates users (login, email, display name, and optionally role — subscriber by default —
    /// and password) and posts (title, post type); answers ids.
    pub async fn fixtures(&self, users: Value, posts: Value) -> Value {
        self.test_call("fixtures", Some(json!({"users": users, "posts": posts})))
            .await
    }

    /// The outbox and the plugin's traces in the database.
    pub async fn state(&self) -> Value {
        self.test_call("state", None).await
    }

    /// Deactivates and uninstalls the plugin; answers the state afterwards.
    pub async fn uninstall(&self) -> Value {
        self.test_call("uninstall", None).await
    }

    /// One WP-Cron run, as a system cron calling `wp-cron.php` does.
    pub async fn cron(&self) {
        let res = self
            .client
            .get(format!("{}/wp-cron.php?doing_wp_cron", self.base))
            .send()
            .await
            .expect("wp-cron.php answers");
        assert!(res.status().is_success(), "wp-cron.php: {}", res.status());
    }

    /// Signs in as the administrator (`wp-login.php`, as a browser does).
    pub async fn sign_in(&self) -> Admin {
        self.sign_in_as(ADMIN_USER, ADMIN_PASSWORD).await
    }

    /// Signs in as any user (e.g. a subscriber made with [`WordPress::fixtures`]).
    pub async fn sign_in_as(&self, user: &str, password: &str) -> Admin {
        let login = self
            .client
            .post(format!("{}/wp-login.php", self.base))
            .header("Cookie", "wordpress_test_cookie=WP%20Cookie%20check")
            .form(&[
                ("log", user),
                ("pwd", password),
                ("testcookie", "1"),
                ("redirect_to", "/wp-admin/"),
            ])
            .send()
            .await
            .expect("wp-login.php");
        assert_eq!(login.status(), 302, "{user} signs in");
        let cookies: Vec<String> = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_owned)
            .collect();
        Admin {
            base: self.base.clone(),
            cookie: cookies.join("; "),
            client: self.client.clone(),
        }
    }

    /// WordPress's debug log (`WP_DEBUG_LOG`): PHP notices, warnings and deprecations land here.
    pub fn debug_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("debug.log")).unwrap_or_default()
    }

    /// Fails the test if WordPress logged any PHP notice, warning, deprecation or error.
    pub fn assert_clean_debug_log(&self) {
        let log = self.debug_log();
        assert!(
            log.trim().is_empty(),
            "WordPress's debug log is not empty:\n{log}"
        );
    }
}

/// A signed-in administrator's browser, without the browser: cookies and forms.
pub struct Admin {
    base: String,
    cookie: String,
    client: reqwest::Client,
}

impl Admin {
    /// A wp-admin page's HTML (it must answer 200).
    pub async fn page(&self, path: &str) -> String {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("wp-admin page");
        assert_eq!(res.status(), 200, "{path}");
        res.text().await.expect("HTML")
    }

    /// Any page as this user: its status and HTML (a user without the capability gets 403).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("wp-admin page");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    /// The hidden fields (its nonce, a row id…) of the first form of `page` whose `action`
    /// field is `action` and whose markup contains `containing` (e.g. a webhook id; "" for any).
    pub fn form_fields(page: &str, action: &str, containing: &str) -> Vec<(String, String)> {
        let marker = format!("name=\"action\" value=\"{action}\"");
        let form = page
            .split("<form")
            .skip(1)
            .map(|rest| rest.split("</form>").next().unwrap_or(rest))
            .find(|form| form.contains(&marker) && form.contains(containing))
            .unwrap_or_else(|| panic!("no {action} form ({containing}) on the page"));
        form.split("<input")
            .skip(1)
            .filter(|input| input.contains("type=\"hidden\""))
            .filter_map(|input| {
                let attr = |name: &str| {
                    input
                        .split(&format!(" {name}=\""))
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .map(|value| value.replace("&amp;", "&").replace("&#038;", "&"))
                };
                Some((attr("name")?, attr("value").unwrap_or_default()))
            })
            .collect()
    }

    /// Submits the first form of `page` whose `action` field is `action`, with every hidden
    /// field it carries (its nonce, a row id), to admin-post.php; answers the status and the
    /// redirect target.
    pub async fn submit(&self, page: &str, action: &str) -> (u16, String) {
        let fields = Self::form_fields(page, action, "");
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post_admin(&form).await
    }

    /// POSTs a form to admin-ajax.php; answers the status and the body.
    pub async fn post_ajax(&self, form: &[(&str, &str)]) -> (u16, String) {
        let res = self
            .client
            .post(format!("{}/wp-admin/admin-ajax.php", self.base))
            .header("Cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .expect("admin-ajax.php");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    /// POSTs a form to admin-post.php; answers the status and the redirect target.
    pub async fn post_admin(&self, form: &[(&str, &str)]) -> (u16, String) {
        let res = self
            .client
            .post(format!("{}/wp-admin/admin-post.php", self.base))
            .header("Cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .expect("admin-post.php");
        let location = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (res.status().as_u16(), location)
    }
}

/// The service binary as a process (`serve`) with a database of its own, and one token holding
/// both scopes, as a WordPress site uses it.
pub struct Service {
    env: ProcessEnv,
    port: u16,
    /// A token with the scopes `events:write` and `webhooks:manage`.
    pub token: String,
    process: Option<Running>,
    db: Option<TestDb>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `serve` on `backend` with `plan` ("free" or "pro"): loopback receivers over plain
    /// http allowed, quick retries (see [`ProcessEnv::new`]).
    pub async fn start(backend: Backend, plan: &str) -> Self {
        Self::start_with(backend, plan, &[]).await
    }

    /// [`Service::start`] with more settings, as `(KEY, value)` for `LEARNOMY_WEBHOOKS_<KEY>`.
    pub async fn start_with(backend: Backend, plan: &str, settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::create(backend).await;
        let mut env = ProcessEnv::new(dir.path(), db.postgres_url());
        env.vars
            .push(("LEARNOMY_WEBHOOKS_PLAN".into(), plan.to_owned()));
        for (key, value) in settings {
            env.vars
                .push((format!("LEARNOMY_WEBHOOKS_{key}"), (*value).to_owned()));
        }
        // One token for everything the plugin does: report events and manage webhooks.
        let token = env.run(&[
            "token",
            "create",
            "--scope",
            "events:write",
            "--scope",
            "webhooks:manage",
            "--name",
            "wordpress",
        ]);
        let port = free_port();
        let process = env.serve(port).await;
        Self {
            env,
            port,
            token,
            process: Some(process),
            db: Some(db),
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a webhook through the API with `secret`.
    pub async fn subscribe(&self, url: &str, events: &[&str], secret: &str) {
        super::logs::remember(secret);
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/webhooks", self.base()))
            .bearer_auth(&self.token)
            .json(&json!({"url": url, "events": events, "secret": secret}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }

    /// A GET of the API with the token: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .get(format!("{}{path}", self.base()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("the service answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A POST of JSON to the API with the token: the status and the JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.base()))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("the service answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Every webhook, as `GET /api/v1/webhooks` lists them.
    pub async fn webhooks(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/webhooks").await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// `kill -9`: nothing the process was doing gets finished.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            kill9(&mut process);
        }
    }

    /// Kills the process and starts it again on the same port and database.
    pub async fn restart(&mut self) {
        self.kill();
        self.process = Some(self.env.serve(self.port).await);
    }

    /// Stops the process and drops the database.
    pub async fn finish(mut self) {
        self.kill();
        if let Some(db) = self.db.take() {
            db.drop_all().await;
        }
    }
}

/// A process leading its own group, killed with the whole group when dropped.
struct ProcessGroup(Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for WordPress {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["-u", "root", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.database))
            .status();
    }
}

/// The database name the test bed derives from the site's folder.
fn database_name(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("lwh_wp_{clean}")
}

/// Every PHP file of the plugin passes `php -l`.
pub fn lint_plugin() {
    let mut files = Vec::new();
    collect_php(&root().join("wordpress/learnomy-webhooks"), &mut files);
    collect_php(&root().join("tests/wordpress"), &mut files);
    assert!(files.len() > 5, "the plugin's PHP files: {files:?}");
    for file in files {
        let out = Command::new("php")
            .arg("-l")
            .arg(&file)
            .output()
            .expect("php -l");
        assert!(
            out.status.success(),
            "php -l {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

fn collect_php(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_php(&path, files);
        } else if path.extension().is_some_and(|e| e == "php") {
            files.push(path);
        }
    }
}
