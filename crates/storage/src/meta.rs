//! `service_meta`: small named facts every process sharing the database must agree on.

use sqlx::Row;

use crate::connect::Store;
use crate::error::StoreError;

impl Store {
    /// The value stored under `name`, if any.
    pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            self.backend
                .sql("SELECT value FROM service_meta WHERE name = $1"),
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
    }

    /// Stores `value` under `name` unless a value is there already; answers the value in force
    /// (the first process to arrive decides).
    pub async fn meta_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(self.backend.sql(
            "INSERT INTO service_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        ))
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(self.meta(name).await?.unwrap_or_else(|| value.to_owned()))
    }

    /// Stores `value` under `name`, replacing what was there.
    pub async fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(self.backend.sql(
            "INSERT INTO service_meta (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        ))
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
