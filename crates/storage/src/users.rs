//! Console users, their sessions, and one-time setup links.

use lwh_domain::{Timestamp, UserId};

use crate::connect::Store;
use crate::decode;
use crate::error::StoreError;
use crate::model::{SessionRecord, UserRecord};

impl Store {
    /// Creates a user; `Conflict` if the name is taken.
    pub async fn insert_user(&self, user: &UserRecord, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(self.backend.sql(
            "INSERT INTO users (id, name, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        ))
        .bind(user.id.to_string())
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(now.millis())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_unique(e, "user"))?;
        Ok(())
    }

    /// Replaces a user's password hash and signs them out everywhere; false if no such user.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            self.backend
                .sql("UPDATE users SET password_hash = $2, updated_at = $3 WHERE name = $1"),
        )
        .bind(name)
        .bind(password_hash)
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            self.backend.sql(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)",
            ),
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The user with this login name.
    pub async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            self.backend
                .sql("SELECT id, name, password_hash FROM users WHERE name = $1"),
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(UserRecord {
                id: decode::parsed(&r, "id")?,
                name: decode::text(&r, "name")?,
                password_hash: decode::text(&r, "password_hash")?,
            })
        })
        .transpose()
    }

    /// How many users exist (zero means first-run setup is open).
    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(decode::int(&row, "n")?.max(0) as u64)
    }

    /// Starts a session identified by the hash of its cookie value.
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: UserId,
        csrf_token: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(self.backend.sql(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(token_hash)
        .bind(user_id.to_string())
        .bind(csrf_token)
        .bind(now.millis())
        .bind(expires_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session with this cookie hash.
    pub async fn find_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(self.backend.sql(
            "SELECT s.user_id, u.name, s.csrf_token, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        ))
        .bind(token_hash)
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                user_id: decode::parsed(&r, "user_id")?,
                user_name: decode::text(&r, "name")?,
                csrf_token: decode::text(&r, "csrf_token")?,
                expires_at: decode::time(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session (logout) and drops expired ones.
    pub async fn delete_session(&self, token_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            self.backend
                .sql("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2"),
        )
        .bind(token_hash)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a one-time setup link's hash.
    pub async fn insert_setup_token(
        &self,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            self.backend
                .sql("INSERT INTO setup_tokens (token_hash, expires_at) VALUES ($1, $2)"),
        )
        .bind(token_hash)
        .bind(expires_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Uses up a setup link: true if it existed and had not expired.
    pub async fn take_setup_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            self.backend
                .sql("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2"),
        )
        .bind(token_hash)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
