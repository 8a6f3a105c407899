//! The docs that are generated from code stay in step with it. Run with
//! `LEARNOMY_UPDATE_DOCS=1` to rewrite them.

use std::path::PathBuf;

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name)
}

#[test]
fn configuration_reference_matches_the_settings_struct() {
    let generated = format!(
        "# Configuration\n\n\
         Settings are read from `learnomy-webhooks.toml` (or `--config FILE`), then from\n\
         `LEARNOMY_WEBHOOKS_<KEY>` environment variables (arrays as TOML, e.g.\n\
         `LEARNOMY_WEBHOOKS_ALLOWED_NETWORKS='[\"10.0.0.0/8\"]'`), then from flags: `--data-dir`,\n\
         `--database-url` (or `DATABASE_URL`), `--log-format`, `serve --listen`. The master key is\n\
         `LEARNOMY_WEBHOOKS_MASTER_KEY` or `data_dir/master.key` (mode 0600; a key file other users\n\
         can read stops the start, saying how to fix it). The data folder is private to the\n\
         service's user (mode 0700) and the database files are 0600 (the database holds event\n\
         payloads, which carry learners' personal data): created so, and tightened at start when\n\
         they exist with looser modes.\n\n\
         This file is generated from the `Settings` struct (`crates/app/src/settings.rs`); a test\n\
         fails when they differ.\n\n```toml\n{}```\n",
        lwh_app::Settings::reference()
    );
    let path = docs("configuration.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    // Rewriting is asked for, but a rewrite still fails this run: with the variable left set
    // (in CI, say) a stale file would otherwise pass by being overwritten.
    if std::env::var("LEARNOMY_UPDATE_DOCS").as_deref() == Ok("1") && committed != generated {
        std::fs::write(&path, &generated).unwrap();
        panic!("docs/configuration.md was stale and is rewritten; review it and run again");
    }
    assert_eq!(
        committed, generated,
        "docs/configuration.md is stale: run LEARNOMY_UPDATE_DOCS=1 cargo test --test docs"
    );
}

#[test]
fn every_doc_link_points_at_a_file() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for page in std::fs::read_dir(root.join("docs"))
        .unwrap()
        .chain(std::fs::read_dir(&root).unwrap())
    {
        let path = page.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for target in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = path
                .parent()
                .unwrap()
                .join(target.split('#').next().unwrap());
            assert!(
                file.exists(),
                "{} links to missing {target}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 10);
}

/// `scripts/check-test-logs` (run by `scripts/test` over the whole suite's logs) passes clean
/// logs and catches a remembered secret, a token and a generated-secret shape.
#[test]
fn the_suite_log_check_catches_a_leak() {
    let dir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/check-test-logs");
    let secrets: Vec<String> = (0..10)
        .map(|i| format!("remembered-secret-{i:04}"))
        .collect();
    std::fs::write(dir.path().join("secrets-1.txt"), secrets.join("\n")).unwrap();
    let clean_line = "2026-11-28T10:00:00Z INFO lwh_delivery::worker: delivered delivery_id=dlv_01JDQ8V3W4X5Y6Z7A8B9C0D1E2 status=204\n";
    for i in 0..20 {
        std::fs::write(
            dir.path().join(format!("serve-{i}.log")),
            clean_line.repeat(120),
        )
        .unwrap();
    }
    let run = || {
        std::process::Command::new(&script)
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for leak in [
        secrets[3].clone(),
        format!("lwh_{}", "aB3".repeat(13) + "x"),
        "k3F9mQ2xV7pL0sT4wZ8cR1bN6yH5dJ2a".to_owned(),
    ] {
        std::fs::write(
            dir.path().join("leak.log"),
            format!("INFO oops {leak} here\n"),
        )
        .unwrap();
        let out = run();
        assert!(!out.status.success(), "{leak} not caught");
        assert!(String::from_utf8_lossy(&out.stdout).contains("LEAK"));
    }
}

#[test]
fn the_wordpress_guide_maps_every_catalogue_event_to_its_hook_and_the_plugin_listens_to_it() {
    let guide = std::fs::read_to_string(docs("wordpress.md")).unwrap();
    let plugin = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("wordpress/learnomy-webhooks/includes/class-lrn-webhooks-events.php"),
    )
    .unwrap();
    // Service events are sent by the service itself: no hook fires them.
    for entry in lwh_domain::Catalogue::builtin_entries()
        .unwrap()
        .into_iter()
        .filter(|e| !e.service)
    {
        let hook = if entry.pro {
            format!("learnomy_pro_{}", entry.slug)
        } else {
            format!("learnomy_{}", entry.slug)
        };
        let row = guide
            .lines()
            .find(|l| l.starts_with(&format!("| `{hook}` | `{}`", entry.slug)))
            .unwrap_or_else(|| panic!("docs/wordpress.md has no row for {hook}"));
        // The example data of the catalogue starts with the hook's arguments, in the table's order.
        let documented: Vec<&str> = row
            .rsplit('|')
            .nth(1)
            .unwrap_or_default()
            .split(',')
            .map(|f| f.trim().trim_matches('`'))
            .filter(|f| !f.is_empty())
            .collect();
        let example: Vec<&String> = entry
            .example
            .as_object()
            .unwrap()
            .keys()
            .take(documented.len())
            .collect();
        assert_eq!(
            example, documented,
            "{}: catalogue example vs docs",
            entry.slug
        );
        assert!(
            plugin.contains(&format!("'{}'", entry.slug)),
            "the plugin's hook map lacks {}",
            entry.slug
        );
    }
}

/// Every problem code built in the HTTP crate's sources: the literal that follows a status in a
/// constructor call (`ApiError::new(StatusCode::X, "code", …)`).
fn codes_in_the_sources() -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/http/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for part in text.split("StatusCode::").skip(1) {
                let Some((status, rest)) = part.split_once(',') else {
                    continue;
                };
                if !status.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    continue;
                }
                let rest = rest.trim_start();
                if let Some(literal) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                    if literal.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        found.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    found
}

#[test]
fn the_api_docs_list_exactly_the_error_codes_the_api_produces() {
    let declared: std::collections::BTreeSet<String> = lwh_http::error::ERROR_CODES
        .iter()
        .map(|(code, _, _)| (*code).to_owned())
        .collect();
    let built = codes_in_the_sources();
    // "forbidden" and "unauthorized" are built by their own constructors, like the others.
    assert!(
        built.len() >= 10,
        "the scan finds the constructors: {built:?}"
    );
    for code in &built {
        assert!(
            declared.contains(code),
            "{code} is produced but not in ERROR_CODES"
        );
    }
    for code in &declared {
        assert!(
            built.contains(code),
            "{code} is in ERROR_CODES but never produced"
        );
    }
    let table: String = std::iter::once("| code | status | when |\n|---|---|---|\n".to_owned())
        .chain(
            lwh_http::error::ERROR_CODES
                .iter()
                .map(|(code, status, when)| format!("| `{code}` | {status} | {when} |\n")),
        )
        .collect();
    let api = std::fs::read_to_string(docs("api.md")).unwrap();
    let documented = api
        .split("<!-- error codes: generated from lwh_http::error::ERROR_CODES -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- end of error codes -->").next())
        .expect("api.md has the error code table");
    assert_eq!(
        documented, table,
        "docs/api.md's error codes differ from the code's"
    );
    assert!(
        !api.contains("rate_limited"),
        "a code the API never answers"
    );
}

/// Every `.rs` file under `dir`, recursively, relative to `root`.
fn rust_files(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

#[test]
fn the_architecture_doc_lists_every_source_file_and_only_real_ones() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(docs("architecture.md")).unwrap();
    let mut files = Vec::new();
    rust_files(&root, &root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&root, &src, &mut files);
        }
    }
    assert!(files.len() > 50, "the tree is read: {files:?}");
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !doc.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md does not list: {missing:?}"
    );
    let gone: Vec<&str> = doc
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|p| p.ends_with(".rs") && p.contains('/'))
        .filter(|p| !root.join(p).exists())
        .collect();
    assert!(
        gone.is_empty(),
        "docs/architecture.md lists files that do not exist: {gone:?}"
    );
}
