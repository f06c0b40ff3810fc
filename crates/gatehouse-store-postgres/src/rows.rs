//! Rows through the shared mapping (`gatehouse_store::sql`), and the small
//! helpers every capability uses.

use gatehouse_store::sql::Columns;
use gatehouse_store::{StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::Row;

/// A database failure, told apart by whether it passes: a lost or refused
/// connection, an exhausted pool, a server shutting down, a full disk or a
/// read-only server are outages a caller may retry; anything else is a
/// fault.
pub fn backend(e: sqlx::Error) -> StoreError {
    if is_outage(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // SQLSTATE classes: 08 connection exception, 53 insufficient
            // resources (disk full, out of memory, too many connections),
            // 57P operator intervention (shutdown, cannot connect now),
            // 58 system error (I/O); 25006 read-only transaction, 55P03
            // lock not available.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code.starts_with("58")
                || code == "25006"
                || code == "55P03"
        }),
        _ => false,
    }
}

pub fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(corrupt)
}

pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// A row as the shared row mapping reads it.
pub struct Cols<'a>(pub &'a PgRow);

impl Columns for Cols<'_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.0.try_get(i).map_err(backend)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.0.try_get(i).map_err(backend)
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.0.try_get(i).map_err(backend)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.0.try_get(i).map_err(backend)
    }
    fn blob(&self, i: usize) -> StoreResult<Vec<u8>> {
        self.0.try_get(i).map_err(backend)
    }
}

/// Maps every row with a shared row mapper.
pub fn map_all<T>(
    rows: &[PgRow],
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter().map(|r| map(&Cols(r))).collect()
}

/// Maps the row, if any, with a shared row mapper.
pub fn map_one<T>(
    row: Option<PgRow>,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    row.as_ref().map(|r| map(&Cols(r))).transpose()
}

/// JSON bodies in the rows' first column, decoded.
pub fn bodies<T: serde::de::DeserializeOwned>(rows: &[PgRow]) -> StoreResult<Vec<T>> {
    map_all(rows, |r| serde_json::from_str(&r.text(0)?).map_err(corrupt))
}

/// `(index, leaf bytes)` rows of the log.
pub fn leaves(rows: &[PgRow]) -> StoreResult<Vec<(u64, Vec<u8>)>> {
    map_all(rows, |r| Ok((r.int(0)? as u64, r.blob(1)?)))
}
