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

fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2: {e}")))
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
            password_hash: hash_password(password)?,
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
            .set_password(name, &hash_password(password)?, Timestamp::now())
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
        let matches = PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
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

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
