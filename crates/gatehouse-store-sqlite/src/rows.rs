//! Row ↔ domain conversions shared by the reader and the writer.

use gatehouse_core::decision::from_unix_millis;
use gatehouse_core::Decision;
use gatehouse_store::{decision_from_columns, ApiKey, Role, StoreError, StoreResult};
use rusqlite::Row;

pub const DECISION_COLUMNS: &str = "body, status, review, resolved_at_ms, log_index, flag_reason";

pub fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub fn decision_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<Decision>> {
    let body: String = row.get(0)?;
    let status: String = row.get(1)?;
    let review: Option<String> = row.get(2)?;
    let resolved_at: Option<i64> = row.get(3)?;
    let log_index: Option<i64> = row.get(4)?;
    let flag: Option<String> = row.get(5)?;
    Ok(decision_from_columns(
        &body,
        &status,
        review.as_deref(),
        resolved_at,
        log_index,
        flag,
    ))
}

pub fn key_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<ApiKey>> {
    let role: String = row.get(2)?;
    let key = ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        role: Role::Agent,
        secret_hash: row.get(3)?,
        created_at: from_unix_millis(row.get(4)?),
        revoked_at: row.get::<_, Option<i64>>(5)?.map(from_unix_millis),
    };
    Ok(match Role::parse(&role) {
        Some(role) => Ok(ApiKey { role, ..key }),
        None => Err(corrupt(format!("role {role:?}"))),
    })
}
