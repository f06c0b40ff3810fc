//! Appending to the transparency log inside the writer's transaction.

use std::collections::HashMap;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::{Leaf, LogEntry};
use gatehouse_log::frontier::Frontier;
use gatehouse_log::proof::leaf_hash;
use gatehouse_log::Hash;
use gatehouse_store::sql::{chained, last_leaf_sql, Dialect};
use gatehouse_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use crate::rows::backend;
use crate::tx::Tx;

pub fn size(conn: &Connection) -> StoreResult<u64> {
    conn.prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries")
        .map_err(backend)?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(backend)
}

/// Where the stored hash with tlog storage index `i` is kept: the leaf
/// whose append stored it, and its position in that leaf's `hashes` column.
/// The hash at level L, index k completes when the subtree's last leaf,
/// (k + 1) * 2^L - 1, is appended, and an append stores its hashes level by
/// level from 0.
fn hash_home(i: u64) -> (u64, usize) {
    let (level, k) = tlog_tiles::tlog::split_stored_hash_index(i);
    (((k + 1) << level) - 1, usize::from(level))
}

/// The `hashes` column for leaf `n`: the hashes its append stored, in
/// storage-index order (which [`hash_home`] relies on).
fn pack_hashes(n: u64, stored: &[(u64, Hash)]) -> StoreResult<Vec<u8>> {
    let first = tlog_tiles::tlog::stored_hash_index(0, n);
    let mut packed = Vec::with_capacity(32 * stored.len());
    for (position, (i, h)) in stored.iter().enumerate() {
        if *i != first + position as u64 {
            return Err(StoreError::Corrupt(format!(
                "the append of leaf {n} stored hash {i} out of order"
            )));
        }
        packed.extend_from_slice(&h.0);
    }
    Ok(packed)
}

pub fn read_hashes(conn: &Connection, indexes: &[u64]) -> StoreResult<HashMap<u64, Hash>> {
    // Several hashes can come from one leaf's row: read each row once, and
    // all of them in one statement (a proof needs a few dozen).
    let mut homes: Vec<u64> = indexes.iter().map(|&i| hash_home(i).0).collect();
    homes.sort_unstable();
    homes.dedup();
    let mut rows: HashMap<u64, Vec<u8>> = HashMap::with_capacity(homes.len());
    for chunk in homes.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!(
            "SELECT idx, CAST(hashes AS BLOB) FROM log_entries WHERE idx IN ({marks}) AND hashes IS NOT NULL"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
        let found = stmt
            .query_map(
                rusqlite::params_from_iter(chunk.iter().map(|&l| l as i64)),
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .map_err(backend)?;
        for row in found {
            let (leaf, packed) = row.map_err(backend)?;
            rows.insert(leaf, packed);
        }
    }
    let mut legacy = conn
        .prepare_cached("SELECT hash FROM log_hashes WHERE idx = ?1")
        .map_err(backend)?;
    let mut out = HashMap::with_capacity(indexes.len());
    for &i in indexes {
        let (leaf, position) = hash_home(i);
        let bytes: Option<Vec<u8>> = match rows.get(&leaf) {
            Some(p) => p.get(32 * position..32 * position + 32).map(<[u8]>::to_vec),
            // A leaf appended before migration 0007 (or a row deleted
            // behind the server's back, which then reads as missing).
            None => legacy
                .query_row(params![i as i64], |r| r.get(0))
                .optional()
                .map_err(backend)?,
        };
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
pub fn append(t: &Tx, entry: &LogEntry) -> StoreResult<u64> {
    let last: Option<Vec<u8>> = if entry.event.is_chained() && entry.prev.is_none() {
        t.prepare_cached(&last_leaf_sql(Dialect::Sqlite))
            .map_err(backend)?
            .query_row([&entry.id], |r| r.get(0))
            .optional()
            .map_err(backend)?
    } else {
        None
    };
    append_leaf(t, &chained(entry, last.as_deref()).leaf())
}

/// [`append`] for an entry serialised before the job reached the writer.
pub fn append_leaf(t: &Tx, leaf: &Leaf) -> StoreResult<u64> {
    let (n, hashes) = t
        .log
        .borrow_mut()
        .append(leaf_hash(&leaf.bytes))
        .map_err(corrupt)?;
    t.prepare_cached(
        "INSERT INTO log_entries (idx, kind, ref_id, leaf, hashes) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(backend)?
    .execute(params![
        n as i64,
        leaf.kind,
        leaf.id,
        leaf.bytes,
        pack_hashes(n, &hashes)?
    ])
    .map_err(backend)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hash an append stores is found again at the leaf and position
    /// `hash_home` names, in the row `pack_hashes` wrote.
    #[test]
    fn stored_hashes_are_found_in_the_row_of_the_leaf_that_stored_them() {
        let mut log = Frontier::empty();
        let mut rows: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut all = Vec::new();
        for n in 0..1_000u64 {
            let (index, stored) = log.append(leaf_hash(&n.to_le_bytes())).unwrap();
            assert_eq!(index, n);
            rows.insert(n, pack_hashes(n, &stored).unwrap());
            all.extend(stored);
        }
        for (i, h) in all {
            let (leaf, position) = hash_home(i);
            assert_eq!(
                &rows[&leaf][32 * position..32 * position + 32],
                &h.0,
                "hash {i}"
            );
        }
        let (_, stored) = log.append(leaf_hash(b"x")).unwrap();
        assert!(pack_hashes(7, &stored).is_err(), "hashes of another leaf");
    }
}
