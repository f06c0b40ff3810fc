//! Appending to the transparency log inside a PostgreSQL transaction.
//!
//! Every transaction that appends first takes one transaction-scoped
//! advisory lock, so appends from any number of replicas are serialised:
//! indexes stay gap-free and no two replicas can extend the tree from the
//! same size (which would fork it). The lock is released at commit.

use std::collections::HashMap;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::Entry;
use gatehouse_log::proof::leaf_hash;
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use gatehouse_store::{StoreError, StoreResult};
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use crate::backend;

/// An arbitrary constant naming the log's advisory lock.
const LOG_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"

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

async fn run(conn: &mut PgConnection, op: &Op) -> StoreResult<Output> {
    let needs = op.needs().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let fetched = read_hashes(conn, &needs).await?;
    op.run(&fetched)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Appends one entry (the caller holds the lock); returns its index.
pub async fn append(conn: &mut PgConnection, entry: &Entry) -> StoreResult<u64> {
    let n = size(conn).await?;
    let bytes = entry.to_bytes();
    let Output::Stored(hashes) = run(
        conn,
        &Op::Append {
            n,
            leaf: leaf_hash(&bytes),
        },
    )
    .await?
    else {
        return Err(StoreError::Corrupt("append produced no hashes".into()));
    };
    sqlx::query("INSERT INTO log_entries (idx, kind, ref_id, leaf) VALUES ($1, $2, $3, $4)")
        .bind(n as i64)
        .bind(&entry.kind)
        .bind(&entry.id)
        .bind(&bytes)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let (idx, values): (Vec<i64>, Vec<Vec<u8>>) = hashes
        .into_iter()
        .map(|(i, h)| (i as i64, h.0.to_vec()))
        .unzip();
    sqlx::query(
        "INSERT INTO log_hashes (idx, hash) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])",
    )
    .bind(&idx)
    .bind(&values)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(n)
}

/// Signs and stores a checkpoint for the current size.
pub async fn checkpoint(
    conn: &mut PgConnection,
    signer: &LogSigner,
) -> StoreResult<Option<String>> {
    let n = size(conn).await?;
    if n == 0 {
        return Ok(None);
    }
    let Output::Root(root) = run(conn, &Op::Root { size: n }).await? else {
        return Err(StoreError::Corrupt("root computation failed".into()));
    };
    let note = signer
        .sign(n, root)
        .map_err(|e| StoreError::Backend(format!("cannot sign checkpoint: {e}")))?;
    sqlx::query(
        "INSERT INTO checkpoints (size, note, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
    )
    .bind(n as i64)
    .bind(&note)
    .bind(to_unix_millis(OffsetDateTime::now_utc()))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(Some(note))
}
