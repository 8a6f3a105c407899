//! A real headless Chromium for the browser tests (the service's console and the WordPress
//! plugin's pages): Debian's `chromium` driven through `chromedriver` with fantoccini.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use lwh_storage::Backend;
use serde_json::{json, Value};

/// One Chromium, its chromedriver and its throw-away profile.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// The docs' screenshots come from the SQLite run only (both runs would write one file).
    screenshots: bool,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium at 1280×1000.
    pub async fn start(backend: Backend) -> Self {
        // A port picked free can be taken by another test's process before chromedriver binds
        // it (chromedriver then exits, and the port answers for someone else): start again on
        // another port, a few times.
        let mut attempt = 0;
        let (client, driver, profile) = loop {
            attempt += 1;
            match Self::launch().await {
                Ok(started) => break started,
                Err(e) if attempt < 4 => {
                    eprintln!("chromedriver start {attempt} failed: {e}; again")
                }
                Err(e) => panic!("start chromium through chromedriver: {e}"),
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
            screenshots: backend == Backend::Sqlite
                && std::env::var("LEARNOMY_SCREENSHOTS").as_deref() == Ok("1"),
        }
    }

    /// One try: chromedriver on a fresh port, then a Chromium session through it.
    async fn launch() -> Result<(Client, Child, tempfile::TempDir), String> {
        let port = super::process::free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is required for the browser tests: apt-get install chromium chromium-driver (./scripts/test does it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.try_wait() {
                return Err(format!("chromedriver exited: {status}"));
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                return Err("chromedriver did not start".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("a profile folder");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-quic", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display())
                ]
            }
        });
        let caps = caps
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => Ok((client, driver, profile)),
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                Err(e.to_string())
            }
        }
    }

    /// Ends the session and stops chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} not on the page"))
            .text()
            .await
            .unwrap()
    }

    /// Whether an element matches `css`.
    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Clears a field and types `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} not on the page"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} not on the page"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks the first element matching `css` and waits until the page it leads to has
    /// loaded: a form that posts and redirects back to the same address gives no other
    /// sign, and a refresh issued while the post is in flight can cancel it.
    pub async fn click_and_load(&self, css: &str) {
        self.js("window.__beforeClick = true;").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__beforeClick !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .unwrap_or(Value::Bool(false));
            if loaded == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css} never loaded a new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `value` property of a field.
    pub async fn value(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} not on the page"))
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// An attribute of the first element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} not on the page"))
            .attr(name)
            .await
            .unwrap()
    }

    /// Runs `script` (a function body; `return` gives the answer) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Presses keys on whatever has the focus, as a keyboard does (WebDriver key actions):
    /// `"\u{e004}"` is Tab, `"\u{e007}"` Enter, `"\u{e00d}"` Space (see `fantoccini::key::Key`).
    pub async fn press(&self, keys: &str) {
        let mut keyboard = KeyActions::new("keyboard".to_owned());
        for key in keys.chars() {
            keyboard = keyboard
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client.perform_actions(keyboard).await.unwrap();
    }

    /// Waits until `css` has text containing `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                let text = el.text().await.unwrap_or_default();
                if text.contains(needle) {
                    return text;
                }
            }
            assert!(Instant::now() < deadline, "{css} never showed {needle:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until exactly `n` elements match `css`.
    pub async fn wait_count(&self, css: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.count(css).await;
            if found == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css}: {found} elements, never {n}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a PNG of the viewport into docs/screenshots/ (SQLite run with
    /// `LEARNOMY_SCREENSHOTS=1` only).
    pub async fn screenshot(&self, name: &str) {
        if self.screenshots {
            let png = self.client.screenshot().await.unwrap();
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), png).unwrap();
        }
    }
}
