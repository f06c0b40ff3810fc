//! Reading the transparency log.

use std::collections::HashMap;

use async_trait::async_trait;
use gatehouse_log::Hash;
use gatehouse_store::{LogStore, StoreResult};
use rusqlite::OptionalExtension;

use crate::rows::{backend, leaves};
use crate::{log, SqliteStore};

#[async_trait]
impl LogStore for SqliteStore {
    fn log_verifier_key(&self) -> &str {
        &self.verifier_key
    }

    async fn log_size(&self) -> StoreResult<u64> {
        self.read(log::size).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_row(
                "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn read_log_hashes(&self, indexes: Vec<u64>) -> StoreResult<HashMap<u64, Hash>> {
        self.read(move |c| log::read_hashes(c, &indexes)).await
    }

    // Leaves are read with `CAST(leaf AS BLOB)`: a leaf rewritten with
    // another type (text, a number) then reads as its bytes, which fail to
    // parse and are named by index, instead of failing the whole read.
    async fn log_entries_for(&self, ref_id: &str) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let id = ref_id.to_string();
        self.read(move |c| {
            leaves(
                c,
                "SELECT idx, CAST(leaf AS BLOB) FROM log_entries WHERE ref_id = ?1 ORDER BY idx",
                [id],
            )
        })
        .await
    }

    async fn log_leaves(&self, from: u64, limit: u32) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.read(move |c| {
            leaves(
                c,
                "SELECT idx, CAST(leaf AS BLOB) FROM log_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
                rusqlite::params![from as i64, limit],
            )
        })
        .await
    }
}
