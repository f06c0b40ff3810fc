//! Rows through the shared mapping (`gatehouse_store::sql`), and the small
//! query helpers every capability uses.

use gatehouse_store::sql::Columns;
use gatehouse_store::{StoreError, StoreResult};
use rusqlite::{Connection, Params, Row};

/// A database failure, told apart by whether it passes: a full disk, a
/// read-only file, an I/O error or a lock held too long are outages a
/// caller may retry; anything else is a fault.
pub fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                DiskFull
                    | SystemIoFailure
                    | ReadOnly
                    | DatabaseBusy
                    | DatabaseLocked
                    | CannotOpen
                    | OutOfMemory
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

pub fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A row as the shared row mapping reads it.
pub struct Cols<'a, 'b>(pub &'a Row<'b>);

impl Columns for Cols<'_, '_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.0.get(i).map_err(backend)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.0.get(i).map_err(backend)
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.0.get(i).map_err(backend)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.0.get(i).map_err(backend)
    }
    fn blob(&self, i: usize) -> StoreResult<Vec<u8>> {
        self.0.get(i).map_err(backend)
    }
}

/// Every row `sql` selects, through `map`.
pub fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(map(&Cols(row))?);
    }
    Ok(out)
}

/// The first row `sql` selects, if any, through `map`.
pub fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    rows.next()
        .map_err(backend)?
        .map(|r| map(&Cols(r)))
        .transpose()
}

/// JSON bodies (the first column) selected by one id parameter, decoded.
pub fn bodies<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    id: &str,
) -> StoreResult<Vec<T>> {
    query_all(conn, sql, [id], |r| {
        serde_json::from_str(&r.text(0)?).map_err(|e| StoreError::Corrupt(e.to_string()))
    })
}

/// `(index, leaf bytes)` rows of the log.
pub fn leaves(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> StoreResult<Vec<(u64, Vec<u8>)>> {
    query_all(conn, sql, params, |r| Ok((r.int(0)? as u64, r.blob(1)?)))
}
