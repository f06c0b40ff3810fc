//! Appending to the transparency log inside the writer's transaction.

use std::collections::HashMap;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::Entry;
use gatehouse_log::proof::leaf_hash;
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use gatehouse_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use crate::rows::backend;

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

fn run(conn: &Connection, op: &Op) -> StoreResult<Output> {
    let needs = op.needs().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let fetched = read_hashes(conn, &needs)?;
    op.run(&fetched)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Appends one entry; returns its index. Runs inside the caller's
/// transaction (savepoint), so the entry commits or rolls back with the
/// record it describes.
pub fn append(conn: &Connection, entry: &Entry) -> StoreResult<u64> {
    let n = size(conn)?;
    let bytes = entry.to_bytes();
    let Output::Stored(hashes) = run(
        conn,
        &Op::Append {
            n,
            leaf: leaf_hash(&bytes),
        },
    )?
    else {
        return Err(StoreError::Corrupt("append produced no hashes".into()));
    };
    conn.prepare_cached(
        "INSERT INTO log_entries (idx, kind, ref_id, leaf) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(backend)?
    .execute(params![n as i64, entry.kind, entry.id, bytes])
    .map_err(backend)?;
    let mut insert = conn
        .prepare_cached("INSERT INTO log_hashes (idx, hash) VALUES (?1, ?2)")
        .map_err(backend)?;
    for (i, h) in hashes {
        insert
            .execute(params![i as i64, h.0.to_vec()])
            .map_err(backend)?;
    }
    Ok(n)
}

/// Signs and stores a checkpoint for the current size; returns its note.
pub fn checkpoint(conn: &Connection, signer: &LogSigner) -> StoreResult<Option<String>> {
    let n = size(conn)?;
    if n == 0 {
        return Ok(None);
    }
    let Output::Root(root) = run(conn, &Op::Root { size: n })? else {
        return Err(StoreError::Corrupt("root computation failed".into()));
    };
    let note = signer
        .sign(n, root)
        .map_err(|e| StoreError::Backend(format!("cannot sign checkpoint: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO checkpoints (size, note, created_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (size) DO NOTHING",
    )
    .map_err(backend)?
    .execute(params![n as i64, note, to_unix_millis(OffsetDateTime::now_utc())])
    .map_err(backend)?;
    Ok(Some(note))
}
