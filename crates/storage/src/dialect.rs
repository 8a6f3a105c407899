//! The few places where SQLite and PostgreSQL differ, named in one file.
//!
//! Queries are written once, with PostgreSQL's `$1` placeholders; for SQLite they are rewritten
//! to plain `?` when they appear exactly in order `$1, $2, …` (SQLite resolves numbered
//! parameters by a linear search per parameter, which made multi-row inserts quadratic), and
//! to the numbered `?1` form otherwise. Rewritten texts are interned, because sqlx borrows the
//! SQL text for the life of a query and caches prepared statements by that text.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Which database a [`crate::Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded, single process, the default.
    Sqlite,
    /// Shared by any number of processes.
    Postgres,
}

impl Backend {
    /// The lowercase name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// `text` in this backend's placeholder syntax.
    pub(crate) fn sql(self, text: &'static str) -> &'static str {
        match self {
            Backend::Postgres => text,
            Backend::Sqlite => intern(text),
        }
    }

    /// Like [`Backend::sql`] for text built at run time (e.g. multi-row VALUES lists).
    pub(crate) fn sql_owned(self, text: String) -> &'static str {
        static POSTGRES: LazyLock<Mutex<HashMap<String, &'static str>>> =
            LazyLock::new(Default::default);
        match self {
            Backend::Sqlite => intern(&text),
            Backend::Postgres => {
                let mut map = POSTGRES.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(found) = map.get(&text) {
                    return found;
                }
                let leaked: &'static str = Box::leak(text.clone().into_boxed_str());
                map.insert(text, leaked);
                leaked
            }
        }
    }
}

fn intern(text: &str) -> &'static str {
    static SQLITE: LazyLock<Mutex<HashMap<String, &'static str>>> = LazyLock::new(Default::default);
    let mut map = SQLITE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = map.get(text) {
        return found;
    }
    let rewritten: &'static str = Box::leak(to_sqlite_placeholders(text).into_boxed_str());
    map.insert(text.to_owned(), rewritten);
    rewritten
}

/// `$12` → `?12` outside string literals; all to `?` when they are `$1, $2, …` in order.
fn to_sqlite_placeholders(text: &str) -> String {
    let mut parts: Vec<(String, Option<usize>)> = Vec::new();
    let mut literal = String::with_capacity(text.len());
    let mut in_literal = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_literal = !in_literal;
                literal.push(c);
            }
            '$' if !in_literal && chars.peek().is_some_and(|n| n.is_ascii_digit()) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                parts.push((std::mem::take(&mut literal), digits.parse().ok()));
            }
            _ => literal.push(c),
        }
    }
    let in_order = parts
        .iter()
        .enumerate()
        .all(|(i, (_, n))| *n == Some(i + 1));
    let mut out = String::with_capacity(text.len() + parts.len());
    for (before, n) in parts {
        out.push_str(&before);
        out.push('?');
        if !in_order {
            out.push_str(&n.map(|n| n.to_string()).unwrap_or_default());
        }
    }
    out.push_str(&literal);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_placeholders_but_not_literals() {
        assert_eq!(
            to_sqlite_placeholders("SELECT '$1' , $1, $22 FROM t WHERE a = '$x'"),
            "SELECT '$1' , ?1, ?22 FROM t WHERE a = '$x'"
        );
        assert_eq!(
            to_sqlite_placeholders("SELECT $2, $1, $1 FROM t"),
            "SELECT ?2, ?1, ?1 FROM t"
        );
        assert_eq!(
            to_sqlite_placeholders("INSERT INTO t VALUES ($1, '$', $2), ($3, $4)"),
            "INSERT INTO t VALUES (?, '$', ?), (?, ?)"
        );
        assert_eq!(Backend::Postgres.sql("SELECT $1"), "SELECT $1");
        assert_eq!(Backend::Sqlite.sql("SELECT $1"), "SELECT ?");
        assert_eq!(
            Backend::Sqlite.sql("SELECT $1 WHERE $1"),
            "SELECT ?1 WHERE ?1"
        );
    }
}

/// Rows up to which a multi-row statement is kept prepared in sqlx's per-connection cache.
///
/// Small shapes recur (a group of a few events, a result batch of a few attempts) and are worth
/// keeping: on PostgreSQL a statement not kept costs a second round trip (parse and describe)
/// each time. Large ones hardly ever recur exactly, yet each cached one holds its text and the
/// type of each of its thousands of parameters, on each connection: under a burst of varied
/// group sizes, PostgreSQL's `serve` grew from ~120 to ~270 MB.
const CACHED_ROWS: usize = 64;

/// Whether a statement built for `rows` rows should be kept prepared (see [`CACHED_ROWS`]).
pub(crate) fn keep_prepared(rows: usize) -> bool {
    rows <= CACHED_ROWS
}

/// `$first, $first+1, …` — `n` placeholders for an `IN (…)` list.
pub(crate) fn placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn builds_in_lists() {
        assert_eq!(placeholders(3, 2), "$2, $3, $4");
    }
}
