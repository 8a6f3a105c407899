//! API tokens: stored as SHA-256 hashes, looked up by hash.

use lwh_domain::{Timestamp, TokenId};
use sqlx::any::AnyRow;

use crate::connect::Store;
use crate::decode;
use crate::error::StoreError;
use crate::model::{ApiTokenRecord, NewApiToken};

const TOKEN_COLUMNS: &str = "id, name, token_prefix, scope, created_at, last_used_at, revoked_at";

impl Store {
    /// Stores a new token's hash.
    pub async fn insert_api_token(&self, new: &NewApiToken) -> Result<(), StoreError> {
        sqlx::query(self.backend.sql(
            "INSERT INTO api_tokens (id, name, token_hash, token_prefix, scope, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(new.id.to_string())
        .bind(&new.name)
        .bind(&new.token_hash)
        .bind(&new.prefix)
        .bind(&new.scope)
        .bind(new.now.millis())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_unique(e, "token"))?;
        Ok(())
    }

    /// The live (not revoked) token with this hash.
    pub async fn find_api_token(&self, hash: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row = sqlx::query(self.backend.sql_owned(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        )))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_token).transpose()
    }

    /// Records that a token was used (callers throttle this).
    pub async fn touch_api_token(&self, id: TokenId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            self.backend
                .sql("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1"),
        )
        .bind(id.to_string())
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every token, newest first, revoked ones included.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let rows = sqlx::query(self.backend.sql_owned(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_token).collect()
    }

    /// Revokes a token; returns whether a live token was revoked.
    pub async fn revoke_api_token(&self, id: TokenId, now: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(
            self.backend
                .sql("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"),
        )
        .bind(id.to_string())
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn decode_token(row: &AnyRow) -> Result<ApiTokenRecord, StoreError> {
    Ok(ApiTokenRecord {
        id: decode::parsed(row, "id")?,
        name: decode::text(row, "name")?,
        prefix: decode::text(row, "token_prefix")?,
        scope: decode::text(row, "scope")?,
        created_at: decode::time(row, "created_at")?,
        last_used_at: decode::opt_time(row, "last_used_at")?,
        revoked_at: decode::opt_time(row, "revoked_at")?,
    })
}
