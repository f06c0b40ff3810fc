//! Appending to the transparency log inside a PostgreSQL transaction.
//!
//! A transaction that appends first takes one transaction-scoped advisory
//! lock, so appends from any number of replicas are serialised: indexes
//! stay gap-free and no two replicas can extend the tree from the same size
//! (which would fork it). The lock is released at commit. A decision batch
//! on the replica that made the last append takes the lock inside its one
//! statement instead (see `batch::bulk`), and the primary keys on `idx`
//! refuse any index another writer took before it.

use std::collections::HashMap;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::{Leaf, LogEntry};
use gatehouse_log::frontier::Frontier;
use gatehouse_log::proof::leaf_hash;
use gatehouse_log::Hash;
use gatehouse_store::{StoreError, StoreResult};
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use gatehouse_store::sql::{chained, last_leaf_sql, Dialect};

use crate::rows::backend;

/// An arbitrary constant naming the log's advisory lock.
pub(crate) const LOG_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"

pub async fn lock(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOG_LOCK)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub async fn size(conn: &mut PgConnection) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0)::BIGINT FROM log_entries")
        .fetch_one(conn)
        .await
        .map_err(backend)?;
    Ok(n as u64)
}

pub async fn read_hashes(
    conn: &mut PgConnection,
    indexes: &[u64],
) -> StoreResult<HashMap<u64, Hash>> {
    if indexes.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
    let rows = sqlx::query("SELECT idx, hash FROM log_hashes WHERE idx = ANY($1)")
        .bind(&wanted)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let idx: i64 = row.try_get(0).map_err(backend)?;
        let bytes: Vec<u8> = row.try_get(1).map_err(backend)?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("log hash {idx} is not 32 bytes")))?;
        out.insert(idx as u64, Hash(hash));
    }
    if let Some(missing) = indexes.iter().find(|i| !out.contains_key(i)) {
        return Err(StoreError::Corrupt(format!(
            "log hash {missing} is missing"
        )));
    }
    Ok(out)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The log's right edge for this transaction (the caller holds the lock):
/// `cached` if the stored log still has its size, so no replica appended
/// since, else loaded afresh.
pub async fn frontier(conn: &mut PgConnection, cached: Option<Frontier>) -> StoreResult<Frontier> {
    let n = size(conn).await?;
    if let Some(f) = cached.filter(|f| f.size() == n) {
        return Ok(f);
    }
    let needs = Frontier::needs(n).map_err(corrupt)?;
    Frontier::load(n, &read_hashes(conn, &needs).await?).map_err(corrupt)
}

/// Leaves and stored hashes computed in memory, to be written together.
#[derive(Default)]
pub struct Pending {
    pub(crate) idx: Vec<i64>,
    pub(crate) kind: Vec<String>,
    pub(crate) ref_id: Vec<String>,
    pub(crate) leaf: Vec<Vec<u8>>,
    pub(crate) hash_idx: Vec<i64>,
    pub(crate) hash: Vec<Vec<u8>>,
}

impl Pending {
    /// Extends `log` with a serialised entry; returns the entry's index.
    pub fn append(&mut self, log: &mut Frontier, leaf: &Leaf) -> StoreResult<u64> {
        let (n, hashes) = log.append(leaf_hash(&leaf.bytes)).map_err(corrupt)?;
        self.idx.push(n as i64);
        self.kind.push(leaf.kind.to_string());
        self.ref_id.push(leaf.id.clone());
        self.leaf.push(leaf.bytes.clone());
        for (i, h) in hashes {
            self.hash_idx.push(i as i64);
            self.hash.push(h.0.to_vec());
        }
        Ok(n)
    }

    /// Writes every leaf and stored hash: two statements, however many.
    pub async fn write(self, conn: &mut PgConnection) -> StoreResult<()> {
        if self.idx.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO log_entries (idx, kind, ref_id, leaf)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[])",
        )
        .bind(&self.idx)
        .bind(&self.kind)
        .bind(&self.ref_id)
        .bind(&self.leaf)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        sqlx::query(
            "INSERT INTO log_hashes (idx, hash) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])",
        )
        .bind(&self.hash_idx)
        .bind(&self.hash)
        .execute(conn)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

/// Appends one entry (the caller holds the lock); returns its index.
pub async fn append(conn: &mut PgConnection, entry: &LogEntry) -> StoreResult<u64> {
    let last: Option<Vec<u8>> = if entry.event.is_chained() && entry.prev.is_none() {
        sqlx::query_scalar(&last_leaf_sql(Dialect::Postgres))
            .bind(&entry.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?
    } else {
        None
    };
    let entry = chained(entry, last.as_deref());
    let mut log = frontier(conn, None).await?;
    let mut pending = Pending::default();
    let n = pending.append(&mut log, &entry.leaf())?;
    pending.write(conn).await?;
    Ok(n)
}

/// The signed checkpoint note for the log's right edge.
pub fn sign_checkpoint(signer: &LogSigner, log: &Frontier) -> StoreResult<String> {
    signer
        .sign(log.size(), log.root().map_err(corrupt)?)
        .map_err(|e| StoreError::Backend(format!("cannot sign checkpoint: {e}")))
}

/// Signs and stores a checkpoint for the log's right edge; returns its note.
pub async fn checkpoint_at(
    conn: &mut PgConnection,
    signer: &LogSigner,
    log: &Frontier,
) -> StoreResult<String> {
    let note = sign_checkpoint(signer, log)?;
    sqlx::query(
        "INSERT INTO checkpoints (size, note, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
    )
    .bind(log.size() as i64)
    .bind(&note)
    .bind(to_unix_millis(OffsetDateTime::now_utc()))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(note)
}

/// Signs and stores a checkpoint for the current size.
pub async fn checkpoint(
    conn: &mut PgConnection,
    signer: &LogSigner,
) -> StoreResult<Option<String>> {
    let log = frontier(conn, None).await?;
    if log.size() == 0 {
        return Ok(None);
    }
    checkpoint_at(conn, signer, &log).await.map(Some)
}
