//! PostgreSQL store. Several `gatehouse serve` replicas may share one
//! database: idempotency rests on a unique index, reviews and expiry on
//! conditional updates, and log appends on one advisory lock (see `log`),
//! so no replica can act on a stale read.

//!
//! One file per capability: `decisions.rs`, `reviews.rs`, `keys.rs`,
//! `tokens.rs`, `evidence.rs`, `policies.rs`, `log_reads.rs`; log appends
//! and the lock in `log.rs`, the per-replica group commit in `batch.rs`,
//! rows through the shared mapping in `rows.rs`.

mod batch;
mod decisions;
mod evidence;
mod hooks;
mod keys;
mod log;
mod log_reads;
mod outbox;
mod policies;
mod reviews;
mod rows;
mod sessions;
mod tokens;
mod users;

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_store::{Store, StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::rows::backend;

pub struct PostgresStore {
    pool: PgPool,
    signer: Arc<LogSigner>,
    decisions: batch::Batcher,
}

impl PostgresStore {
    /// Connects and runs migrations. Migrations take a database-wide
    /// advisory lock, so replicas starting together do not race. `signer`
    /// signs the log's checkpoints; every replica must use the same key.
    pub async fn connect(url: &str, signer: Arc<LogSigner>) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse().map_err(backend)?;
        Self::connect_with(options, signer).await
    }

    pub async fn connect_with(
        options: PgConnectOptions,
        signer: Arc<LogSigner>,
    ) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        let decisions = batch::Batcher::start(pool.clone(), signer.clone());
        Ok(PostgresStore {
            pool,
            signer,
            decisions,
        })
    }

    /// A transaction holding the log lock, for writes that append.
    async fn logged_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        log::lock(&mut tx).await?;
        Ok(tx)
    }

    /// Ends a logged transaction with a checkpoint covering its entries.
    async fn commit_logged(
        &self,
        mut tx: Transaction<'static, Postgres>,
    ) -> StoreResult<Option<String>> {
        let note = log::checkpoint(&mut tx, &self.signer).await?;
        tx.commit().await.map_err(backend)?;
        Ok(note)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(&gatehouse_store::schema_probe_sql(&gatehouse_store::TABLES))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        // Ready only while writes succeed: a read-only server (a standby,
        // a full disk) answers reads but would fail every decision.
        sqlx::query(
            "INSERT INTO readiness (id, checked_at) VALUES (1, now()) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;
