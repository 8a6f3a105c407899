//! The commands we print for the operator to run next ("get an API token: …"), written so they
//! work when pasted: the program as it can be found, and the data options this process was
//! started with. A hint that says `learnomy-webhooks token create` to an operator who started
//! `serve --data-dir /srv/lwh` from another folder makes a token for a database nobody serves.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::cli::GlobalArgs;

/// The binary's name as installed (`cargo install`, the systemd unit).
const PROGRAM: &str = "learnomy-webhooks";

/// The start of every printed command: how to call this program, and the options that choose
/// the same data (`--config`, `--data-dir` as absolute paths, `--database-url` when given on
/// the command line). Options from the environment are left out: the same shell has them.
#[derive(Debug, Clone)]
pub struct CommandPrefix(String);

impl CommandPrefix {
    /// Builds the prefix for this process.
    pub fn for_this_process(global: &GlobalArgs) -> Self {
        Self::build(global, std::env::var_os("DATABASE_URL").is_some())
    }

    /// clap fills `--database-url` from `DATABASE_URL` too; when that variable is set, the
    /// value came from there (or equals it anyway) and the operator's shell supplies it.
    fn build(global: &GlobalArgs, url_from_environment: bool) -> Self {
        let mut words = vec![program()];
        if let Some(config) = &global.config {
            words.push("--config".to_owned());
            words.push(quote(&absolute(config).to_string_lossy()).into_owned());
        }
        if let Some(dir) = &global.data_dir {
            words.push("--data-dir".to_owned());
            words.push(quote(&absolute(dir).to_string_lossy()).into_owned());
        }
        if let Some(url) = global
            .database_url
            .as_deref()
            .filter(|_| !url_from_environment)
        {
            words.push("--database-url".to_owned());
            words.push(if has_password(url) {
                // Never print a password; the operator's shell can supply it.
                "\"$DATABASE_URL\"".to_owned()
            } else {
                quote(url).into_owned()
            });
        }
        Self(words.join(" "))
    }

    /// `PREFIX ARGS`, e.g. `learnomy-webhooks --data-dir /srv/lwh token create …`.
    pub fn command(&self, args: &str) -> String {
        format!("{} {args}", self.0)
    }
}

/// `learnomy-webhooks` when that name finds this very binary on `PATH`, else this binary's path
/// (`./target/release/learnomy-webhooks`, as run from a checkout).
fn program() -> String {
    let Some(me) = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
    else {
        return PROGRAM.to_owned();
    };
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(PROGRAM))
            .find(|candidate| candidate.is_file())
            .and_then(|found| found.canonicalize().ok())
    });
    if on_path.as_deref() == Some(me.as_path()) {
        PROGRAM.to_owned()
    } else {
        quote(&me.to_string_lossy()).into_owned()
    }
}

fn has_password(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.password().is_some())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A word as a POSIX shell reads it back unchanged: as is when it holds only safe characters,
/// else in single quotes.
fn quote(word: &str) -> Cow<'_, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(config: Option<&str>, data_dir: Option<&str>, url: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            config: config.map(PathBuf::from),
            data_dir: data_dir.map(PathBuf::from),
            database_url: url.map(str::to_owned),
            log_format: None,
        }
    }

    #[test]
    fn quoting_leaves_plain_words_alone_and_protects_the_rest() {
        assert_eq!(quote("/srv/lwh/data"), "/srv/lwh/data");
        assert_eq!(quote("/srv/my data"), "'/srv/my data'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn the_prefix_carries_config_and_data_dir_as_absolute_paths() {
        let prefix =
            CommandPrefix::build(&global(Some("conf.toml"), Some("/srv/lwh"), None), false);
        let cmd = prefix.command("token list");
        let cwd = std::env::current_dir().unwrap_or_default();
        assert!(
            cmd.contains(&format!("--config {}", cwd.join("conf.toml").display())),
            "{cmd}"
        );
        assert!(cmd.ends_with("--data-dir /srv/lwh token list"), "{cmd}");
    }

    #[test]
    fn a_database_password_is_never_printed() {
        let prefix = CommandPrefix::build(
            &global(None, None, Some("postgres://lwh:hunter2@127.0.0.1/lwh")),
            false,
        );
        let cmd = prefix.command("token list");
        assert!(!cmd.contains("hunter2"), "{cmd}");
        assert!(cmd.contains("--database-url \"$DATABASE_URL\""), "{cmd}");
        let url = Some("postgres://lwh@127.0.0.1/lwh");
        let plain = CommandPrefix::build(&global(None, None, url), false);
        assert!(plain
            .command("x")
            .contains("--database-url postgres://lwh@127.0.0.1/lwh"));
        let from_env = CommandPrefix::build(&global(None, None, url), true);
        assert!(!from_env.command("x").contains("--database-url"));
    }
}
