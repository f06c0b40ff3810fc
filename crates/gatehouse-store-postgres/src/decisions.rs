//! Storing and reading decisions: new decisions go to this replica's
//! batcher (see `batch.rs`); reads go straight to the pool.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::{Decision, Status};
use gatehouse_store::sql::{
    count_decisions_sql, decision_from_row, list_decisions_sql, Dialect, DECISION_COLUMNS,
};
use gatehouse_store::{Arg, CreateOutcome, DecisionQuery, DecisionStore, NewDecision, StoreResult};

use crate::rows::{backend, map_all, map_one};
use crate::PostgresStore;

impl PostgresStore {
    pub(crate) async fn find(&self, id: &str) -> StoreResult<Option<Decision>> {
        let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, decision_from_row)
    }

    async fn find_idempotent(&self, created_by: &str, key: &str) -> StoreResult<Option<Decision>> {
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE created_by = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(created_by)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, decision_from_row)
    }
}

#[async_trait]
impl DecisionStore for PostgresStore {
    async fn insert_decision(&self, new: Arc<NewDecision>) -> StoreResult<CreateOutcome> {
        let d = &new.decision;
        // A retry of an earlier idempotent request needs no lock or batch.
        if let Some(key) = &d.idempotency_key {
            if let Some(existing) = self.find_idempotent(&d.created_by, key).await? {
                return Ok(CreateOutcome::Existing(Box::new(existing)));
            }
        }
        self.decisions.create(new).await
    }

    async fn get_decision(&self, id: &str) -> StoreResult<Option<Decision>> {
        self.find(id).await
    }

    async fn get_decisions(&self, ids: &[String]) -> StoreResult<Vec<Decision>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ANY($1)");
        let rows = sqlx::query(&sql)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        map_all(&rows, decision_from_row)
    }

    async fn list_decisions(&self, q: &DecisionQuery) -> StoreResult<Vec<Decision>> {
        let (sql, args) = list_decisions_sql(q, Dialect::Postgres);
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await.map_err(backend)?;
        map_all(&rows, decision_from_row)
    }

    async fn count_decisions(&self, status: Status) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(&count_decisions_sql(Dialect::Postgres))
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(n as u64)
    }
}
