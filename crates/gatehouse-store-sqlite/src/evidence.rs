//! What happened around decisions: receipts, outcomes, flags, task events.

use async_trait::async_trait;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::TaskEvent;
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{Dialect, EvidenceRow};
use gatehouse_store::{EvidenceStore, StoreError, StoreResult};
use rusqlite::params;
use time::OffsetDateTime;

use crate::rows::{backend, bodies, json};
use crate::{log, SqliteStore};

#[async_trait]
impl EvidenceStore for SqliteStore {
    /// Inserts a receipt or outcome and its log entry in one writer job;
    /// returns the entry's index.
    async fn insert_evidence(&self, row: EvidenceRow) -> StoreResult<u64> {
        self.writer
            .run(move |conn| {
                let index = log::append(conn, &row.entry)?;
                conn.prepare_cached(&row.insert_sql(Dialect::Sqlite))
                    .map_err(backend)?
                    .execute(params![row.id, row.decision_id, row.body, index as i64])
                    .map_err(backend)?;
                Ok(index)
            })
            .await
    }

    async fn flag_decision(
        &self,
        decision_id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let (id, reason) = (decision_id.to_string(), reason.to_string());
        let entry = LogEntry::flag(&id, &reason, at);
        self.writer
            .run(move |conn| {
                let n = conn
                    .execute(
                        "UPDATE decisions SET flag_reason = ?2 WHERE id = ?1",
                        params![id, reason],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                log::append(conn, &entry)?;
                Ok(())
            })
            .await
    }

    async fn list_executions(&self, decision_id: &str) -> StoreResult<Vec<ExecutionReceipt>> {
        let id = decision_id.to_string();
        self.read(move |c| {
            bodies(
                c,
                "SELECT body FROM executions WHERE decision_id = ?1 ORDER BY id",
                &id,
            )
        })
        .await
    }

    async fn list_outcomes(&self, decision_id: &str) -> StoreResult<Vec<OutcomeRecord>> {
        let id = decision_id.to_string();
        self.read(move |c| {
            bodies(
                c,
                "SELECT body FROM outcomes WHERE decision_id = ?1 ORDER BY id",
                &id,
            )
        })
        .await
    }

    async fn add_event(&self, event: &TaskEvent) -> StoreResult<()> {
        let (id, task, body) = (event.id.clone(), event.task_id.clone(), json(event)?);
        let entry = LogEntry::task_event(event);
        self.writer
            .run(move |conn| {
                conn.prepare_cached("INSERT INTO events (id, task_id, body) VALUES (?1, ?2, ?3)")
                    .map_err(backend)?
                    .execute(params![id, task, body])
                    .map_err(backend)?;
                log::append(conn, &entry)?;
                Ok(())
            })
            .await
    }

    async fn list_events(&self, task_id: &str) -> StoreResult<Vec<TaskEvent>> {
        let task = task_id.to_string();
        self.read(move |c| {
            bodies(
                c,
                "SELECT body FROM events WHERE task_id = ?1 ORDER BY seq",
                &task,
            )
        })
        .await
    }
}
