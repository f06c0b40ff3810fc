//! Reading the transparency log.

use std::collections::HashMap;

use async_trait::async_trait;
use gatehouse_log::Hash;
use gatehouse_store::{LogStore, StoreResult};

use crate::rows::{backend, leaves};
use crate::{log, PostgresStore};

#[async_trait]
impl LogStore for PostgresStore {
    fn log_verifier_key(&self) -> &str {
        self.signer.verifier_key()
    }

    async fn log_size(&self) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        log::size(&mut conn).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn read_log_hashes(&self, indexes: Vec<u64>) -> StoreResult<HashMap<u64, Hash>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        log::read_hashes(&mut conn, &indexes).await
    }

    async fn log_entries_for(&self, ref_id: &str) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let rows = sqlx::query("SELECT idx, leaf FROM log_entries WHERE ref_id = $1 ORDER BY idx")
            .bind(ref_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        leaves(&rows)
    }

    async fn log_leaves(&self, from: u64, limit: u32) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let rows =
            sqlx::query("SELECT idx, leaf FROM log_entries WHERE idx >= $1 ORDER BY idx LIMIT $2")
                .bind(from as i64)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        leaves(&rows)
    }
}
