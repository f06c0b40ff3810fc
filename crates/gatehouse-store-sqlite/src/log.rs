//! Appending to the transparency log inside the writer's transaction.

use std::collections::HashMap;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::{Entry, Leaf};
use gatehouse_log::frontier::Frontier;
use gatehouse_log::proof::leaf_hash;
use gatehouse_log::Hash;
use gatehouse_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use crate::rows::backend;
use crate::writer::Tx;

pub fn size(conn: &Connection) -> StoreResult<u64> {
    conn.prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries")
        .map_err(backend)?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(backend)
}

pub fn read_hashes(conn: &Connection, indexes: &[u64]) -> StoreResult<HashMap<u64, Hash>> {
    let mut stmt = conn
        .prepare_cached("SELECT hash FROM log_hashes WHERE idx = ?1")
        .map_err(backend)?;
    let mut out = HashMap::with_capacity(indexes.len());
    for &i in indexes {
        let bytes: Option<Vec<u8>> = stmt
            .query_row(params![i as i64], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        let bytes = bytes.ok_or_else(|| StoreError::Corrupt(format!("log hash {i} is missing")))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("log hash {i} is not 32 bytes")))?;
        out.insert(i, Hash(hash));
    }
    Ok(out)
}

/// The log's right edge for this transaction: `cached` if the stored log
/// still has its size (nobody else appended since), else loaded afresh.
pub fn frontier(conn: &Connection, cached: Option<Frontier>) -> StoreResult<Frontier> {
    let n = size(conn)?;
    if let Some(f) = cached.filter(|f| f.size() == n) {
        return Ok(f);
    }
    let needs = Frontier::needs(n).map_err(corrupt)?;
    Frontier::load(n, &read_hashes(conn, &needs)?).map_err(corrupt)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Appends one entry; returns its index. Runs inside the caller's
/// savepoint, so the entry commits or rolls back with the record it
/// describes (the writer rolls the right edge back with it).
pub fn append(t: &Tx, entry: &Entry) -> StoreResult<u64> {
    append_leaf(t, &Leaf::from(entry))
}

/// [`append`] for an entry serialised before the job reached the writer.
pub fn append_leaf(t: &Tx, leaf: &Leaf) -> StoreResult<u64> {
    let (n, hashes) = t
        .log
        .borrow_mut()
        .append(leaf_hash(&leaf.bytes))
        .map_err(corrupt)?;
    t.prepare_cached("INSERT INTO log_entries (idx, kind, ref_id, leaf) VALUES (?1, ?2, ?3, ?4)")
        .map_err(backend)?
        .execute(params![n as i64, leaf.kind, leaf.id, leaf.bytes])
        .map_err(backend)?;
    let mut insert = t
        .prepare_cached("INSERT INTO log_hashes (idx, hash) VALUES (?1, ?2)")
        .map_err(backend)?;
    for (i, h) in hashes {
        insert
            .execute(params![i as i64, h.0.to_vec()])
            .map_err(backend)?;
    }
    Ok(n)
}

/// Signs and stores a checkpoint for the log's current right edge; returns
/// its note.
pub fn checkpoint(conn: &Connection, signer: &LogSigner, log: &Frontier) -> StoreResult<String> {
    let note = signer
        .sign(log.size(), log.root().map_err(corrupt)?)
        .map_err(|e| StoreError::Backend(format!("cannot sign checkpoint: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO checkpoints (size, note, created_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (size) DO NOTHING",
    )
    .map_err(backend)?
    .execute(params![log.size() as i64, note, to_unix_millis(OffsetDateTime::now_utc())])
    .map_err(backend)?;
    Ok(note)
}
