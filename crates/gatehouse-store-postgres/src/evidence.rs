//! What happened around decisions: receipts, outcomes, flags, task events.

use async_trait::async_trait;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::TaskEvent;
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{Dialect, EvidenceRow};
use gatehouse_store::{EvidenceStore, StoreError, StoreResult};
use time::OffsetDateTime;

use crate::rows::{backend, bodies, json};
use crate::{log, PostgresStore};

impl PostgresStore {
    /// JSON bodies selected by one id parameter, decoded.
    async fn bodies_by<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        id: &str,
    ) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(sql)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        bodies(&rows)
    }
}

#[async_trait]
impl EvidenceStore for PostgresStore {
    /// Inserts a receipt or outcome and its log entry in one logged
    /// transaction; returns the entry's index.
    async fn insert_evidence(&self, row: EvidenceRow) -> StoreResult<u64> {
        let mut tx = self.logged_tx().await?;
        let index = log::append(&mut tx, &row.entry).await?;
        sqlx::query(&row.insert_sql(Dialect::Postgres))
            .bind(&row.id)
            .bind(&row.decision_id)
            .bind(&row.body)
            .bind(index as i64)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        self.commit_logged(tx).await?;
        Ok(index)
    }

    async fn flag_decision(
        &self,
        decision_id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        let updated = sqlx::query("UPDATE decisions SET flag_reason = $2 WHERE id = $1")
            .bind(decision_id)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        log::append(&mut tx, &LogEntry::flag(decision_id, reason, at)).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn list_executions(&self, decision_id: &str) -> StoreResult<Vec<ExecutionReceipt>> {
        self.bodies_by(
            "SELECT body FROM executions WHERE decision_id = $1 ORDER BY id",
            decision_id,
        )
        .await
    }

    async fn list_outcomes(&self, decision_id: &str) -> StoreResult<Vec<OutcomeRecord>> {
        self.bodies_by(
            "SELECT body FROM outcomes WHERE decision_id = $1 ORDER BY id",
            decision_id,
        )
        .await
    }

    async fn add_event(&self, event: &TaskEvent) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        sqlx::query("INSERT INTO events (id, task_id, body) VALUES ($1, $2, $3)")
            .bind(&event.id)
            .bind(&event.task_id)
            .bind(json(event)?)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        log::append(&mut tx, &LogEntry::task_event(event)).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn list_events(&self, task_id: &str) -> StoreResult<Vec<TaskEvent>> {
        self.bodies_by(
            "SELECT body FROM events WHERE task_id = $1 ORDER BY seq",
            task_id,
        )
        .await
    }
}
