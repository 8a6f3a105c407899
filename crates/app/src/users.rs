//! Console users: argon2id password hashes, created from the CLI or the first-run setup link.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use lwh_domain::{FieldError, Timestamp, UserId};
use lwh_storage::UserRecord;

use crate::app::App;
use crate::error::AppError;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// A user name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_user_name(name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "name",
            "use 1 to 64 letters, digits, dots, dashes, underscores or @",
        ))
    }
}

/// A password: at least [`MIN_PASSWORD_LEN`] characters, at most 1024.
pub fn check_password(password: &str) -> Result<(), FieldError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_LEN..=1024).contains(&n) {
        Ok(())
    } else {
        Err(FieldError::new(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters long"),
        ))
    }
}

/// Password hashes computed at once: half the cores (at least one). A hash takes tens of
/// milliseconds of CPU; a burst of logins on blocking threads without a bound took both cores
/// of a small machine from the API (ingestion p50 2 ms → 330 ms during rounds of 50 logins),
/// so the rest wait their turn here instead.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        tokio::sync::Semaphore::new((cores / 2).max(1))
    })
}

/// Runs argon2 work on a blocking thread, at most [`hashing_slots`] at a time.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| AppError::Internal(format!("argon2 slots: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(format!("argon2 task: {e}")))
}

/// Hashes a password with argon2id off the async workers (see [`hashing_slots`]).
async fn hash_password(password: &str) -> Result<String, AppError> {
    let password = password.to_owned();
    hashing(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(format!("argon2: {e}")))
    })
    .await?
}

/// Checks a password against a stored argon2 hash on a blocking thread (see [`hash_password`]),
/// counting each check in `learnomy_webhooks_console_password_checks_total`.
async fn password_matches(stored: String, password: &str) -> Result<bool, AppError> {
    let password = password.to_owned();
    metrics::counter!("learnomy_webhooks_console_password_checks_total").increment(1);
    hashing(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
}

impl App {
    /// Creates a console user.
    pub async fn create_user(&self, name: &str, password: &str) -> Result<UserId, AppError> {
        let errors: Vec<FieldError> = [check_user_name(name), check_password(password)]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let user = UserRecord {
            id: UserId::generate(),
            name: name.to_owned(),
            password_hash: hash_password(password).await?,
        };
        self.store().insert_user(&user, Timestamp::now()).await?;
        tracing::info!(user = name, "console user created");
        Ok(user.id)
    }

    /// Sets a new password and ends the user's sessions.
    pub async fn reset_password(&self, name: &str, password: &str) -> Result<(), AppError> {
        check_password(password).map_err(|e| AppError::Validation(vec![e]))?;
        if self
            .store()
            .set_password(name, &hash_password(password).await?, Timestamp::now())
            .await?
        {
            tracing::info!(user = name, "console password reset");
            Ok(())
        } else {
            Err(AppError::NotFound("user"))
        }
    }

    /// The user if the name and password match. Runs a hash even for unknown names, so timing
    /// does not reveal which names exist.
    pub async fn verify_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<UserRecord>, AppError> {
        let user = self.store().find_user(name).await?;
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_owned());
        let matches = password_matches(stored, password).await?;
        Ok(user.filter(|_| matches))
    }
}

/// An argon2id hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Xt4fq6Ixn0i2eMZQHJQYjG0q1m2kLwWWg4n9nT5fD8A";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_user_name("admin").is_ok());
        assert!(check_user_name("jane.doe@example.com").is_ok());
        assert!(check_user_name("").is_err());
        assert!(check_user_name("has space").is_err());
        assert!(check_user_name("<script>").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough password").is_ok());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(password_matches(h.clone(), "correct horse battery")
            .await
            .unwrap());
        assert!(!password_matches(h, "wrong").await.unwrap());
    }
}
