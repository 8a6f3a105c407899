//! Decoding helpers shared by the query modules.

use std::str::FromStr;

use lwh_domain::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::StoreError;

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

pub(crate) fn time(row: &AnyRow, col: &str) -> Result<Timestamp, StoreError> {
    int(row, col).map(Timestamp::from_millis)
}

pub(crate) fn opt_time(row: &AnyRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(opt_int(row, col)?.map(Timestamp::from_millis))
}

pub(crate) fn bytes(row: &AnyRow, col: &str) -> Result<Vec<u8>, StoreError> {
    Ok(row.try_get::<Vec<u8>, _>(col)?)
}

pub(crate) fn opt_bytes(row: &AnyRow, col: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(row.try_get::<Option<Vec<u8>>, _>(col)?)
}

/// A column holding a prefixed id or another `FromStr` value.
pub(crate) fn parsed<T: FromStr>(row: &AnyRow, col: &str) -> Result<T, StoreError> {
    let raw = text(row, col)?;
    raw.parse().map_err(|_| corrupt(col, &raw))
}

/// A column of a row read on SQLite's writer thread, parsed like [`parsed`].
pub(crate) fn sqlite_parsed<T: FromStr>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> Result<T, StoreError> {
    let raw: String = row.get(index)?;
    raw.parse().map_err(|_| corrupt(&format!("#{index}"), &raw))
}

fn corrupt(col: &str, raw: &str) -> StoreError {
    StoreError::Corrupt(format!("column {col} holds {raw:?}"))
}
