//! Fixtures shared by the unit tests of this crate.

/// An in-memory database with SQLite's migrations applied, one active webhook `w` and a
/// paused one `p`.
pub fn sqlite_schema() -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        db.execute_batch(&std::fs::read_to_string(file).unwrap())
            .unwrap();
    }
    db.execute_batch(
        "INSERT INTO webhooks (id, url, secret_ciphertext, status, status_changed_at, \
         created_at, updated_at) VALUES ('w', 'http://x', x'00', 'active', 0, 0, 0), \
         ('p', 'http://x', x'00', 'paused', 0, 0, 0)",
    )
    .unwrap();
    db
}
